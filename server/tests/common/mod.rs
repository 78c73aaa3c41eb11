//! The in-memory world of the server's protocol tests: one server storage, phones with their
//! own stores, and exchanges of exactly the bytes the HTTP layer would carry.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use fieldsync_core::generator::minimal_household as household;
use fieldsync_core::protocol::{
    compress, decode_request_body, ClientOptions, SyncClient, SyncOutcome,
};
use fieldsync_core::Store;
use fieldsync_server::accounts;
use fieldsync_server::accounts::Authority;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{AccountUpdate, Caller, DeviceKeys, NewUser, Role};
use tempfile::TempDir;
use uuid::Uuid;

pub const NGOC_LINH: &str = "62.610.01";
pub const MO_RAI: &str = "62.616.01";

pub struct World {
    pub dir: TempDir,
    pub storage: SqliteStorage,
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
        let storage = SqliteStorage::open(dir.path().join("server.sqlite")).unwrap();
        World { dir, storage }
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
