//! Shared set-up of the end-to-end tests: a real server, its admin, users and phones.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub use fieldsync_core::generator::minimal_household;
use fieldsync_core::protocol::ClientOptions;
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
    pub server: ServerProcess,
    pub http: HttpsClient,
    pub admin: String,
}

impl Env {
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        std::fs::create_dir_all(&data).unwrap();
        let server = ServerProcess::start(&data, "127.0.0.1:0").unwrap();
        let http = HttpsClient::new(&server.cert_pem).unwrap();
        let admin = enrol(&http, server.addr, ADMIN.0, ADMIN.1).await.unwrap();
        Env {
            dir,
            server,
            http,
            admin,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
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
    /// running server's file: `/v1/admin/stats` gives the demo admin, who has no sensitive
    /// access, only the counts of what it may see.
    pub async fn stats(&self) -> serde_json::Value {
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
