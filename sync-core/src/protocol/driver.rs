//! The phone's sync loop, once: which request to send next, what a response or a lost exchange
//! does to the run, and when the run ends. Every phone-side caller (the Android bindings, the
//! test phone, the simulator) drives a sync through [`SyncDriver`]; none loops on its own.
//!
//! The driver is a state machine over a [`Store`], in the way of quinn-proto: it hands out
//! request bodies and takes back response bodies or the news that none came, and never waits,
//! sleeps or touches a socket. The store is borrowed only inside each call, so a caller can
//! release it while the bytes are on the network. [`SyncDriver::run`] is the whole loop for a
//! blocking caller that owns its store and a [`Transport`].

use super::client::{ClientOptions, SyncClient, SyncOutcome, SyncRequestBody};
use crate::error::CoreError;
use crate::store::Store;

/// How many requests one sync may send, retried ones included, unless told otherwise. A server
/// that keeps answering "more" cannot hold a phone in one sync forever; the next sync carries on
/// from the stored cursor.
pub const DEFAULT_MAX_EXCHANGES: u32 = 500;

/// Moves one request body to the server and brings back its response body: HTTPS in an app, a
/// function call in a test. Anything short of a complete response is an error.
pub trait Transport {
    type Error;

    fn exchange(&mut self, request: Vec<u8>) -> Result<Vec<u8>, Self::Error>;
}

/// Why [`SyncDriver::run`] stopped before the sync was complete.
#[derive(Debug, thiserror::Error)]
pub enum DriveError<E> {
    /// No response came; what earlier exchanges did is kept, and the next sync resumes.
    #[error("transport: {0}")]
    Transport(E),
    /// The store failed, or a response could not be read.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// What a sync did, summed over its exchanges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveOutcome {
    /// Exchanges that got a response and were applied.
    pub rounds: u32,
    /// Requests sent that got no usable response (cut, timed out, busy server).
    pub interrupted: u32,
    /// Changes sent in the exchanges that got a response.
    pub pushed: usize,
    pub acked: usize,
    pub rejected: usize,
    pub pulled: usize,
    /// Pulled changes that could not be taken and were set aside.
    pub set_aside: usize,
    /// This phone's own changes queued again because the server was restored from a backup.
    pub reoffered: usize,
    /// Records waiting for changes the server has not sent yet, after the last exchange.
    pub waiting: usize,
    /// The last response said another exchange would make no progress. `false` when the run
    /// stopped at its limit or was abandoned.
    pub complete: bool,
}

/// One sync run over a store: hands out requests and applies responses until the phone and the
/// server have nothing more for each other, or the run's limit of requests is spent.
///
/// ```no_run
/// # use fieldsync_core::protocol::SyncDriver;
/// # fn post(_body: Vec<u8>) -> Result<Vec<u8>, ()> { unimplemented!() }
/// # fn run(store: &mut fieldsync_core::Store) -> fieldsync_core::Result<()> {
/// let mut sync = SyncDriver::default();
/// while let Some(request) = sync.poll_request(store)? {
///     match post(request.body) {
///         Ok(response) => {
///             sync.handle_response(store, &response)?;
///         }
///         // Nothing was applied: the next request is built from the store again.
///         Err(()) => sync.handle_interruption(),
///     }
/// }
/// let outcome = sync.outcome();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SyncDriver {
    client: SyncClient,
    max_exchanges: u32,
    /// Requests handed out so far, answered or not.
    sent: u32,
    /// Changes in the request awaiting its answer, if one is out.
    in_flight: Option<usize>,
    outcome: DriveOutcome,
}

impl Default for SyncDriver {
    fn default() -> Self {
        SyncDriver::new(ClientOptions::default(), DEFAULT_MAX_EXCHANGES)
    }
}

impl SyncDriver {
    /// A run that sends at most `max_exchanges` requests, retried ones included.
    pub fn new(options: ClientOptions, max_exchanges: u32) -> SyncDriver {
        SyncDriver {
            client: SyncClient::new(options),
            max_exchanges,
            sent: 0,
            in_flight: None,
            outcome: DriveOutcome::default(),
        }
    }

    /// The next request to send, built from the store as it is now, or `None` when the run is
    /// over (complete, or its requests spent). A request still out when this is called is
    /// taken as lost.
    pub fn poll_request(&mut self, store: &Store) -> crate::Result<Option<SyncRequestBody>> {
        if self.in_flight.is_some() {
            self.handle_interruption();
        }
        if self.outcome.complete || self.sent >= self.max_exchanges {
            return Ok(None);
        }
        let request = self.client.request(store)?;
        self.sent += 1;
        self.in_flight = Some(request.pushed);
        Ok(Some(request))
    }

    /// Applies the response to the request last handed out; what this exchange did.
    pub fn handle_response(
        &mut self,
        store: &mut Store,
        body: &[u8],
    ) -> crate::Result<SyncOutcome> {
        // On an error the request stays out, so the next poll counts it as lost; every step of
        // applying a response is safe to repeat when its request is sent again.
        let exchange = self.client.handle_response(store, body)?;
        let total = &mut self.outcome;
        total.rounds += 1;
        total.pushed += self.in_flight.take().unwrap_or(0);
        total.acked += exchange.acked;
        total.rejected += exchange.rejected.len();
        total.pulled += exchange.pulled;
        total.set_aside += exchange.set_aside;
        total.reoffered += exchange.reoffered;
        total.waiting = exchange.waiting;
        total.complete = !exchange.again;
        Ok(exchange)
    }

    /// The request last handed out got no usable response. Nothing was applied, so the next
    /// request is built again from the store and carries whatever this one carried.
    pub fn handle_interruption(&mut self) {
        if self.in_flight.take().is_some() {
            self.outcome.interrupted += 1;
        }
    }

    /// What the run has done so far.
    pub fn outcome(&self) -> DriveOutcome {
        self.outcome.clone()
    }

    /// The whole sync over a blocking transport. A transport error ends the run: what the
    /// exchanges before it applied is kept, and the next run resumes from the store.
    pub fn run<T: Transport>(
        mut self,
        store: &mut Store,
        transport: &mut T,
    ) -> Result<DriveOutcome, DriveError<T::Error>> {
        while let Some(request) = self.poll_request(store)? {
            let response = transport
                .exchange(request.body)
                .map_err(DriveError::Transport)?;
            self.handle_response(store, &response)?;
        }
        Ok(self.outcome)
    }
}
