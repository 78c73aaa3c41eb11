//! The sync steps under random exchange schedules, against the in-memory store: several phones
//! and a supervisor interleave their requests while the network drops requests, drops or
//! duplicates responses and delays requests until after later ones, and the server is restored
//! from an earlier backup. Afterwards, with a working network, every phone converges with the
//! server, no change the server ever acknowledged is missing, none is stored twice and none
//! was refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fieldsync_core::generator::minimal_household;
use fieldsync_core::protocol::{compress, decode_request_body, ClientOptions, SyncClient};
use fieldsync_core::record::ReviewState;
use fieldsync_core::{RecordDoc, RecordType, Store, Value};
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::{RecordEdit, Role, User};
use fieldsync_server::sync;
use fieldsync_server::sync::memory::MemoryStore;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

const COMMUNE: &str = "62.610.01";
const PHONES: usize = 3;

#[derive(Clone, Debug)]
enum Fault {
    None,
    /// The request never reaches the server.
    RequestLost,
    /// The server acts on it; the phone never hears back.
    ResponseLost,
    /// The server receives it twice (a retry after a timeout); the phone hears the second.
    Duplicated,
    /// The server receives it only after some later requests; the phone gave up on it.
    Delayed,
}

#[derive(Clone, Debug)]
enum Step {
    /// A phone registers a household.
    Create { phone: usize, name: u8 },
    /// A phone edits one of the records it has.
    Edit { phone: usize, pick: usize, name: u8 },
    /// A phone syncs once through the faulty network.
    Sync { phone: usize, fault: Fault },
    /// The server finally receives the oldest delayed request.
    Deliver,
    /// The supervisor approves or renames a record on the server.
    Supervise {
        pick: usize,
        approve: bool,
        name: u8,
    },
    /// The operator takes a backup.
    Backup,
    /// The server is restored from the last backup.
    Restore,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::RequestLost),
        1 => Just(Fault::ResponseLost),
        1 => Just(Fault::Duplicated),
        1 => Just(Fault::Delayed),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let phone = 0..PHONES;
    prop_oneof![
        3 => (phone.clone(), any::<u8>()).prop_map(|(phone, name)| Step::Create { phone, name }),
        3 => (phone.clone(), any::<usize>(), any::<u8>())
            .prop_map(|(phone, pick, name)| Step::Edit { phone, pick, name }),
        6 => (phone, fault()).prop_map(|(phone, fault)| Step::Sync { phone, fault }),
        1 => Just(Step::Deliver),
        2 => (any::<usize>(), any::<bool>(), any::<u8>())
            .prop_map(|(pick, approve, name)| Step::Supervise { pick, approve, name }),
        1 => Just(Step::Backup),
        1 => Just(Step::Restore),
    ]
}

struct Phone {
    store: Store,
    device: Uuid,
    scope: Scope,
    client: SyncClient,
}

struct World {
    _dir: tempfile::TempDir,
    server: MemoryStore,
    backup: Option<MemoryStore>,
    phones: Vec<Phone>,
    supervisor: (Uuid, Scope),
    /// Requests on their way: (phone, body).
    delayed: Vec<(usize, Vec<u8>)>,
    /// Every change the server ever acknowledged.
    acked: BTreeSet<[u8; 32]>,
    now_ms: i64,
    restores: u8,
}

fn user(id: i64, role: Role) -> User {
    User {
        id,
        username: format!("user{id}"),
        role,
        sensitive_access: false,
        areas: vec![COMMUNE.to_owned()],
        can_grant_sensitive: false,
        disabled: false,
        full_name: None,
        phone: None,
    }
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let server = MemoryStore::new(*Uuid::new_v4().as_bytes(), [7; 32]);
        let phones = (0..PHONES)
            .map(|i| {
                let store = Store::open(dir.path().join(format!("phone{i}.sqlite"))).unwrap();
                let device = Uuid::new_v4();
                let u = user(i as i64 + 1, Role::Collector);
                let scope = Scope::for_user(&u);
                server.enrol(device, u, store.device_id(), store.public_key());
                Phone {
                    store,
                    device,
                    scope,
                    client: SyncClient::new(ClientOptions::default()),
                }
            })
            .collect();
        let sup = user(100, Role::Supervisor);
        let supervisor = (Uuid::new_v4(), Scope::for_user(&sup));
        World {
            _dir: dir,
            server,
            backup: None,
            phones,
            supervisor,
            delayed: Vec::new(),
            acked: BTreeSet::new(),
            now_ms: 1_700_000_000_000,
            restores: 0,
        }
    }

    /// The server's half of one request: its response bytes.
    fn serve(&mut self, phone: usize, body: &[u8]) -> Vec<u8> {
        self.now_ms += 1_000;
        let p = &self.phones[phone];
        let request = decode_request_body(body).unwrap();
        let response =
            sync::exchange(&self.server, p.device, &p.scope, request, self.now_ms).unwrap();
        assert!(
            response.rejected.is_empty(),
            "nothing here should be refused: {:?}",
            response.rejected
        );
        self.acked.extend(response.acked.iter().copied());
        compress(&response.encode())
    }

    fn sync(&mut self, phone: usize, fault: &Fault) {
        let request = self.phones[phone]
            .client
            .request(&self.phones[phone].store)
            .unwrap();
        let response = match fault {
            Fault::RequestLost => return,
            Fault::Delayed => {
                self.delayed.push((phone, request.body));
                return;
            }
            Fault::ResponseLost => {
                self.serve(phone, &request.body);
                return;
            }
            Fault::Duplicated => {
                self.serve(phone, &request.body);
                self.serve(phone, &request.body)
            }
            Fault::None => self.serve(phone, &request.body),
        };
        let p = &mut self.phones[phone];
        p.client.handle_response(&mut p.store, &response).unwrap();
    }

    fn records_of(store: &Store) -> Vec<Uuid> {
        store
            .list(&Default::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Create { phone, name } => {
                self.phones[*phone]
                    .store
                    .create(
                        RecordType::Household,
                        &minimal_household(COMMUNE, &format!("Hộ bà Y Điệp {name}")),
                    )
                    .unwrap();
            }
            Step::Edit { phone, pick, name } => {
                let store = &mut self.phones[*phone].store;
                let ids = Self::records_of(store);
                if let Some(id) = ids.get(pick % ids.len().max(1)) {
                    let value = Value::Text(format!("Y Nguyệt {name}"));
                    store.set_field(*id, "head_name", &value).unwrap();
                }
            }
            Step::Sync { phone, fault } => self.sync(*phone, fault),
            Step::Deliver => {
                if !self.delayed.is_empty() {
                    let (phone, body) = self.delayed.remove(0);
                    self.serve(phone, &body);
                }
            }
            Step::Supervise {
                pick,
                approve,
                name,
            } => {
                let ids: Vec<Uuid> = self.server_records().into_keys().collect();
                let Some(id) = ids.get(pick % ids.len().max(1)) else {
                    return;
                };
                let edit = match approve {
                    true => RecordEdit::Review {
                        state: ReviewState::Approved,
                        comment: None,
                    },
                    false => RecordEdit::SetField {
                        field: "head_name".into(),
                        value: Value::Text(format!("Y Hoa {name}")),
                    },
                };
                self.now_ms += 1_000;
                let (device, scope) = &self.supervisor;
                sync::edit_record(&self.server, *device, scope, *id, &edit, self.now_ms).unwrap();
            }
            Step::Backup => {
                self.backup = Some(self.server.restored_copy(*Uuid::new_v4().as_bytes()));
            }
            Step::Restore => {
                if let Some(backup) = &self.backup {
                    self.server = backup.restored_copy(*Uuid::new_v4().as_bytes());
                    self.restores += 1;
                }
            }
        }
    }

    /// Every record's view as the server has it.
    fn server_records(&self) -> BTreeMap<Uuid, serde_json::Value> {
        let mut out = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for p in &self.phones {
            ids.extend(Self::records_of(&p.store));
        }
        ids.extend(self.server.record_ids());
        for id in ids {
            if let Some(snapshot) = self.server.snapshot(id) {
                let doc = RecordDoc::load(id, &snapshot, Uuid::nil()).unwrap();
                out.insert(id, serde_json::to_value(doc.view().unwrap()).unwrap());
            }
        }
        out
    }

    /// Syncs every phone over a working network until nothing moves any more.
    fn settle(&mut self) {
        while !self.delayed.is_empty() {
            self.run(&Step::Deliver);
        }
        for _round in 0..6 {
            for phone in 0..PHONES {
                for _ in 0..50 {
                    let request = self.phones[phone]
                        .client
                        .request(&self.phones[phone].store)
                        .unwrap();
                    let response = self.serve(phone, &request.body);
                    let p = &mut self.phones[phone];
                    let outcome = p.client.handle_response(&mut p.store, &response).unwrap();
                    if !outcome.again {
                        break;
                    }
                }
            }
        }
    }
}

fn check(steps: &[Step]) {
    let mut world = World::new();
    for step in steps {
        world.run(step);
    }
    world.settle();

    let accepted = world.server.accepted();
    let unique: BTreeSet<_> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "a change was stored twice");
    for hash in &world.acked {
        assert!(
            unique.contains(hash),
            "an acknowledged change is missing after {} restores",
            world.restores
        );
    }
    let server = world.server_records();
    for (i, phone) in world.phones.iter().enumerate() {
        assert_eq!(
            phone.store.unacked_count().unwrap(),
            0,
            "phone {i} has unsent changes"
        );
        let mine: BTreeSet<Uuid> = World::records_of(&phone.store).into_iter().collect();
        let all: BTreeSet<Uuid> = server.keys().copied().collect();
        assert_eq!(mine, all, "phone {i} has other records than the server");
        for (id, view) in &server {
            let on_phone = serde_json::to_value(phone.store.get(*id).unwrap()).unwrap();
            assert_eq!(&on_phone, view, "phone {i} differs from the server on {id}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_phone_converges_and_nothing_acknowledged_is_lost_or_doubled(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        check(&steps);
    }
}

/// The transaction order the docs describe: an exchange commits its push before its pull
/// reads, so a change pushed in a request is in the log the same request's pull reads.
#[test]
fn an_exchange_commits_its_push_before_its_pull_reads() {
    let mut world = World::new();
    world.run(&Step::Create { phone: 0, name: 1 });
    world.sync(0, &Fault::None);
    assert_eq!(world.server.journal(), vec!["write", "read"]);
    // A second phone's first exchange pushes nothing: no write transaction at all.
    world.sync(1, &Fault::None);
    assert_eq!(world.server.journal(), vec!["write", "read", "read"]);
    assert_eq!(
        world.phones[1]
            .store
            .list(&Default::default())
            .unwrap()
            .len(),
        1
    );
}
