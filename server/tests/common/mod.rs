//! The in-memory world of the server's protocol tests: one server storage, phones with their
//! own stores, and exchanges of exactly the bytes the HTTP layer would carry. The storage is
//! SQLite, or PostgreSQL when `FIELDSYNC_TEST_BACKEND=postgres` (a fresh database on the
//! server `FIELDSYNC_TEST_POSTGRES` names; `scripts/with-postgres` starts one), so that the
//! same tests check both backends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use fieldsync_core::generator::minimal_household as household;
use fieldsync_core::protocol::{
    compress, decode_request_body, ClientOptions, SyncClient, SyncOutcome,
};
use fieldsync_core::Store;
use fieldsync_server::accounts;
use fieldsync_server::accounts::Authority;
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::*;
use fieldsync_server::sync::store::{SyncRead, SyncWrite};
use std::collections::BTreeMap;
use tempfile::TempDir;
use uuid::Uuid;

pub const NGOC_LINH: &str = "62.610.01";
pub const MO_RAI: &str = "62.616.01";

pub struct World {
    pub dir: TempDir,
    pub storage: TestStorage,
}

/// Either backend, used through the storage traits.
pub struct TestStorage(Box<dyn Storage>);

impl TestStorage {
    pub fn new(storage: impl Storage) -> TestStorage {
        TestStorage(Box::new(storage))
    }

    pub fn into_inner(self) -> Box<dyn Storage> {
        self.0
    }
}

impl SyncStore for TestStorage {
    fn server_id(&self) -> [u8; 16] {
        self.0.server_id()
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn SyncWrite) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.0.write(f)
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn SyncRead) -> StorageResult<()>) -> StorageResult<()> {
        self.0.read(f)
    }
}

impl AccountStore for TestStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        self.0.create_user(user, password_hash)
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        self.0.user_by_name(username)
    }

    fn list_users(&self) -> StorageResult<Vec<User>> {
        self.0.list_users()
    }

    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User> {
        self.0.update_user(username, update)
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> StorageResult<()> {
        self.0.set_password(username, password_hash, keep)
    }

    fn account_has_actor(&self, username: &str, actor: Uuid) -> StorageResult<bool> {
        self.0.account_has_actor(username, actor)
    }

    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        keys: Option<&DeviceKeys>,
    ) -> StorageResult<Device> {
        self.0.enrol_device(user_id, name, token_hash, keys)
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        self.0.caller_by_token(token_hash)
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        self.0.revoke_device(device_id)
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        self.0.list_devices()
    }

    fn device_list(&self, query: &DeviceQuery) -> StorageResult<Vec<DeviceInfo>> {
        self.0.device_list(query)
    }

    fn note_sync(&self, device: Uuid, now_ms: i64) -> StorageResult<()> {
        self.0.note_sync(device, now_ms)
    }

    fn create_session(
        &self,
        user_id: i64,
        token_hash: &[u8],
        csrf: &str,
        expires_ms: i64,
    ) -> StorageResult<Device> {
        self.0.create_session(user_id, token_hash, csrf, expires_ms)
    }
}

impl MergedStore for TestStorage {
    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        self.0.merged_record(id)
    }

    fn resolve_records(&self, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
        self.0.resolve_records(ids)
    }

    fn list_records(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
        self.0.list_records(scope, query)
    }

    fn indicator_facts(&self) -> StorageResult<Vec<fieldsync_server::indicators::Fact>> {
        self.0.indicator_facts()
    }

    fn record_summaries(&self, ids: &[Uuid]) -> StorageResult<Vec<RecordSummary>> {
        self.0.record_summaries(ids)
    }

    fn record_review(&self, id: Uuid) -> StorageResult<Option<fieldsync_core::record::Review>> {
        self.0.record_review(id)
    }

    fn record_history(&self, id: Uuid) -> StorageResult<Vec<HistoryEntry>> {
        self.0.record_history(id)
    }

    fn authors(&self, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
        self.0.authors(actors)
    }
}

impl ExportStore for TestStorage {
    fn export_page(
        &self,
        scope: &Scope,
        query: &RecordQuery,
        record_type: fieldsync_core::RecordType,
        after: Option<Uuid>,
        limit: u32,
    ) -> StorageResult<Vec<ExportRow>> {
        self.0.export_page(scope, query, record_type, after, limit)
    }

    fn export_sensitive_count(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<u64> {
        self.0.export_sensitive_count(scope, query)
    }
}

impl DuplicateStore for TestStorage {
    fn list_duplicates(
        &self,
        scope: &Scope,
        query: &DuplicateQuery,
    ) -> StorageResult<DuplicatePage> {
        self.0.list_duplicates(scope, query)
    }

    fn duplicate_pair(&self, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
        self.0.duplicate_pair(a, b)
    }

    fn dismiss_duplicate(&self, scope: &Scope, a: Uuid, b: Uuid, by: &str) -> StorageResult<()> {
        self.0.dismiss_duplicate(scope, a, b, by)
    }

    fn merge_records(
        &self,
        device: Uuid,
        scope: &Scope,
        keep: Uuid,
        duplicate: Uuid,
        take: &[String],
        by: &str,
    ) -> StorageResult<()> {
        self.0
            .merge_records(device, scope, keep, duplicate, take, by)
    }

    fn unmerge_record(&self, device: Uuid, scope: &Scope, duplicate: Uuid) -> StorageResult<Uuid> {
        self.0.unmerge_record(device, scope, duplicate)
    }

    fn absorbed_into(&self, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
        self.0.absorbed_into(keep, scope)
    }
}

impl AuditStore for TestStorage {
    fn audit(&self, entry: &AuditEntry) -> StorageResult<()> {
        self.0.audit(entry)
    }

    fn list_audit(&self, filter: &AuditFilter, limit: u32) -> StorageResult<Vec<AuditEntry>> {
        self.0.list_audit(filter, limit)
    }

    fn audit_end(&self) -> StorageResult<i64> {
        self.0.audit_end()
    }

    fn sensitive_devices(&self) -> StorageResult<Vec<SensitiveDevice>> {
        self.0.sensitive_devices()
    }
}

impl AdminStore for TestStorage {
    fn stats(&self) -> StorageResult<Stats> {
        self.0.stats()
    }

    fn scoped_stats(&self, scope: &Scope) -> StorageResult<Stats> {
        self.0.scoped_stats(scope)
    }

    fn activity(&self, since_ms: i64, week_ms: i64) -> StorageResult<Activity> {
        self.0.activity(since_ms, week_ms)
    }

    fn disk_full(&self) -> bool {
        self.0.disk_full()
    }

    fn backup(&self, path: &std::path::Path) -> StorageResult<()> {
        self.0.backup(path)
    }
}

/// The PostgreSQL server the tests that need one use, or a panic saying how to run them.
pub fn test_postgres() -> String {
    std::env::var("FIELDSYNC_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: run it as `scripts/with-postgres cargo test ...`, \
             or set FIELDSYNC_TEST_POSTGRES=postgres://user@host:port/db"
        )
    })
}

/// A PostgreSQL storage on a database of its own.
pub fn postgres_storage() -> PostgresStorage {
    let url = scratch_database(&test_postgres()).unwrap();
    PostgresStorage::open(&PostgresOptions::new(&url)).unwrap()
}

pub struct Phone {
    pub store: Store,
    pub caller: Caller,
    pub client: SyncClient,
    pub round_trips: usize,
}

impl Phone {
    /// Creates a household headed by `head` in `commune` on this phone (not synced).
    pub fn household(&mut self, commune: &str, head: &str) -> Uuid {
        self.store
            .create(
                fieldsync_core::RecordType::Household,
                &household(commune, head),
            )
            .unwrap()
    }
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let storage: Box<dyn Storage> = match std::env::var("FIELDSYNC_TEST_BACKEND").as_deref() {
            Ok("postgres") => Box::new(postgres_storage()),
            Ok("sqlite") | Err(_) => {
                Box::new(SqliteStorage::open(dir.path().join("server.sqlite")).unwrap())
            }
            Ok(other) => panic!("FIELDSYNC_TEST_BACKEND={other}: sqlite or postgres"),
        };
        World {
            dir,
            storage: TestStorage(storage),
        }
    }

    /// A world on a storage of the caller's (a restored database).
    pub fn on(storage: Box<dyn Storage>) -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            storage: TestStorage(storage),
        }
    }

    pub fn user(&self, name: &str, areas: &[&str], sensitive: bool) {
        accounts::create_user(
            &self.storage,
            Authority::Operator,
            &NewUser {
                username: name.into(),
                password: "mật khẩu dài".into(),
                role: Role::Collector,
                sensitive_access: sensitive,
                areas: areas.iter().map(|a| a.to_string()).collect(),
                can_grant_sensitive: false,
                full_name: None,
                phone: None,
            },
        )
        .unwrap();
    }

    pub fn phone(&self, user: &str) -> Phone {
        let path = self.dir.path().join(format!("{}.sqlite", Uuid::now_v7()));
        let store = Store::open(path).unwrap();
        let keys = DeviceKeys::verified(&store.enrolment(user), user).unwrap();
        let (device, token, _) =
            accounts::enrol(&self.storage, user, "mật khẩu dài", "phone", Some(&keys)).unwrap();
        let caller = accounts::authorise(&self.storage, &token).unwrap().unwrap();
        assert_eq!(caller.device.id, device.id);
        Phone {
            store,
            caller,
            client: SyncClient::new(ClientOptions::default()),
            round_trips: 0,
        }
    }

    pub fn set_areas(&self, user: &str, areas: &[&str]) {
        let update = AccountUpdate {
            areas: Some(areas.iter().map(|a| a.to_string()).collect()),
            ..AccountUpdate::default()
        };
        self.storage.update_user(user, &update).unwrap();
    }

    /// One exchange: the request bytes in, the response bytes out.
    pub fn exchange(&self, phone: &Phone, body: &[u8]) -> Vec<u8> {
        // Authorisation is looked up again, as every HTTP request does.
        let caller = self.refresh(&phone.caller);
        let request = decode_request_body(body).unwrap();
        compress(
            &fieldsync_server::sync::exchange_as(&self.storage, &caller, &request)
                .unwrap()
                .encode(),
        )
    }

    pub fn refresh(&self, caller: &Caller) -> Caller {
        let (user, _) = self
            .storage
            .user_by_name(&caller.user.username)
            .unwrap()
            .unwrap();
        Caller {
            device: caller.device.clone(),
            user,
            ..caller.clone()
        }
    }

    /// Syncs until the phone has nothing more to do; returns the outcomes.
    pub fn sync(&self, phone: &mut Phone) -> Vec<SyncOutcome> {
        let mut outcomes = Vec::new();
        for _ in 0..100 {
            let request = phone.client.request(&phone.store).unwrap();
            let response = self.exchange(phone, &request.body);
            phone.round_trips += 1;
            let outcome = phone
                .client
                .handle_response(&mut phone.store, &response)
                .unwrap();
            let again = outcome.again;
            outcomes.push(outcome);
            if !again {
                return outcomes;
            }
        }
        panic!("sync did not settle in 100 round trips");
    }
}

/// A request that pushes exactly one change, signed by `signer`, and pulls from the start.
pub fn push_only(
    signer: &Store,
    record_id: Uuid,
    bytes: &[u8],
) -> fieldsync_core::protocol::SyncRequest {
    let hash = fieldsync_core::record::decode_change(bytes).unwrap().hash();
    fieldsync_core::protocol::SyncRequest {
        cursor: vec![],
        max_pull_bytes: 65536,
        push: vec![fieldsync_core::protocol::ChangeEntry {
            record_id,
            bytes: bytes.to_vec(),
            signature: signer.sign_change(record_id, &hash.0),
        }],
    }
}

pub fn titles(store: &Store) -> Vec<String> {
    let mut t: Vec<String> = store
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| r.title)
        .collect();
    t.sort();
    t
}
