//! A full data disk is an answer, not an outage: the server runs on a small filesystem (a
//! tmpfs mounted for the test, which needs root, as CI has), the test fills it, and then a
//! sync whose push cannot be stored is answered with the push deferred (nothing acked, nothing
//! refused, `Retry-After`) and its pull served, so phones with unsent edits keep receiving;
//! other writes get 503 `disk_full`, reads go on, `/v1/health` says so, a restart on the full
//! disk works, and once space is freed everything pending arrives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{decompress, SyncClient, SyncResponse, MAX_BODY_BYTES};
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{enrol, Phone, PhoneError};
use fieldsync_tests::server::{binary, ServerProcess, ADMIN};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir_all(&mount).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a small tmpfs failed: this test needs root (CI runs as root)"
        );
        SmallDisk { mount, _dir: dir }
    }

    /// Writes a filler file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            if file.write_all(&block).is_err() {
                break;
            }
        }
        // The last bytes: down to the smallest write the disk refuses.
        for _ in 0..4096 {
            if file.write_all(&[0u8; 16]).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

async fn get(http: &HttpsClient, server: &ServerProcess, path: &str) -> (u16, serde_json::Value) {
    let response = http
        .request(server.addr, "GET", path, &[], Vec::new())
        .await
        .unwrap();
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null),
    )
}

fn admin_devices(data: &Path) -> std::process::Output {
    Command::new(binary().unwrap())
        .args(["admin", "devices", "--data-dir"])
        .arg(data)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_defers_pushes_serves_pulls_and_recovers() {
    if fieldsync_tests::deployment::skip_unless_sqlite(
        "it fills a small file system under the SQLite data directory of one server",
    ) {
        return;
    }
    let disk = SmallDisk::mount("6m");
    let data = disk.mount.join("data");
    let phones_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&data, "127.0.0.1:0").unwrap();
    let http = HttpsClient::new(&server.cert_pem).unwrap();
    let admin = enrol(&http, server.addr, ADMIN.0, ADMIN.1).await.unwrap();
    for user in ["a", "b"] {
        fieldsync_tests::phone::call_json(
            &http,
            server.addr,
            "POST",
            "/v1/admin/users",
            Some(&admin),
            &serde_json::json!({ "username": user, "password": PASSWORD, "role": "collector",
                                 "areas": [NGOC_LINH] }),
        )
        .await
        .unwrap();
    }
    let enrol_phone = |name: &'static str| {
        let path = phones_dir.path().join(format!("{name}.sqlite"));
        let http = http.clone();
        let addr = server.addr;
        async move {
            Phone::enrol(&http, addr, &path, name, PASSWORD, Default::default())
                .await
                .unwrap()
        }
    };
    let mut a = enrol_phone("a").await;
    let mut b = enrol_phone("b").await;
    a.store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Trước"),
        )
        .unwrap();
    a.sync(&http, server.addr, 10).await.unwrap();
    // Stored before the disk fills, not yet on a's phone.
    let from_b = b
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Của B"),
        )
        .unwrap();
    b.sync(&http, server.addr, 10).await.unwrap();
    assert_eq!(get(&http, &server, "/v1/health").await.0, 200);

    let filler = disk.fill();
    for i in 0..20 {
        a.store
            .create(
                RecordType::Household,
                &minimal_household(NGOC_LINH, &format!("Y Khi đầy {i} {}", "x".repeat(100))),
            )
            .unwrap();
    }
    let pending = a.store.unacked_count().unwrap();
    // The phone with unsent edits still receives: its push is deferred, its pull served.
    let report = a.sync(&http, server.addr, 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (0, 0), "{report:?}");
    assert_eq!(a.store.unacked_count().unwrap(), pending, "nothing lost");
    assert!(
        a.store.get(from_b).is_ok(),
        "b's record arrived on a full disk"
    );
    let body = SyncClient::default().request(&a.store).unwrap().body;
    let raw = Phone::exchange(&http, server.addr, &a.token, body)
        .await
        .unwrap();
    assert_eq!(raw.status, 200, "{}", String::from_utf8_lossy(&raw.body));
    let answer = SyncResponse::decode(&decompress(&raw.body, MAX_BODY_BYTES).unwrap()).unwrap();
    assert!(
        answer.acked.is_empty() && answer.rejected.is_empty() && answer.need.is_empty(),
        "nothing of the push answered"
    );
    assert!(
        raw.header("retry-after").is_some(),
        "a deferred push says when to retry"
    );
    // Other writes are refused outright.
    let edit = fieldsync_tests::phone::call_json(
        &http,
        server.addr,
        "POST",
        "/v1/admin/users",
        Some(&admin),
        &serde_json::json!({ "username": "c", "password": PASSWORD, "role": "collector",
                             "areas": [NGOC_LINH] }),
    )
    .await
    .unwrap_err();
    match &edit {
        PhoneError::Status { status, body } => {
            assert_eq!(*status, 503, "{body}");
            assert!(body.contains("disk_full"), "{body}");
        }
        other => panic!("expected 503, got {other}"),
    }
    let (status, health) = get(&http, &server, "/v1/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["disk"]["full"], true);

    // Reads go on: another phone pulls what was stored before the disk filled.
    b.sync(&http, server.addr, 10).await.unwrap();
    assert_eq!(b.store.count(&Default::default()).unwrap(), 2);

    // A server restarted on the full disk starts, serves pulls, and the admin tools work.
    assert!(server.terminate());
    let listing = admin_devices(&data);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    server = ServerProcess::start(&data, "127.0.0.1:0").unwrap();
    let http = HttpsClient::new(&server.cert_pem).unwrap();
    let mut c = Phone::open(
        &phones_dir.path().join("b.sqlite"),
        b.token.clone(),
        Default::default(),
    )
    .unwrap();
    drop(b);
    c.sync(&http, server.addr, 10).await.unwrap();
    assert_eq!(get(&http, &server, "/v1/health").await.0, 503);

    // Space is freed: what waited on the phone arrives, once.
    std::fs::remove_file(filler).unwrap();
    let report = a.sync(&http, server.addr, 20).await.unwrap();
    assert_eq!(report.acked as u64, pending);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    c.sync(&http, server.addr, 10).await.unwrap();
    assert_eq!(c.store.count(&Default::default()).unwrap(), 22);
    assert_eq!(get(&http, &server, "/v1/health").await.0, 200);
}
