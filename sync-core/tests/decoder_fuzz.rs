//! Fuzzing the message decoders with random and mutated bytes: every input decodes or returns
//! an error; none panics, hangs or allocates without bound. Bounded case counts keep it in the
//! normal test run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_core::protocol::{
    compress, decode_request_body, decompress, ChangeEntry, SyncRequest, SyncResponse,
};
use fieldsync_core::record::decode_change;
use proptest::prelude::*;
use uuid::Uuid;

fn valid_request() -> Vec<u8> {
    SyncRequest {
        cursor: vec![1, 9, b'6', b'2', 3],
        max_pull_bytes: 65_536,
        push: vec![ChangeEntry {
            record_id: Uuid::from_u128(42),
            bytes: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
            signature: [3; 64],
        }],
    }
    .encode()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SyncRequest::decode(&bytes);
        let _ = SyncResponse::decode(&bytes);
        let _ = decode_request_body(&bytes);
        let _ = decode_change(&bytes);
        let _ = decompress(&bytes, 1 << 16);
    }

    #[test]
    fn mutated_valid_messages_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_request();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = SyncRequest::decode(&bytes);
        let _ = decode_request_body(&compress(&bytes));
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = b"FSYN\x01\x01".to_vec();
        bytes.extend(tail);
        let _ = SyncRequest::decode(&bytes);
        bytes[5] = 2;
        let _ = SyncResponse::decode(&bytes);
    }
}

#[test]
fn a_response_inflated_by_the_http_stack_is_accepted_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fieldsync_core::Store::open(dir.path().join("s.sqlite")).unwrap();
    let client = fieldsync_core::protocol::SyncClient::default();
    let response = SyncResponse {
        cursor: vec![1, 2, 3],
        ..Default::default()
    }
    .encode();
    client.handle_response(&mut store, &response).unwrap();
    client
        .handle_response(&mut store, &compress(&response))
        .unwrap();
    assert!(client.handle_response(&mut store, b"neither").is_err());
}
