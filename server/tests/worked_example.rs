//! The worked example of docs/sync-protocol.md §7, rebuilt from code: a fresh phone with a fixed
//! actor and clock creates one household and syncs once with a server of fixed identity. The hex dumps in
//! the document must be exactly these bytes, and every size it quotes (inflated, and gzipped as
//! the phone and the server's route really send them) these sizes, so the document cannot drift
//! from the protocol. Run with `--nocapture` to print the dumps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_core::generator::minimal_household;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{
    decompress, ClientOptions, SyncClient, SyncRequest, MAX_BODY_BYTES,
};
use fieldsync_core::protocol::{PROTOCOL_VERSION, VERSION_HEADER};
use fieldsync_core::Store;
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{DeviceKeys, NewUser, Role};
use std::sync::Arc;
use uuid::Uuid;

/// The phone's signing key's secret seed (32 bytes, hex); its actor derives from the public key.
const SIGNING_KEY: &str = "0c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee0";
const RECORD: &str = "01960000-0000-7000-8000-000000000001";
const SERVER_ID: &str = "5e7e7e7e-0000-4000-8000-000000000001";
/// The phone's clock when it makes the change: 1 January 2026, 07:00 in Vietnam.
const MADE_AT: i64 = 1_767_225_600;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hexdump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = row
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:04x}  {:<47}  {}", i * 16, hex.join(" "), text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The hex dump in the document's code block that follows the line containing `marker`.
fn documented_dump(doc: &str, marker: &str) -> String {
    let after = &doc[doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the doc"))..];
    let start = after.find("```\n").unwrap() + 4;
    let end = start + after[start..].find("```").unwrap();
    after[start..end].trim_end().to_owned()
}

/// The gzipped body the server's `POST /v1/sync` route answers `body` with.
async fn sent_by_the_server(state: &AppState, token: &str, body: &[u8]) -> Vec<u8> {
    let response = warp::test::request()
        .method("POST")
        .path("/v1/sync")
        .header("authorization", format!("Bearer {token}"))
        .header(VERSION_HEADER, PROTOCOL_VERSION.to_string())
        .header("content-type", fieldsync_core::protocol::CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .body(body)
        .reply(&routes(state.clone()))
        .await;
    assert_eq!(response.status(), 200);
    response.body().to_vec()
}

#[tokio::test]
async fn the_documented_bytes_are_the_protocols_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server_path = dir.path().join("server.sqlite");
    drop(SqliteStorage::open(&server_path).unwrap());
    rusqlite::Connection::open(&server_path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'server_id'",
            [SERVER_ID],
        )
        .unwrap();
    let storage = SqliteStorage::open(&server_path).unwrap();
    accounts::create_user(
        &storage,
        Authority::Operator,
        &NewUser {
            username: "lan".into(),
            password: "mật khẩu của Lan".into(),
            role: Role::Collector,
            sensitive_access: false,
            areas: vec!["62.610.01".into()],
            can_grant_sensitive: false,
            full_name: None,
            phone: None,
        },
    )
    .unwrap();

    let phone_path = dir.path().join("phone.sqlite");
    drop(Store::open(&phone_path).unwrap());
    rusqlite::Connection::open(&phone_path)
        .unwrap()
        .execute_batch(&format!(
            "UPDATE meta SET value = '{SIGNING_KEY}' WHERE key = 'signing_key';
             DELETE FROM meta WHERE key = 'device_id';"
        ))
        .unwrap();
    let mut store = Store::open(&phone_path).unwrap();
    store.set_clock(|| MADE_AT);
    let actor = fieldsync_core::signing::actor_for_public_key(&store.public_key());
    assert_eq!(store.device_id(), actor);
    let keys = DeviceKeys::verified(&store.enrolment("lan"), "lan").unwrap();
    let (_, token, _) =
        accounts::enrol(&storage, "lan", "mật khẩu của Lan", "phone", Some(&keys)).unwrap();
    let caller = accounts::authorise(&storage, &token).unwrap().unwrap();
    let record = Uuid::parse_str(RECORD).unwrap();
    store
        .write(|w| {
            w.create_with_id(
                record,
                RecordType::Household,
                &minimal_household("62.610.01", "Y Blơ"),
            )
        })
        .unwrap();

    let client = SyncClient::new(ClientOptions::default());
    let body = client.request(&store).unwrap().body;
    let request_bytes = decompress(&body, MAX_BODY_BYTES).unwrap();
    let request = SyncRequest::decode(&request_bytes).unwrap();
    let change = &request.push[0].bytes;
    let hash = store.unacked(1 << 20).unwrap()[0].hash;
    let response = fieldsync_server::sync::exchange_as(&storage, &caller, &request).unwrap();
    let response_bytes = response.encode();
    assert_eq!(response.acked, vec![hash.0]);
    client
        .handle_response(
            &mut store,
            &fieldsync_core::protocol::compress(&response_bytes),
        )
        .unwrap();

    let idle = SyncClient::new(ClientOptions::default())
        .request(&store)
        .unwrap()
        .body;
    let idle_bytes = decompress(&idle, MAX_BODY_BYTES).unwrap();
    let idle_response = fieldsync_server::sync::exchange_as(
        &storage,
        &caller,
        &SyncRequest::decode(&idle_bytes).unwrap(),
    )
    .unwrap()
    .encode();

    let facts = format!(
        "public key {}\nactor {actor}\nchange: {} bytes, hash {}\nrequest: {} bytes inflated, {} gzipped\nresponse: {} bytes inflated, {} gzipped\nidle request {} bytes ({} gzipped), idle response {} bytes ({} gzipped)",
        hex(&store.public_key()),
        change.len(),
        hash,
        request_bytes.len(),
        body.len(),
        response_bytes.len(),
        fieldsync_core::protocol::compress(&response_bytes).len(),
        idle_bytes.len(),
        idle.len(),
        idle_response.len(),
        fieldsync_core::protocol::compress(&idle_response).len(),
    );
    println!(
        "{facts}\n\nSyncRequest\n{}\n\nSyncResponse\n{}",
        hexdump(&request_bytes),
        hexdump(&response_bytes)
    );

    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/sync-protocol.md"
    ))
    .unwrap();
    assert_eq!(
        documented_dump(&doc, "<!-- example: request -->"),
        hexdump(&request_bytes)
    );
    assert_eq!(
        documented_dump(&doc, "<!-- example: response -->"),
        hexdump(&response_bytes)
    );
    assert!(
        doc.contains(&hash.to_string()),
        "the doc names the change's hash"
    );

    // The same two requests again, through the server's route: resending is idempotent, so
    // the answers are the ones the phone got, now as the server puts them on the wire.
    let state = AppState::new(Arc::new(storage), None, Timeouts::default()).unwrap();
    let response_sent = sent_by_the_server(&state, &token, &body).await;
    assert_eq!(
        decompress(&response_sent, MAX_BODY_BYTES).unwrap(),
        response_bytes
    );
    let idle_sent = sent_by_the_server(&state, &token, &idle).await;
    assert_eq!(
        decompress(&idle_sent, MAX_BODY_BYTES).unwrap(),
        idle_response
    );
    let quoted = [
        format!("the change is {} bytes (chunk type 1)", change.len()),
        format!(
            "**SyncRequest**: {} bytes inflated, {} bytes as the gzip body",
            request_bytes.len(),
            body.len()
        ),
        format!(
            "**SyncResponse**: {} bytes inflated, {} bytes as the gzip body",
            response_bytes.len(),
            response_sent.len()
        ),
        format!("sends a {}-byte request", idle_bytes.len()),
        format!("push count `00`; {} bytes gzipped)", idle.len()),
        format!("gets a {}-byte response", idle_response.len()),
        format!("the server id; {} bytes gzipped)", idle_sent.len()),
        format!(
            "In §7 this costs {} + {} bytes of body.",
            idle.len(),
            idle_sent.len()
        ),
    ];
    let flat = doc.replace('\n', " ");
    for sentence in quoted {
        let sentence = sentence.replace('\n', " ");
        assert!(flat.contains(&sentence), "the doc should say: {sentence}");
    }
}
