//! Helpers of the abuse tests (`tests/tests/abuse_*.rs`): a server started with extra flags,
//! the health check, an attacker's enrolment and hand-built (unvalidated) record changes, raw
//! sync posts, DEFLATE bombs, raw TLS/TCP connections, and the honest bystander phones whose
//! syncs must keep working during every attack.
//!
//! Used next to `mod common;` as `mod abuse_support;`. The techniques follow the abuse bench
//! (`tests/src/bin/fieldsync-abuse/`), at a size that runs in seconds.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Env, NGOC_LINH, PASSWORD};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ROOT};
use fieldsync_core::generator::minimal_household;
use fieldsync_core::model::{RecordType, SCHEMA_VERSION};
use fieldsync_core::protocol::{
    compress, decompress, ChangeEntry, ClientOptions, SyncRequest, SyncResponse, MAX_BODY_BYTES,
    PROTOCOL_VERSION, SYNC_PATH,
};
use fieldsync_tests::https::{HttpResponse, HttpsClient};
use fieldsync_tests::phone::{call_json, enrol_with_key, Phone, SyncReport};
use serde_json::{json, Value as Json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use uuid::Uuid;

/// Where attackers connect from; honest phones use 127.0.0.1 (the system's choice).
pub const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Where a real user enrols from in the enrolment attacks.
pub const USER_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A fresh server (`serve --dev`, no demo records) with extra flags, and its admin's token.
pub async fn start_env(extra: &[&str]) -> Env {
    let mut args = vec!["--demo-households", "0"];
    args.extend_from_slice(extra);
    Env::start_with(&args).await
}

/// The process is alive and `GET /v1/health` answers 200 `ok` within 10 s.
pub async fn assert_up(env: &mut Env) {
    assert!(
        env.server.exit_status().is_none(),
        "the server process ended: {:?}",
        env.server.exit_status()
    );
    if let Some(cluster) = &mut env.cluster {
        assert!(
            cluster.second.exit_status().is_none(),
            "the second instance ended: {:?}",
            cluster.second.exit_status()
        );
    }
    let http = env.http.clone().with_timeout(Duration::from_secs(10));
    let r = http
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await
        .expect("health answers");
    assert_eq!(
        r.status,
        200,
        "health: {}",
        String::from_utf8_lossy(&r.body)
    );
    let body: Json = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["status"], "ok", "{body}");
}

/// Creates an account with [`PASSWORD`]; panics unless it is created.
pub async fn account(env: &Env, name: &str, role: &str, areas: &[&str], sensitive: bool) {
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": role,
                 "areas": areas, "sensitive_access": sensitive }),
    )
    .await
    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

pub use fieldsync_tests::attacker::{attacker_key, sign_as};

/// A hostile collector: an account of `areas` and a device enrolled with a key, so that the
/// changes built under [`Attacker::actor`] are its own.
pub struct Attacker {
    pub token: String,
    pub actor: Uuid,
    /// Connects from [`ATTACKER`], with a 60 s timeout: a hang fails the test, a slow answer not.
    pub http: HttpsClient,
}

impl Attacker {
    pub async fn enrol(env: &Env, name: &str, areas: &[&str]) -> Attacker {
        account(env, name, "collector", areas, false).await;
        let key = fieldsync_core::signing::DeviceKey::from_seed(&attacker_key(name));
        let token = enrol_with_key(&env.http, env.addr(), name, PASSWORD, &key)
            .await
            .unwrap();
        Attacker {
            token,
            actor: key.actor(),
            http: env
                .http
                .clone()
                .with_source(ATTACKER)
                .with_timeout(Duration::from_secs(60)),
        }
    }

    /// Posts a ready-made sync body with this device's token.
    pub async fn post(&self, env: &Env, body: Vec<u8>) -> HttpResponse {
        post_sync(&self.http, env.addr(), &self.token, body).await
    }

    /// Pushes `push` (empty cursor, smallest pull page): the raw answer.
    pub async fn push(&self, env: &Env, push: Vec<ChangeEntry>) -> HttpResponse {
        self.post(env, sync_body(&[], push)).await
    }

    /// Pushes `push` and decodes the answer; panics unless it is a 200.
    pub async fn push_ok(&self, env: &Env, push: Vec<ChangeEntry>) -> SyncResponse {
        let r = self.push(env, push).await;
        decoded(&r)
    }
}

/// `POST /v1/sync` with `body` as it is; panics on a network failure (a hang is a timeout).
pub async fn post_sync(
    http: &HttpsClient,
    addr: SocketAddr,
    token: &str,
    body: Vec<u8>,
) -> HttpResponse {
    Phone::exchange(http, addr, token, body)
        .await
        .unwrap_or_else(|e| panic!("sync request failed: {e}"))
}

/// The gzip body of a sync request pushing `push` from `cursor`.
pub fn sync_body(cursor: &[u8], push: Vec<ChangeEntry>) -> Vec<u8> {
    compress(&sync_message(cursor, push))
}

/// The encoded request message (before gzip), asking for the smallest pull page.
pub fn sync_message(cursor: &[u8], push: Vec<ChangeEntry>) -> Vec<u8> {
    SyncRequest {
        cursor: cursor.to_vec(),
        max_pull_bytes: 1024,
        push,
    }
    .encode()
}

/// The decoded body of a 200 sync answer; panics on anything else.
pub fn decoded(r: &HttpResponse) -> SyncResponse {
    assert_eq!(
        r.status,
        200,
        "sync answered {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    SyncResponse::decode(&decompress(&r.body, MAX_BODY_BYTES).unwrap()).unwrap()
}

/// The JSON error body of a refused request (`Null` if it is not JSON).
pub fn json_of(r: &HttpResponse) -> Json {
    serde_json::from_slice(&r.body).unwrap_or(Json::Null)
}

/// Asserts a refusal: the status, a JSON body with this error code and a message.
pub fn assert_refused(r: &HttpResponse, status: u16, code: &str) -> Json {
    let body = json_of(r);
    assert_eq!(
        (r.status, body["error"].as_str()),
        (status, Some(code)),
        "answer: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(body["message"].is_string(), "{body}");
    body
}

/// The `Retry-After` of an answer, in seconds; panics if missing or not a number.
pub fn retry_after(r: &HttpResponse) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After", r.status))
        .trim()
        .parse()
        .unwrap()
}

/// Records, changes, held changes and log entries of the server.
pub async fn stats(env: &Env) -> Json {
    env.stats().await
}

// ---------------------------------------------------------------------------------------
// Hand-built changes.

/// One record's Automerge document written key by key the way a phone lays out a record,
/// without any validation: what a hostile client can push.
pub struct RawRecord {
    pub id: Uuid,
    doc: AutoCommit,
}

impl RawRecord {
    /// Uncommitted keys of a household in `commune`.
    pub fn household(actor: Uuid, commune: &str, head_name: &str) -> RawRecord {
        let mut record = RawRecord {
            id: Uuid::now_v7(),
            doc: AutoCommit::new().with_actor(ActorId::from(actor.as_bytes())),
        };
        let id = record.id.to_string();
        record.put("$id", id);
        record.put("$type", "household");
        record.put("$schema", SCHEMA_VERSION as i64);
        record.put("$deleted", false);
        for (field, value) in [
            ("commune", commune),
            ("head_name", head_name),
            ("ethnicity", "14"),
            ("poverty", "poor"),
        ] {
            record.put(&format!("f/{field}"), value);
        }
        record
    }

    /// Uncommitted keys of a communication group in `commune` with `members` member ids: with
    /// 240 members, about the largest valid change (248 of 256 operations, some 12 KiB).
    pub fn group(actor: Uuid, commune: &str, name: &str, members: usize) -> RawRecord {
        let mut record = RawRecord {
            id: Uuid::now_v7(),
            doc: AutoCommit::new().with_actor(ActorId::from(actor.as_bytes())),
        };
        let id = record.id.to_string();
        record.put("$id", id);
        record.put("$type", "group");
        record.put("$schema", SCHEMA_VERSION as i64);
        record.put("$deleted", false);
        record.put("f/commune", commune);
        record.put("f/kind", "communication_team");
        record.put("f/name", name);
        for _ in 0..members {
            record.put(&format!("s/members/{}", Uuid::new_v4()), true);
        }
        record
    }

    /// Sets a root key.
    pub fn put(&mut self, key: &str, value: impl Into<automerge::ScalarValue>) {
        self.doc.put(ROOT, key, value.into()).unwrap();
    }

    /// Puts a nested map under a root key, with one key inside: a shape no record has.
    pub fn put_nested(&mut self, key: &str) {
        let obj = self.doc.put_object(ROOT, key, ObjType::Map).unwrap();
        self.doc.put(&obj, "inner", "value").unwrap();
    }

    /// Commits what was put since the last commit as one change, as a phone sends it
    /// (DEFLATE-compressed, chunk type 2, above 256 bytes).
    pub fn commit(&mut self) -> Vec<u8> {
        self.commit_change().bytes().into_owned()
    }

    /// Like [`RawRecord::commit`], but the uncompressed chunk (type 1) whatever its size.
    pub fn commit_uncompressed(&mut self) -> Vec<u8> {
        self.commit_change().raw_bytes().to_vec()
    }

    fn commit_change(&mut self) -> automerge::Change {
        let hash = self
            .doc
            .commit_with(CommitOptions::default())
            .expect("something to commit");
        self.doc.get_change_by_hash(&hash).unwrap()
    }

    /// The change as a push entry, signed by its actor when that is an attacker's.
    pub fn entry(&self, bytes: Vec<u8>) -> ChangeEntry {
        let actor = Uuid::from_slice(self.doc.get_actor().to_bytes()).unwrap_or_default();
        ChangeEntry {
            record_id: self.id,
            signature: sign_as(actor, self.id, &bytes),
            bytes,
        }
    }
}

/// The change hash of change bytes.
pub fn hash_of(bytes: &[u8]) -> [u8; 32] {
    fieldsync_core::record::decode_change(bytes)
        .unwrap()
        .hash()
        .0
}

/// `n` distinct, valid household creations of `actor` in `commune`.
pub fn creations(actor: Uuid, commune: &str, tag: &str, n: usize) -> Vec<ChangeEntry> {
    (0..n)
        .map(|i| {
            let mut r = RawRecord::household(actor, commune, &format!("Y {tag} {i}"));
            let bytes = r.commit();
            r.entry(bytes)
        })
        .collect()
}

/// A raw DEFLATE stream of `pieces` × `piece_zeros` zeros: one piece (the zeros deflated and
/// ended with a sync flush, on a byte boundary) repeated, then an empty final block.
pub fn zero_bomb(piece_zeros: usize, pieces: usize) -> Vec<u8> {
    use flate2::write::DeflateEncoder;
    use flate2::Compression;
    use std::io::Write;
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![0u8; piece_zeros]).unwrap();
    encoder.flush().unwrap();
    let piece = encoder.get_ref().clone();
    let end = DeflateEncoder::new(Vec::new(), Compression::best())
        .finish()
        .unwrap();
    let mut stream = Vec::with_capacity(piece.len() * pieces + end.len());
    for _ in 0..pieces {
        stream.extend_from_slice(&piece);
    }
    stream.extend_from_slice(&end);
    stream
}

#[allow(unused_imports)] // not every test of this crate sends one
pub use fieldsync_tests::attacker::compressed_change_chunk;

/// Deterministic text of `len` letters that does not compress much (a simple LCG).
pub fn noisy_text(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let n = (x >> 33) % 52;
            char::from(if n < 26 {
                b'a' + n as u8
            } else {
                b'A' + (n - 26) as u8
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Raw connections.

/// The request head of a sync `POST` with `Content-Length: length`, and a token if given.
pub fn sync_head(addr: SocketAddr, token: Option<&str>, length: u64) -> String {
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    format!(
        "POST {SYNC_PATH} HTTP/1.1\r\nhost: localhost:{}\r\n{auth}x-fieldsync-protocol: {PROTOCOL_VERSION}\r\n\
         content-type: application/vnd.fieldsync.sync\r\ncontent-encoding: gzip\r\n\
         content-length: {length}\r\n\r\n",
        addr.port()
    )
}

/// What came back on a raw connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP answer: its status and everything read (head and as much body as came).
    Answer(u16, String),
    /// The server closed or reset the connection without an answer.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Reads an HTTP answer, or notices a close, within `wait`.
pub async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S, wait: Duration) -> Reply {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if complete(&got) {
                        return;
                    }
                }
            }
        }
    };
    let timed_out = tokio::time::timeout(wait, read).await.is_err();
    let text = String::from_utf8_lossy(&got).into_owned();
    match text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
    {
        Some(status) => Reply::Answer(status, text),
        None if timed_out && got.is_empty() => Reply::Silent,
        None => Reply::Closed,
    }
}

/// Whether `got` holds a whole answer (head and, by Content-Length, body).
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    got.len() >= end + 4 + length
}

/// Where a held connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Closed,
    Answered,
}

/// Whether the server has closed `stream`, answered on it, or still holds it (a 50 ms look).
pub async fn state<S: AsyncRead + Unpin>(stream: &mut S) -> State {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
        Err(_) => State::Open,
        Ok(Ok(0) | Err(_)) => State::Closed,
        Ok(Ok(_)) => State::Answered,
    }
}

/// Starts a sync of the device of `token` that sends its head and half of `body`, then
/// nothing, and returns its stream once the server holds the device's sync for it: a second
/// sync of the device (an idle one, which is also returned) is refused 429. If that probe
/// itself took the slot first (the half-sent sync was then refused and answered), it starts
/// over.
pub async fn hold_sync(
    env: &Env,
    http: &HttpsClient,
    token: &str,
    body: &[u8],
) -> (TlsStream<TcpStream>, HttpResponse) {
    let idle = sync_body(&[], Vec::new());
    for _ in 0..20 {
        let mut stream = http.open_tls(env.addr()).await.unwrap();
        let head = sync_head(env.addr(), Some(token), body.len() as u64);
        write_all(&mut stream, head.as_bytes()).await;
        write_all(&mut stream, &body[..body.len() / 2]).await;
        for _ in 0..100 {
            let probe = post_sync(http, env.addr(), token, idle.clone()).await;
            if probe.status == 429 {
                return (stream, probe);
            }
            assert_eq!(
                probe.status,
                200,
                "{}",
                String::from_utf8_lossy(&probe.body)
            );
            if state(&mut stream).await != State::Open {
                // The probe had the slot when the half-sent sync asked for it.
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("the half-sent sync never held the device's slot");
}

/// Writes all of `bytes` (panics on failure: the caller expects the server to read them).
pub async fn write_all<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The bystanders.

/// Two honest collectors of [`NGOC_LINH`] on their own phones (from 127.0.0.1): the writer
/// registers households during an attack, the witness must end up with every one of them.
pub struct Bystanders {
    pub writer: Phone,
    pub witness: Phone,
    /// Every household the writer made, with the head name it was given.
    pub made: Vec<(Uuid, String)>,
}

impl Bystanders {
    /// Accounts `bystander` and `witness` and their phones, settled by a first sync.
    pub async fn new(env: &Env) -> Bystanders {
        Self::with_options(env, ClientOptions::default()).await
    }

    pub async fn with_options(env: &Env, witness_options: ClientOptions) -> Bystanders {
        account(env, "bystander", "collector", &[NGOC_LINH], false).await;
        account(env, "witness", "collector", &[NGOC_LINH], false).await;
        let mut b = Bystanders {
            writer: env.phone("bystander", ClientOptions::default()).await,
            witness: env.phone("witness", witness_options).await,
            made: Vec::new(),
        };
        b.edit_and_sync(env, "before").await;
        b
    }

    /// One edit on the writer's phone (a new household) and a sync that must complete: every
    /// change acked, none refused, no request cut. Returns the report.
    pub async fn edit_and_sync(&mut self, env: &Env, label: &str) -> SyncReport {
        let name = format!("Y Blơ {label} {}", self.made.len());
        let id = self
            .writer
            .store
            .create(RecordType::Household, &minimal_household(NGOC_LINH, &name))
            .unwrap();
        self.made.push((id, name));
        let report = self
            .writer
            .sync(&env.http, env.addr(), 1_000)
            .await
            .unwrap_or_else(|e| panic!("the bystander's sync ({label}) failed: {e}"));
        assert_eq!(report.rejected, 0, "{label}: {report:?}");
        assert_eq!(report.cut, 0, "{label}: no request of the bystander cut");
        assert_eq!(
            self.writer.store.unacked_count().unwrap(),
            0,
            "{label}: everything acked"
        );
        report
    }

    /// The witness syncs and holds every household the writer made, as the writer sees it,
    /// and nothing set aside.
    pub async fn verify(&mut self, env: &Env) {
        let report = self
            .witness
            .sync(&env.http, env.addr(), 1_000)
            .await
            .unwrap_or_else(|e| panic!("the witness's sync failed: {e}"));
        assert_eq!(report.cut, 0, "{report:?}");
        for (id, name) in &self.made {
            let seen = self
                .witness
                .store
                .get(*id)
                .unwrap_or_else(|e| panic!("the witness lacks {name}: {e}"));
            assert_eq!(seen, self.writer.store.get(*id).unwrap(), "{name}");
        }
        assert!(
            self.witness.store.set_aside().unwrap().is_empty(),
            "nothing set aside"
        );
    }
}
