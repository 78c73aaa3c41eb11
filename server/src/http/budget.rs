//! What one account may make the sync endpoint do: bytes of changes pulled and changes pushed,
//! each a token bucket per account (a burst, then a rate), and how often a cursor of another
//! database may start a device over. Budgets are per account, not per device: an account can
//! enrol as many devices as it likes, so a per-device budget would be no bound at all, while
//! an officer's one or two phones stay well within one account's share.

use super::error::ApiError;
use crate::scope::{Cursor, Presented};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

const MIB: f64 = 1024.0 * 1024.0;
/// Change bytes an account may pull at once: a fresh phone of a 22,000-record commune (about
/// 7.6 MB) downloads without waiting, twice over.
pub const PULL_BURST_BYTES: f64 = 16.0 * MIB;
/// ...and then per minute: a province supervisor's fresh phone (a hundred such communes) takes
/// minutes, an account re-pulling in a loop gets a hundredth of what the server can send.
pub const PULL_BYTES_PER_MINUTE: f64 = 8.0 * MIB;
/// A request is admitted only while at least this much is left, and one refused is told to come
/// back when it is: so that a spent account makes one request per share, not a request for
/// every few bytes the rate earns.
const PULL_SHARE_BYTES: f64 = MIB;
/// Changes an account's devices may push at once: a week offline of a busy collector.
pub const PUSH_BURST_CHANGES: f64 = 2_000.0;
/// ...and then per minute: a phone pushing back 10,000 changes after a restore waits about
/// 13 minutes; a flood gets 10 a second instead of a thousand.
pub const PUSH_CHANGES_PER_MINUTE: f64 = 600.0;
const PUSH_SHARE_CHANGES: f64 = 100.0;
/// A device that has not yet synced with this database may start over from a foreign cursor
/// again (its first answer was lost) after this long. What each start-over may pull is bounded
/// by the account's pull budget; this bounds how often.
pub const START_OVER_SPACING: Duration = Duration::from_secs(10);
/// Accounts and devices remembered; past this the table is cleared (which only gives back
/// budgets and at most one start-over per device).
const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// A token bucket per account.
struct Buckets {
    burst: f64,
    per_sec: f64,
    /// The least level at which a request is admitted.
    share: f64,
    accounts: Mutex<HashMap<i64, Bucket>>,
}

impl Buckets {
    fn new(burst: f64, per_minute: f64, share: f64) -> Buckets {
        Buckets {
            burst,
            per_sec: per_minute / 60.0,
            share: share.clamp(1.0, burst),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let earned = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.level = (bucket.level + earned).min(self.burst);
        bucket.at = now;
    }

    /// What `account` may spend now (at least its share), or how many seconds until it may
    /// again.
    fn room(&self, account: i64, now: Instant) -> Result<u64, u64> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if accounts.len() >= MAX_TRACKED && !accounts.contains_key(&account) {
            // Full buckets are the same as none.
            accounts.retain(|_, b| {
                self.refill(b, now);
                b.level < self.burst
            });
            if accounts.len() >= MAX_TRACKED {
                accounts.clear();
            }
        }
        let bucket = accounts.entry(account).or_insert(Bucket {
            level: self.burst,
            at: now,
        });
        self.refill(bucket, now);
        if bucket.level >= self.share {
            return Ok(bucket.level as u64);
        }
        let wait = (self.share - bucket.level) / self.per_sec;
        Err(wait.ceil().max(1.0) as u64)
    }

    /// Takes `amount` from `account` (the level may go below zero: a page ends after the
    /// change that crosses its budget).
    fn spend(&self, account: i64, amount: f64, now: Instant) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = accounts.get_mut(&account) {
            self.refill(bucket, now);
            bucket.level -= amount;
        }
    }
}

/// What the server knows of a device's cursors since it started (a restore always means a
/// restart, so this starts empty after every restore).
#[derive(Clone, Copy, Debug, Default)]
struct CursorsSeen {
    /// It sent a cursor of this database: it has applied a page of it.
    current: bool,
    /// When a cursor of another database last made it start over.
    started_over: Option<Instant>,
}

/// The sync budgets of one server process.
pub struct SyncBudgets {
    pull: Buckets,
    push: Buckets,
    cursors: Mutex<HashMap<Uuid, CursorsSeen>>,
}

impl Default for SyncBudgets {
    fn default() -> Self {
        SyncBudgets {
            pull: Buckets::new(PULL_BURST_BYTES, PULL_BYTES_PER_MINUTE, PULL_SHARE_BYTES),
            push: Buckets::new(
                PUSH_BURST_CHANGES,
                PUSH_CHANGES_PER_MINUTE,
                PUSH_SHARE_CHANGES,
            ),
            cursors: Mutex::new(HashMap::new()),
        }
    }
}

fn busy(retry_after_secs: u64, message: &str) -> ApiError {
    ApiError::Busy {
        retry_after_secs,
        message: message.to_owned(),
    }
}

impl SyncBudgets {
    /// Change bytes `account` may pull now, or 429.
    pub fn pull_room(&self, account: i64, now: Instant) -> Result<u64, ApiError> {
        self.pull.room(account, now).map_err(|secs| {
            busy(
                secs,
                &format!(
                    "this account has pulled its share for now ({} MiB at once, {} MiB a minute); retry later",
                    PULL_BURST_BYTES / MIB,
                    PULL_BYTES_PER_MINUTE / MIB
                ),
            )
        })
    }

    pub fn spend_pull(&self, account: i64, bytes: usize, now: Instant) {
        self.pull.spend(account, bytes as f64, now);
    }

    /// Changes `account` may push now, or 429.
    pub fn push_room(&self, account: i64, now: Instant) -> Result<usize, ApiError> {
        self.push
            .room(account, now)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(|secs| {
                busy(
                    secs,
                    &format!(
                        "this account has pushed its share for now ({PUSH_BURST_CHANGES} changes at once, {PUSH_CHANGES_PER_MINUTE} a minute); your changes are safe on the phone, retry later"
                    ),
                )
            })
    }

    pub fn spend_push(&self, account: i64, changes: usize, now: Instant) {
        self.push.spend(account, changes as f64, now);
    }

    /// The cursor a device's pull starts from. A cursor of another database (the device last
    /// synced before a restore) starts it over from the beginning, once: again only while the
    /// device has not yet sent a cursor of this database (its answer was lost), at most once
    /// every [`START_OVER_SPACING`] (429 meanwhile); after it has, never (400).
    pub fn cursor(
        &self,
        device: Uuid,
        presented: Presented,
        now: Instant,
    ) -> Result<Cursor, ApiError> {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        if cursors.len() >= MAX_TRACKED && !cursors.contains_key(&device) {
            cursors.clear();
        }
        match presented {
            Presented::Empty => Ok(Cursor::default()),
            Presented::Current(cursor) => {
                cursors.entry(device).or_default().current = true;
                Ok(cursor)
            }
            Presented::Foreign => {
                let seen = cursors.entry(device).or_default();
                if seen.current {
                    return Err(ApiError::BadRequest(
                        "cursor of another database: this device has already synced with this one since its restore, and starts over only once (enrol the phone again if its data was rolled back)".into(),
                    ));
                }
                if let Some(next) = seen.started_over.map(|at| at + START_OVER_SPACING) {
                    if now < next {
                        let secs = (next - now).as_secs_f64().ceil().max(1.0) as u64;
                        return Err(busy(
                            secs,
                            &format!(
                                "cursor of another database: this device started over less than {} s ago; retry later",
                                START_OVER_SPACING.as_secs()
                            ),
                        ));
                    }
                }
                seen.started_over = Some(now);
                Ok(Cursor::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn retry(e: ApiError) -> u64 {
        match e {
            ApiError::Busy {
                retry_after_secs, ..
            } => retry_after_secs,
            other => panic!("not 429: {other:?}"),
        }
    }

    #[test]
    fn an_account_pulls_its_burst_then_its_rate() {
        let budgets = SyncBudgets::default();
        let t0 = Instant::now();
        let first = budgets.pull_room(1, t0).unwrap();
        assert_eq!(first as f64, PULL_BURST_BYTES);
        // A fresh phone of a big commune: 7.6 MB in 4 MiB pages, no waiting.
        let mut pulled = 0;
        while pulled < 7_600_000 {
            let room = budgets.pull_room(1, t0).unwrap();
            let page = room.min(4 << 20) as usize;
            budgets.spend_pull(1, page, t0);
            pulled += page;
        }
        // Less than a share left: refused until a share is back.
        assert!(budgets.pull_room(1, t0).is_ok());
        budgets.spend_pull(
            1,
            (PULL_BURST_BYTES - pulled as f64 - MIB / 2.0) as usize,
            t0,
        );
        assert_eq!(retry(budgets.pull_room(1, t0).unwrap_err()), 4);
        // Spent (a page may overshoot): refused until a share is back.
        budgets.spend_pull(1, 20 << 20, t0);
        let wait = retry(budgets.pull_room(1, t0).unwrap_err());
        let debt = 20.0 * MIB - MIB / 2.0;
        let expected = ((debt + PULL_SHARE_BYTES) / (PULL_BYTES_PER_MINUTE / 60.0)).ceil() as u64;
        assert_eq!(wait, expected);
        let later = t0 + Duration::from_secs(wait);
        assert!(budgets.pull_room(1, later).unwrap() as f64 >= PULL_SHARE_BYTES - 1.0);
        // Another account is not affected.
        assert_eq!(budgets.pull_room(2, t0).unwrap() as f64, PULL_BURST_BYTES);
        // A minute later, one minute's worth more; never above the burst.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(
            budgets.pull_room(1, much_later).unwrap() as f64,
            PULL_BURST_BYTES
        );
    }

    #[test]
    fn pushes_wait_once_the_burst_is_spent() {
        let budgets = SyncBudgets::default();
        let t0 = Instant::now();
        assert_eq!(budgets.push_room(7, t0).unwrap(), 2_000);
        budgets.spend_push(7, 2_000, t0);
        assert_eq!(retry(budgets.push_room(7, t0).unwrap_err()), 10);
        assert_eq!(
            budgets.push_room(7, t0 + Duration::from_secs(10)).unwrap(),
            100
        );
        // 10,000 changes after a restore: about a quarter of an hour at the rate.
        let minutes = (10_000.0 - PUSH_BURST_CHANGES) / PUSH_CHANGES_PER_MINUTE;
        assert!((13.0..15.0).contains(&minutes));
    }

    #[test]
    fn a_foreign_cursor_starts_a_device_over_once() {
        let budgets = SyncBudgets::default();
        let (phone, other) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        let current = Cursor(BTreeMap::from([("62.610.01".to_owned(), 9)]));
        assert_eq!(
            budgets.cursor(phone, Presented::Foreign, t0).unwrap(),
            Cursor::default(),
            "the first time: from the beginning"
        );
        // The answer was lost: the same cursor again soon is told to wait, later it is served.
        let soon = t0 + Duration::from_secs(5);
        assert_eq!(
            retry(budgets.cursor(phone, Presented::Foreign, soon).unwrap_err()),
            5
        );
        let later = t0 + START_OVER_SPACING;
        assert!(budgets.cursor(phone, Presented::Foreign, later).is_ok());
        // Once the device has sent a cursor of this database, a foreign one is refused.
        assert_eq!(
            budgets
                .cursor(phone, Presented::Current(current.clone()), later)
                .unwrap(),
            current
        );
        let refused = budgets
            .cursor(phone, Presented::Foreign, later + Duration::from_secs(3600))
            .unwrap_err();
        assert!(matches!(refused, ApiError::BadRequest(_)), "{refused:?}");
        // Other devices, and empty cursors, are not affected.
        assert!(budgets.cursor(other, Presented::Foreign, later).is_ok());
        assert_eq!(
            budgets.cursor(phone, Presented::Empty, later).unwrap(),
            Cursor::default()
        );
    }
}
