//! Login throttling, in memory and bounded. Failed attempts are counted per (account, source
//! address) and per account, with decay: an attacker guessing from one address slows down
//! quickly, one guessing from many addresses slows down later, and neither can keep the real
//! user, from their own address, locked out for more than a minute at a time; an address the
//! user has logged in from in the last month is not held to the account's count at all. Each
//! source
//! address also has a token bucket for attempts of any account, and only one attempt per
//! (account, address) runs at a time, so concurrent attempts cannot slip past a lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Failures per (account, address) that cost nothing; each one after doubles the wait.
const FREE_FAILURES: f64 = 3.0;
/// Failures per account, from all addresses together, before the account slows down.
const FREE_ACCOUNT_FAILURES: f64 = 20.0;
/// Longest wait imposed per (account, address), and per account.
const MAX_PAIR_DELAY_MS: i64 = 300_000;
const MAX_ACCOUNT_DELAY_MS: i64 = 60_000;
/// Failure counts halve every this many milliseconds without a new failure.
const HALF_LIFE_MS: f64 = 600_000.0;
/// Attempts a source address may make in a burst, and how fast it earns them back.
const BURST: f64 = 20.0;
const REFILL_PER_MS: f64 = 1.0 / 3_000.0;
/// How long an address a user logged in from stays known good for that user.
const KNOWN_GOOD_MS: i64 = 30 * 24 * 3_600_000;
/// Entries kept per table; past this the stalest are forgotten.
const MAX_ENTRIES: usize = 20_000;

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: f64,
    last_ms: i64,
    in_progress: bool,
}

impl Failures {
    fn decayed(&self, now: i64) -> f64 {
        let elapsed = (now - self.last_ms).max(0) as f64;
        self.count * 0.5f64.powf(elapsed / HALF_LIFE_MS)
    }

    /// Until when this entry refuses attempts.
    fn locked_until(&self, now: i64, free: f64, max_delay: i64) -> i64 {
        let count = self.decayed(now);
        if count < free {
            return 0;
        }
        let steps = (count - free).floor().min(20.0) as u32;
        self.last_ms + (1000i64 << steps).min(max_delay)
    }

    fn fail(&mut self, now: i64) {
        self.count = self.decayed(now) + 1.0;
        self.last_ms = now;
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, IpAddr), Failures>,
    accounts: HashMap<String, Failures>,
    sources: HashMap<IpAddr, Bucket>,
    /// Last successful login per (account, address).
    known_good: HashMap<(String, IpAddr), i64>,
}

/// Why an attempt may not run now, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// The login throttle of one server process.
#[derive(Default)]
pub struct LoginThrottle {
    state: Mutex<State>,
}

/// An attempt allowed to run; report its outcome with [`Attempt::finish`]. Dropped without an
/// outcome (the client went away, the server was busy), it only frees its place.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    username: String,
    source: IpAddr,
    finished: bool,
}

impl Attempt {
    /// Records how the attempt ended. A success clears its (account, address) failures; a
    /// failure counts against both the pair and the account.
    pub fn finish(mut self, succeeded: bool, now: i64) {
        self.finished = true;
        self.throttle
            .record(&self.username, self.source, succeeded, now);
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
        if let Some(pair) = state.pairs.get_mut(&(self.username.clone(), self.source)) {
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

impl LoginThrottle {
    /// Asks to run one attempt for `username` from `source` at `now` (unix ms).
    pub fn begin(
        self: &Arc<Self>,
        username: &str,
        source: IpAddr,
        now: i64,
    ) -> Result<Attempt, Throttled> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        bound(&mut state.sources, |b| b.last_ms);
        let bucket = state.sources.entry(source).or_insert(Bucket {
            tokens: BURST,
            last_ms: now,
        });
        bucket.tokens =
            (bucket.tokens + (now - bucket.last_ms).max(0) as f64 * REFILL_PER_MS).min(BURST);
        bucket.last_ms = now;
        if bucket.tokens < 1.0 {
            return Err(retry(
                now + ((1.0 - bucket.tokens) / REFILL_PER_MS) as i64,
                now,
            ));
        }
        let key = (username.to_owned(), source);
        // Failures spread over many addresses slow the account down, but not for the address
        // its user logged in from lately: that is most likely the user.
        let known_good = state
            .known_good
            .get(&key)
            .is_some_and(|at| now - at < KNOWN_GOOD_MS);
        let account = state.accounts.get(username).copied().unwrap_or_default();
        let until = account.locked_until(now, FREE_ACCOUNT_FAILURES, MAX_ACCOUNT_DELAY_MS);
        if until > now && !known_good {
            return Err(retry(until, now));
        }
        let pair = state.pairs.get(&key).copied().unwrap_or_default();
        if pair.in_progress {
            return Err(Throttled {
                retry_after_secs: 1,
            });
        }
        let until = pair.locked_until(now, FREE_FAILURES, MAX_PAIR_DELAY_MS);
        if until > now {
            return Err(retry(until, now));
        }
        if let Some(bucket) = state.sources.get_mut(&source) {
            bucket.tokens -= 1.0;
        }
        bound(&mut state.pairs, |f| f.last_ms);
        state.pairs.entry(key).or_insert(pair).in_progress = true;
        Ok(Attempt {
            throttle: self.clone(),
            username: username.to_owned(),
            source,
            finished: false,
        })
    }

    fn record(&self, username: &str, source: IpAddr, succeeded: bool, now: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (username.to_owned(), source);
        if succeeded {
            state.pairs.remove(&key);
            bound(&mut state.known_good, |at| *at);
            state.known_good.insert(key, now);
            return;
        }
        let pair = state.pairs.entry(key).or_default();
        pair.in_progress = false;
        pair.fail(now);
        bound(&mut state.accounts, |f| f.last_ms);
        state
            .accounts
            .entry(username.to_owned())
            .or_default()
            .fail(now);
    }

    /// Entries held, for tests and metrics.
    pub fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pairs.len() + state.accounts.len() + state.sources.len() + state.known_good.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn fail(t: &Arc<LoginThrottle>, user: &str, ip: IpAddr, now: i64) -> Result<(), Throttled> {
        t.begin(user, ip, now)?.finish(false, now);
        Ok(())
    }

    #[test]
    fn failures_from_one_address_do_not_lock_out_another() {
        let t = Arc::new(LoginThrottle::default());
        for _ in 0..3 {
            fail(&t, "lan", A, 0).unwrap();
        }
        let locked = t.begin("lan", A, 0).unwrap_err();
        assert_eq!(locked.retry_after_secs, 1);
        let attempt = t
            .begin("lan", B, 0)
            .expect("the real user's address is not locked");
        attempt.finish(true, 0);
    }

    #[test]
    fn delays_double_and_decay() {
        let t = Arc::new(LoginThrottle::default());
        let mut now = 0;
        for _ in 0..6 {
            loop {
                match fail(&t, "lan", A, now) {
                    Ok(()) => break,
                    Err(th) => now += th.retry_after_secs as i64 * 1000,
                }
            }
        }
        let wait = t.begin("lan", A, now).unwrap_err().retry_after_secs;
        assert!(wait >= 4, "{wait}");
        // An hour later most of it has decayed.
        assert!(t.begin("lan", A, now + 3_600_000).is_ok());
    }

    #[test]
    fn concurrent_attempts_of_one_pair_cannot_slip_past() {
        let t = Arc::new(LoginThrottle::default());
        let first = t.begin("lan", A, 0).unwrap();
        assert!(t.begin("lan", A, 0).is_err(), "a second one waits");
        first.finish(false, 0);
        let second = t.begin("lan", A, 0).unwrap();
        drop(second);
        assert!(
            t.begin("lan", A, 0).is_ok(),
            "an abandoned attempt frees its place"
        );
    }

    #[test]
    fn many_addresses_slow_an_account_down_but_only_for_a_minute() {
        let t = Arc::new(LoginThrottle::default());
        for i in 0..25u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, i));
            let _ = fail(&t, "lan", ip, 0);
        }
        let wait = t.begin("lan", B, 0).unwrap_err().retry_after_secs;
        assert!((1..=60).contains(&wait), "{wait}");
    }

    #[test]
    fn an_address_the_user_logged_in_from_is_not_held_to_the_account_count() {
        let t = Arc::new(LoginThrottle::default());
        t.begin("lan", B, 0).unwrap().finish(true, 0);
        for i in 0..25u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, i));
            let _ = fail(&t, "lan", ip, 1_000);
        }
        assert!(t.begin("lan", A, 1_000).is_err(), "a new address waits");
        t.begin("lan", B, 1_000)
            .expect("the user's own address is let through")
            .finish(true, 1_000);
        // A month later the address is no longer known good.
        for i in 0..25u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 2, 0, i));
            let _ = fail(&t, "lan", ip, KNOWN_GOOD_MS + 2_000);
        }
        assert!(t.begin("lan", B, KNOWN_GOOD_MS + 2_000).is_err());
    }

    #[test]
    fn one_address_gets_a_burst_then_a_trickle() {
        let t = Arc::new(LoginThrottle::default());
        let mut allowed = 0;
        for i in 0..100 {
            if let Ok(a) = t.begin(&format!("user{i}"), A, 0) {
                a.finish(false, 0);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
        assert!(t.begin("other", A, 3_000).is_ok(), "one more every 3 s");
    }

    #[test]
    fn the_tables_stay_bounded() {
        let t = Arc::new(LoginThrottle::default());
        for i in 0..(MAX_ENTRIES as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = fail(&t, &format!("u{i}"), ip, i as i64);
        }
        for i in 0..(MAX_ENTRIES as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            if let Ok(a) = t.begin(&format!("v{i}"), ip, 10_000_000 + i as i64) {
                a.finish(true, 10_000_000 + i as i64);
            }
        }
        assert!(t.len() <= 4 * MAX_ENTRIES, "{}", t.len());
    }
}
