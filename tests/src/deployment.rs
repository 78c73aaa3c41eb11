//! The server an end-to-end test talks to, on the backend the run asks for: one `serve --dev`
//! on SQLite, or with `FIELDSYNC_TEST_BACKEND=postgres` two `serve --dev` instances on a fresh
//! database of the PostgreSQL cluster in `FIELDSYNC_TEST_POSTGRES`, behind a [`Balancer`] that
//! sends each connection to either. Either way the test has one address.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::balancer::Balancer;
use crate::server::{ServerError, ServerProcess};

/// Where the servers of a test run keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The address of a PostgreSQL cluster the test may create databases in.
    Postgres(String),
}

impl Backend {
    /// The backend this run asks for: `FIELDSYNC_TEST_BACKEND` (`sqlite`, the default, or
    /// `postgres`, which needs `FIELDSYNC_TEST_POSTGRES`; `scripts/with-postgres` sets it).
    pub fn from_env() -> Backend {
        match std::env::var("FIELDSYNC_TEST_BACKEND").as_deref() {
            Ok("postgres") => match std::env::var("FIELDSYNC_TEST_POSTGRES") {
                Ok(url) => Backend::Postgres(url),
                Err(_) => panic!(
                    "FIELDSYNC_TEST_BACKEND=postgres needs a cluster: run the tests as \
                     `scripts/with-postgres env FIELDSYNC_TEST_BACKEND=postgres cargo test ...`"
                ),
            },
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("FIELDSYNC_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }
}

/// True (after printing why) when a test that only makes sense on one SQLite server should be
/// skipped because this run is on PostgreSQL.
pub fn skip_unless_sqlite(reason: &str) -> bool {
    if Backend::from_env().is_postgres() {
        // Straight to file descriptor 2, past the test harness's capture, so that the run's
        // log says what was left out and why.
        // The test harness names each test's thread after the test.
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let line = format!("{test}: skipped on PostgreSQL, SQLite only: {reason}");
        match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
            Ok(mut fd2) => {
                let _ = writeln!(fd2, "{line}");
            }
            Err(_) => eprintln!("{line}"),
        }
        return true;
    }
    false
}

/// The second instance and the balancer of a PostgreSQL deployment.
pub struct Cluster {
    /// The test's own database.
    pub url: String,
    pub second: ServerProcess,
    pub balancer: Balancer,
    data_dir: std::path::PathBuf,
    extra: Vec<String>,
}

/// A deployment as a test starts it: `server` is the SQLite server, or on PostgreSQL the
/// first instance (the one that set the database up), and `cluster` the rest.
pub struct Deployment {
    pub server: ServerProcess,
    pub cluster: Option<Cluster>,
}

impl Deployment {
    /// Starts `serve --dev` with `extra` arguments in `data_dir`, on the run's backend.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Result<Deployment, ServerError> {
        Deployment::start_on(&Backend::from_env(), data_dir, extra)
    }

    /// Starts `serve --dev` with `extra` arguments in `data_dir`, on `backend`.
    pub fn start_on(
        backend: &Backend,
        data_dir: &Path,
        extra: &[&str],
    ) -> Result<Deployment, ServerError> {
        let url = match backend {
            Backend::Sqlite => {
                let server = ServerProcess::start_with(data_dir, "127.0.0.1:0", extra)?;
                return Ok(Deployment {
                    server,
                    cluster: None,
                });
            }
            Backend::Postgres(cluster) => {
                fieldsync_server::storage::postgres::scratch_database(cluster)
                    .map_err(|e| ServerError::NoAddress(format!("creating a database: {e}")))?
            }
        };
        let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        extra.extend(["--database".to_owned(), url.clone()]);
        // One after the other: the first creates the schema, the demo accounts and any demo
        // data; the second starts on a database already set up (seeding finds it done). Both
        // serve the data directory's one development certificate, which the client trusts.
        let server = start_instance(data_dir, &extra)?;
        let second = start_instance(data_dir, &extra)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let balancer = Balancer::start(&[server.addr, second.addr], seed)?;
        Ok(Deployment {
            server,
            cluster: Some(Cluster {
                url,
                second,
                balancer,
                data_dir: data_dir.to_owned(),
                extra,
            }),
        })
    }

    /// The address clients use: the balancer's, or the one server's.
    pub fn addr(&self) -> SocketAddr {
        match &self.cluster {
            Some(c) => c.balancer.addr(),
            None => self.server.addr,
        }
    }
}

fn start_instance(data_dir: &Path, extra: &[String]) -> Result<ServerProcess, ServerError> {
    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
    ServerProcess::start_with(data_dir, "127.0.0.1:0", &args)
}

impl Cluster {
    /// SIGKILLs the second instance (the balancer passes it over from then on) and starts it
    /// again on the same database; the balancer sends connections to the new one.
    pub fn restart_second(&mut self) -> Result<(), ServerError> {
        self.kill_second();
        self.start_second()
    }

    /// Starts both instances again after they stopped (SIGTERM, say), on the same database:
    /// `first` is the deployment's first instance.
    pub fn restart_both(&mut self, first: &mut ServerProcess) -> Result<(), ServerError> {
        self.balancer.remove(first.addr);
        *first = start_instance(&self.data_dir, &self.extra)?;
        self.balancer.add(first.addr);
        self.start_second()
    }

    /// SIGKILLs the second instance and takes it out of the balancer.
    pub fn kill_second(&mut self) {
        self.balancer.remove(self.second.addr);
        self.second.kill();
    }

    /// Starts the second instance again (after [`Cluster::kill_second`]).
    pub fn start_second(&mut self) -> Result<(), ServerError> {
        self.balancer.remove(self.second.addr);
        self.second = start_instance(&self.data_dir, &self.extra)?;
        self.balancer.add(self.second.addr);
        Ok(())
    }

    /// The numbers of one row of the test's database (`SELECT COUNT(*) FROM held`), read with `psql`
    /// from `FIELDSYNC_PG_BIN` (set by `scripts/with-postgres`) or the `PATH`.
    pub fn sql_numbers(&self, sql: &str) -> Vec<i64> {
        let psql = std::env::var("FIELDSYNC_PG_BIN")
            .map(|bin| Path::new(&bin).join("psql"))
            .unwrap_or_else(|_| "psql".into());
        let out = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-F",
                "|",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
            ])
            .arg(sql)
            .arg(&self.url)
            .output()
            .unwrap_or_else(|e| panic!("running psql: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "psql {sql}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.trim()
            .split('|')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("psql {sql}: not a number: {n}"))
            })
            .collect()
    }
}
