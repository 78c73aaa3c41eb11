//! `FieldStore`: the phone's API object, a thin layer over sync-core's store and sync driver.

use crate::error::FieldsyncError;
use crate::transport::HttpTransport;
use crate::types::{
    Enrolment, Field, FieldConflict, Header, Record, RecordFilter, RecordKind, RecordRow,
    RefusedEdit, SyncSummary,
};
use fieldsync_core::protocol::{
    SyncDriver, CONTENT_TYPE, PROTOCOL_VERSION, SYNC_PATH, VERSION_HEADER,
};
use fieldsync_core::store::ListFilter;
use fieldsync_core::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

const META_SERVER: &str = "enrol.server";
const META_TOKEN: &str = "enrol.token";
const META_DEVICE: &str = "enrol.device_id";

type Result<T> = std::result::Result<T, FieldsyncError>;

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| FieldsyncError::Validation {
        fields: vec!["id".into()],
        reason: "id: must be a record id (UUID)".into(),
    })
}

fn closed() -> FieldsyncError {
    FieldsyncError::Other {
        reason: "the store is closed".into(),
    }
}

/// A local fieldsync store on the phone.
#[derive(uniffi::Object)]
pub struct FieldStore {
    // `None` once closed; every call after `close` fails instead of touching a closed file.
    inner: Mutex<Option<Store>>,
}

impl FieldStore {
    fn store(&self) -> Result<MutexGuard<'_, Option<Store>>> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(closed());
        }
        Ok(guard)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> fieldsync_core::Result<T>) -> Result<T> {
        let mut guard = self.store()?;
        let store = guard.as_mut().ok_or_else(closed)?;
        Ok(f(store)?)
    }
}

fn fields_map(fields: Vec<Field>) -> BTreeMap<String, fieldsync_core::Value> {
    fields
        .into_iter()
        .map(|f| (f.name, f.value.into()))
        .collect()
}

/// A count for Kotlin's `UInt` fields; a sync is bounded far below its range.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn status_error(status: u16, body: &[u8]) -> FieldsyncError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let reason = json["message"].as_str().unwrap_or("no message").to_owned();
    match status {
        401 => FieldsyncError::Unauthorized { reason },
        426 => FieldsyncError::UpgradeNeeded { reason },
        // Busy or failing server: like no network, the app retries later and loses nothing.
        429 | 500..=599 => FieldsyncError::Network {
            reason: format!("server answered {status}: {reason}"),
        },
        _ => FieldsyncError::Other {
            reason: format!("server answered {status}: {reason}"),
        },
    }
}

#[uniffi::export]
impl FieldStore {
    /// Opens (creating if needed) the store file at `path`.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<FieldStore>> {
        Ok(Arc::new(FieldStore {
            inner: Mutex::new(Some(Store::open(path)?)),
        }))
    }

    /// Closes the file. Every later call fails; open the path again to continue.
    pub fn close_store(&self) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *guard = None;
    }

    /// Logs in to `server_url` (e.g. `https://fieldsync.example.vn`) and keeps the device token.
    pub fn enrol(
        &self,
        transport: Arc<dyn HttpTransport>,
        server_url: String,
        username: String,
        password: String,
        device_name: String,
    ) -> Result<Enrolment> {
        let server = server_url.trim_end_matches('/').to_owned();
        // The store's actor is the author of every change it makes; showing the public key it
        // is derived from, with the proof of holding its secret, binds it to this enrolment,
        // and the server takes no other author's changes from it without a receipt.
        let body =
            self.with(|s| Ok(s.enrolment(&username)))?
                .request(&username, &password, &device_name);
        let response = transport
            .post(
                format!("{server}/v1/enrol"),
                vec![Header {
                    name: "content-type".into(),
                    value: "application/json".into(),
                }],
                body.to_string().into_bytes(),
            )
            .map_err(|e| FieldsyncError::Network {
                reason: e.to_string(),
            })?;
        if response.status != 200 {
            return Err(status_error(response.status, &response.body));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|_| FieldsyncError::Other {
                reason: "enrolment answer is not JSON".into(),
            })?;
        let text = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
        let enrolment = Enrolment {
            device_id: text("device_id"),
            username: text("username"),
            role: json["role"].as_str().unwrap_or_default().to_owned(),
            areas: json["areas"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let token = text("token");
        self.with(|s| {
            s.set_meta(META_SERVER, &server)?;
            s.set_meta(META_TOKEN, &token)?;
            s.set_meta(META_DEVICE, &enrolment.device_id)
        })?;
        Ok(enrolment)
    }

    pub fn is_enrolled(&self) -> Result<bool> {
        self.with(|s| Ok(s.meta(META_TOKEN)?.is_some_and(|t| !t.is_empty())))
    }

    /// Creates a record; returns its id. Invalid fields write nothing.
    pub fn create_record(&self, kind: RecordKind, fields: Vec<Field>) -> Result<String> {
        let map = fields_map(fields);
        Ok(self.with(|s| s.create(kind.into(), &map))?.to_string())
    }

    pub fn set_field(&self, id: String, field: Field) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.set_field(id, &field.name, &field.value.into()))
    }

    pub fn clear_field(&self, id: String, field: String) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.clear_field(id, &field))
    }

    /// Adds a member to a set field (group members, attendees, support given).
    pub fn add_member(&self, id: String, field: String, member: String) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.add_member(id, &field, &member))
    }

    pub fn remove_member(&self, id: String, field: String, member: String) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.remove_member(id, &field, &member))
    }

    /// Hides a record; nothing is ever erased, and `restore` brings it back.
    pub fn soft_delete(&self, id: String) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.soft_delete(id))
    }

    pub fn restore(&self, id: String) -> Result<()> {
        let id = parse_id(&id)?;
        self.with(|s| s.restore(id))
    }

    /// A record with its values, sets, review and conflicts.
    pub fn get_record(&self, id: String) -> Result<Record> {
        let id = parse_id(&id)?;
        Ok(self.with(|s| s.get(id))?.into())
    }

    /// The id of the record to show for `id`: `id` itself, or the record a supervisor merged
    /// this duplicate into. Follow references (household, members, attendees) through it.
    pub fn resolve(&self, id: String) -> Result<String> {
        let id = parse_id(&id)?;
        Ok(self.with(|s| s.resolve(id))?.to_string())
    }

    /// The fields of a record edited concurrently on several devices.
    pub fn conflicts(&self, id: String) -> Result<Vec<FieldConflict>> {
        Ok(self.get_record(id)?.conflicts)
    }

    /// Lists records from the index, without loading documents.
    pub fn list_records(&self, filter: RecordFilter) -> Result<Vec<RecordRow>> {
        let filter = ListFilter {
            record_type: filter.kind.map(Into::into),
            commune: filter.commune,
            search: filter.search,
            include_inactive: filter.include_deleted,
            only_conflicts: false,
            limit: filter.limit,
            offset: 0,
        };
        Ok(self
            .with(|s| s.list(&filter))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Local changes not yet stored by the server.
    pub fn pending_changes(&self) -> Result<u64> {
        self.with(|s| s.unacked_count())
    }

    /// What the server refused, newest first: of one record, or of all (`id` = null).
    pub fn refused_edits(&self, id: Option<String>) -> Result<Vec<RefusedEdit>> {
        let id = id.as_deref().map(parse_id).transpose()?;
        Ok(self
            .with(|s| s.refused_edits(id))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Pushes local changes and pulls the server's, until both sides are up to date. Safe to
    /// interrupt at any point: the next sync resumes, resending at most one batch.
    pub fn sync(&self, transport: Arc<dyn HttpTransport>) -> Result<SyncSummary> {
        let (server, token) = self.with(|s| Ok((s.meta(META_SERVER)?, s.meta(META_TOKEN)?)))?;
        let (Some(server), Some(token)) = (server, token) else {
            return Err(FieldsyncError::Unauthorized {
                reason: "this device is not enrolled".into(),
            });
        };
        let headers = vec![
            Header {
                name: "authorization".into(),
                value: format!("Bearer {token}"),
            },
            Header {
                name: "content-type".into(),
                value: CONTENT_TYPE.into(),
            },
            Header {
                name: "content-encoding".into(),
                value: "gzip".into(),
            },
            Header {
                name: VERSION_HEADER.into(),
                value: PROTOCOL_VERSION.to_string(),
            },
        ];
        let url = format!("{server}{SYNC_PATH}");
        let mut driver = SyncDriver::default();
        // The store is locked only to build the request and to apply the answer, never while
        // waiting on the network: the app stays usable during a slow sync.
        while let Some(request) = self.with(|s| driver.poll_request(s))? {
            let response = transport
                .post(url.clone(), headers.clone(), request.body)
                .map_err(|e| FieldsyncError::Network {
                    reason: e.to_string(),
                })?;
            if response.status != 200 {
                return Err(status_error(response.status, &response.body));
            }
            self.with(|s| driver.handle_response(s, &response.body))?;
        }
        let outcome = driver.outcome();
        Ok(SyncSummary {
            round_trips: outcome.rounds,
            pushed_acked: count(outcome.acked),
            rejected: count(outcome.rejected),
            pulled: count(outcome.pulled),
            set_aside: count(outcome.set_aside),
            pending: self.pending_changes()?,
        })
    }
}
