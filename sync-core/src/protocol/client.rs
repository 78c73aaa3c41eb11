//! The phone's side of a sync, as pure steps over a [`Store`]: build a request, handle the
//! response. The caller moves the bytes (HTTP, a test harness, a Kotlin callback).
//!
//! Progress is written only after a response has been applied: the pulled changes and the new
//! cursor land in one store transaction, and acknowledged changes are marked in another, so a
//! connection cut at any byte resends at most the one batch that was in flight.

use super::messages::{ChangeEntry, NeedEntry, Rejection, SyncRequest, SyncResponse};
use super::{compress, decompress, MAX_BODY_BYTES};
use crate::error::Result;
use crate::store::Store;
use automerge::{ActorId, ChangeHash};
use std::collections::BTreeSet;
use uuid::Uuid;

const META_CURSOR: &str = "sync.cursor";
const META_NEED: &str = "sync.need";
const META_SERVER_ID: &str = "sync.server_id";
/// Set to a restored server's identity until the phone has pulled its whole log again.
const META_RELAY_AFTER: &str = "sync.relay_after";

/// Batch sizes: bytes of change data before compression, and changes per push.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub max_push_bytes: usize,
    pub max_pull_bytes: u64,
    /// The server takes at most 1,000 changes per request.
    pub max_push_changes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        // 64 KiB: about 8 s on a 64 kbit/s 2G link, short enough to finish between drops.
        ClientOptions {
            max_push_bytes: 64 * 1024,
            max_pull_bytes: 64 * 1024,
            max_push_changes: 500,
        }
    }
}

/// A request ready to send.
#[derive(Clone, Debug)]
pub struct SyncRequestBody {
    /// Gzip-compressed message: the HTTP request body.
    pub body: Vec<u8>,
    /// Number of changes pushed in it.
    pub pushed: usize,
}

/// What one exchange did.
#[derive(Clone, Debug, Default)]
pub struct SyncOutcome {
    pub acked: usize,
    pub rejected: Vec<Rejection>,
    pub pulled: usize,
    /// Records still waiting for changes the server has not sent yet.
    pub waiting: usize,
    /// Pulled changes that could not be taken and were set aside.
    pub set_aside: usize,
    /// The server's identity changed (it was restored from a backup): this many of this
    /// phone's own changes were queued to be pushed again.
    pub reoffered: usize,
    /// Another exchange would make progress: call again.
    pub again: bool,
}

/// Builds requests and applies responses for one store.
#[derive(Clone, Debug, Default)]
pub struct SyncClient {
    options: ClientOptions,
}

impl SyncClient {
    pub fn new(options: ClientOptions) -> SyncClient {
        SyncClient { options }
    }

    /// The next request: the current cursor, unacknowledged local changes (oldest first, up to
    /// the push budget) signed with this phone's key, any change the server said it needs
    /// that this phone holds (its own signed, others' with the server's receipt), and after a
    /// restore the changes of others the restored server lost.
    pub fn request(&self, store: &Store) -> Result<SyncRequestBody> {
        let own: Vec<ActorId> = store
            .own_actors()
            .iter()
            .map(|a| ActorId::from(a.as_bytes()))
            .collect();
        let mut pushed = BTreeSet::new();
        let mut push: Vec<ChangeEntry> = store
            .unacked(self.options.max_push_bytes)?
            .into_iter()
            .take(self.options.max_push_changes.max(1))
            .map(|c| {
                pushed.insert(c.hash.0);
                ChangeEntry {
                    record_id: c.record_id,
                    signature: store.sign_change(c.record_id, &c.hash.0),
                    bytes: c.bytes,
                }
            })
            .collect();
        let mut budget = self
            .options
            .max_push_bytes
            .saturating_sub(push.iter().map(|c| c.bytes.len()).sum());
        for need in load_need(store)? {
            if store.is_rejected(&need.hash)? || !pushed.insert(need.hash) {
                continue;
            }
            // A needed change we do not have either cannot be sent; the server keeps holding.
            let Ok(mut doc) = store.doc(need.record_id) else {
                continue;
            };
            let Some(mut change) = doc.change_by_hash(&ChangeHash(need.hash)) else {
                continue;
            };
            let signature = if own.contains(change.actor_id()) {
                store.sign_change(need.record_id, &need.hash)
            } else {
                match store.receipt(&need.hash)? {
                    Some(receipt) => receipt,
                    None => continue,
                }
            };
            push.push(ChangeEntry {
                record_id: need.record_id,
                bytes: change.bytes().into_owned(),
                signature,
            });
        }
        let room = self.options.max_push_changes.saturating_sub(push.len());
        if budget > 0 && room > 0 {
            for (hash, entry) in store.relay_batch(budget)?.into_iter().take(room) {
                if !pushed.insert(hash) {
                    continue;
                }
                budget = budget.saturating_sub(entry.bytes.len());
                push.push(entry);
                if budget == 0 {
                    break;
                }
            }
        }
        let message = SyncRequest {
            cursor: store
                .meta(META_CURSOR)?
                .map(|h| from_hex(&h))
                .unwrap_or_default(),
            max_pull_bytes: self.options.max_pull_bytes,
            push,
        };
        Ok(SyncRequestBody {
            pushed: message.push.len(),
            body: compress(&message.encode()),
        })
    }

    /// Applies a response body: acknowledgements, rejections, pulled changes and the cursor.
    pub fn handle_response(&self, store: &mut Store, body: &[u8]) -> Result<SyncOutcome> {
        // HTTP stacks that honour `Content-Encoding: gzip` (OkHttp, Android's URLConnection)
        // hand over the body already inflated; take it either way.
        let response = if body.starts_with(b"FSYN") {
            SyncResponse::decode(body)?
        } else {
            SyncResponse::decode(&decompress(body, MAX_BODY_BYTES)?)?
        };
        store.ack(&response.acked)?;
        let rejected: Vec<([u8; 32], &str)> = response
            .rejected
            .iter()
            .map(|r| (r.hash, r.code.as_str()))
            .collect();
        // Only this phone's own changes are recovered from; a change given back on another's
        // behalf is simply no longer offered.
        store.reject(&rejected)?;
        store.relay_answered(
            response
                .acked
                .iter()
                .copied()
                .chain(response.rejected.iter().map(|r| r.hash)),
        )?;
        let server_id = to_hex(&response.server_id);
        let known_server = store.meta(META_SERVER_ID)?;
        // Queued before the new identity is stored: if the app dies in between, the next sync
        // sees the change again and queues again, which is harmless.
        let reoffered = match known_server {
            Some(known) if known != server_id => {
                let (own, _others) = store.after_restore()?;
                store.set_meta(META_RELAY_AFTER, &server_id)?;
                own
            }
            _ => 0,
        };
        let report = store.apply_pulled_and_set_meta(
            &response.pull,
            &[
                (META_CURSOR, &to_hex(&response.cursor)),
                (META_SERVER_ID, &server_id),
            ],
        )?;
        // The restored server's whole log has been pulled again: what it did not serve, it lost.
        let mut relay_started = false;
        if !response.more && store.meta(META_RELAY_AFTER)?.as_deref() == Some(server_id.as_str()) {
            relay_started = store.relay_ready()? > 0;
            store.set_meta(META_RELAY_AFTER, "")?;
        }
        let previous_need = load_need(store)?;
        save_need(store, &response.need)?;
        let unacked = store.unacked_count()? + store.relay_pending()?;
        let progressed = !response.acked.is_empty()
            || !response.rejected.is_empty()
            || reoffered > 0
            || relay_started;
        let again = response.more
            || (unacked > 0 && progressed)
            || (!response.need.is_empty() && response.need != previous_need);
        Ok(SyncOutcome {
            acked: response.acked.len(),
            rejected: response.rejected,
            pulled: response.pull.len(),
            waiting: report.waiting.len(),
            set_aside: report.set_aside,
            reoffered,
            again,
        })
    }
}

fn load_need(store: &Store) -> Result<Vec<NeedEntry>> {
    let Some(text) = store.meta(META_NEED)? else {
        return Ok(Vec::new());
    };
    Ok(text
        .split(',')
        .filter_map(|item| {
            let (id, hash) = item.split_once(':')?;
            let hash: [u8; 32] = from_hex(hash).try_into().ok()?;
            Some(NeedEntry {
                record_id: Uuid::parse_str(id).ok()?,
                hash,
            })
        })
        .collect())
}

fn save_need(store: &mut Store, need: &[NeedEntry]) -> Result<()> {
    let text = need
        .iter()
        .map(|n| format!("{}:{}", n.record_id, to_hex(&n.hash)))
        .collect::<Vec<_>>()
        .join(",");
    store.set_meta(META_NEED, &text)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
