//! TLS to PostgreSQL: with `--database-ca` every connection is TLS and the server's certificate
//! is verified; a wrong authority, or `sslmode=require` without one, is refused at start.
//!
//! The cluster of `scripts/with-postgres` serves TLS with a certificate for 127.0.0.1 signed
//! by the authority in `FIELDSYNC_TEST_POSTGRES_CA`, and lets the role `fieldsync_tls` in over
//! TLS only, so a storage that works as that role did use TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, NGOC_LINH};
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::StorageError;
use std::path::PathBuf;
use std::sync::Once;

const TLS_ROLE: &str = "fieldsync_tls";

fn authority() -> PathBuf {
    PathBuf::from(std::env::var("FIELDSYNC_TEST_POSTGRES_CA").expect(
        "this test needs the TLS cluster of scripts/with-postgres (FIELDSYNC_TEST_POSTGRES_CA)",
    ))
}

/// A fresh database, and its address for the TLS-only role.
fn tls_only_database() -> String {
    static ROLE: Once = Once::new();
    let admin = common::test_postgres();
    ROLE.call_once(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TLS_ROLE}') \
                     THEN CREATE ROLE {TLS_ROLE} LOGIN SUPERUSER; END IF; END $$"
                ))
                .await
                .unwrap();
        });
    });
    let url = scratch_database(&admin).unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    format!("{scheme}://{TLS_ROLE}@{host}")
}

fn open(url: &str, ca: Option<PathBuf>) -> Result<PostgresStorage, StorageError> {
    let mut options = PostgresOptions::new(url);
    options.ca = ca;
    PostgresStorage::open(&options)
}

#[test]
fn with_the_authority_the_storage_works_over_tls() {
    let url = tls_only_database();
    let world = World::on(Box::new(open(&url, Some(authority())).unwrap()));
    world.user("a", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    a.household(NGOC_LINH, "Y Blơ Niê");
    world.sync(&mut a);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    assert!(world.storage.stats().unwrap().changes > 0);
}

#[test]
fn without_the_authority_the_tls_only_role_is_refused() {
    // The same database in plain text: PostgreSQL refuses it, so the test above used TLS.
    let url = tls_only_database();
    let error = open(&url, None)
        .err()
        .expect("a plain connection is refused");
    assert!(error.to_string().contains("no encryption"), "{error}");
}

#[test]
fn a_certificate_from_another_authority_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = dir.path().join("other.pem");
    std::fs::write(&pem, other.cert.pem()).unwrap();
    let error = open(&tls_only_database(), Some(pem))
        .err()
        .expect("an unknown authority is refused");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}

#[test]
fn sslmode_require_without_an_authority_is_refused_before_connecting() {
    let url = format!("{}?sslmode=require", tls_only_database());
    let error = open(&url, None).err().expect("refused");
    assert!(matches!(error, StorageError::Invalid(_)), "{error}");
    assert!(error.to_string().contains("--database-ca"), "{error}");
}

#[test]
fn an_authority_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let error = open(&tls_only_database(), Some(empty))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}
