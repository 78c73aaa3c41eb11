//! A simulated phone: a sync-core store synced over HTTPS by sync-core's driver, with retries
//! when the network cuts a request or the server is busy, and counts of what each sync cost on
//! the wire.

use crate::https::{ClientError, HttpResponse, HttpsClient};
use fieldsync_core::protocol::{
    ClientOptions, SyncDriver, CONTENT_TYPE, PROTOCOL_VERSION, SYNC_PATH, VERSION_HEADER,
};
use fieldsync_core::Store;
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error(transparent)]
    Network(#[from] ClientError),
    #[error("server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error(transparent)]
    Core(#[from] fieldsync_core::CoreError),
    #[error("gave up after {0} attempts")]
    GaveUp(usize),
}

/// What one sync (until the phone had nothing more to do) cost.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Completed request/response exchanges.
    pub round_trips: usize,
    /// Requests that the network cut and that were retried.
    pub cut: usize,
    /// Requests the server answered 429 (busy) and that were retried after `Retry-After`.
    pub busy: usize,
    pub wire_bytes_sent: u64,
    pub wire_bytes_received: u64,
    /// Compressed message bytes (HTTP bodies) both ways.
    pub body_bytes: u64,
    pub acked: usize,
    pub rejected: usize,
    pub pulled: usize,
}

/// Calls `method path` with a JSON body and returns the JSON answer, or the status as error.
pub async fn call_json(
    http: &HttpsClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Json,
) -> Result<Json, PhoneError> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let response = http.request(addr, method, path, &headers, body).await?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        return Err(PhoneError::Status {
            status: response.status,
            body: text,
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// Logs in and returns a device token (for API calls; phones use [`Phone::enrol`]).
pub async fn enrol(
    http: &HttpsClient,
    addr: SocketAddr,
    username: &str,
    password: &str,
) -> Result<String, PhoneError> {
    enrol_as(http, addr, username, password, None).await
}

/// Logs in showing `store`'s public key and the proof that it holds the secret, which binds
/// the store's actors to the new enrolment.
/// (The body is built before anything is awaited: a store cannot cross threads.)
pub fn enrol_as<'a>(
    http: &'a HttpsClient,
    addr: SocketAddr,
    username: &str,
    password: &str,
    store: Option<&Store>,
) -> impl std::future::Future<Output = Result<String, PhoneError>> + Send + 'a {
    let body = match store {
        Some(store) => store.enrolment(username).request(username, password, "sim"),
        None => json!({ "username": username, "password": password, "device_name": "sim" }),
    };
    post_enrolment(http, addr, body)
}

async fn post_enrolment(
    http: &HttpsClient,
    addr: SocketAddr,
    body: Json,
) -> Result<String, PhoneError> {
    let answer = call_json(http, addr, "POST", "/v1/enrol", None, &body).await?;
    Ok(answer["token"].as_str().unwrap_or_default().to_owned())
}

/// Logs in showing a bare key (no store): a device whose changes are built by hand.
pub async fn enrol_with_key(
    http: &HttpsClient,
    addr: SocketAddr,
    username: &str,
    password: &str,
    key: &fieldsync_core::signing::DeviceKey,
) -> Result<String, PhoneError> {
    let shown = fieldsync_core::protocol::Enrolment {
        public_key: key.public_key(),
        proof: key.enrolment_proof(username),
        legacy_actor_keys: Vec::new(),
        legacy_actors: Vec::new(),
    };
    post_enrolment(http, addr, shown.request(username, password, "sim")).await
}

/// A phone: its store, its token and the batch sizes it syncs with.
pub struct Phone {
    pub store: Store,
    /// The store's file, for tests that inspect it directly.
    pub path: PathBuf,
    pub token: String,
    options: ClientOptions,
}

impl Phone {
    pub fn open(path: &Path, token: String, options: ClientOptions) -> Result<Phone, PhoneError> {
        Ok(Phone {
            store: Store::open(path)?,
            path: path.to_owned(),
            token,
            options,
        })
    }

    /// Opens (or creates) the store at `path` and enrols it as `username`, proving the
    /// store's actor with its key, as the Android app does.
    pub async fn enrol(
        http: &HttpsClient,
        addr: SocketAddr,
        path: &Path,
        username: &str,
        password: &str,
        options: ClientOptions,
    ) -> Result<Phone, PhoneError> {
        let mut phone = Phone::open(path, String::new(), options)?;
        let key = phone.store.public_key();
        // An enrolment the network cuts is tried again, like a sync, and so is one a busy
        // server asks to retry (429: many phones enrolling at once).
        for attempt in 0..100u64 {
            match enrol_as(http, addr, username, password, Some(&phone.store)).await {
                Err(PhoneError::Network(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(PhoneError::Status { status: 429, .. }) => {
                    // Spread over time, so that waiting phones do not all come back at once.
                    let spread = (attempt * 7919 + u64::from(key[0])) % 1000;
                    tokio::time::sleep(Duration::from_millis(1000 + spread)).await;
                }
                Ok(token) => {
                    phone.token = token;
                    return Ok(phone);
                }
                Err(e) => return Err(e),
            }
        }
        phone.token = enrol_as(http, addr, username, password, Some(&phone.store)).await?;
        Ok(phone)
    }

    /// Sends one sync request; the raw HTTP answer. (Takes the token, not the phone, so that
    /// no borrow of the store is held across the network wait.)
    pub async fn exchange(
        http: &HttpsClient,
        addr: SocketAddr,
        token: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, ClientError> {
        let headers = [
            ("authorization", format!("Bearer {token}")),
            ("content-type", CONTENT_TYPE.to_owned()),
            ("content-encoding", "gzip".to_owned()),
            (VERSION_HEADER, PROTOCOL_VERSION.to_string()),
        ];
        http.request(addr, "POST", SYNC_PATH, &headers, body).await
    }

    /// Syncs until there is nothing more to send or receive, retrying cut requests up to
    /// `max_attempts` times in all.
    pub async fn sync(
        &mut self,
        http: &HttpsClient,
        addr: SocketAddr,
        max_attempts: usize,
    ) -> Result<SyncReport, PhoneError> {
        let mut report = SyncReport::default();
        let limit = u32::try_from(max_attempts).unwrap_or(u32::MAX);
        let mut driver = SyncDriver::new(self.options.clone(), limit);
        while let Some(request) = driver.poll_request(&self.store)? {
            let sent_body = request.body.len() as u64;
            let token = self.token.clone();
            let response = match Phone::exchange(http, addr, &token, request.body).await {
                Ok(r) => r,
                Err(
                    ClientError::Connect { .. }
                    | ClientError::Tls { .. }
                    | ClientError::Http { .. }
                    | ClientError::Timeout { .. },
                ) => {
                    report.cut += 1;
                    driver.handle_interruption();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            report.wire_bytes_sent += response.wire_bytes_sent;
            report.wire_bytes_received += response.wire_bytes_received;
            if response.status == 429 {
                // The server is busy with others: wait as long as it asks, then retry.
                report.busy += 1;
                driver.handle_interruption();
                let wait = response
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(10);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if response.status != 200 {
                return Err(PhoneError::Status {
                    status: response.status,
                    body: String::from_utf8_lossy(&response.body).into_owned(),
                });
            }
            report.body_bytes += sent_body + response.body.len() as u64;
            driver.handle_response(&mut self.store, &response.body)?;
        }
        let outcome = driver.outcome();
        if !outcome.complete {
            return Err(PhoneError::GaveUp(max_attempts));
        }
        report.round_trips = outcome.rounds as usize;
        report.acked = outcome.acked;
        report.rejected = outcome.rejected;
        report.pulled = outcome.pulled;
        Ok(report)
    }
}
