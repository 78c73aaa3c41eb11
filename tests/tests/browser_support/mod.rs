//! Helpers of the browser tests: a real headless Chromium driven through chromedriver
//! (WebDriver, with `fantoccini`), pointed at a real `serve --dev` server, plus the accounts
//! and phones the tests set up through the admin API and the sync protocol.
//!
//! Used from `tests/tests/browser_*.rs` next to `mod common;`. Needs Debian's `chromium` and
//! `chromium-driver` (`scripts/install-browser`; `scripts/test-all` runs it).
//!
//! Every wait is bounded polling of what the page shows (at most [`WAIT`]); nothing sleeps to
//! synchronise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Env, PASSWORD};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::ClientOptions;
use fieldsync_tests::phone::Phone;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The longest any wait for the page lasts.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
pub const CHROMIUM: &str = "/usr/bin/chromium";

// ---- Accounts and phones

/// Creates an account through the demo admin; panics unless it is created.
pub async fn account(env: &Env, name: &str, role: &str, areas: &[&str], sensitive: bool) {
    let answer = fieldsync_tests::phone::call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": role,
                 "areas": areas, "sensitive_access": sensitive }),
    )
    .await;
    assert!(answer.is_ok(), "creating {name}: {answer:?}");
}

/// A supervisor account (log in with [`PASSWORD`]).
pub async fn supervisor(env: &Env, name: &str, areas: &[&str], sensitive: bool) {
    account(env, name, "supervisor", areas, sensitive).await;
}

/// A collector account and an enrolled phone of theirs.
pub async fn collector_phone(env: &Env, name: &str, areas: &[&str], sensitive: bool) -> Phone {
    env.user(name, areas, sensitive).await;
    env.phone(name, ClientOptions::default()).await
}

/// Text fields from pairs.
pub fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

/// Creates a record on a phone (not yet synced).
pub fn create(phone: &mut Phone, record_type: RecordType, pairs: &[(&str, &str)]) -> Uuid {
    phone.store.create(record_type, &fields(pairs)).unwrap()
}

/// Syncs a phone until it has nothing more to send or receive.
pub async fn sync(env: &Env, phone: &mut Phone) {
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
}

// ---- The browser

/// `chromedriver` as a child process in a process group of its own: dropping it kills the
/// group, so no Chromium outlives a test, even one that panicked.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is the child's pid (`process_group(0)`): ends chromedriver and the
        // Chromium processes it started, and only those.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start() -> Driver {
        let Some(chromedriver) = on_path("chromedriver") else {
            panic!(
                "chromedriver is not installed: run scripts/install-browser (Debian's chromium, \
                 chromium-driver and fonts-noto-core; scripts/test-all runs it before the tests)"
            );
        };
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is not installed: run scripts/install-browser"
        );
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(POLL);
        }
        driver
    }
}

/// One headless Chromium session on the supervisors' page of a server.
pub struct Browser {
    pub client: Client,
    /// `https://localhost:<port>`
    pub base: String,
    /// The test's name: screenshots are `target/screenshots/<test>-<step>.png`.
    test: String,
    driver: Driver,
    _profile: tempfile::TempDir,
}

/// The Chromium flags of every test (see /work/shared/notes/browser-tests.md).
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--disable-gpu",
        // Root (CI) cannot use Chromium's sandbox; the pages are the project's own.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        // The network is closed: no background or component fetches that would be refused.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1366,900",
        "--lang=vi",
        // The server's self-signed dev certificate (tests only).
        "--ignore-certificate-errors",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium (its own empty profile).
    pub async fn start(env: &Env, test: &str) -> Browser {
        let driver = Driver::start();
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": CHROMIUM, "args": chromium_args(profile.path()) },
        });
        let Json::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("starting a Chromium session through chromedriver");
        Browser {
            client,
            base: format!("https://localhost:{}", env.addr().port()),
            test: test.to_owned(),
            driver,
            _profile: profile,
        }
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Opens a page of the server: `""` for `/`, or a hash such as `"#/records/<id>"`.
    pub async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    /// Polls `f` until it gives `Some`, at most [`WAIT`]; panics naming `what` otherwise.
    pub async fn until<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", slug(what))).await;
                panic!("waited {WAIT:?} for {what}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element with `data-test="<test>"`, as soon as it is displayed.
    pub async fn wait(&self, test: &str) -> Element {
        let c = &self.client;
        let css = sel(test);
        self.until(&format!("[data-test={test}] to show"), || async {
            let e = c.find(Locator::Css(&css)).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
    }

    /// Waits until no element with `data-test="<test>"` is displayed.
    pub async fn wait_gone(&self, test: &str) {
        let c = &self.client;
        let css = sel(test);
        self.until(&format!("[data-test={test}] to go"), || async {
            for e in c.find_all(Locator::Css(&css)).await.ok()? {
                if e.is_displayed().await.unwrap_or(false) {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    /// Waits until the displayed text of `[data-test=<test>]` satisfies `ok`; returns it.
    pub async fn wait_text(&self, test: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let c = &self.client;
        let css = sel(test);
        let ok = &ok;
        self.until(&format!("[data-test={test}] to read {what}"), || async {
            let text = c.find(Locator::Css(&css)).await.ok()?.text().await.ok()?;
            ok(&text).then_some(text)
        })
        .await
    }

    /// The displayed text of the first `[data-test=<test>]` (waits for it to show).
    pub async fn text(&self, test: &str) -> String {
        self.wait(test).await.text().await.unwrap()
    }

    /// The displayed texts of every `[data-test=<test>]` now on the page.
    pub async fn texts(&self, test: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self
            .client
            .find_all(Locator::Css(&sel(test)))
            .await
            .unwrap()
        {
            out.push(e.text().await.unwrap_or_default());
        }
        out
    }

    pub async fn click(&self, test: &str) {
        self.wait(test).await.click().await.unwrap();
    }

    /// Replaces the text of an input with `text`, typed key by key.
    pub async fn type_into(&self, test: &str, text: &str) {
        let e = self.wait(test).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Chooses the option with `value` in the select `[data-test=<test>]`, once it has it.
    pub async fn select(&self, test: &str, value: &str) {
        let c = &self.client;
        let css = format!("{} option[value=\"{value}\"]", sel(test));
        self.until(&format!("option {value} in [data-test={test}]"), || async {
            c.find(Locator::Css(&css)).await.ok()
        })
        .await;
        self.wait(test).await.select_by_value(value).await.unwrap();
    }

    /// The option values of the select `[data-test=<test>]`.
    pub async fn options(&self, test: &str) -> Vec<String> {
        let css = format!("{} option", sel(test));
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(&css)).await.unwrap() {
            out.push(e.attr("value").await.unwrap().unwrap_or_default());
        }
        out
    }

    /// Waits until the record list shows exactly `ids` (any order) and the total counts them,
    /// as `total` words it (e.g. "2 hồ sơ").
    pub async fn wait_list(&self, ids: &[Uuid], total: &str) {
        let c = &self.client;
        let mut want: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        want.sort();
        let want = &want;
        self.until(&format!("the list to show {total}: {want:?}"), || async {
            let shown = c.find(Locator::Css(&sel("total"))).await.ok()?.text().await;
            if shown.ok()? != total {
                return None;
            }
            let mut got = Vec::new();
            for row in c.find_all(Locator::Css(&sel("record-row"))).await.ok()? {
                got.push(row.attr("data-id").await.ok()??);
            }
            got.sort();
            (&got == want).then_some(())
        })
        .await
    }

    /// Scrolls the first `[data-test=<test>]` to the middle of the window (for a screenshot).
    pub async fn scroll_to(&self, test: &str) {
        let e = self.wait(test).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![serde_json::to_value(e).unwrap()],
            )
            .await
            .unwrap();
    }

    /// The whole page source (the DOM as serialised now).
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Saves a screenshot of the window to `target/screenshots/<test>-<step>.png`.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{step}.png", self.test));
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(&path, png).unwrap();
        }
        path
    }

    /// Saves a screenshot of the window to `target/screenshots/<name>.png`, a name of the
    /// caller's own (the layout test's `<view>-<width>x<height>`).
    pub async fn screenshot_as(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        path
    }

    /// Logs in through the login form and waits for the record list (its total).
    pub async fn log_in(&self, username: &str, password: &str) {
        self.wait("login-form").await;
        self.type_into("login-username", username).await;
        self.type_into("login-password", password).await;
        self.click("login-submit").await;
        self.wait_text("total", "a total", is_total).await;
    }

    /// Logs out with the top bar's button and waits for the login form.
    pub async fn log_out(&self) {
        self.click("logout").await;
        self.wait("login-form").await;
    }

    /// The browser console's messages since the last call (chromedriver's `se/log`), each as
    /// `LEVEL source: message`.
    pub async fn console(&self) -> Vec<String> {
        let json = self.driver_post("se/log", r#"{"type":"browser"}"#).await;
        json["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no log entries in {json}"))
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// One Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`); panics
    /// unless Chromium accepts it. Returns the command's result.
    pub async fn cdp(&self, cmd: &str, params: Json) -> Json {
        let body = json!({ "cmd": cmd, "params": params }).to_string();
        let answer = self.driver_post("goog/cdp/execute", &body).await;
        assert!(
            answer["value"].get("error").is_none(),
            "{cmd} {params}: {answer}"
        );
        answer["value"].clone()
    }

    /// Lays the page out as on a screen of `width`×`height` CSS pixels (a phone or tablet when
    /// narrower than 1000: touch-style viewport, overlay scroll bars), until the next call.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1,
                    "mobile": width < 1000 }),
        )
        .await;
    }

    /// Slows the network as a poor connection would: `kbit_s` each way and `latency_ms` more
    /// per request (Chromium's network emulation). `None` lifts it.
    pub async fn throttle(&self, link: Option<(u32, u32)>) {
        self.cdp("Network.enable", json!({})).await;
        let (down, latency) = match link {
            Some((kbit_s, latency_ms)) => (f64::from(kbit_s) * 1000.0 / 8.0, latency_ms),
            None => (-1.0, 0),
        };
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": false, "latency": latency,
                    "downloadThroughput": down, "uploadThroughput": down }),
        )
        .await;
    }

    /// A POST of chromedriver's own to this session (`/session/<id>/<path>`), its JSON answer.
    async fn driver_post(&self, path: &str, body: &str) -> Json {
        let session = self.client.session_id().await.unwrap().unwrap();
        // HTTP/1.1 (chromedriver does not answer 1.0); its answers carry a Content-Length.
        let request = format!(
            "POST /session/{session}/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\n\
             Connection: close\r\n\r\n{body}",
            port = self.driver.port,
            len = body.len()
        );
        let mut stream =
            tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.driver.port)))
                .await
                .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let json = loop {
            let mut buf = [0u8; 16 * 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("chromedriver's answer to {path}"))
                .unwrap();
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if length.is_some_and(|l| body.len() >= l) || n == 0 {
                    break body.to_owned();
                }
            }
            assert!(n > 0, "chromedriver closed its answer to {path}: {text}");
        };
        serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("chromedriver's answer to {path} {json}: {e}"))
    }

    /// Asserts the console has no JavaScript error since the last call (see [`page_errors`]).
    pub async fn assert_no_console_errors(&self, allowed: &[u16]) {
        let errors = page_errors(&self.console().await, allowed);
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }
}

/// The console lines (from [`Browser::console`]) that are errors or warnings of the page.
/// Chromium's own "Failed to load resource" lines for `allowed` statuses (answers the test
/// expects, such as 401 before logging in) are not.
pub fn page_errors(console: &[String], allowed: &[u16]) -> Vec<String> {
    console
        .iter()
        .filter(|m| m.starts_with("SEVERE") || m.starts_with("WARNING"))
        .filter(|m| {
            !allowed.iter().any(|s| {
                m.contains(&format!(
                    "Failed to load resource: the server responded with a status of {s} "
                ))
            })
        })
        .cloned()
        .collect()
}

/// A CSS selector of a `data-test` hook.
pub fn sel(test: &str) -> String {
    format!("[data-test=\"{test}\"]")
}

/// Whether a text is the list's total in either language ("3 hồ sơ", "1 record").
pub fn is_total(text: &str) -> bool {
    let mut words = text.split(' ');
    words
        .next()
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
        && matches!(words.next(), Some("hồ" | "records" | "record"))
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}
