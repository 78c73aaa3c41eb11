//! Demo data and accounts for `serve --dev`: generated Project 8 records (three in four
//! approved) and one account of each role, printed at start-up.

use crate::accounts::{self, AccountError, Authority};
use crate::storage::{NewUser, Role, Storage, StorageError};
use fieldsync_core::generator::{generate, GenConfig};
use fieldsync_core::record::ReviewState;
use fieldsync_core::RecordDoc;
use uuid::Uuid;

/// Device id the demo records are written by.
pub const SEED_DEVICE: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_5eed_0001);

/// The demo accounts: (username, password, role, areas, sensitive access).
pub const DEMO_ACCOUNTS: &[(&str, &str, Role, &[&str], bool)] = &[
    ("admin", "fieldsync-quantri", Role::Admin, &["*"], false),
    (
        "giamsat.tinh",
        "fieldsync-demo",
        Role::Supervisor,
        &["62", "51"],
        true,
    ),
    (
        "canbo.ngoclinh",
        "fieldsync-demo",
        Role::Collector,
        &["62.610.01"],
        false,
    ),
    (
        "canbo.morai",
        "fieldsync-demo",
        Role::Collector,
        &["62.616.01"],
        true,
    ),
];

/// The demo accounts' full names, so that the page names people as it would in use.
fn demo_name(username: &str) -> Option<&'static str> {
    Some(match username {
        "giamsat.tinh" => "Nguyễn Thị Hương",
        "canbo.ngoclinh" => "Y Thị Hlen",
        "canbo.morai" => "Rơ Châm H'Nương",
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Core(#[from] fieldsync_core::CoreError),
}

/// Creates the demo accounts that do not exist yet, and the demo records if the server has
/// none. Returns how many records were added.
pub fn seed(storage: &dyn Storage, households: usize) -> Result<usize, SeedError> {
    for (username, password, role, areas, sensitive) in DEMO_ACCOUNTS {
        if storage.user_by_name(username)?.is_none() {
            accounts::create_user(
                storage,
                Authority::Operator,
                &NewUser {
                    username: (*username).into(),
                    password: (*password).into(),
                    role: *role,
                    sensitive_access: *sensitive,
                    areas: areas.iter().map(|a| (*a).to_owned()).collect(),
                    // Only the demo admin may give others sensitive access.
                    can_grant_sensitive: *role == Role::Admin,
                    full_name: demo_name(username).map(str::to_owned),
                    phone: None,
                },
            )?;
        }
    }
    if storage.stats()?.records > 0 {
        return Ok(0);
    }
    let records = generate(&GenConfig {
        households,
        ..GenConfig::default()
    });
    for chunk in records.chunks(500) {
        let mut changes = Vec::new();
        for r in chunk {
            let (mut doc, change) = RecordDoc::create(r.id, r.record_type, &r.fields, SEED_DEVICE)?;
            changes.push((r.id, change.bytes));
            for (field, member) in &r.sets {
                if let Some(c) = doc.add_member(field, member)? {
                    changes.push((r.id, c.bytes));
                }
            }
            // Three records in four approved, so that the supervisors' page shows plan progress
            // and a review queue from the start.
            if r.id.as_bytes()[15] % 4 != 0 {
                if let Some(c) = doc.set_review(ReviewState::Approved, None)? {
                    changes.push((r.id, c.bytes));
                }
            }
        }
        crate::sync::ingest_own(storage, SEED_DEVICE, &changes, crate::storage::now_ms())?;
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_passwords_meet_the_policy() {
        for (username, password, ..) in DEMO_ACCOUNTS {
            assert!(
                accounts::check_password(username, password).is_ok(),
                "{username}"
            );
        }
    }
}
