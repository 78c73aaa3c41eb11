//! Login throttling, in memory and bounded, and the coalescing of failed and throttled logins
//! into audit entries. The rules and their figures are in operating.md, "Login throttling";
//! in short: a client that proved it logged in to the account before (a phone whose key was
//! enrolled to it, a browser with its known-browser cookie, an address it logged in from in
//! the last 30 days) is held only to its own count; everyone else shares the account's
//! budget of checks, handed out in order of arrival (a throttled attempt gets a reserved turn
//! and a `Retry-After` to it), and an address new to the account has a budget of its own, so
//! a trickle of guesses from a few addresses cannot keep the owner out from a new one.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Failures per (account, client) that cost nothing; each one after doubles the wait.
const FREE_FAILURES: f64 = 3.0;
/// Longest wait imposed per (account, client).
const MAX_PAIR_DELAY_MS: i64 = 300_000;
/// Failure counts halve every this many milliseconds without a new failure.
const HALF_LIFE_MS: f64 = 600_000.0;
/// Attempts a source address may make in a burst, and how fast it earns them back.
const BURST: f64 = 20.0;
const REFILL_PER_MS: f64 = 1.0 / 3_000.0;
/// How long an address a user logged in from stays known good for that user.
const KNOWN_GOOD_MS: i64 = 30 * 24 * 3_600_000;
/// The account's checks for addresses new to it: a burst, then one per interval.
const FRESH_BURST: i64 = 10;
const FRESH_INTERVAL_MS: i64 = 20_000;
/// The account's checks for every other address without proof: a burst, then one per interval.
const TRIED_BURST: i64 = 10;
const TRIED_INTERVAL_MS: i64 = 120_000;
/// An address is new to an account until it has taken a turn of the new addresses' budget;
/// then, for this long, it is not.
const FRESH_MEMORY_MS: i64 = 24 * 3_600_000;
/// How long a reserved turn waits for its client to come back.
const TURN_GRACE_MS: i64 = 600_000;
/// No turn is reserved further ahead than this; past it, attempts are refused without one.
const MAX_TURN_AHEAD_MS: i64 = 900_000;
/// How long a known-browser cookie lasts.
pub const KNOWN_BROWSER_MS: i64 = 180 * 24 * 3_600_000;
/// Entries kept per table; past this the stalest are forgotten.
const MAX_ENTRIES: usize = 20_000;
/// Failed and throttled logins of one (account as given, address, way in) within this window
/// make at most two audit entries: the first at once, the rest counted at the window's end.
pub const AUDIT_WINDOW_MS: i64 = 600_000;
/// Audit entries about failed logins, all together: a burst, then one per interval; past it,
/// they are counted into one entry written when the budget allows.
const AUDIT_BURST: f64 = 60.0;
const AUDIT_REFILL_PER_MS: f64 = 1.0 / 10_000.0;

/// Who is asking to log in, as far as the throttle can tell before checking a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Nothing but its address.
    Address,
    /// A client that proved it logged in to this account before (a phone with a key enrolled
    /// to it, a browser with its known-browser cookie, a device token of it), named by a
    /// digest of what it showed.
    Known([u8; 16]),
}

/// The way in an attempt came by, for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// `POST /v1/enrol`.
    Enrol,
    /// The supervisors' page, `POST /v1/session`.
    Page,
    /// `POST /v1/account/password`: the old password, with a device token.
    PasswordChange,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Enrol => "phone enrolment",
            Via::Page => "page login",
            Via::PasswordChange => "own password change",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PairKey {
    Address(IpAddr),
    Client([u8; 16]),
}

#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    count: f64,
    last_ms: i64,
    in_progress: bool,
    /// A turn of the account's budget reserved for this pair.
    turn_ms: Option<i64>,
}

impl Pair {
    fn decayed(&self, now: i64) -> f64 {
        let elapsed = (now - self.last_ms).max(0) as f64;
        self.count * 0.5f64.powf(elapsed / HALF_LIFE_MS)
    }

    /// Until when this pair refuses attempts.
    fn locked_until(&self, now: i64) -> i64 {
        let count = self.decayed(now);
        if count < FREE_FAILURES {
            return 0;
        }
        let steps = (count - FREE_FAILURES).floor().min(20.0) as u32;
        self.last_ms + (1000i64 << steps).min(MAX_PAIR_DELAY_MS)
    }

    fn fail(&mut self, now: i64) {
        self.count = self.decayed(now) + 1.0;
        self.last_ms = now;
    }

    fn stale_ms(&self) -> i64 {
        self.last_ms.max(self.turn_ms.unwrap_or(0))
    }
}

/// One budget of an account's password checks: `burst` at once, then one per `interval`, in
/// order of arrival (the generic cell rate algorithm, with turns handed out ahead).
#[derive(Clone, Copy, Debug, Default)]
struct Lane {
    /// When the budget is next fully spent (theoretical arrival time).
    tat_ms: i64,
}

enum Turn {
    Now,
    At(i64),
    Full(i64),
}

impl Lane {
    fn take(&mut self, now: i64, burst: i64, interval: i64) -> Turn {
        let tat = self.tat_ms.max(now);
        let slack = (burst - 1) * interval;
        if tat - now <= slack {
            self.tat_ms = tat + interval;
            return Turn::Now;
        }
        let turn = tat - slack;
        if turn - now > MAX_TURN_AHEAD_MS {
            return Turn::Full(tat - slack - MAX_TURN_AHEAD_MS);
        }
        self.tat_ms = tat + interval;
        Turn::At(turn)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Lanes {
    fresh: Lane,
    tried: Lane,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

impl Bucket {
    fn full(burst: f64, now: i64) -> Bucket {
        Bucket {
            tokens: burst,
            last_ms: now,
        }
    }

    fn refill(&mut self, now: i64, burst: f64, per_ms: f64) {
        self.tokens = (self.tokens + (now - self.last_ms).max(0) as f64 * per_ms).min(burst);
        self.last_ms = now;
    }
}

/// Failed and throttled logins counted for the audit log.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    failed: u64,
    throttled: u64,
}

impl Counts {
    fn add(&mut self, failed: bool) {
        if failed {
            self.failed += 1;
        } else {
            self.throttled += 1;
        }
    }

    fn merge(&mut self, other: Counts) {
        self.failed += other.failed;
        self.throttled += other.throttled;
    }

    fn is_empty(&self) -> bool {
        self.failed + self.throttled == 0
    }
}

type AuditKey = (String, IpAddr, Via);

#[derive(Clone, Copy, Debug)]
struct Window {
    opened_ms: i64,
    /// Counted since the window's first entry, not written yet.
    counts: Counts,
}

struct AuditState {
    windows: HashMap<AuditKey, Window>,
    /// Windows in the order they opened, to close them without a scan.
    order: VecDeque<(i64, AuditKey)>,
    budget: Bucket,
    /// Counted, not itemised (the budget or the table was full), since `overflow_since_ms`.
    overflow: Counts,
    overflow_since_ms: i64,
    flushing: bool,
}

/// What to write to the audit log about failed and throttled logins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginNote {
    /// The account as given (write it only if the account exists), the address and the way
    /// in; `None` for the count of attempts not itemised.
    pub attempt: Option<(String, IpAddr, Via)>,
    pub failed: u64,
    pub throttled: u64,
    /// Since when the counts run.
    pub since_ms: i64,
}

struct State {
    pairs: HashMap<(String, PairKey), Pair>,
    accounts: HashMap<String, Lanes>,
    /// When each (account, address) took its turn of the new addresses' budget.
    tried: HashMap<(String, IpAddr), i64>,
    sources: HashMap<IpAddr, Bucket>,
    /// Last successful login per (account, address).
    known_good: HashMap<(String, IpAddr), i64>,
    audit: AuditState,
}

/// Why an attempt may not run now, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// The login throttle of one server process.
pub struct LoginThrottle {
    state: Mutex<State>,
    /// Signs known-browser cookies; new with every process, so they are forgotten on restart
    /// like the rest of the throttle's memory.
    cookie_key: [u8; 32],
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let mut cookie_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut cookie_key);
        LoginThrottle {
            state: Mutex::new(State {
                pairs: HashMap::new(),
                accounts: HashMap::new(),
                tried: HashMap::new(),
                sources: HashMap::new(),
                known_good: HashMap::new(),
                audit: AuditState {
                    windows: HashMap::new(),
                    order: VecDeque::new(),
                    budget: Bucket::full(AUDIT_BURST, 0),
                    overflow: Counts::default(),
                    overflow_since_ms: 0,
                    flushing: false,
                },
            }),
            cookie_key,
        }
    }
}

/// An attempt allowed to run; report its outcome with [`Attempt::finish`]. Dropped without an
/// outcome (the client went away, the server was busy), it only frees its place.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    username: String,
    key: PairKey,
    source: IpAddr,
    finished: bool,
}

impl Attempt {
    /// Records how the attempt ended. A success clears its pair's failures and makes its
    /// address known good for the account; a failure counts against the pair.
    pub fn finish(mut self, succeeded: bool, now: i64) {
        self.finished = true;
        self.throttle
            .record(&self.username, self.key, self.source, succeeded, now);
    }
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self
            .throttle
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(pair) = state.pairs.get_mut(&(self.username.clone(), self.key)) {
            pair.in_progress = false;
        }
    }
}

fn retry(until: i64, now: i64) -> Throttled {
    Throttled {
        retry_after_secs: ((until - now).max(1) as u64).div_ceil(1000),
    }
}

/// Forgets the stalest entries of a full table.
fn bound<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, age: impl Fn(&V) -> i64) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    let mut ages: Vec<(i64, K)> = map.iter().map(|(k, v)| (age(v), k.clone())).collect();
    ages.sort_by_key(|(a, _)| *a);
    for (_, key) in ages.into_iter().take(MAX_ENTRIES / 10) {
        map.remove(&key);
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl LoginThrottle {
    /// Asks to run one attempt for `username` from `source` at `now` (unix ms).
    pub fn begin(
        self: &Arc<Self>,
        username: &str,
        source: IpAddr,
        client: Client,
        now: i64,
    ) -> Result<Attempt, Throttled> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = match client {
            Client::Address => PairKey::Address(source),
            Client::Known(id) => PairKey::Client(id),
        };
        let pair_key = (username.to_owned(), key);
        let mut pair = state.pairs.get(&pair_key).copied().unwrap_or_default();
        if pair.in_progress {
            return Err(Throttled {
                retry_after_secs: 1,
            });
        }
        // A reserved turn was paid for (from the address's bucket too) when it was given.
        let mut paid = false;
        if let Some(turn) = pair.turn_ms {
            if now < turn {
                return Err(retry(turn, now));
            }
            paid = now <= turn + TURN_GRACE_MS;
            pair.turn_ms = None;
        }
        bound(&mut state.sources, |b| b.last_ms);
        let bucket = state
            .sources
            .entry(source)
            .or_insert(Bucket::full(BURST, now));
        bucket.refill(now, BURST, REFILL_PER_MS);
        if !paid && bucket.tokens < 1.0 {
            return Err(retry(
                now + ((1.0 - bucket.tokens) / REFILL_PER_MS) as i64,
                now,
            ));
        }
        let until = pair.locked_until(now);
        if until > now {
            return Err(retry(until, now));
        }
        let known_good = state
            .known_good
            .get(&(username.to_owned(), source))
            .is_some_and(|at| now - at < KNOWN_GOOD_MS);
        if !paid && client == Client::Address && !known_good {
            // The account's budget: an address new to the account draws on its own lane, so
            // that guesses from addresses that already tried cannot use up the owner's turn.
            let tried_key = (username.to_owned(), source);
            let fresh = state
                .tried
                .get(&tried_key)
                .is_none_or(|at| now - at >= FRESH_MEMORY_MS);
            bound(&mut state.accounts, |l| l.fresh.tat_ms.max(l.tried.tat_ms));
            let lanes = state.accounts.entry(username.to_owned()).or_default();
            let turn = if fresh {
                lanes.fresh.take(now, FRESH_BURST, FRESH_INTERVAL_MS)
            } else {
                lanes.tried.take(now, TRIED_BURST, TRIED_INTERVAL_MS)
            };
            if let Turn::Full(at) = turn {
                return Err(retry(at, now));
            }
            if fresh {
                bound(&mut state.tried, |at| *at);
                state.tried.insert(tried_key, now);
            }
            if let Turn::At(at) = turn {
                if let Some(bucket) = state.sources.get_mut(&source) {
                    bucket.tokens -= 1.0;
                }
                pair.turn_ms = Some(at);
                bound(&mut state.pairs, Pair::stale_ms);
                state.pairs.insert(pair_key, pair);
                return Err(retry(at, now));
            }
        }
        if !paid {
            if let Some(bucket) = state.sources.get_mut(&source) {
                bucket.tokens -= 1.0;
            }
        }
        pair.in_progress = true;
        bound(&mut state.pairs, Pair::stale_ms);
        state.pairs.insert(pair_key, pair);
        Ok(Attempt {
            throttle: self.clone(),
            username: username.to_owned(),
            key,
            source,
            finished: false,
        })
    }

    /// Whether `source` has an attempt left in its bucket now (nothing is taken): lets callers
    /// skip work for an address that will be throttled anyway.
    pub fn source_has_room(&self, source: IpAddr, now: i64) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.sources.get(&source).is_none_or(|b| {
            let mut b = *b;
            b.refill(now, BURST, REFILL_PER_MS);
            b.tokens >= 1.0
        })
    }

    fn record(&self, username: &str, key: PairKey, source: IpAddr, succeeded: bool, now: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let pair_key = (username.to_owned(), key);
        if succeeded {
            state.pairs.remove(&pair_key);
            let address = (username.to_owned(), source);
            state.tried.remove(&address);
            bound(&mut state.known_good, |at| *at);
            state.known_good.insert(address, now);
            return;
        }
        let pair = state.pairs.entry(pair_key).or_default();
        pair.in_progress = false;
        pair.fail(now);
    }

    /// A cookie that makes this browser known for `username` at its next logins.
    pub fn known_browser_cookie(&self, username: &str, now: i64) -> String {
        let mut nonce = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let expires = (now + KNOWN_BROWSER_MS) / 1000;
        let nonce = hex(&nonce);
        let mac = hmac(
            &self.cookie_key,
            cookie_message(username, expires, &nonce).as_bytes(),
        );
        format!("{expires}.{nonce}.{}", hex(&mac))
    }

    /// The client a known-browser cookie names, if it is this process's, for `username` and
    /// not expired.
    pub fn known_browser(&self, username: &str, cookie: &str, now: i64) -> Option<Client> {
        let mut parts = cookie.split('.');
        let (expires, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expires: i64 = expires.parse().ok()?;
        let id = unhex::<16>(nonce)?;
        let given = unhex::<32>(mac)?;
        let expected = hmac(
            &self.cookie_key,
            cookie_message(username, expires, nonce).as_bytes(),
        );
        let same = given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        (same && expires.saturating_mul(1000) > now).then_some(Client::Known(id))
    }

    /// Counts a failed (`failed`) or throttled attempt for the audit log; returns what to write
    /// now. The first of a window is written at once; the rest are counted and come back from
    /// [`LoginThrottle::flush`] when the window ends.
    pub fn note(
        &self,
        via: Via,
        username: &str,
        source: IpAddr,
        failed: bool,
        now: i64,
    ) -> Vec<LoginNote> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let audit = &mut state.audit;
        let mut out = audit.close_due(now);
        let key = (username.to_owned(), source, via);
        if let Some(window) = audit.windows.get_mut(&key) {
            window.counts.add(failed);
            return out;
        }
        if audit.windows.len() >= MAX_ENTRIES {
            audit.close_oldest(now);
        }
        audit.windows.insert(
            key.clone(),
            Window {
                opened_ms: now,
                counts: Counts::default(),
            },
        );
        audit.order.push_back((now, key.clone()));
        let mut counts = Counts::default();
        counts.add(failed);
        audit.emit(Some(key), counts, now, now, &mut out);
        out
    }

    /// Whether a task should start to flush the audit windows as they end (none is running).
    pub fn start_flushing(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let audit = &mut state.audit;
        let pending = !audit.windows.is_empty() || !audit.overflow.is_empty();
        let start = pending && !audit.flushing;
        audit.flushing |= start;
        start
    }

    /// The audit entries of the windows that ended by `now`, and whether windows remain to be
    /// flushed later (when not, the flushing task ends).
    pub fn flush(&self, now: i64) -> (Vec<LoginNote>, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let audit = &mut state.audit;
        let out = audit.close_due(now);
        let more = !(audit.windows.is_empty() && audit.overflow.is_empty());
        audit.flushing = more;
        (out, more)
    }

    /// Entries held, for tests and metrics.
    pub fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pairs.len()
            + state.accounts.len()
            + state.tried.len()
            + state.sources.len()
            + state.known_good.len()
            + state.audit.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cookie_message(username: &str, expires: i64, nonce: &str) -> String {
    format!("fieldsync known browser\0{username}\0{expires}\0{nonce}")
}

impl AuditState {
    /// Queues an entry if the budget allows, else counts it as not itemised.
    fn emit(
        &mut self,
        attempt: Option<AuditKey>,
        counts: Counts,
        since_ms: i64,
        now: i64,
        out: &mut Vec<LoginNote>,
    ) {
        self.budget.refill(now, AUDIT_BURST, AUDIT_REFILL_PER_MS);
        if self.budget.tokens >= 1.0 {
            self.budget.tokens -= 1.0;
            out.push(LoginNote {
                attempt,
                failed: counts.failed,
                throttled: counts.throttled,
                since_ms,
            });
        } else {
            if self.overflow.is_empty() {
                self.overflow_since_ms = since_ms;
            }
            self.overflow.merge(counts);
        }
    }

    fn close(&mut self, key: AuditKey, now: i64, out: &mut Vec<LoginNote>) {
        if let Some(window) = self.windows.remove(&key) {
            if !window.counts.is_empty() {
                self.emit(Some(key), window.counts, window.opened_ms, now, out);
            }
        }
    }

    /// Closes the windows that ended, then writes what was not itemised if the budget allows.
    fn close_due(&mut self, now: i64) -> Vec<LoginNote> {
        let mut out = Vec::new();
        while let Some((opened, _)) = self.order.front() {
            if now - opened < AUDIT_WINDOW_MS {
                break;
            }
            if let Some((opened, key)) = self.order.pop_front() {
                if self
                    .windows
                    .get(&key)
                    .is_some_and(|w| w.opened_ms == opened)
                {
                    self.close(key, now, &mut out);
                }
            }
        }
        if !self.overflow.is_empty() {
            self.budget.refill(now, AUDIT_BURST, AUDIT_REFILL_PER_MS);
            if self.budget.tokens >= 1.0 {
                self.budget.tokens -= 1.0;
                out.push(LoginNote {
                    attempt: None,
                    failed: self.overflow.failed,
                    throttled: self.overflow.throttled,
                    since_ms: self.overflow_since_ms,
                });
                self.overflow = Counts::default();
            }
        }
        out
    }

    /// Makes room in a full table: the oldest window's counts go to what is not itemised.
    fn close_oldest(&mut self, now: i64) {
        while let Some((opened, key)) = self.order.pop_front() {
            if let Some(window) = self.windows.get(&key).filter(|w| w.opened_ms == opened) {
                if self.overflow.is_empty() {
                    self.overflow_since_ms = window.opened_ms.min(now);
                }
                self.overflow.merge(window.counts);
                self.windows.remove(&key);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const PHONE: Client = Client::Known([7; 16]);

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a01_0000 + i))
    }

    fn fail(t: &Arc<LoginThrottle>, user: &str, ip: IpAddr, now: i64) -> Result<(), Throttled> {
        t.begin(user, ip, Client::Address, now)?.finish(false, now);
        Ok(())
    }

    #[test]
    fn failures_from_one_address_do_not_lock_out_another() {
        let t = Arc::new(LoginThrottle::default());
        for _ in 0..3 {
            fail(&t, "lan", A, 0).unwrap();
        }
        let locked = t.begin("lan", A, Client::Address, 0).unwrap_err();
        assert_eq!(locked.retry_after_secs, 1);
        let attempt = t
            .begin("lan", B, Client::Address, 0)
            .expect("the real user's address is not locked");
        attempt.finish(true, 0);
    }

    #[test]
    fn delays_double_and_decay() {
        let t = Arc::new(LoginThrottle::default());
        let mut now = 0;
        for _ in 0..6 {
            loop {
                match t.begin("lan", A, PHONE, now) {
                    Ok(a) => break a.finish(false, now),
                    Err(th) => now += th.retry_after_secs as i64 * 1000,
                }
            }
        }
        let wait = t.begin("lan", A, PHONE, now).unwrap_err().retry_after_secs;
        assert!(wait >= 4, "{wait}");
        // An hour later most of it has decayed.
        assert!(t.begin("lan", A, PHONE, now + 3_600_000).is_ok());
    }

    #[test]
    fn concurrent_attempts_of_one_pair_cannot_slip_past() {
        let t = Arc::new(LoginThrottle::default());
        let first = t.begin("lan", A, Client::Address, 0).unwrap();
        assert!(
            t.begin("lan", A, Client::Address, 0).is_err(),
            "a second one waits"
        );
        first.finish(false, 0);
        let second = t.begin("lan", A, Client::Address, 0).unwrap();
        drop(second);
        assert!(
            t.begin("lan", A, Client::Address, 0).is_ok(),
            "an abandoned attempt frees its place"
        );
    }

    /// Plays a trickle of guesses from `addresses` for `ms`, each address trying every
    /// `every_ms` (when its turn comes, if it has one); the checks it got.
    fn trickle(t: &Arc<LoginThrottle>, addresses: u32, from: i64, ms: i64, every_ms: i64) -> u32 {
        let mut checked = 0;
        let mut now = from;
        while now < from + ms {
            for a in 0..addresses {
                if let Ok(attempt) = t.begin("lan", ip(a), Client::Address, now + i64::from(a)) {
                    attempt.finish(false, now + i64::from(a));
                    checked += 1;
                }
            }
            now += every_ms;
        }
        checked
    }

    #[test]
    fn a_trickle_from_many_addresses_cannot_keep_the_owner_out_of_a_new_address() {
        let t = Arc::new(LoginThrottle::default());
        // The reproduced attack: 10 addresses, one guess each every ~43 s, for an hour.
        let checked = trickle(&t, 10, 0, 3_600_000, 43_000);
        // The account's budget: both bursts, an hour of the second lane, one new-address turn
        // per address.
        assert!(checked <= 10 + 10 + 30 + 1, "{checked} checks");
        let now = 3_600_000;
        // The owner, from an address new to the account, is let in at once.
        t.begin("lan", B, Client::Address, now)
            .expect("a new address has its own budget")
            .finish(true, now);
        // And from a phone enrolled before, whatever the account's budget.
        t.begin("lan", ip(99), PHONE, now)
            .unwrap()
            .finish(true, now);
    }

    #[test]
    fn a_throttled_attempt_gets_a_turn_nobody_can_take() {
        let t = Arc::new(LoginThrottle::default());
        // New addresses use up the account's budget for new addresses.
        for a in 0..FRESH_BURST as u32 {
            fail(&t, "lan", ip(a), 0).unwrap();
        }
        let wait = t.begin("lan", B, Client::Address, 0).unwrap_err();
        assert_eq!(wait.retry_after_secs, 20);
        // More new addresses queue behind B.
        let later = t.begin("lan", ip(50), Client::Address, 1_000).unwrap_err();
        assert_eq!(later.retry_after_secs, 39);
        assert!(
            t.begin("lan", B, Client::Address, 10_000).is_err(),
            "too early"
        );
        assert!(
            t.begin("lan", ip(51), Client::Address, 20_000).is_err(),
            "B's turn is B's"
        );
        t.begin("lan", B, Client::Address, 20_000)
            .expect("B's turn")
            .finish(true, 20_000);
        // A turn not taken within its grace lapses (and the address is no longer new).
        let lapsed = 20_000 + 2 * TURN_GRACE_MS;
        assert!(t.begin("lan", ip(50), Client::Address, lapsed).is_ok());
    }

    #[test]
    fn the_account_budget_bounds_guesses_from_any_number_of_addresses() {
        let t = Arc::new(LoginThrottle::default());
        // A new address for every guess, as fast as the throttle allows, for a day.
        let (mut checked, mut now, mut next) = (0, 0, 0u32);
        while now < 24 * 3_600_000 {
            for _ in 0..5 {
                if let Ok(a) = t.begin("lan", ip(next), Client::Address, now) {
                    a.finish(false, now);
                    checked += 1;
                }
                next += 1;
            }
            now += 1_000;
        }
        let bound = FRESH_BURST + 24 * 3_600_000 / FRESH_INTERVAL_MS;
        assert!(checked <= bound, "{checked} > {bound}");
    }

    #[test]
    fn an_address_the_user_logged_in_from_is_not_held_to_the_account_budget() {
        let t = Arc::new(LoginThrottle::default());
        t.begin("lan", B, Client::Address, 0)
            .unwrap()
            .finish(true, 0);
        for i in 0..40 {
            let _ = fail(&t, "lan", ip(i), 1_000);
            let _ = fail(&t, "lan", ip(i), 1_001);
        }
        assert!(
            t.begin("lan", A, Client::Address, 2_000).is_err(),
            "a new address waits its turn"
        );
        t.begin("lan", B, Client::Address, 2_000)
            .expect("the user's own address is let through")
            .finish(true, 2_000);
        // A month later the address is no longer known good: it waits its turn like others.
        let later = KNOWN_GOOD_MS + 10_000;
        for i in 100..140 {
            let _ = fail(&t, "lan", ip(i), later);
        }
        for i in 0..40 {
            let _ = fail(&t, "lan", ip(i), later);
        }
        assert!(t.begin("lan", B, Client::Address, later).is_err());
    }

    #[test]
    fn a_known_client_is_held_to_its_own_count_only() {
        let t = Arc::new(LoginThrottle::default());
        let _ = trickle(&t, 40, 0, 600_000, 1_000);
        t.begin("lan", A, PHONE, 600_000)
            .expect("a phone enrolled before")
            .finish(false, 600_000);
        for _ in 0..3 {
            let _ = t
                .begin("lan", A, PHONE, 600_000)
                .map(|a| a.finish(false, 600_000));
        }
        assert!(
            t.begin("lan", A, PHONE, 600_000).is_err(),
            "its own failures slow it down"
        );
    }

    #[test]
    fn known_browser_cookies_are_bound_to_the_account_and_expire() {
        let t = LoginThrottle::default();
        let cookie = t.known_browser_cookie("lan", 0);
        let Some(Client::Known(id)) = t.known_browser("lan", &cookie, 1_000) else {
            panic!("{cookie}")
        };
        assert_eq!(t.known_browser("hoa", &cookie, 1_000), None);
        assert_eq!(
            t.known_browser("lan", &cookie, KNOWN_BROWSER_MS + 1_000),
            None
        );
        let other = LoginThrottle::default();
        assert_eq!(other.known_browser("lan", &cookie, 1_000), None);
        let mut forged = cookie.clone();
        forged.replace_range(0..1, "9");
        assert_eq!(t.known_browser("lan", &forged, 1_000), None);
        assert_eq!(t.known_browser("lan", "garbage", 1_000), None);
        assert_ne!(
            t.known_browser("lan", &t.known_browser_cookie("lan", 0), 1_000),
            Some(Client::Known(id))
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 has a 4-byte key; ours are 32 bytes, zero-padded like HMAC pads them.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex(&hmac(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn one_address_gets_a_burst_then_a_trickle() {
        let t = Arc::new(LoginThrottle::default());
        let mut allowed = 0;
        for i in 0..100 {
            if let Ok(a) = t.begin(&format!("user{i}"), A, Client::Address, 0) {
                a.finish(false, 0);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
        assert!(
            t.begin("other", A, Client::Address, 3_000).is_ok(),
            "one more every 3 s"
        );
    }

    #[test]
    fn failed_logins_make_few_audit_entries_and_none_is_lost() {
        let t = LoginThrottle::default();
        let mut notes = Vec::new();
        // 100 failures and 300 throttled attempts from one address in 30 minutes.
        for i in 0..400 {
            let now = i * 4_500;
            notes.extend(t.note(Via::Enrol, "lan", A, i % 4 == 0, now));
        }
        let (rest, more) = t.flush(400 * 4_500 + AUDIT_WINDOW_MS);
        notes.extend(rest);
        assert!(!more);
        assert!(notes.len() <= 2 * 3 + 2, "{} entries", notes.len());
        let failed: u64 = notes.iter().map(|n| n.failed).sum();
        let throttled: u64 = notes.iter().map(|n| n.throttled).sum();
        assert_eq!((failed, throttled), (100, 300));
        assert!(notes
            .iter()
            .all(|n| n.attempt == Some(("lan".into(), A, Via::Enrol))));
    }

    #[test]
    fn a_flood_of_failed_logins_is_counted_not_itemised() {
        let t = LoginThrottle::default();
        let mut notes = Vec::new();
        // 10,000 names from 10,000 addresses in ten seconds.
        for i in 0..10_000u32 {
            notes.extend(t.note(Via::Page, &format!("u{i}"), ip(i), true, i64::from(i)));
        }
        assert!(notes.len() <= AUDIT_BURST as usize, "{}", notes.len());
        let mut now = 10_000;
        let mut more = true;
        while more {
            now += 60_000;
            let (rest, m) = t.flush(now);
            notes.extend(rest);
            more = m;
        }
        let failed: u64 = notes.iter().map(|n| n.failed).sum();
        assert_eq!(failed, 10_000);
        // At most the burst plus one entry per 10 s while it lasted.
        assert!(
            notes.len() as i64 <= AUDIT_BURST as i64 + now / 10_000 + 1,
            "{}",
            notes.len()
        );
        assert!(notes.iter().any(|n| n.attempt.is_none()));
    }

    #[test]
    fn the_tables_stay_bounded() {
        let t = Arc::new(LoginThrottle::default());
        for i in 0..(MAX_ENTRIES as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = fail(&t, &format!("u{i}"), ip, i as i64);
            let _ = t.note(Via::Enrol, &format!("u{i}"), ip, true, i as i64);
        }
        for i in 0..(MAX_ENTRIES as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            if let Ok(a) = t.begin(&format!("v{i}"), ip, Client::Address, 10_000_000 + i as i64) {
                a.finish(true, 10_000_000 + i as i64);
            }
        }
        assert!(t.len() <= 6 * MAX_ENTRIES, "{}", t.len());
    }
}
