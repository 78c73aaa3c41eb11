//! One attack from start to finish: a fresh server and accounts, the bystander, the memory
//! monitor, the attack window, the health check afterwards, and the row it all adds up to.

use crate::attacks::{self, Attack, Attacker, Ctx};
use crate::bystander::{Bystander, BystanderReport, SYNC_TIMEOUT};
use crate::monitor::{self, Monitor, MonitorReport};
use crate::{BenchResult, Context};
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{call_json, enrol, enrol_with_key};
use fieldsync_tests::server::{ServerProcess, ADMIN};
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The commune of the bystander and of the attacking collector. Its scope (across the 2025
/// merger) also holds 62.610.02 and 51.102.
pub const COMMUNE: &str = "62.610.01";
pub const PASSWORD: &str = "abuse-bench-password";
/// Where the attacker's connections come from; the bystander uses 127.0.0.1, and real users
/// in the enrolment attacks [`USER_SOURCE`].
pub const ATTACKER_SOURCE: std::net::IpAddr =
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
pub const USER_SOURCE: std::net::IpAddr =
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
/// Time the attack gets after the window to notice the deadline and return its notes.
const ATTACK_GRACE: Duration = Duration::from_secs(5);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the servers store: each attack gets a fresh store of its own.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// A PostgreSQL cluster (`postgres://…`) in which each attack creates a fresh database;
    /// `None`: the server's SQLite file in a fresh data directory.
    pub database: Option<String>,
    /// Server processes on the one store (more than one needs PostgreSQL).
    pub instances: usize,
}

impl Deployment {
    pub fn describe(&self) -> String {
        match (&self.database, self.instances) {
            (None, _) => "SQLite".into(),
            (Some(_), 1) => "PostgreSQL, one instance".into(),
            (Some(_), n) => format!("PostgreSQL, {n} instances"),
        }
    }
}

/// Fresh servers with their own data directory (and database) and the admin's token. The
/// servers are killed when this is dropped.
pub struct Env {
    pub dir: TempDir,
    /// The instance the attack is aimed at, and the one the monitor watches.
    pub server: ServerProcess,
    /// The other instances on the same database, which the bystander also reaches.
    pub others: Vec<ServerProcess>,
    pub http: HttpsClient,
    pub admin: String,
}

impl Env {
    async fn start(
        deployment: &Deployment,
        extra_args: &[&str],
        max_open_files: Option<u64>,
    ) -> BenchResult<Env> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let data = dir.path().join("server");
        std::fs::create_dir_all(&data).context("data directory")?;
        let mut args = extra_args.to_vec();
        let url = match &deployment.database {
            Some(cluster) => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || {
                    fieldsync_server::storage::postgres::scratch_database(&cluster)
                })
                .await
                .context("database creation")?
                .context("database creation")?
            }
            None => String::new(),
        };
        if deployment.database.is_some() {
            args.extend(["--database", url.as_str()]);
        }
        // One after the other: the first creates the schema and the accounts; all share the
        // data directory's development certificate.
        let mut servers = Vec::new();
        for _ in 0..deployment.instances.max(1) {
            let server = match max_open_files {
                Some(n) => ServerProcess::start_limited(&data, "127.0.0.1:0", &args, n),
                None => ServerProcess::start_with(&data, "127.0.0.1:0", &args),
            }
            .context("server start")?;
            servers.push(server);
        }
        let server = servers.remove(0);
        let http = HttpsClient::new(&server.cert_pem).context("HTTPS client")?;
        let admin = enrol(&http, server.addr, ADMIN.0, ADMIN.1)
            .await
            .context("admin enrolment")?;
        Ok(Env {
            dir,
            server,
            others: servers,
            http,
            admin,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Every instance, the attacked one first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(&self.server)
            .chain(&self.others)
            .map(|s| s.addr)
            .collect()
    }

    async fn admin_call(&self, method: &str, path: &str, body: &Json) -> BenchResult<Json> {
        call_json(
            &self.http,
            self.addr(),
            method,
            path,
            Some(&self.admin),
            body,
        )
        .await
        .context(path)
    }

    /// Creates an account with [`PASSWORD`].
    pub async fn add_user(&self, name: &str, role: &str, areas: &[&str]) -> BenchResult<()> {
        let user = json!({ "username": name, "password": PASSWORD, "role": role, "areas": areas });
        self.admin_call("POST", "/v1/admin/users", &user)
            .await
            .map(drop)
    }

    /// Enrols a device for `name` with the key [`crate::payloads::attacker_key`]`(name)`, and
    /// returns its token.
    pub async fn enrol(&self, name: &str) -> BenchResult<String> {
        self.enrol_with_key(name, name).await
    }

    /// Enrols another device for `name` with the key
    /// [`crate::payloads::attacker_key`]`(key_name)`, and returns its token.
    pub async fn enrol_with_key(&self, name: &str, key_name: &str) -> BenchResult<String> {
        let key =
            fieldsync_core::signing::DeviceKey::from_seed(&crate::payloads::attacker_key(key_name));
        enrol_with_key(&self.http, self.addr(), name, PASSWORD, &key)
            .await
            .context("enrolment")
    }

    async fn stats(&self) -> BenchResult<Json> {
        let http = self.http.clone().with_timeout(HEALTH_TIMEOUT);
        call_json(
            &http,
            self.addr(),
            "GET",
            "/v1/admin/stats",
            Some(&self.admin),
            &Json::Null,
        )
        .await
        .context("stats")
    }
}

/// Lines an attack adds to its row while it runs (kept even if it has to be aborted).
#[derive(Clone, Default)]
pub struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    pub fn add(&self, note: impl Into<String>) {
        let note = note.into();
        println!("   {note}");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(note);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The result of one attack: one line of the table.
pub struct Row {
    attack: Attack,
    rss_before_kib: Option<u64>,
    monitor: MonitorReport,
    hwm_kib: Option<u64>,
    up: String,
    bystander: BystanderReport,
    notes: Vec<String>,
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64()))
}

impl Row {
    pub const HEADER: &'static str = "| attack | attacker | server RSS before (MiB) | server peak RSS (MiB) | server peak fds | server up after | bystander syncs | failed | worst (s) | median (s) | p95 (s) | notes |";
    pub const RULE: &'static str = "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|";

    fn failed(attack: Attack, error: String) -> Row {
        Row {
            attack,
            rss_before_kib: None,
            monitor: MonitorReport::default(),
            hwm_kib: None,
            up: "?".into(),
            bystander: BystanderReport::default(),
            notes: vec![format!("bench error: {error}")],
        }
    }

    fn peak(&self) -> String {
        if self.monitor.killed_at_cap {
            return format!(">{} (stopped)", mib(monitor::RSS_CAP_KIB));
        }
        let peak = self.monitor.peak_rss_kib.max(self.hwm_kib.unwrap_or(0));
        mib(peak)
    }

    pub fn markdown(&self) -> String {
        let b = &self.bystander;
        let mut notes = self.notes.clone();
        if let Some(after) = self.monitor.killed_after {
            notes.push(format!(
                "server killed at the memory cap {:.1} s into the attack",
                after.as_secs_f64()
            ));
        }
        notes.push(format!(
            "bystander pulled {} changes ({:.1} s of its syncs spent on the phone itself)",
            b.pulled,
            b.local.as_secs_f64()
        ));
        if let Some(e) = &b.first_error {
            notes.push(format!("bystander's first failure: {}", truncate(e, 160)));
        }
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.attack.name(),
            self.attack.attacker().label(),
            self.rss_before_kib.map_or("-".into(), mib),
            self.peak(),
            self.monitor.peak_fds,
            self.up,
            b.latencies.len(),
            b.failures,
            secs(b.worst()),
            secs(b.median()),
            secs(b.p95()),
            notes.join("; ").replace('|', "/"),
        )
    }

    pub fn summary(&self) -> String {
        let b = &self.bystander;
        format!(
            "-> peak RSS (MiB) {}, up after: {}, bystander: {} syncs, {} failed, worst {} s, median {} s, p95 {} s",
            self.peak(),
            self.up,
            b.latencies.len(),
            b.failures,
            secs(b.worst()),
            secs(b.median()),
            secs(b.p95())
        )
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Runs one attack; a failure of the bench itself becomes a row saying so.
pub async fn run(attack: Attack, deployment: &Deployment, window: Duration) -> Row {
    match run_inner(attack, deployment, window).await {
        Ok(row) => row,
        Err(e) => {
            println!("   bench error: {e}");
            Row::failed(attack, e)
        }
    }
}

async fn attacker_token(env: &Env, attacker: Attacker) -> BenchResult<String> {
    match attacker {
        Attacker::Collector => {
            env.add_user("attacker", "collector", &[COMMUNE]).await?;
            env.enrol("attacker").await
        }
        Attacker::Supervisor => {
            env.add_user("supervisor", "supervisor", &["62"]).await?;
            env.enrol("supervisor").await
        }
        Attacker::Outsider => Ok(String::new()),
    }
}

async fn run_inner(attack: Attack, deployment: &Deployment, window: Duration) -> BenchResult<Row> {
    let mut env = Env::start(deployment, attack.server_args(), attack.max_open_files()).await?;
    env.add_user("bystander", "collector", &[COMMUNE]).await?;
    let bystander = Bystander::enrol(
        &env.http,
        &env.addrs(),
        ("bystander", PASSWORD),
        COMMUNE,
        &env.dir.path().join("bystander.sqlite"),
    )
    .await?;
    let token = attacker_token(&env, attack.attacker()).await?;
    let notes = Notes::default();
    let plan = attacks::prepare(attack, &env, &notes).await?;
    // Whatever the preparation stored reaches the bystander now, not in its first timed sync.
    let mut bystander = bystander;
    bystander.settle().await?;

    let pid = env.server.pid();
    let rss_before_kib = monitor::status_kib(pid, "VmRSS");
    let monitor = Monitor::start(pid);
    let deadline = Instant::now() + window;
    let ctx = Ctx {
        addr: env.addr(),
        // The attacker is another peer than the bystander (on loopback, another address).
        http: env.http.clone().with_source(ATTACKER_SOURCE),
        token,
        deadline,
        notes: notes.clone(),
    };
    let bystander = tokio::spawn(bystander.run_until(deadline));
    let mut job = tokio::spawn(attacks::run(plan, ctx));
    let attack_end = tokio::time::Instant::from_std(deadline + ATTACK_GRACE);
    if tokio::time::timeout_at(attack_end, &mut job).await.is_err() {
        job.abort();
        notes.add("attack aborted at the deadline");
    }
    let bystander_end = tokio::time::Instant::from_std(deadline + SYNC_TIMEOUT + ATTACK_GRACE);
    let bystander = match tokio::time::timeout_at(bystander_end, bystander).await {
        Ok(Ok(report)) => report,
        _ => return Err("the bystander did not stop".into()),
    };

    let up = if monitor.killed_at_cap() {
        format!(
            "no: killed by the bench at the {} MiB cap",
            mib(monitor::RSS_CAP_KIB)
        )
    } else {
        check_up(&mut env).await
    };
    if attack.wants_stats() && up == "yes" {
        match env.stats().await {
            Ok(stats) => notes.add(format!(
                "server stats after: {stats}, data directory {:.1} MiB",
                dir_size(&env.server.data_dir) as f64 / (1024.0 * 1024.0)
            )),
            Err(e) => notes.add(format!("server stats after: {e}")),
        }
    }
    let hwm_kib = monitor::status_kib(pid, "VmHWM");
    let monitor = monitor.stop();
    for other in &env.others {
        if let Some(kib) = monitor::status_kib(other.pid(), "VmHWM") {
            notes.add(format!("another instance's peak RSS {} MiB", mib(kib)));
        }
    }
    if let Some(limit) = monitor::fd_limit(pid).filter(|_| attack.counts_fds()) {
        notes.add(format!("server's open-file limit {limit}"));
    }
    env.server.kill();
    env.others.iter_mut().for_each(ServerProcess::kill);
    Ok(Row {
        attack,
        rss_before_kib,
        monitor,
        hwm_kib,
        up,
        bystander,
        notes: notes.take(),
    })
}

/// Total size of the files in a directory (not recursive: the server keeps its database,
/// WAL and certificate side by side).
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// "yes" when the process is alive and `GET /v1/health` answers 200 within 5 s; otherwise
/// what went wrong.
async fn check_up(env: &mut Env) -> String {
    if let Some(status) = env.server.exit_status() {
        return format!("no: process exited ({status})");
    }
    let http = env.http.clone().with_timeout(HEALTH_TIMEOUT);
    match http
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await
    {
        Ok(r) if r.status == 200 => "yes".into(),
        Ok(r) => format!("no: health answered {}", r.status),
        Err(e) => format!("no: health check failed ({e})"),
    }
}
