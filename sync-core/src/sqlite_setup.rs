//! How fieldsync opens its SQLite files, the phone's store and the server's database alike:
//! created private, pragmas set, the schema brought to its newest version one step at a time,
//! then the derived data those versions asked for rebuilt.
//!
//! A [`Schema`] lists [`Migration`]s (one per `PRAGMA user_version`, each run and recorded in
//! one transaction, so an interrupted upgrade resumes at the step it stopped in) and, apart from
//! them, [`Rebuild`]s: recomputations of derived data by today's code against today's schema. A
//! migration names the rebuilds its version needs; they are noted in the step's own transaction
//! and run once every step is done, so a crash between the two loses none of them. A file that
//! is already current is only read, so it opens on a full disk too.

use rusqlite::{Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::time::Duration;

/// Where rebuilds wait between the step that asked for them and their run. It exists only while
/// an upgrade is under way, so a current file's schema never shows it.
const PENDING: &str = "setup_pending_rebuilds";

/// Work on an open transaction: a migration's Rust part or a rebuild.
pub type Work<E> = fn(&Transaction<'_>) -> Result<(), E>;

/// One part of a migration, run in order.
pub enum Step<E: 'static> {
    Sql(&'static str),
    /// Data the schema change itself moves or fills, written against that version's schema.
    Run(Work<E>),
}

/// What takes a file from `version - 1` to `version`.
pub struct Migration<E: 'static> {
    pub version: i64,
    pub steps: &'static [Step<E>],
    /// Names of the [`Rebuild`]s this version needs; run only for files that held data before.
    pub rebuilds: &'static [&'static str],
}

/// A recomputation of derived data from what the file holds, run after every migration.
pub struct Rebuild<E: 'static> {
    pub name: &'static str,
    pub run: Work<E>,
}

/// Everything a kind of file needs to be brought up to date.
pub struct Schema<E: 'static> {
    /// Names the file in errors ("phone store", "server database").
    pub what: &'static str,
    /// Versions 1, 2, … in order.
    pub migrations: &'static [Migration<E>],
    /// In the order they run when several are due.
    pub rebuilds: &'static [Rebuild<E>],
    /// Runs in the transaction of the last migration whenever a file was created or upgraded.
    pub after_upgrade: Option<Work<E>>,
}

impl<E> Schema<E> {
    /// The newest version: migrations are versions 1, 2, … ([`Schema::check`]).
    pub const fn version(&self) -> i64 {
        self.migrations.len() as i64
    }

    /// Where the declaration contradicts itself (versions out of order, an unknown rebuild),
    /// for each schema's own test.
    pub fn check(&self) -> Result<(), String> {
        for (i, m) in self.migrations.iter().enumerate() {
            if m.version != i as i64 + 1 {
                return Err(format!("migration {i} is version {}", m.version));
            }
            if let Some(name) = m
                .rebuilds
                .iter()
                .find(|n| !self.rebuilds.iter().any(|r| r.name == **n))
            {
                return Err(format!(
                    "version {} names unknown rebuild {name}",
                    m.version
                ));
            }
        }
        Ok(())
    }
}

/// The file's journal: WAL for files read while written, DELETE for a single writer that wants
/// one file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    Wal,
    Delete,
}

/// How a connection is set up before the schema is looked at.
#[derive(Clone, Copy, Debug)]
pub struct Pragmas {
    pub journal: Journal,
    /// `synchronous=FULL` when set, else `NORMAL`.
    pub full_sync: bool,
    pub busy_timeout: Duration,
}

/// Why a file could not be opened or brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SetupError<E: std::error::Error + 'static> {
    #[error("creating the {what}: {source}")]
    Create {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{what} schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        what: &'static str,
        found: i64,
        supported: i64,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("upgrading the {what} to version {version}: {source}")]
    Step {
        what: &'static str,
        version: i64,
        source: E,
    },
    #[error("rebuilding {name} in the {what}: {source}")]
    Rebuild {
        what: &'static str,
        name: &'static str,
        source: E,
    },
}

/// What opening did to the file.
#[derive(Debug)]
pub struct Opened {
    pub conn: Connection,
    /// The version the file had (0 when it was new or empty).
    pub found: i64,
}

/// Creates the file readable by its owner only if it does not exist (the write-ahead log and
/// shared-memory files SQLite makes beside it take its permissions): it holds victims' data.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Opens `path` (creating it private if missing), sets `pragmas`, and brings it to the newest
/// version of `schema`.
pub fn open<E: std::error::Error>(
    path: &Path,
    pragmas: Pragmas,
    schema: &Schema<E>,
) -> Result<Opened, SetupError<E>> {
    if !path.exists() {
        create_private(path).map_err(|source| SetupError::Create {
            what: schema.what,
            source,
        })?;
    }
    let mut conn = Connection::open(path)?;
    let journal = match pragmas.journal {
        Journal::Wal => "WAL",
        Journal::Delete => "DELETE",
    };
    conn.pragma_update(None, "journal_mode", journal)?;
    let sync = if pragmas.full_sync { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(pragmas.busy_timeout)?;
    let found = upgrade(&mut conn, schema)?;
    Ok(Opened { conn, found })
}

/// Brings an open connection's file to the newest version of `schema`, creating it if empty,
/// and returns the version it had.
pub fn upgrade<E: std::error::Error>(
    conn: &mut Connection,
    schema: &Schema<E>,
) -> Result<i64, SetupError<E>> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = schema.version();
    if found > supported {
        return Err(SetupError::TooNew {
            what: schema.what,
            found,
            supported,
        });
    }
    for migration in schema.migrations.iter().filter(|m| m.version > found) {
        let version = migration.version;
        let step_failed = |source| SetupError::Step {
            what: schema.what,
            version,
            source,
        };
        let tx = conn.transaction()?;
        for step in migration.steps {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql)?,
                Step::Run(work) => work(&tx).map_err(step_failed)?,
            }
        }
        // A new file has nothing to derive anything from.
        if found > 0 && !migration.rebuilds.is_empty() {
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {PENDING} (name TEXT PRIMARY KEY) WITHOUT ROWID"
            ))?;
            for name in migration.rebuilds {
                tx.execute(
                    &format!("INSERT OR IGNORE INTO {PENDING} (name) VALUES (?1)"),
                    [name],
                )?;
            }
        }
        if version == supported {
            if let Some(work) = schema.after_upgrade {
                work(&tx).map_err(step_failed)?;
            }
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    run_pending(conn, schema)?;
    Ok(found)
}

/// Runs the rebuilds an upgrade noted, each in its own transaction with its note removed.
fn run_pending<E: std::error::Error>(
    conn: &mut Connection,
    schema: &Schema<E>,
) -> Result<(), SetupError<E>> {
    let waiting: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [PENDING],
            |r| r.get(0),
        )
        .optional()?;
    if waiting.is_none() {
        return Ok(());
    }
    let names: Vec<String> = {
        let mut stmt = conn.prepare(&format!("SELECT name FROM {PENDING}"))?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for rebuild in schema.rebuilds {
        if !names.iter().any(|n| n == rebuild.name) {
            continue;
        }
        let tx = conn.transaction()?;
        (rebuild.run)(&tx).map_err(|source| SetupError::Rebuild {
            what: schema.what,
            name: rebuild.name,
            source,
        })?;
        tx.execute(
            &format!("DELETE FROM {PENDING} WHERE name = ?1"),
            [rebuild.name],
        )?;
        tx.commit()?;
    }
    // A note no rebuild of this build answers to was superseded by the rebuilds it has.
    conn.execute_batch(&format!("DROP TABLE {PENDING}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Db(#[from] rusqlite::Error),
        #[error("refused")]
        Refused,
    }

    fn count_rebuild(tx: &Transaction<'_>) -> Result<(), TestError> {
        tx.execute_batch("UPDATE totals SET n = (SELECT COUNT(*) FROM items)")?;
        Ok(())
    }

    fn refuse(_: &Transaction<'_>) -> Result<(), TestError> {
        Err(TestError::Refused)
    }

    const V1: Migration<TestError> = Migration {
        version: 1,
        steps: &[Step::Sql("CREATE TABLE items (name TEXT NOT NULL);")],
        rebuilds: &[],
    };
    const V2: Migration<TestError> = Migration {
        version: 2,
        steps: &[Step::Sql(
            "CREATE TABLE totals (n INTEGER NOT NULL); INSERT INTO totals VALUES (0);",
        )],
        rebuilds: &["totals"],
    };
    const REBUILDS: &[Rebuild<TestError>] = &[Rebuild {
        name: "totals",
        run: count_rebuild,
    }];
    const ONE: Schema<TestError> = Schema {
        what: "test file",
        migrations: &[V1],
        rebuilds: REBUILDS,
        after_upgrade: None,
    };
    const TWO: Schema<TestError> = Schema {
        what: "test file",
        migrations: &[V1, V2],
        rebuilds: REBUILDS,
        after_upgrade: None,
    };

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap_or(-1)
    }

    fn total(conn: &Connection) -> i64 {
        conn.query_row("SELECT n FROM totals", [], |r| r.get(0))
            .unwrap_or(-1)
    }

    #[test]
    fn an_upgrade_runs_the_rebuilds_its_versions_name_and_leaves_no_trace() -> TestResult {
        let mut conn = Connection::open_in_memory()?;
        assert_eq!(upgrade(&mut conn, &ONE)?, 0);
        conn.execute_batch("INSERT INTO items VALUES ('Hà'), ('Lan');")?;
        assert_eq!(upgrade(&mut conn, &TWO)?, 1);
        assert_eq!((version(&conn), total(&conn)), (2, 2));
        let pending: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
            [PENDING],
            |r| r.get(0),
        )?;
        assert_eq!(pending, 0);
        Ok(())
    }

    #[test]
    fn a_rebuild_noted_before_a_crash_runs_at_the_next_open() -> TestResult {
        let mut conn = Connection::open_in_memory()?;
        upgrade(&mut conn, &ONE)?;
        conn.execute_batch("INSERT INTO items VALUES ('Hà');")?;
        let failing = Schema {
            rebuilds: &[Rebuild {
                name: "totals",
                run: refuse,
            }],
            ..TWO
        };
        assert!(matches!(
            upgrade(&mut conn, &failing),
            Err(SetupError::Rebuild { name: "totals", .. })
        ));
        assert_eq!((version(&conn), total(&conn)), (2, 0), "the step is kept");
        upgrade(&mut conn, &TWO)?;
        assert_eq!(total(&conn), 1);
        Ok(())
    }

    #[test]
    fn a_failed_step_keeps_the_steps_before_it() -> TestResult {
        let mut conn = Connection::open_in_memory()?;
        let broken = Schema {
            migrations: &[
                V1,
                Migration {
                    version: 2,
                    steps: &[Step::Sql("CREATE TABLE totals (n);"), Step::Run(refuse)],
                    rebuilds: &[],
                },
            ],
            ..TWO
        };
        assert!(matches!(
            upgrade(&mut conn, &broken),
            Err(SetupError::Step { version: 2, .. })
        ));
        assert_eq!(version(&conn), 1);
        let totals: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'totals'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(totals, 0, "the failed step left nothing");
        Ok(())
    }

    #[test]
    fn a_newer_file_is_refused_and_a_current_one_is_not_written() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.sqlite");
        let pragmas = Pragmas {
            journal: Journal::Delete,
            full_sync: true,
            busy_timeout: Duration::from_secs(1),
        };
        drop(open(&path, pragmas, &TWO)?);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let changes = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        };
        let watcher = Connection::open(&path)?;
        let before = changes(&watcher)?;
        let opened = open(&path, pragmas, &TWO)?;
        assert_eq!(opened.found, 2);
        assert_eq!(changes(&watcher)?, before, "nothing was written");
        assert!(matches!(
            open(&path, pragmas, &ONE),
            Err(SetupError::TooNew {
                found: 2,
                supported: 1,
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn declarations_are_checked() {
        assert_eq!(TWO.check(), Ok(()));
        let gap = Schema {
            migrations: &[V2],
            ..TWO
        };
        assert!(gap.check().is_err());
        let unknown = Schema {
            rebuilds: &[],
            ..TWO
        };
        assert!(unknown.check().is_err());
    }
}
