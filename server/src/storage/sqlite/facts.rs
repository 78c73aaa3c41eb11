//! The `indicator_facts` table: per record, what plan progress indicators read (see
//! `crate::indicators::facts`), rewritten with the merged view on every ingest so that a whole
//! report reads small rows instead of documents or full views.

use super::uuid_col;
use crate::indicators::facts::{Detail, Fact};
use crate::storage::{StorageError, StorageResult};
use fieldsync_core::record::{ReviewPhase, Status};
use fieldsync_core::{RecordType, RecordView};
use rusqlite::{params, Connection};

/// Writes a record's facts.
pub fn refresh(conn: &Connection, fact: &Fact) -> StorageResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO indicator_facts
           (id, record_type, commune, status, merged_into, review, sensitive, kind, date, detail, people)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            fact.id.as_bytes(),
            fact.record_type.as_str(),
            fact.commune,
            fact.status.as_str(),
            fact.merged_into.map(|m| m.as_bytes().to_vec()),
            fact.review.as_str(),
            fact.sensitive,
            fact.kind,
            fact.date,
            serde_json::to_string(&fact.detail).unwrap_or_else(|_| "{}".into()),
            fact.people_bytes(),
        ],
    )?;
    Ok(())
}

/// Every record's facts.
pub fn load(conn: &Connection) -> StorageResult<Vec<Fact>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, record_type, commune, status, merged_into, review, sensitive, kind, date,
                detail, people FROM indicator_facts",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let record_type: String = r.get(1)?;
        let record_type = RecordType::parse(&record_type)
            .ok_or_else(|| StorageError::Corrupt(format!("facts of unknown type {record_type}")))?;
        let detail: String = r.get(9)?;
        let detail: Detail = serde_json::from_str(&detail)
            .map_err(|e| StorageError::Corrupt(format!("indicator facts: {e}")))?;
        let status: String = r.get(3)?;
        let review: String = r.get(5)?;
        let people: Vec<u8> = r.get(10)?;
        out.push(Fact {
            id: uuid_col(r.get(0)?)?,
            record_type,
            commune: r.get(2)?,
            status: Status::parse(&status),
            merged_into: r.get::<_, Option<Vec<u8>>>(4)?.map(uuid_col).transpose()?,
            review: ReviewPhase::parse(&review).unwrap_or_default(),
            sensitive: r.get(6)?,
            kind: r.get(7)?,
            date: r.get(8)?,
            detail,
            people: Fact::people_from_bytes(&people),
        });
    }
    Ok(out)
}

/// Fills the table from the merged view, for a database made before it existed. A row whose
/// view cannot be read is left out, as the merged view shows it only as a problem.
pub fn backfill(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT view, review, sensitive FROM merged")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })?;
    for row in rows {
        let (view, review, sensitive) = row?;
        let Ok(view) = serde_json::from_str::<RecordView>(&view) else {
            continue;
        };
        let fact = Fact::from_view(
            &view,
            ReviewPhase::parse(&review).unwrap_or_default(),
            sensitive,
        );
        refresh(conn, &fact).map_err(|e| match e {
            StorageError::Db(e) => e,
            other => rusqlite::Error::InvalidParameterName(other.to_string()),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::storage::prelude::*;
    use crate::storage::sqlite::SqliteStorage;
    use fieldsync_core::generator::minimal_household;
    use fieldsync_core::model::RecordType;
    use fieldsync_core::RecordDoc;
    use uuid::Uuid;

    #[test]
    fn facts_follow_ingest_and_a_version_4_database_gets_them_from_its_merged_view() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite");
        let storage = SqliteStorage::open(&path).unwrap();
        let id = Uuid::now_v7();
        let (mut doc, created) = RecordDoc::create(
            id,
            RecordType::Household,
            &minimal_household("62.610.01", "Y Blơ"),
            Uuid::new_v4(),
        )
        .unwrap();
        let deleted = doc.soft_delete().unwrap().unwrap();
        storage
            .ingest_trusted(Uuid::nil(), &[(id, created.bytes), (id, deleted.bytes)])
            .unwrap();
        let facts = storage.indicator_facts().unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].status.as_str(), "deleted");
        drop(storage);

        // The database as version 4 left it: no facts table (nor what later versions added).
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE indicator_facts; DROP TABLE expired;
             ALTER TABLE actors DROP COLUMN public_key; ALTER TABLE changes DROP COLUMN receipt;
             ALTER TABLE changes DROP COLUMN author_signature; ALTER TABLE held DROP COLUMN signature;
             ALTER TABLE held DROP COLUMN vouched; DELETE FROM meta WHERE key = 'signing_key';
             ALTER TABLE users DROP COLUMN full_name; ALTER TABLE users DROP COLUMN phone;
             ALTER TABLE merged DROP COLUMN village;
             ALTER TABLE devices DROP COLUMN enrolled_ms; ALTER TABLE devices DROP COLUMN last_sync_ms;
             ALTER TABLE devices DROP COLUMN changes_sent; DROP TABLE record_origin;
             DROP INDEX dup_pairs_by_score; ALTER TABLE dup_pairs DROP COLUMN score;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);
        let storage = SqliteStorage::open(&path).unwrap();
        assert_eq!(storage.indicator_facts().unwrap(), facts);
    }
}
