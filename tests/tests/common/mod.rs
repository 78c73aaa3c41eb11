//! Shared set-up of the end-to-end tests: a real server (one on SQLite, or two instances on
//! PostgreSQL behind a balancer, see `fieldsync_tests::deployment`), its admin, users and phones.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub use fieldsync_core::generator::minimal_household;
use fieldsync_core::protocol::ClientOptions;
use fieldsync_tests::deployment::{Cluster, Deployment};
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{call_json, enrol, Phone};
use fieldsync_tests::server::{ServerProcess, ADMIN};
use serde_json::json;
use std::net::SocketAddr;
use tempfile::TempDir;

pub const NGOC_LINH: &str = "62.610.01";
pub const MO_RAI: &str = "62.616.01";
pub const PASSWORD: &str = "mật-khẩu-thử";

pub struct Env {
    pub dir: TempDir,
    /// The SQLite server, or on PostgreSQL the first instance.
    pub server: ServerProcess,
    /// On PostgreSQL: the second instance and the balancer in front of both.
    pub cluster: Option<Cluster>,
    pub http: HttpsClient,
    pub admin: String,
}

impl Env {
    /// The run's deployment with no demo records.
    pub async fn start() -> Env {
        Env::start_with(&["--demo-households", "0"]).await
    }

    /// The run's deployment, `serve --dev` with `extra` arguments.
    pub async fn start_with(extra: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        std::fs::create_dir_all(&data).unwrap();
        let Deployment { server, cluster } = Deployment::start(&data, extra).unwrap();
        Env::around(dir, server, cluster).await
    }

    /// An environment around servers the caller started (in `dir`).
    pub async fn around(dir: TempDir, server: ServerProcess, cluster: Option<Cluster>) -> Env {
        let http = HttpsClient::new(&server.cert_pem).unwrap();
        let addr = cluster.as_ref().map_or(server.addr, |c| c.balancer.addr());
        let admin = enrol(&http, addr, ADMIN.0, ADMIN.1).await.unwrap();
        Env {
            dir,
            server,
            cluster,
            http,
            admin,
        }
    }

    /// Where clients send their requests: the one server, or the balancer.
    pub fn addr(&self) -> SocketAddr {
        match &self.cluster {
            Some(c) => c.balancer.addr(),
            None => self.server.addr,
        }
    }

    /// The arguments that point a `fieldsync-server admin` command at this deployment's data:
    /// the data directory, and on PostgreSQL the database.
    pub fn data_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data-dir".into(), self.server.data_dir.clone().into()];
        if let Some(cluster) = &self.cluster {
            args.extend(["--database".into(), cluster.url.clone().into()]);
        }
        args
    }

    /// Whether this run is on PostgreSQL (two instances behind the balancer).
    pub fn on_postgres(&self) -> bool {
        self.cluster.is_some()
    }

    /// Starts the server again on the same data after it stopped, as [`Env::start`] did (both
    /// instances on PostgreSQL).
    pub fn restart(&mut self) {
        match &mut self.cluster {
            Some(cluster) => cluster.restart_both(&mut self.server).unwrap(),
            None => {
                let data_dir = self.server.data_dir.clone();
                self.server = ServerProcess::start(&data_dir, "127.0.0.1:0").unwrap();
            }
        }
    }

    /// Size of the server's database: the SQLite file with its write-ahead log, or the
    /// PostgreSQL database.
    pub fn database_bytes(&self) -> u64 {
        if let Some(cluster) = &self.cluster {
            return cluster.sql_numbers("SELECT pg_database_size(current_database())")[0] as u64;
        }
        let db = self.server.database_path();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        [db, wal.into()]
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    }

    /// The path of the SQLite database; panics on PostgreSQL (a test that reads the file is
    /// SQLite-only and says so with `skip_unless_sqlite`).
    pub fn database_path(&self) -> std::path::PathBuf {
        assert!(self.cluster.is_none(), "no SQLite file on PostgreSQL");
        self.server.database_path()
    }

    /// One number from the server's database, on either backend (SQL both understand).
    pub fn db_number(&self, sql: &str) -> i64 {
        if let Some(cluster) = &self.cluster {
            return cluster.sql_numbers(sql)[0];
        }
        let conn = rusqlite::Connection::open_with_flags(
            self.server.database_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub async fn user(&self, name: &str, areas: &[&str], sensitive: bool) {
        call_json(
            &self.http,
            self.addr(),
            "POST",
            "/v1/admin/users",
            Some(&self.admin),
            &json!({ "username": name, "password": PASSWORD, "role": "collector",
                     "areas": areas, "sensitive_access": sensitive }),
        )
        .await
        .unwrap();
    }

    /// Gives an account its full name, as an admin does on the users page.
    #[allow(dead_code)]
    pub async fn set_full_name(&self, name: &str, full_name: &str) {
        call_json(
            &self.http,
            self.addr(),
            "PATCH",
            &format!("/v1/admin/users/{name}"),
            Some(&self.admin),
            &json!({ "full_name": full_name }),
        )
        .await
        .unwrap();
    }

    pub async fn phone(&self, name: &str, options: ClientOptions) -> Phone {
        let path = self
            .dir
            .path()
            .join(format!("{name}-{}.sqlite", uuid::Uuid::now_v7()));
        Phone::enrol(&self.http, self.addr(), &path, name, PASSWORD, options)
            .await
            .unwrap()
    }

    /// The whole database's counts (records, changes, held, log entries), read from the
    /// running server's file or PostgreSQL database: `/v1/admin/stats` gives the demo admin, who has no sensitive
    /// access, only the counts of what it may see.
    pub async fn stats(&self) -> serde_json::Value {
        if let Some(cluster) = &self.cluster {
            let n = cluster.sql_numbers(
                "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM changes), \
                 (SELECT COUNT(*) FROM held), (SELECT COUNT(*) FROM log)",
            );
            return json!({
                "records": n[0], "changes": n[1], "held": n[2], "log_entries": n[3],
            });
        }
        let conn = rusqlite::Connection::open_with_flags(
            self.server.database_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        json!({
            "records": count("records"),
            "changes": count("changes"),
            "held": count("held"),
            "log_entries": count("log"),
        })
    }
}
