//! The bystander: an honest collector's phone that keeps working during an attack. Each
//! iteration makes one small edit and then syncs until nothing is left, and is timed. With
//! several server instances its requests take turns among them, as behind a load balancer.

use crate::{BenchResult, Context};
use fieldsync_core::generator::minimal_household;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{ClientOptions, SyncDriver};
use fieldsync_core::Store;
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{enrol_as, Phone};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A sync that has not finished after this long has failed, and counts as this long.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two syncs, and after a failed one.
const PAUSE: Duration = Duration::from_millis(250);
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Exchanges in one sync before the phone stops and tries again at its next sync.
const MAX_EXCHANGES: u32 = 1000;

/// What the bystander went through during an attack.
#[derive(Debug, Default)]
pub struct BystanderReport {
    /// One entry per sync; failed syncs count as [`SYNC_TIMEOUT`].
    pub latencies: Vec<Duration>,
    pub failures: usize,
    /// Changes downloaded (duplicates included) during the attack.
    pub pulled: u64,
    /// Time spent on the phone itself (building requests, applying responses), which is part
    /// of the sync latencies.
    pub local: Duration,
    /// The first failure's message.
    pub first_error: Option<String>,
}

impl BystanderReport {
    pub fn median(&self) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted.get(sorted.len().saturating_sub(1) / 2).copied()
    }

    pub fn p95(&self) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = (sorted.len() * 95).div_ceil(100).saturating_sub(1);
        sorted.get(i).copied()
    }

    pub fn worst(&self) -> Option<Duration> {
        self.latencies.iter().max().copied()
    }
}

pub struct Bystander {
    http: HttpsClient,
    /// The server instances; each request goes to the next one.
    addrs: Vec<SocketAddr>,
    requests: usize,
    token: String,
    store: Store,
    household: Uuid,
    pulled: u64,
    local: Duration,
}

impl Bystander {
    /// Enrols `username`, opens a phone store at `path`, registers one household in `commune`
    /// and syncs it, so that the phone is a settled, ordinary collector before the attack.
    pub async fn enrol(
        http: &HttpsClient,
        addrs: &[SocketAddr],
        (username, password): (&str, &str),
        commune: &str,
        path: &Path,
    ) -> BenchResult<Bystander> {
        let mut store = Store::open(path).context("bystander store")?;
        let first = *addrs.first().ok_or("bystander: no server address")?;
        let token = enrol_as(http, first, username, password, Some(&store))
            .await
            .context("bystander enrolment")?;
        let household = store
            .create(
                RecordType::Household,
                &minimal_household(commune, "Y Blơ Niê"),
            )
            .context("bystander household")?;
        let mut phone = Bystander {
            http: http.clone().with_timeout(SYNC_TIMEOUT),
            addrs: addrs.to_vec(),
            requests: 0,
            token,
            store,
            household,
            pulled: 0,
            local: Duration::ZERO,
        };
        phone.sync().await.context("bystander first sync")?;
        Ok(phone)
    }

    /// A full sync, untimed, before the attack starts.
    pub async fn settle(&mut self) -> BenchResult<()> {
        self.sync()
            .await
            .context("bystander sync before the attack")
    }

    /// A full sync: exchanges until nothing is left, the phone's own work timed apart.
    async fn sync(&mut self) -> BenchResult<()> {
        let mut driver = SyncDriver::new(ClientOptions::default(), MAX_EXCHANGES);
        loop {
            let started = Instant::now();
            let request = driver.poll_request(&self.store);
            self.local += started.elapsed();
            let Some(request) = request.context("building request")? else {
                break;
            };
            let addr = self.addrs[self.requests % self.addrs.len()];
            self.requests += 1;
            let response = Phone::exchange(&self.http, addr, &self.token, request.body)
                .await
                .context("sync exchange")?;
            if response.status != 200 {
                return Err(format!(
                    "sync answered {}: {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ));
            }
            let started = Instant::now();
            let outcome = driver.handle_response(&mut self.store, &response.body);
            self.local += started.elapsed();
            self.pulled += outcome.context("applying the response")?.pulled as u64;
        }
        if driver.outcome().complete {
            Ok(())
        } else {
            Err(format!("still syncing after {MAX_EXCHANGES} exchanges"))
        }
    }

    /// Edits and syncs in a loop until `deadline` (a sync in flight then is finished, within
    /// its timeout), and reports the latencies.
    pub async fn run_until(mut self, deadline: Instant) -> BystanderReport {
        let mut report = BystanderReport::default();
        let (pulled_before, local_before) = (self.pulled, self.local);
        let mut n = 0u64;
        while Instant::now() < deadline {
            n += 1;
            let village = format!("Thôn {}", n % 20);
            let result = match self
                .store
                .set_field(self.household, "village", &village.into())
            {
                Ok(()) => self.timed_sync().await,
                Err(e) => Err(format!("local edit: {e}")),
            };
            match result {
                Ok(elapsed) => {
                    report.latencies.push(elapsed);
                    tokio::time::sleep(PAUSE).await;
                }
                Err(e) => {
                    report.latencies.push(SYNC_TIMEOUT);
                    report.failures += 1;
                    report.first_error.get_or_insert(e);
                    tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                }
            }
        }
        report.pulled = self.pulled - pulled_before;
        report.local = self.local.saturating_sub(local_before);
        report
    }

    async fn timed_sync(&mut self) -> BenchResult<Duration> {
        let started = Instant::now();
        match tokio::time::timeout(SYNC_TIMEOUT, self.sync()).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("sync timed out after {} s", SYNC_TIMEOUT.as_secs())),
        }
    }
}
