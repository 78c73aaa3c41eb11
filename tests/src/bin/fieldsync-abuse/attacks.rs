//! The attacks of the security review, reproduced with the current protocol. Each has a
//! preparation (building payloads, creating accounts: not timed) and a run that lasts until
//! the window's deadline, writing what it saw to the row's notes.
//!
//! An attacking collector is an ordinary account of the bystander's commune with its own
//! device; an outsider has no account at all.

use crate::flood;
use crate::harness::{Env, Notes, COMMUNE};
use crate::payloads::{
    attacker_actor, compressed_change_chunk, sync_body, sync_message, zero_bomb,
    zero_bomb_inflated, zero_bomb_pieces_within, RawRecord,
};
use crate::raw::{self, Tally};
use crate::{BenchResult, Context};
use fieldsync_core::protocol::{
    compress, decompress, ChangeEntry, SyncResponse, MAX_BODY_BYTES, PROTOCOL_VERSION, SYNC_PATH,
};
use fieldsync_server::http::MAX_REQUEST_BYTES;
use fieldsync_tests::https::{ClientError, HttpResponse, HttpsClient};
use fieldsync_tests::phone::Phone;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Bombs of the looping variant: 8 × 64 MiB = 512 MiB inflated each.
const LOOP_BOMB_PIECES: usize = 8;
/// The review's figure for one request of tiny changes.
const MANY_CHANGES: usize = 90_000;
/// Extra keys of the wide record (fewer if the request would not fit the limits), and of its
/// smaller variant, whose edits are quick enough to be timed within a window.
const WIDE_KEYS: usize = 1_000_000;
const WIDE_KEYS_SMALL: usize = 200_000;
/// Moves of the record per request in resend-amplification.
const MOVES_PER_REQUEST: usize = 25;
/// The other commune of the attacker's scope that the record moves to and from.
const OTHER_COMMUNE: &str = "62.610.02";
const SLOW_BODY_CONNECTIONS: usize = 200;
const SILENT_BODY_CONNECTIONS: usize = 200;
const IDLE_TLS_CONNECTIONS: usize = 1000;
const IDLE_TCP_CONNECTIONS: usize = 1000;
const ENROL_FLOODERS: usize = 200;
const LONG_USERNAME_BYTES: usize = 10 * 1024;
/// Word counts of the search probes; the largest one answered 200 is then repeated.
const SEARCH_WORD_COUNTS: [usize; 10] = [1, 10, 100, 500, 999, 1000, 2000, 5000, 10_000, 20_000];
const SEARCH_LOOPS: usize = 2;
/// Changes per request at the server's limit, and how many such requests max-push has ready.
const MAX_PUSH_CHANGES: usize = 1_000;
const MAX_PUSH_REQUESTS: usize = 40;
/// Edits full-record makes of one record before timing single edits: close to the server's
/// 50,000-operation limit per record.
const FULL_RECORD_EDITS: usize = 49_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    NestedBomb,
    NestedBombLoop,
    HugeChange,
    ManyChanges,
    ManyChangesTwice,
    WideRecord,
    WideRecordSmall,
    SlowBody,
    IdleConnections,
    EnrolFlood,
    EnrolLockout,
    EnrolTrickle,
    ResendAmplification,
    SearchWords,
    MaxPush,
    FullRecord,
    ConnectionFlood,
    ConnectionFlood1024,
    PullAmplification,
    ForeignCursor,
    WriteFlood,
}

/// Who attacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attacker {
    /// An enrolled collector of the bystander's commune.
    Collector,
    /// An enrolled supervisor of province 62.
    Supervisor,
    /// No account.
    Outsider,
}

impl Attacker {
    pub fn label(self) -> &'static str {
        match self {
            Attacker::Collector => "collector",
            Attacker::Supervisor => "supervisor",
            Attacker::Outsider => "outsider",
        }
    }
}

impl Attack {
    pub const ALL: [Attack; 21] = [
        Attack::NestedBomb,
        Attack::NestedBombLoop,
        Attack::HugeChange,
        Attack::ManyChanges,
        Attack::ManyChangesTwice,
        Attack::WideRecord,
        Attack::WideRecordSmall,
        Attack::SlowBody,
        Attack::IdleConnections,
        Attack::EnrolFlood,
        Attack::EnrolLockout,
        Attack::EnrolTrickle,
        Attack::ResendAmplification,
        Attack::SearchWords,
        Attack::MaxPush,
        Attack::FullRecord,
        Attack::ConnectionFlood,
        Attack::ConnectionFlood1024,
        Attack::PullAmplification,
        Attack::ForeignCursor,
        Attack::WriteFlood,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::NestedBomb => "nested-bomb",
            Attack::NestedBombLoop => "nested-bomb-loop",
            Attack::HugeChange => "huge-change",
            Attack::ManyChanges => "many-changes",
            Attack::ManyChangesTwice => "many-changes-x2",
            Attack::WideRecord => "wide-record",
            Attack::WideRecordSmall => "wide-record-200k",
            Attack::SlowBody => "slow-body",
            Attack::IdleConnections => "idle-connections",
            Attack::EnrolFlood => "enrol-flood",
            Attack::EnrolLockout => "enrol-lockout",
            Attack::EnrolTrickle => "enrol-trickle",
            Attack::ResendAmplification => "resend-amplification",
            Attack::SearchWords => "search-words",
            Attack::MaxPush => "max-push",
            Attack::FullRecord => "full-record",
            Attack::ConnectionFlood => "connection-flood",
            Attack::ConnectionFlood1024 => "connection-flood-1024",
            Attack::PullAmplification => "pull-amplification",
            Attack::ForeignCursor => "foreign-cursor",
            Attack::WriteFlood => "write-flood",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Attack::NestedBomb => "one sync request whose change is an Automerge compressed chunk (type 2) of DEFLATEd zeros, as large as the 16 MiB message limit allows, sent again and again",
            Attack::NestedBombLoop => "the same with 512 MiB bombs, two requests at a time, in a loop",
            Attack::HugeChange => "one valid household creation, uncompressed, just under 16 MiB (a 16 MiB head_name), pushed into the bystander's commune",
            Attack::ManyChanges => "one request with ~90,000 tiny valid household creations",
            Attack::ManyChangesTwice => "two such requests at once",
            Attack::WideRecord => "a household with up to 1M extra root keys x/<n>, then small edits of it in a loop",
            Attack::WideRecordSmall => "the same with 200,000 extra keys",
            Attack::SlowBody => "200 unauthenticated POST /v1/sync with Content-Length 4194304 whose bodies trickle in and never finish, plus 200 that send headers and no body",
            Attack::IdleConnections => "1000 idle TLS connections (handshake done, nothing sent) and 1000 TCP connections that never handshake",
            Attack::EnrolFlood => "200 concurrent loops of POST /v1/enrol with 10 KB usernames and wrong passwords; meanwhile the victim's password failed every second, and real enrolments timed",
            Attack::EnrolLockout => "no flood: the victim's password failed every second; the victim enrols half-way through and retries every 5 s; another user enrols every second",
            Attack::EnrolTrickle => "wrong passwords for the owner's account from 10 addresses, 35 per 150 s (each address also comes back when Retry-After says); the owner enrols a new phone from a new address, then from her usual address, then re-enrols her phone, each following Retry-After",
            Attack::ResendAmplification => "one record moved back and forth between 62.610.01 and 62.610.02 (both in scope), 25 moves per request, in a loop",
            Attack::SearchWords => "GET /v1/records?q= with 1 to 20,000 words, then the largest accepted query in two loops",
            Attack::MaxPush => "requests of 1,000 new valid households each (the most one request may push), one after another",
            Attack::FullRecord => "one household grown towards the 50,000-operation limit by 49,000 edits pushed 1,000 per request, then single edits of it timed",
            Attack::ConnectionFlood => "24 source addresses × 256 plain TCP connections that never handshake, each reopened as soon as the server closes it",
            Attack::ConnectionFlood1024 => "the same against a server whose open-file limit is 1,024",
            Attack::PullAmplification => "the commune holds 3.16 MB of changes; a collector asks for all of it (empty cursor, 4 MiB page) again and again, two requests at a time, never waiting",
            Attack::ForeignCursor => "the same with a cursor claiming another database identity",
            Attack::WriteFlood => "two devices of one collector push 1,000 new households per request, back to back, never waiting",
        }
    }

    pub fn attacker(self) -> Attacker {
        match self {
            Attack::SlowBody
            | Attack::IdleConnections
            | Attack::EnrolFlood
            | Attack::EnrolLockout
            | Attack::EnrolTrickle
            | Attack::ConnectionFlood
            | Attack::ConnectionFlood1024 => Attacker::Outsider,
            Attack::SearchWords => Attacker::Supervisor,
            _ => Attacker::Collector,
        }
    }

    /// Extra `serve` arguments: demo records for the search, none otherwise.
    pub fn server_args(self) -> &'static [&'static str] {
        match self {
            Attack::SearchWords => &["--demo-households", "300"],
            _ => &["--demo-households", "0"],
        }
    }

    /// The open-file limit the server runs under, if not the machine's.
    pub fn max_open_files(self) -> Option<u64> {
        (self == Attack::ConnectionFlood1024).then_some(1024)
    }

    /// Whether the row reports the server's record, change and log counts afterwards.
    pub fn wants_stats(self) -> bool {
        matches!(
            self,
            Attack::HugeChange
                | Attack::EnrolFlood
                | Attack::ManyChanges
                | Attack::ManyChangesTwice
                | Attack::WideRecord
                | Attack::WideRecordSmall
                | Attack::ResendAmplification
                | Attack::MaxPush
                | Attack::FullRecord
                | Attack::WriteFlood
        )
    }

    /// Whether the row reports the server's open-file limit.
    pub fn counts_fds(self) -> bool {
        matches!(
            self,
            Attack::SlowBody
                | Attack::IdleConnections
                | Attack::ConnectionFlood
                | Attack::ConnectionFlood1024
        )
    }
}

/// What a running attack needs.
#[derive(Clone)]
pub struct Ctx {
    pub addr: SocketAddr,
    pub http: HttpsClient,
    /// The attacker's device token; empty for an outsider.
    pub token: String,
    pub deadline: Instant,
    pub notes: Notes,
}

impl Ctx {
    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Runs `f` until the deadline at most.
    pub(crate) async fn until_deadline<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        tokio::time::timeout_at(tokio::time::Instant::from_std(self.deadline), f)
            .await
            .ok()
    }
}

/// An attack's payloads, built before its window starts.
pub enum Plan {
    Bomb {
        body: Vec<u8>,
        concurrency: usize,
    },
    Huge {
        body: Vec<u8>,
    },
    Batches {
        bodies: Vec<Vec<u8>>,
    },
    Wide {
        record: RawRecord,
        creation: Vec<u8>,
    },
    SlowBody,
    Idle,
    EnrolFlood {
        flooders: usize,
    },
    EnrolTrickle,
    Resend {
        record: RawRecord,
        creation: Vec<u8>,
    },
    Search,
    Stream {
        bodies: Vec<Vec<u8>>,
    },
    Full {
        record: RawRecord,
        /// Every change of the record, oldest first, with its hash.
        changes: Vec<([u8; 32], ChangeEntry)>,
    },
    ConnectionFlood,
    Pulls {
        cursor: Vec<u8>,
    },
    WriteFlood {
        /// The attacker's second device and its bodies; the first device's bodies.
        second: (String, Vec<Vec<u8>>),
        first: Vec<Vec<u8>>,
    },
}

pub async fn prepare(attack: Attack, env: &Env, notes: &Notes) -> BenchResult<Plan> {
    match attack {
        Attack::NestedBomb => {
            let pieces = zero_bomb_pieces_within(MAX_BODY_BYTES - 4096)?;
            prepare_bomb(pieces, 1, notes).await
        }
        Attack::NestedBombLoop => prepare_bomb(LOOP_BOMB_PIECES, 2, notes).await,
        Attack::HugeChange => prepare_huge(notes).await,
        Attack::ManyChanges => prepare_many(1, notes).await,
        Attack::ManyChangesTwice => prepare_many(2, notes).await,
        Attack::WideRecord => prepare_wide(WIDE_KEYS, notes).await,
        Attack::WideRecordSmall => prepare_wide(WIDE_KEYS_SMALL, notes).await,
        Attack::SlowBody => Ok(Plan::SlowBody),
        Attack::IdleConnections => Ok(Plan::Idle),
        Attack::EnrolFlood | Attack::EnrolLockout => {
            env.add_user("victim", "collector", &[COMMUNE]).await?;
            env.add_user("probe", "collector", &[COMMUNE]).await?;
            let flooders = if attack == Attack::EnrolFlood {
                ENROL_FLOODERS
            } else {
                0
            };
            Ok(Plan::EnrolFlood { flooders })
        }
        Attack::EnrolTrickle => {
            env.add_user(TRICKLE_OWNER, "collector", &[COMMUNE]).await?;
            // The owner's phone, enrolled from her usual address before the attack.
            let usual = env.http.clone().with_source(crate::harness::USER_SOURCE);
            fieldsync_tests::phone::enrol_with_key(
                &usual,
                env.addr(),
                TRICKLE_OWNER,
                crate::harness::PASSWORD,
                &fieldsync_core::signing::DeviceKey::from_seed(&crate::payloads::attacker_key(
                    TRICKLE_OWNER,
                )),
            )
            .await
            .context("the owner's enrolment")?;
            Ok(Plan::EnrolTrickle)
        }
        Attack::ResendAmplification => {
            let mut record = RawRecord::household(attacker_actor(), COMMUNE, "Y Mover")?;
            let creation = record.commit()?;
            Ok(Plan::Resend { record, creation })
        }
        Attack::SearchWords => Ok(Plan::Search),
        Attack::MaxPush => {
            let started = Instant::now();
            let bodies = build(|| {
                (0..MAX_PUSH_REQUESTS)
                    .map(|batch| {
                        let push = (0..MAX_PUSH_CHANGES)
                            .map(|i| {
                                let name = format!("Y Tối đa {batch}-{i}");
                                let mut record =
                                    RawRecord::household(attacker_actor(), COMMUNE, &name)?;
                                let change = record.commit()?;
                                Ok(record.entry(change))
                            })
                            .collect::<BenchResult<Vec<_>>>()?;
                        Ok(sync_body(&[], push))
                    })
                    .collect::<BenchResult<Vec<_>>>()
            })
            .await?;
            notes.add(format!(
                "{} requests of {MAX_PUSH_CHANGES} creations, gzip bodies {} each; built in {:.1} s",
                bodies.len(),
                kib(bodies.first().map_or(0, Vec::len)),
                started.elapsed().as_secs_f64()
            ));
            Ok(Plan::Stream { bodies })
        }
        Attack::ConnectionFlood | Attack::ConnectionFlood1024 => Ok(Plan::ConnectionFlood),
        Attack::PullAmplification | Attack::ForeignCursor => {
            flood::seed_commune(env, notes).await?;
            let cursor = if attack == Attack::ForeignCursor {
                flood::foreign_cursor()
            } else {
                Vec::new()
            };
            Ok(Plan::Pulls { cursor })
        }
        Attack::WriteFlood => {
            let second = env.enrol_with_key("attacker", "attacker-2").await?;
            let started = Instant::now();
            let (first, other) = build(|| {
                Ok((
                    flood::write_bodies("attacker", "a")?,
                    flood::write_bodies("attacker-2", "b")?,
                ))
            })
            .await?;
            notes.add(format!(
                "{} requests of 1,000 creations per device built in {:.1} s",
                first.len(),
                started.elapsed().as_secs_f64()
            ));
            Ok(Plan::WriteFlood {
                second: (second, other),
                first,
            })
        }
        Attack::FullRecord => {
            let started = Instant::now();
            let (record, changes) = build(|| {
                let mut record = RawRecord::household(attacker_actor(), COMMUNE, "Y Đầy")?;
                let mut changes = Vec::with_capacity(FULL_RECORD_EDITS + 1);
                let creation = record.commit()?;
                changes.push(hashed(record.entry(creation))?);
                for n in 0..FULL_RECORD_EDITS {
                    record.put("f/village", format!("Thôn {n}"))?;
                    let change = record.commit()?;
                    changes.push(hashed(record.entry(change))?);
                }
                Ok((record, changes))
            })
            .await?;
            notes.add(format!(
                "{} changes built in {:.1} s",
                changes.len(),
                started.elapsed().as_secs_f64()
            ));
            Ok(Plan::Full { record, changes })
        }
    }
}

pub async fn run(plan: Plan, ctx: Ctx) {
    match plan {
        Plan::Bomb { body, concurrency } => run_bomb(&ctx, body, concurrency).await,
        Plan::Huge { body } => run_huge(&ctx, body).await,
        Plan::Batches { bodies } => run_batches(&ctx, bodies).await,
        Plan::Wide { record, creation } => run_wide(&ctx, record, creation).await,
        Plan::SlowBody => run_slow_body(&ctx).await,
        Plan::Idle => run_idle(&ctx).await,
        Plan::EnrolFlood { flooders } => run_enrol_flood(&ctx, flooders).await,
        Plan::EnrolTrickle => run_enrol_trickle(&ctx).await,
        Plan::Resend { record, creation } => run_resend(&ctx, record, creation).await,
        Plan::Search => run_search(&ctx).await,
        Plan::Stream { bodies } => {
            let acked = run_stream(&ctx, bodies, "request").await;
            ctx.notes.add(format!("{acked} changes acked in all"));
        }
        Plan::Full { record, changes } => run_full(&ctx, record, changes).await,
        Plan::ConnectionFlood => flood::run_connection_flood(&ctx).await,
        Plan::Pulls { cursor } => flood::run_pulls(&ctx, cursor).await,
        Plan::WriteFlood { second, first } => {
            let devices = vec![(ctx.token.clone(), first), second];
            flood::run_write_flood(&ctx, devices).await;
        }
    }
}

/// Posts `bodies` one after another, as one device must, until the deadline; returns how many
/// changes were acked.
async fn run_stream(ctx: &Ctx, bodies: Vec<Vec<u8>>, what: &str) -> usize {
    let mut session = Session::new(ctx);
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    let mut acked = 0;
    for body in bodies {
        if !ctx.running() {
            break;
        }
        match session.post(body).await {
            Ok(a) => {
                outcomes.add(a.status.to_string());
                timings.0.push(a.elapsed);
                acked += a.response.as_ref().map_or(0, |r| r.acked.len());
            }
            Err(e) => outcomes.add(e),
        }
    }
    ctx.notes.add(format!(
        "{} {what}s: {outcomes}; {timings}",
        outcomes.total()
    ));
    acked
}

fn hashed(entry: ChangeEntry) -> BenchResult<([u8; 32], ChangeEntry)> {
    let hash = fieldsync_core::record::decode_change(&entry.bytes)
        .context("decoding a built change")?
        .hash()
        .0;
    Ok((hash, entry))
}

/// Grows the record as a phone would push it: the oldest unacknowledged changes, up to the
/// request limit, again and again (the server splits what it cannot take in one turn); for
/// the first half of the window, then times single edits of it.
async fn run_full(ctx: &Ctx, record: RawRecord, mut changes: Vec<([u8; 32], ChangeEntry)>) {
    let mut session = Session::new(ctx);
    let half = Instant::now() + ctx.deadline.saturating_duration_since(Instant::now()) / 2;
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    let mut acked = 0;
    while Instant::now() < half && !changes.is_empty() {
        let push: Vec<ChangeEntry> = changes
            .iter()
            .take(MAX_PUSH_CHANGES)
            .map(|(_, e)| e.clone())
            .collect();
        match session.push(push).await {
            Ok(a) => {
                outcomes.add(a.status.to_string());
                timings.0.push(a.elapsed);
                let done: std::collections::BTreeSet<[u8; 32]> = a
                    .response
                    .iter()
                    .flat_map(|r| r.acked.iter().chain(r.rejected.iter().map(|x| &x.hash)))
                    .copied()
                    .collect();
                acked += done.len();
                changes.retain(|(h, _)| !done.contains(h));
            }
            Err(e) => outcomes.add(e),
        }
    }
    ctx.notes.add(format!(
        "growing it: {} requests ({outcomes}; {timings}), {acked} changes answered, {} left",
        outcomes.total(),
        changes.len()
    ));
    run_wide(ctx, record, Vec::new()).await;
}

/// Runs CPU-heavy payload building off the async threads.
async fn build<T: Send + 'static>(
    f: impl FnOnce() -> BenchResult<T> + Send + 'static,
) -> BenchResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("payload builder")?
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

pub(crate) fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------------------
// Counting what happened.

/// How many times each outcome ("200", "413", "timeout", ...) happened.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcomes(BTreeMap<String, usize>);

impl Outcomes {
    pub(crate) fn add(&mut self, outcome: impl Into<String>) {
        *self.0.entry(outcome.into()).or_default() += 1;
    }

    pub(crate) fn merge(&mut self, other: Outcomes) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.0.values().sum()
    }

    fn count(&self, outcome: &str) -> usize {
        self.0.get(outcome).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// Durations of one kind of request.
#[derive(Clone, Debug, Default)]
struct Timings(Vec<Duration>);

impl Timings {
    fn merge(&mut self, other: Timings) {
        self.0.extend(other.0);
    }
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sorted = self.0.clone();
        sorted.sort();
        match (
            sorted.get(sorted.len().saturating_sub(1) / 2),
            sorted.last(),
        ) {
            (Some(median), Some(worst)) => write!(
                f,
                "median {:.2} s, worst {:.2} s",
                median.as_secs_f64(),
                worst.as_secs_f64()
            ),
            _ => write!(f, "none"),
        }
    }
}

fn error_label(e: &ClientError) -> &'static str {
    match e {
        ClientError::Cert(_) => "certificate error",
        ClientError::Connect { .. } => "connect error",
        ClientError::Tls { .. } => "TLS error",
        ClientError::Http { .. } => "HTTP error",
        ClientError::Timeout { .. } => "timeout",
    }
}

// ---------------------------------------------------------------------------------------
// A collector's sync session.

/// An answered sync request.
pub(crate) struct Answer {
    pub(crate) status: u16,
    elapsed: Duration,
    pub(crate) response: Option<SyncResponse>,
}

/// The attacking collector's sync session: pushes as a phone would, keeping each answer's
/// cursor so that it never downloads the same page twice.
pub(crate) struct Session {
    http: HttpsClient,
    addr: SocketAddr,
    token: String,
    deadline: Instant,
    cursor: Vec<u8>,
}

impl Session {
    pub(crate) fn new(ctx: &Ctx) -> Session {
        Session {
            http: ctx.http.clone().with_timeout(Duration::from_secs(600)),
            addr: ctx.addr,
            token: ctx.token.clone(),
            deadline: ctx.deadline,
            cursor: Vec::new(),
        }
    }

    /// Posts a ready-made body; the raw answer or why there was none (by the deadline at
    /// most).
    pub(crate) async fn post_raw(&mut self, body: Vec<u8>) -> Result<HttpResponse, String> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let exchange = Phone::exchange(&self.http, self.addr, &self.token, body);
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => Err("no answer by the end of the window".into()),
            Ok(Err(e)) => Err(error_label(&e).into()),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Posts a ready-made body; an answer or why there was none (by the deadline at most).
    pub(crate) async fn post(&mut self, body: Vec<u8>) -> Result<Answer, String> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let exchange = Phone::exchange(&self.http, self.addr, &self.token, body);
        let response = match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => return Err("no answer by the end of the window".into()),
            Ok(Err(e)) => return Err(error_label(&e).into()),
            Ok(Ok(r)) => r,
        };
        let decoded = (response.status == 200)
            .then(|| decompress(&response.body, MAX_BODY_BYTES).ok())
            .flatten()
            .and_then(|m| SyncResponse::decode(&m).ok());
        if let Some(r) = &decoded {
            self.cursor.clone_from(&r.cursor);
        }
        Ok(Answer {
            status: response.status,
            elapsed: started.elapsed(),
            response: decoded,
        })
    }

    /// Pushes changes, from the session's cursor.
    async fn push(&mut self, push: Vec<ChangeEntry>) -> Result<Answer, String> {
        let body = sync_body(&self.cursor, push);
        self.post(body).await
    }
}

/// "200 in 1.23 s (acked 1, rejected 0)" or why there was no answer.
fn describe(answer: &Result<Answer, String>) -> String {
    match answer {
        Err(e) => e.clone(),
        Ok(a) => {
            let detail = a.response.as_ref().map_or(String::new(), |r| {
                format!(" (acked {}, rejected {})", r.acked.len(), r.rejected.len())
            });
            format!("{} in {:.2} s{detail}", a.status, a.elapsed.as_secs_f64())
        }
    }
}

// ---------------------------------------------------------------------------------------
// nested-bomb, nested-bomb-loop

async fn prepare_bomb(pieces: usize, concurrency: usize, notes: &Notes) -> BenchResult<Plan> {
    let (body, message) = build(move || {
        let chunk = compressed_change_chunk(&zero_bomb(pieces)?);
        let message = sync_message(
            &[],
            vec![ChangeEntry {
                record_id: Uuid::now_v7(),
                bytes: chunk,
                signature: [0; 64],
            }],
        );
        Ok((compress(&message), message.len()))
    })
    .await?;
    notes.add(format!(
        "each request: {} of gzip body, {} message, one change inflating to {:.1} GiB of zeros; {} at a time",
        kib(body.len()),
        mib(message),
        zero_bomb_inflated(pieces) as f64 / f64::from(1u32 << 30),
        concurrency
    ));
    Ok(Plan::Bomb { body, concurrency })
}

async fn bomb_loop(ctx: Ctx, body: Vec<u8>) -> (Outcomes, Timings) {
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    while ctx.running() {
        match Session::new(&ctx).post(body.clone()).await {
            Ok(a) => {
                outcomes.add(a.status.to_string());
                timings.0.push(a.elapsed);
            }
            Err(e) => {
                outcomes.add(e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    (outcomes, timings)
}

async fn run_bomb(ctx: &Ctx, body: Vec<u8>, concurrency: usize) {
    let mut loops = JoinSet::new();
    for _ in 0..concurrency {
        loops.spawn(bomb_loop(ctx.clone(), body.clone()));
    }
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    while let Some(Ok((o, t))) = loops.join_next().await {
        outcomes.merge(o);
        timings.merge(t);
    }
    ctx.notes.add(format!(
        "{} bomb requests: {outcomes}; answered ones: {timings}",
        outcomes.total()
    ));
}

// ---------------------------------------------------------------------------------------
// huge-change

/// The request message pushing one household creation, uncompressed, whose head name is
/// `head_len` letters.
fn huge_household(head_len: usize) -> BenchResult<Vec<u8>> {
    let head: String = (0..head_len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut record = RawRecord::household(attacker_actor(), COMMUNE, &head)?;
    let change = record.commit_uncompressed()?;
    Ok(sync_message(&[], vec![record.entry(change)]))
}

async fn prepare_huge(notes: &Notes) -> BenchResult<Plan> {
    // The request message as close under the 16 MiB limit as the protocol allows; the
    // response that carries the same change to the bystander is a few dozen bytes larger.
    let target = MAX_BODY_BYTES - 64;
    let message = build(move || {
        let first = target - 4096;
        let overhead = huge_household(first)?.len() - first;
        huge_household(target - overhead)
    })
    .await?;
    if message.len() > MAX_BODY_BYTES {
        return Err(format!("huge change message of {} bytes", message.len()));
    }
    let body = compress(&message);
    notes.add(format!(
        "one uncompressed change, message {} bytes (16 MiB − {}), gzip body {}",
        message.len(),
        MAX_BODY_BYTES - message.len(),
        kib(body.len())
    ));
    Ok(Plan::Huge { body })
}

async fn run_huge(ctx: &Ctx, body: Vec<u8>) {
    let answer = Session::new(ctx).post(body).await;
    ctx.notes.add(format!("push: {}", describe(&answer)));
}

// ---------------------------------------------------------------------------------------
// many-changes, many-changes-x2

/// A request of up to [`MANY_CHANGES`] minimal household creations, as many as fit the
/// 16 MiB message limit. Returns the gzip body, the count and the message size.
fn many_changes(batch: usize) -> BenchResult<(Vec<u8>, usize, usize)> {
    let actor = attacker_actor();
    let mut push = Vec::with_capacity(MANY_CHANGES);
    let mut size = 64;
    for i in 0..MANY_CHANGES {
        let mut record = RawRecord::household(actor, COMMUNE, &format!("Y {batch}-{i}"))?;
        let change = record.commit()?;
        size += 16 + 3 + change.len();
        if size > MAX_BODY_BYTES - 1024 {
            break;
        }
        push.push(record.entry(change));
    }
    let count = push.len();
    let message = sync_message(&[], push);
    Ok((compress(&message), count, message.len()))
}

async fn prepare_many(requests: usize, notes: &Notes) -> BenchResult<Plan> {
    let mut bodies = Vec::new();
    for batch in 0..requests {
        let (body, count, message) = build(move || many_changes(batch)).await?;
        notes.add(format!(
            "request {}: {count} changes, message {}, gzip body {}",
            batch + 1,
            mib(message),
            mib(body.len())
        ));
        bodies.push(body);
    }
    Ok(Plan::Batches { bodies })
}

async fn run_batches(ctx: &Ctx, bodies: Vec<Vec<u8>>) {
    let mut posts = JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let ctx = ctx.clone();
        posts.spawn(async move { (i, Session::new(&ctx).post(body).await) });
    }
    while let Some(Ok((i, answer))) = posts.join_next().await {
        ctx.notes
            .add(format!("request {}: {}", i + 1, describe(&answer)));
    }
}

// ---------------------------------------------------------------------------------------
// wide-record

fn wide_household(keys: usize) -> BenchResult<(RawRecord, Vec<u8>, usize)> {
    let mut record = RawRecord::household(attacker_actor(), COMMUNE, "Y Rộng")?;
    for n in 0..keys {
        record.put(&format!("x/{n}"), n as i64)?;
    }
    let creation = record.commit()?;
    let body = sync_body(&[], vec![record.entry(creation.clone())]);
    Ok((record, creation, body.len()))
}

async fn prepare_wide(mut keys: usize, notes: &Notes) -> BenchResult<Plan> {
    loop {
        let started = Instant::now();
        let (record, creation, body) = build(move || wide_household(keys)).await?;
        let fits =
            body < MAX_REQUEST_BYTES as usize - 64 * 1024 && creation.len() < MAX_BODY_BYTES - 1024;
        if fits || keys < 10_000 {
            notes.add(format!(
                "{keys} extra keys: creation change {} (compressed chunk), gzip body {}; built in {:.1} s",
                mib(creation.len()),
                mib(body),
                started.elapsed().as_secs_f64()
            ));
            return Ok(Plan::Wide { record, creation });
        }
        keys = keys * 3 / 4;
    }
}

/// Pushes `creation` (unless empty), then single-field edits of the record until the deadline,
/// timing each.
async fn run_wide(ctx: &Ctx, mut record: RawRecord, creation: Vec<u8>) {
    let mut session = Session::new(ctx);
    if !creation.is_empty() {
        let answer = session.push(vec![record.entry(creation)]).await;
        ctx.notes.add(format!("creation: {}", describe(&answer)));
    }
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    let mut n = 0;
    while ctx.running() {
        n += 1;
        let change = record
            .put("f/village", format!("Thôn {n}"))
            .and_then(|()| record.commit());
        let answer = match change {
            Ok(change) => session.push(vec![record.entry(change)]).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(a) => {
                outcomes.add(a.status.to_string());
                timings.0.push(a.elapsed);
            }
            Err(e) => outcomes.add(e),
        }
    }
    ctx.notes.add(format!(
        "{} one-field edits: {outcomes}; {timings}",
        outcomes.total()
    ));
}

// ---------------------------------------------------------------------------------------
// slow-body

fn sync_headers(addr: SocketAddr) -> String {
    format!(
        "POST {SYNC_PATH} HTTP/1.1\r\nhost: localhost:{}\r\nx-fieldsync-protocol: {PROTOCOL_VERSION}\r\n\
         content-type: application/vnd.fieldsync.sync\r\ncontent-encoding: gzip\r\n\
         content-length: {MAX_REQUEST_BYTES}\r\n\r\n",
        addr.port()
    )
}

/// How one slow connection ended: its state at the deadline, and the body bytes sent.
async fn slow_body(
    ctx: Ctx,
    mut stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    trickle: bool,
) -> (raw::State, usize, bool) {
    const CHUNK: usize = 16 * 1024;
    // Never the whole body: the request must stay incomplete.
    let total = MAX_REQUEST_BYTES as usize - CHUNK;
    let chunks = total / CHUNK;
    let window = ctx.deadline.saturating_duration_since(Instant::now());
    let interval = window.mul_f64(0.8) / chunks as u32;
    let mut sent = 0;
    let mut stalled = false;
    if stream
        .write_all(sync_headers(ctx.addr).as_bytes())
        .await
        .is_err()
    {
        return (raw::State::Closed, 0, false);
    }
    let chunk = vec![0x1f; CHUNK];
    while trickle && ctx.running() && sent < total {
        let write = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&chunk)).await;
        match write {
            Ok(Ok(())) => sent += CHUNK,
            Ok(Err(_)) => break,
            Err(_) => {
                stalled = true;
                break;
            }
        }
        tokio::time::sleep(interval).await;
    }
    let _ = stream.flush().await;
    ctx.until_deadline(std::future::pending::<()>()).await;
    (raw::state(&mut stream).await, sent, stalled)
}

async fn run_slow_body(ctx: &Ctx) {
    let (streams, failed) = raw::open_tls(
        &ctx.http,
        ctx.addr,
        SLOW_BODY_CONNECTIONS + SILENT_BODY_CONNECTIONS,
    )
    .await;
    let mut tasks = JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let trickle = i < SLOW_BODY_CONNECTIONS;
        let connection = slow_body(ctx.clone(), stream, trickle);
        tasks.spawn(async move { (trickle, connection.await) });
    }
    let (mut slow, mut silent) = (Tally::default(), Tally::default());
    let (mut sent, mut stalled) = (0usize, 0usize);
    while let Some(Ok((trickle, (state, bytes, stall)))) = tasks.join_next().await {
        if trickle {
            slow.add(state);
            sent += bytes;
            stalled += usize::from(stall);
        } else {
            silent.add(state);
        }
    }
    ctx.notes.add(format!(
        "{failed} connections failed to open; trickling bodies: {} sent in all, {stalled} writes stalled, at the end {slow}; headers only: at the end {silent}",
        mib(sent)
    ));
}

// ---------------------------------------------------------------------------------------
// idle-connections

async fn run_idle(ctx: &Ctx) {
    let Some(((tls, tls_failed), (tcp, tcp_failed))) = ctx
        .until_deadline(async {
            (
                raw::open_tls(&ctx.http, ctx.addr, IDLE_TLS_CONNECTIONS).await,
                raw::open_tcp(ctx.addr, ctx.http.source(), IDLE_TCP_CONNECTIONS).await,
            )
        })
        .await
    else {
        ctx.notes
            .add("the connections were still opening at the deadline");
        return;
    };
    ctx.notes.add(format!(
        "opened {} idle TLS ({tls_failed} failed) and {} plain TCP ({tcp_failed} failed)",
        tls.len(),
        tcp.len()
    ));
    ctx.until_deadline(std::future::pending::<()>()).await;
    let (tls, tcp) = (raw::tally(tls).await, raw::tally(tcp).await);
    ctx.notes.add(format!("at the end: TLS {tls}; TCP {tcp}"));
}

// ---------------------------------------------------------------------------------------
// enrol-flood

/// One `POST /v1/enrol`: its status (or error), how long it took, and the lock's
/// `Retry-After` if the name was locked.
struct Attempt {
    outcome: String,
    elapsed: Duration,
    retry_after: Option<u64>,
}

async fn enrol_attempt(ctx: &Ctx, username: &str, password: &str) -> Attempt {
    let started = Instant::now();
    let body = json!({ "username": username, "password": password, "device_name": "bench" });
    let headers = [("content-type", "application/json".to_owned())];
    let request = ctx.http.request(
        ctx.addr,
        "POST",
        "/v1/enrol",
        &headers,
        body.to_string().into_bytes(),
    );
    let (outcome, retry_after) = match ctx.until_deadline(request).await {
        Some(Ok(r)) => (
            r.status.to_string(),
            r.header("retry-after").and_then(|v| v.parse().ok()),
        ),
        Some(Err(e)) => (error_label(&e).to_owned(), None),
        None => ("no answer by the end of the window".to_owned(), None),
    };
    Attempt {
        outcome,
        elapsed: started.elapsed(),
        retry_after,
    }
}

fn long_username(n: u64) -> String {
    let mut name = format!("{n}-");
    while name.len() < LONG_USERNAME_BYTES {
        name.push_str("nguyenvana");
    }
    name
}

/// Wrong passwords for ever new 10 KB usernames, one after the other.
async fn flooder(ctx: Ctx, id: u64) -> Outcomes {
    let mut outcomes = Outcomes::default();
    let mut n = id << 32;
    while ctx.running() {
        n += 1;
        let attempt = enrol_attempt(&ctx, &long_username(n), "wrong-password").await;
        outcomes.add(attempt.outcome);
    }
    outcomes
}

/// Enrols `username` with `password` every `every`, after `delay`; the outcomes, the
/// timings, and the longest lock announced.
async fn enrol_every(
    ctx: Ctx,
    username: &'static str,
    password: &'static str,
    delay: Duration,
    every: Duration,
) -> (Outcomes, Timings, u64) {
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    let mut longest_lock = 0;
    ctx.until_deadline(tokio::time::sleep(delay)).await;
    while ctx.running() {
        let attempt = enrol_attempt(&ctx, username, password).await;
        if attempt.outcome != "no answer by the end of the window" {
            timings.0.push(attempt.elapsed);
        }
        outcomes.add(attempt.outcome);
        longest_lock = longest_lock.max(attempt.retry_after.unwrap_or(0));
        ctx.until_deadline(tokio::time::sleep(every)).await;
    }
    (outcomes, timings, longest_lock)
}

/// The flood (if `flooders` > 0), an attacker failing the victim's password every second,
/// and two real users: one enrolling every second (timed), and the victim, who comes to
/// enrol a new phone half-way through the window and retries every 5 s (is it locked out?).
async fn run_enrol_flood(ctx: &Ctx, flooders: usize) {
    let password = crate::harness::PASSWORD;
    let mut flood = JoinSet::new();
    for id in 0..flooders as u64 {
        flood.spawn(flooder(ctx.clone(), id));
    }
    let second = Duration::from_secs(1);
    let harasser = tokio::spawn(enrol_every(
        ctx.clone(),
        "victim",
        "wrong-password",
        Duration::ZERO,
        second,
    ));
    // The real users are elsewhere: their own phones, their own addresses.
    let users = Ctx {
        http: ctx.http.clone().with_source(crate::harness::USER_SOURCE),
        ..ctx.clone()
    };
    let half_way = ctx.deadline.saturating_duration_since(Instant::now()) / 2;
    let victim = tokio::spawn(enrol_every(
        users.clone(),
        "victim",
        password,
        half_way,
        5 * second,
    ));
    let (probe, timings, _) = enrol_every(users, "probe", password, second, second).await;
    let mut outcomes = Outcomes::default();
    while let Some(Ok(o)) = flood.join_next().await {
        outcomes.merge(o);
    }
    let (harassed, _, _) = harasser.await.unwrap_or_default();
    let (victim, _, lock) = victim.await.unwrap_or_default();
    if flooders > 0 {
        ctx.notes.add(format!(
            "flood: {} attempts by {flooders} loops ({outcomes})",
            outcomes.total()
        ));
    }
    ctx.notes.add(format!(
        "real enrolments (unattacked name): {probe}; {timings}"
    ));
    ctx.notes.add(format!(
        "victim (password failed by the attacker every second: {harassed}): {victim}, locked out {} of {}, longest lock announced {lock} s",
        victim.count("429"),
        victim.total()
    ));
}

// ---------------------------------------------------------------------------------------
// enrol-trickle

/// The account the trickle guesses at.
const TRICKLE_OWNER: &str = "owner";
/// The reproduced trickle: 35 wrong passwords per 150 s from 10 addresses.
const TRICKLE_ADDRESSES: u8 = 10;
const TRICKLE_EVERY: Duration = Duration::from_millis(150_000 * TRICKLE_ADDRESSES as u64 / 35);

fn trickle_source(network: u8, host: u8) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, network, host))
}

/// One address of the trickle: a wrong password every [`TRICKLE_EVERY`] (the addresses
/// staggered), and again as soon as a `Retry-After` names a turn. Its outcomes, and when each
/// guess was checked (401).
async fn trickler(ctx: Ctx, host: u8) -> (Outcomes, Vec<Instant>) {
    let ctx = Ctx {
        http: ctx.http.clone().with_source(trickle_source(4, host)),
        ..ctx
    };
    let mut outcomes = Outcomes::default();
    let mut checked = Vec::new();
    let stagger = TRICKLE_EVERY * u32::from(host) / u32::from(TRICKLE_ADDRESSES);
    ctx.until_deadline(tokio::time::sleep(stagger)).await;
    while ctx.running() {
        let attempt = enrol_attempt(&ctx, TRICKLE_OWNER, "wrong-password").await;
        if attempt.outcome == "401" {
            checked.push(Instant::now());
        }
        outcomes.add(attempt.outcome);
        let wait = attempt
            .retry_after
            .map_or(TRICKLE_EVERY, |s| Duration::from_secs(s).min(TRICKLE_EVERY));
        ctx.until_deadline(tokio::time::sleep(wait)).await;
    }
    (outcomes, checked)
}

/// The owner enrolling from `http` (with her phone's key if `key`), following `Retry-After`:
/// how long until she was in, and how many 429s she got, or why she gave up.
async fn owner_enrols(ctx: &Ctx, http: HttpsClient, key: Option<[u8; 32]>) -> String {
    let started = Instant::now();
    let mut waits = 0;
    while ctx.running() {
        let http = &http;
        let answer = async move {
            match key {
                Some(seed) => {
                    let key = fieldsync_core::signing::DeviceKey::from_seed(&seed);
                    fieldsync_tests::phone::enrol_with_key(
                        http,
                        ctx.addr,
                        TRICKLE_OWNER,
                        crate::harness::PASSWORD,
                        &key,
                    )
                    .await
                }
                None => {
                    fieldsync_tests::phone::enrol_as(
                        http,
                        ctx.addr,
                        TRICKLE_OWNER,
                        crate::harness::PASSWORD,
                        None,
                    )
                    .await
                }
            }
        };
        match ctx.until_deadline(answer).await {
            Some(Ok(_)) => {
                return format!(
                    "in after {:.1} s ({waits}×429)",
                    started.elapsed().as_secs_f64()
                )
            }
            Some(Err(fieldsync_tests::phone::PhoneError::Status { status: 429, .. })) => {
                waits += 1;
                // The answer's Retry-After is not surfaced by the helper: come back in a
                // second (a turn waits 10 minutes for its client).
                ctx.until_deadline(tokio::time::sleep(Duration::from_secs(1)))
                    .await;
            }
            Some(Err(e)) => return format!("failed: {e}"),
            None => break,
        }
    }
    format!(
        "still out at the end of the window, {:.1} s ({waits}×429)",
        started.elapsed().as_secs_f64()
    )
}

/// The trickle, and the owner coming in a quarter of the way through: a new phone from a new
/// address, then from her usual address, then her own phone (enrolled before) from another
/// new address. Then what the attacker got: its checked guesses, per hour of the window.
async fn run_enrol_trickle(ctx: &Ctx) {
    let started = Instant::now();
    let mut trickle = JoinSet::new();
    for host in 1..=TRICKLE_ADDRESSES {
        trickle.spawn(trickler(ctx.clone(), host));
    }
    let quarter = ctx.deadline.saturating_duration_since(Instant::now()) / 4;
    ctx.until_deadline(tokio::time::sleep(quarter)).await;
    let new_address = owner_enrols(
        ctx,
        ctx.http.clone().with_source(trickle_source(5, 1)),
        None,
    )
    .await;
    let usual = owner_enrols(
        ctx,
        ctx.http.clone().with_source(crate::harness::USER_SOURCE),
        None,
    )
    .await;
    let own_phone = owner_enrols(
        ctx,
        ctx.http.clone().with_source(trickle_source(5, 2)),
        Some(crate::payloads::attacker_key(TRICKLE_OWNER)),
    )
    .await;
    let mut outcomes = Outcomes::default();
    let mut checked = Vec::new();
    while let Some(Ok((o, c))) = trickle.join_next().await {
        outcomes.merge(o);
        checked.extend(c);
    }
    // The first two minutes hold the account's bursts; the rate after them is what a
    // trickle that goes on gets.
    let settled = started + Duration::from_secs(120);
    let late = checked.iter().filter(|at| **at >= settled).count();
    let late_hours = Instant::now()
        .saturating_duration_since(settled)
        .as_secs_f64()
        / 3600.0;
    let rate = if late_hours > 0.0 {
        format!(
            "{:.0} per hour after the first two minutes",
            late as f64 / late_hours
        )
    } else {
        "run 10 minutes or more for the rate after the bursts".to_owned()
    };
    ctx.notes.add(format!(
        "trickle: {} attempts ({outcomes}); {} guesses checked in {:.0} s, {} of them in the first two minutes; {rate}",
        outcomes.total(),
        checked.len(),
        started.elapsed().as_secs_f64(),
        checked.len() - late,
    ));
    ctx.notes.add(format!(
        "owner, new phone from a new address: {new_address}; from her usual address: {usual}; her own phone from another new address: {own_phone}"
    ));
}

// ---------------------------------------------------------------------------------------
// resend-amplification

async fn run_resend(ctx: &Ctx, mut record: RawRecord, creation: Vec<u8>) {
    let mut session = Session::new(ctx);
    let answer = session.push(vec![record.entry(creation)]).await;
    ctx.notes.add(format!("creation: {}", describe(&answer)));
    let mut outcomes = Outcomes::default();
    let (mut moves, mut rejected) = (0usize, 0usize);
    let mut timings = Timings::default();
    while ctx.running() {
        let mut push = Vec::with_capacity(MOVES_PER_REQUEST);
        for _ in 0..MOVES_PER_REQUEST {
            moves += 1;
            let commune = if moves % 2 == 1 {
                OTHER_COMMUNE
            } else {
                COMMUNE
            };
            match record
                .put("f/commune", commune)
                .and_then(|()| record.commit())
            {
                Ok(change) => push.push(record.entry(change)),
                Err(e) => {
                    ctx.notes.add(format!("building a move: {e}"));
                    return;
                }
            }
        }
        match session.push(push).await {
            Ok(a) => {
                outcomes.add(a.status.to_string());
                timings.0.push(a.elapsed);
                rejected += a.response.map_or(0, |r| r.rejected.len());
            }
            Err(e) => outcomes.add(e),
        }
    }
    ctx.notes.add(format!(
        "{moves} moves built, in {} requests ({outcomes}; {timings}); {rejected} rejected",
        outcomes.total()
    ));
}

// ---------------------------------------------------------------------------------------
// search-words

async fn search(ctx: &Ctx, words: usize) -> (String, Duration) {
    let started = Instant::now();
    let path = format!("/v1/records?q={}", vec!["n"; words].join("+"));
    let headers = [("authorization", format!("Bearer {}", ctx.token))];
    let request = ctx
        .http
        .request(ctx.addr, "GET", &path, &headers, Vec::new());
    let outcome = match ctx.until_deadline(request).await {
        Some(Ok(r)) => r.status.to_string(),
        Some(Err(e)) => error_label(&e).to_owned(),
        None => "no answer by the end of the window".to_owned(),
    };
    (outcome, started.elapsed())
}

async fn search_loop(ctx: Ctx, words: usize) -> (Outcomes, Timings) {
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    while ctx.running() {
        let (outcome, elapsed) = search(&ctx, words).await;
        outcomes.add(outcome);
        timings.0.push(elapsed);
    }
    (outcomes, timings)
}

async fn run_search(ctx: &Ctx) {
    let mut probes = Vec::new();
    let mut heaviest = 1;
    for words in SEARCH_WORD_COUNTS {
        let (outcome, elapsed) = search(ctx, words).await;
        if outcome == "200" {
            heaviest = words;
        }
        probes.push(format!(
            "{words}→{outcome} ({:.2} s)",
            elapsed.as_secs_f64()
        ));
    }
    ctx.notes
        .add(format!("words → status: {}", probes.join(", ")));
    let mut loops = JoinSet::new();
    for _ in 0..SEARCH_LOOPS {
        loops.spawn(search_loop(ctx.clone(), heaviest));
    }
    let mut outcomes = Outcomes::default();
    let mut timings = Timings::default();
    while let Some(Ok((o, t))) = loops.join_next().await {
        outcomes.merge(o);
        timings.merge(t);
    }
    ctx.notes.add(format!(
        "then {} queries of {heaviest} words in {SEARCH_LOOPS} loops: {outcomes}; {timings}",
        outcomes.total()
    ));
}
