//! The sync driver against an in-memory server over a transport that loses requests and
//! responses on cue: lost exchanges resume without loss or duplication, "more" pages are
//! followed to the end, and a run stops at its limit of requests and the next one carries on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{
    compress, decode_request_body, ChangeEntry, ClientOptions, DriveError, DriveOutcome,
    SyncDriver, SyncResponse, Transport, DEFAULT_MAX_EXCHANGES,
};
use fieldsync_core::record::decode_change;
use fieldsync_core::store::ListFilter;
use fieldsync_core::Store;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A server reduced to what the driver relies on: it stores each pushed change once and
/// acknowledges every one, and serves one log to every phone in pages, each phone's own
/// changes left out, with the log position as cursor.
struct FakeServer {
    log: Vec<(usize, ChangeEntry)>,
    stored: BTreeSet<[u8; 32]>,
    page: usize,
}

impl FakeServer {
    fn new(page: usize) -> RefCell<FakeServer> {
        RefCell::new(FakeServer {
            log: Vec::new(),
            stored: BTreeSet::new(),
            page,
        })
    }

    fn answer(&mut self, phone: usize, body: &[u8]) -> Vec<u8> {
        let request = decode_request_body(body).unwrap();
        let mut acked = Vec::new();
        for change in request.push {
            let hash = decode_change(&change.bytes).unwrap().hash().0;
            if self.stored.insert(hash) {
                self.log.push((phone, change));
            }
            acked.push(hash);
        }
        let mut at = match request.cursor.as_slice() {
            [] => 0,
            bytes => u64::from_le_bytes(bytes.try_into().unwrap()) as usize,
        };
        let mut pull = Vec::new();
        while let Some((author, change)) = self.log.get(at) {
            if *author != phone {
                if pull.len() == self.page {
                    break;
                }
                pull.push(change.clone());
            }
            at += 1;
        }
        let more = self.log[at..].iter().any(|(author, _)| *author != phone);
        compress(
            &SyncResponse {
                acked,
                pull,
                cursor: (at as u64).to_le_bytes().to_vec(),
                more,
                server_id: [7; 16],
                ..SyncResponse::default()
            }
            .encode(),
        )
    }

    fn hashes(&self) -> Vec<[u8; 32]> {
        self.log
            .iter()
            .map(|(_, c)| decode_change(&c.bytes).unwrap().hash().0)
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lost {
    /// The request never reached the server.
    Request,
    /// The server took the request, and its answer never reached the phone.
    Response,
}

/// One phone's link to the server; `lost` says which calls (counted from 0) fail, and how.
struct Link<'s> {
    server: &'s RefCell<FakeServer>,
    phone: usize,
    calls: usize,
    lost: BTreeMap<usize, Lost>,
}

impl<'s> Link<'s> {
    fn new(server: &'s RefCell<FakeServer>, phone: usize) -> Link<'s> {
        Link {
            server,
            phone,
            calls: 0,
            lost: BTreeMap::new(),
        }
    }

    fn losing(mut self, call: usize, how: Lost) -> Link<'s> {
        self.lost.insert(call, how);
        self
    }
}

impl Transport for Link<'_> {
    type Error = Lost;

    fn exchange(&mut self, request: Vec<u8>) -> Result<Vec<u8>, Lost> {
        let call = self.calls;
        self.calls += 1;
        match self.lost.get(&call) {
            Some(Lost::Request) => Err(Lost::Request),
            Some(Lost::Response) => {
                self.server.borrow_mut().answer(self.phone, &request);
                Err(Lost::Response)
            }
            None => Ok(self.server.borrow_mut().answer(self.phone, &request)),
        }
    }
}

/// A phone with `n` households of its own, and the hashes of their changes.
fn phone_with(n: usize) -> (tempfile::TempDir, Store, Vec<[u8; 32]>) {
    let (dir, mut store) = temp_store();
    let ids: Vec<Uuid> = (0..n)
        .map(|i| {
            store
                .create(
                    RecordType::Household,
                    &household_fields(&format!("Y Hơ {i}")),
                )
                .unwrap()
        })
        .collect();
    let hashes = all_changes(&store, &ids)
        .iter()
        .map(|(_, bytes)| decode_change(bytes).unwrap().hash().0)
        .collect();
    (dir, store, hashes)
}

fn records(store: &Store) -> u64 {
    store.count(&ListFilter::default()).unwrap()
}

fn sorted(mut hashes: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    hashes.sort_unstable();
    hashes
}

fn two_per_push() -> ClientOptions {
    ClientOptions {
        max_push_changes: 2,
        ..ClientOptions::default()
    }
}

#[test]
fn more_pages_are_followed_to_the_end() {
    let server = FakeServer::new(2);
    let (_b_dir, mut b, b_changes) = phone_with(7);
    let pushed = SyncDriver::default()
        .run(&mut b, &mut Link::new(&server, 1))
        .unwrap();
    assert_eq!((pushed.pushed, pushed.acked), (7, 7));
    assert!(pushed.complete);

    let (_a_dir, mut a, _) = phone_with(0);
    let mut link = Link::new(&server, 0);
    let pulled = SyncDriver::default().run(&mut a, &mut link).unwrap();
    assert_eq!(b_changes.len(), 7, "one change per new household");
    assert_eq!(
        pulled,
        DriveOutcome {
            rounds: 4,
            pulled: 7,
            complete: true,
            ..DriveOutcome::default()
        },
        "pages of 2, 2, 2 and 1"
    );
    assert_eq!(link.calls, 4);
    assert_eq!(records(&a), 7);
}

#[test]
fn a_lost_response_ends_the_run_and_the_next_resumes_without_loss() {
    let server = FakeServer::new(2);
    let (_b_dir, mut b, b_changes) = phone_with(3);
    SyncDriver::default()
        .run(&mut b, &mut Link::new(&server, 1))
        .unwrap();

    let (_a_dir, mut a, a_changes) = phone_with(5);
    // The second exchange is stored by the server, and its answer lost on the way back.
    let mut link = Link::new(&server, 0).losing(1, Lost::Response);
    let failed = SyncDriver::new(two_per_push(), DEFAULT_MAX_EXCHANGES).run(&mut a, &mut link);
    assert!(matches!(failed, Err(DriveError::Transport(Lost::Response))));
    assert_eq!(
        server.borrow().log.len(),
        3 + 4,
        "two pushes of two arrived"
    );
    assert_eq!(
        a.unacked_count().unwrap(),
        3,
        "only the first answer was applied"
    );
    assert_eq!(
        records(&a),
        5 + 2,
        "the first page pulled, not the lost one"
    );

    let resumed = SyncDriver::new(two_per_push(), DEFAULT_MAX_EXCHANGES)
        .run(&mut a, &mut Link::new(&server, 0))
        .unwrap();
    assert!(resumed.complete);
    assert_eq!(
        resumed.pushed, 3,
        "the unanswered two again, and the last one"
    );
    assert_eq!(resumed.acked, 3);
    assert_eq!(
        resumed.pulled, 1,
        "the lost page again, from the stored cursor"
    );
    assert_eq!(a.unacked_count().unwrap(), 0);
    assert_eq!(records(&a), 5 + 3);
    let mut everything = a_changes.clone();
    everything.extend(&b_changes);
    assert_eq!(
        sorted(server.borrow().hashes()),
        sorted(everything),
        "every change stored exactly once"
    );
}

/// A caller that retries within one run, as the test phone does over a cutting network.
fn sync_retrying(driver: &mut SyncDriver, store: &mut Store, link: &mut Link<'_>) {
    while let Some(request) = driver.poll_request(store).unwrap() {
        match link.exchange(request.body) {
            Ok(response) => {
                driver.handle_response(store, &response).unwrap();
            }
            Err(_) => driver.handle_interruption(),
        }
    }
}

#[test]
fn lost_exchanges_retried_within_a_run_lose_nothing() {
    for how in [Lost::Request, Lost::Response] {
        let server = FakeServer::new(2);
        let (_b_dir, mut b, b_changes) = phone_with(3);
        SyncDriver::default()
            .run(&mut b, &mut Link::new(&server, 1))
            .unwrap();
        let (_a_dir, mut a, a_changes) = phone_with(5);
        let mut link = Link::new(&server, 0).losing(0, how).losing(2, how);
        let mut driver = SyncDriver::new(two_per_push(), DEFAULT_MAX_EXCHANGES);
        sync_retrying(&mut driver, &mut a, &mut link);

        let outcome = driver.outcome();
        assert!(outcome.complete, "{how:?}");
        assert_eq!(outcome.interrupted, 2, "{how:?}");
        assert_eq!(outcome.rounds as usize + 2, link.calls, "{how:?}");
        assert_eq!((outcome.pushed, outcome.acked), (5, 5), "{how:?}");
        assert_eq!(outcome.pulled, 3, "{how:?}: nothing pulled twice");
        assert_eq!(a.unacked_count().unwrap(), 0, "{how:?}");
        assert_eq!(records(&a), 5 + 3, "{how:?}");
        let mut everything = a_changes.clone();
        everything.extend(&b_changes);
        assert_eq!(
            sorted(server.borrow().hashes()),
            sorted(everything),
            "{how:?}"
        );
    }
}

#[test]
fn a_run_stops_at_its_limit_and_the_next_carries_on() {
    let server = FakeServer::new(1);
    let (_b_dir, mut b, _) = phone_with(10);
    SyncDriver::default()
        .run(&mut b, &mut Link::new(&server, 1))
        .unwrap();

    let (_a_dir, mut a, _) = phone_with(0);
    let mut link = Link::new(&server, 0);
    let first = SyncDriver::new(ClientOptions::default(), 3)
        .run(&mut a, &mut link)
        .unwrap();
    assert_eq!(link.calls, 3);
    assert_eq!((first.rounds, first.pulled), (3, 3));
    assert!(!first.complete, "the server still had more");

    let rest = SyncDriver::default()
        .run(&mut a, &mut Link::new(&server, 0))
        .unwrap();
    assert!(rest.complete);
    assert_eq!((rest.rounds, rest.pulled), (7, 7));
    assert_eq!(records(&a), 10);
}

#[test]
fn lost_requests_count_toward_the_limit() {
    let server = FakeServer::new(1);
    let (_a_dir, mut a, _) = phone_with(1);
    let mut link = Link::new(&server, 0)
        .losing(0, Lost::Request)
        .losing(1, Lost::Request)
        .losing(2, Lost::Request);
    let mut driver = SyncDriver::new(ClientOptions::default(), 2);
    sync_retrying(&mut driver, &mut a, &mut link);
    assert_eq!(link.calls, 2);
    let outcome = driver.outcome();
    assert_eq!((outcome.rounds, outcome.interrupted), (0, 2));
    assert!(!outcome.complete);
    assert_eq!(a.unacked_count().unwrap(), 1, "still to be sent");
}

#[test]
fn a_request_never_answered_is_counted_lost_at_the_next_poll() {
    let server = FakeServer::new(1);
    let (_a_dir, mut a, _) = phone_with(1);
    let mut driver = SyncDriver::default();
    let abandoned = driver.poll_request(&a).unwrap().unwrap();
    let again = driver.poll_request(&a).unwrap().unwrap();
    assert_eq!(
        decode_request_body(&again.body).unwrap(),
        decode_request_body(&abandoned.body).unwrap(),
        "the same change offered again"
    );
    let response = server.borrow_mut().answer(0, &again.body);
    let exchange = driver.handle_response(&mut a, &response).unwrap();
    assert_eq!(exchange.acked, 1);
    assert!(driver.poll_request(&a).unwrap().is_none(), "done");
    let outcome = driver.outcome();
    assert_eq!(
        (outcome.rounds, outcome.interrupted, outcome.pushed),
        (1, 1, 1)
    );
    assert!(outcome.complete);
}
