//! The record list's columns and order, accounts' full names and phone numbers, and the area
//! filter of an old commune, on either backend (`FIELDSYNC_TEST_BACKEND`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::{household, World};
use fieldsync_core::{RecordType, Value};
use fieldsync_server::accounts::{self, AccountError, Authority};
use fieldsync_server::scope::{communes_within, Scope};
use fieldsync_server::storage::*;
use uuid::Uuid;

fn collector(world: &World, username: &str, full_name: Option<&str>, areas: &[&str]) {
    accounts::create_user(
        &world.storage,
        Authority::Operator,
        &NewUser {
            username: username.into(),
            password: "mật khẩu dài".into(),
            role: Role::Collector,
            sensitive_access: false,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            can_grant_sensitive: false,
            full_name: full_name.map(str::to_owned),
            phone: None,
        },
    )
    .unwrap();
}

fn household_in(phone: &mut common::Phone, commune: &str, head: &str, village: &str) -> Uuid {
    let mut fields = household(commune, head);
    fields.insert("village".into(), Value::Text(village.into()));
    phone.store.create(RecordType::Household, &fields).unwrap()
}

fn list(world: &World, query: RecordQuery) -> Vec<RecordSummary> {
    world
        .storage
        .list_records(&Scope::everything(), &query)
        .unwrap()
        .records
}

fn titles(rows: &[RecordSummary]) -> Vec<String> {
    rows.iter().map(|r| r.title.clone()).collect()
}

#[test]
fn a_full_name_and_phone_round_trip_with_their_diacritics_and_bad_ones_change_nothing() {
    let world = World::new();
    let made = accounts::create_user(
        &world.storage,
        Authority::Operator,
        &NewUser {
            username: "canbo.hnui".into(),
            password: "mật khẩu dài".into(),
            role: Role::Collector,
            sensitive_access: false,
            areas: vec!["62.610.02".into()],
            can_grant_sensitive: false,
            full_name: Some("  Y Hnuôl Niê Kdăm  ".into()),
            phone: Some("+84912345678".into()),
        },
    )
    .unwrap();
    assert_eq!(made.full_name.as_deref(), Some("Y Hnuôl Niê Kdăm"));
    let (read, _) = world.storage.user_by_name("canbo.hnui").unwrap().unwrap();
    assert_eq!(read.full_name.as_deref(), Some("Y Hnuôl Niê Kdăm"));
    assert_eq!(read.phone.as_deref(), Some("+84912345678"));

    let change = |full_name: Option<&str>, phone: Option<&str>| {
        accounts::update_user(
            &world.storage,
            Authority::Operator,
            "canbo.hnui",
            &AccountUpdate {
                full_name: full_name.map(str::to_owned),
                phone: phone.map(str::to_owned),
                ..AccountUpdate::default()
            },
        )
    };
    for (name, phone) in [
        (Some("x".repeat(121).as_str()), None),
        (Some("Đinh\u{7}Thị"), None),
        (None, Some("0912 345 678")),
        (None, Some("09123")),
        (None, Some("+84-912345678")),
        (None, Some("++84912345678")),
    ] {
        let refused = change(name, phone);
        assert!(
            matches!(refused, Err(AccountError::Invalid(_))),
            "{name:?} {phone:?}: {refused:?}"
        );
    }
    let (unchanged, _) = world.storage.user_by_name("canbo.hnui").unwrap().unwrap();
    assert_eq!(unchanged.full_name.as_deref(), Some("Y Hnuôl Niê Kdăm"));
    assert_eq!(unchanged.phone.as_deref(), Some("+84912345678"));

    let renamed = change(Some("Đinh Thị Ngọc Ánh"), Some("0912345678")).unwrap();
    assert_eq!(renamed.full_name.as_deref(), Some("Đinh Thị Ngọc Ánh"));
    assert_eq!(renamed.phone.as_deref(), Some("0912345678"));
    // Other changes leave both alone; empty clears.
    let kept = change(None, None).unwrap();
    assert_eq!(kept.full_name.as_deref(), Some("Đinh Thị Ngọc Ánh"));
    let cleared = change(Some(""), Some("")).unwrap();
    assert_eq!((cleared.full_name, cleared.phone), (None, None));
}

#[test]
fn the_list_tells_two_households_of_one_name_apart_and_sorts_by_any_column() {
    let world = World::new();
    collector(&world, "a", Some("Đinh Thị Ánh"), &["62.610"]);
    collector(&world, "b", None, &["62.610"]);
    let (mut a, mut b) = (world.phone("a"), world.phone("b"));
    let first = household_in(&mut a, "62.610.02", "Y Hnui", "Làng Le");
    household_in(&mut a, "62.610.01", "A Blưn", "Thôn 2");
    let second = household_in(&mut b, "62.610.02", "Y Hnui", "Thôn Đăk Mế");
    household_in(&mut b, "62.610.01", "Đinh Văn Kră", "Thôn 1");
    world.sync(&mut a);
    world.sync(&mut b);

    let rows = list(
        &world,
        RecordQuery {
            limit: 50,
            ..RecordQuery::default()
        },
    );
    let row = |id: Uuid| rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row(first).village.as_deref(), Some("Làng Le"));
    assert_eq!(row(second).village.as_deref(), Some("Thôn Đăk Mế"));
    let by = |id: Uuid| row(id).collector.clone().unwrap();
    assert_eq!(
        by(first),
        PersonName {
            username: "a".into(),
            full_name: Some("Đinh Thị Ánh".into())
        }
    );
    assert_eq!(
        by(second),
        PersonName {
            username: "b".into(),
            full_name: None
        }
    );

    let sorted = |sort: RecordSort, descending: bool| {
        titles(&list(
            &world,
            RecordQuery {
                sort,
                descending,
                limit: 50,
                ..RecordQuery::default()
            },
        ))
    };
    // Text compares byte by byte, the same on both backends ("Đ" after the ASCII letters).
    assert_eq!(
        sorted(RecordSort::Title, false),
        ["A Blưn", "Y Hnui", "Y Hnui", "Đinh Văn Kră"]
    );
    assert_eq!(
        sorted(RecordSort::Title, true),
        ["Đinh Văn Kră", "Y Hnui", "Y Hnui", "A Blưn"]
    );
    // Collector: b has no full name, so "b" sorts before "Đinh Thị Ánh".
    let by_collector = list(
        &world,
        RecordQuery {
            sort: RecordSort::Collector,
            limit: 50,
            ..RecordQuery::default()
        },
    );
    let names: Vec<String> = by_collector
        .iter()
        .map(|r| r.collector.clone().unwrap().username)
        .collect();
    assert_eq!(names, ["b", "b", "a", "a"]);
    // Place: commune code, then village.
    let places: Vec<(String, String)> = list(
        &world,
        RecordQuery {
            sort: RecordSort::Place,
            limit: 50,
            ..RecordQuery::default()
        },
    )
    .into_iter()
    .map(|r| (r.commune.unwrap(), r.village.unwrap()))
    .collect();
    assert_eq!(
        places,
        [
            ("62.610.01".to_owned(), "Thôn 1".to_owned()),
            ("62.610.01".to_owned(), "Thôn 2".to_owned()),
            ("62.610.02".to_owned(), "Làng Le".to_owned()),
            ("62.610.02".to_owned(), "Thôn Đăk Mế".to_owned()),
        ]
    );

    // Pages of one, in every order and both ways, give every record once: ties (two "Y
    // Hnui", two records of one collector) go to the id.
    for sort in [
        RecordSort::Title,
        RecordSort::Place,
        RecordSort::Collector,
        RecordSort::Updated,
        RecordSort::Review,
    ] {
        for descending in [false, true] {
            let whole: Vec<Uuid> = list(
                &world,
                RecordQuery {
                    sort,
                    descending,
                    limit: 50,
                    ..RecordQuery::default()
                },
            )
            .iter()
            .map(|r| r.id)
            .collect();
            let paged: Vec<Uuid> = (0..4)
                .flat_map(|offset| {
                    list(
                        &world,
                        RecordQuery {
                            sort,
                            descending,
                            limit: 1,
                            offset,
                            ..RecordQuery::default()
                        },
                    )
                })
                .map(|r| r.id)
                .collect();
            assert_eq!(paged, whole, "{sort:?} descending {descending}");
            assert_eq!(whole.len(), 4);
        }
    }
}

#[test]
fn an_old_commune_lists_the_records_registered_in_it_and_not_its_new_communes_other_ones() {
    let world = World::new();
    collector(&world, "a", Some("Rơ Châm H'Nương"), &["51.102", "51.104"]);
    let mut a = world.phone("a");
    let muong_hoong = household_in(&mut a, "62.610.02", "Y Hnui", "Làng Le");
    let ngoc_linh_old = household_in(&mut a, "62.610.01", "A Blưn", "Thôn 2");
    let ngoc_linh_new = household_in(&mut a, "51.102", "Y Hnui", "Thôn 1");
    let bo_y_new = household_in(&mut a, "51.104", "Đinh Văn Kră", "Thôn 1");
    world.sync(&mut a);

    let in_area = |code: &str| {
        let mut ids: Vec<Uuid> = list(
            &world,
            RecordQuery {
                communes: Some(communes_within(code)),
                limit: 50,
                ..RecordQuery::default()
            },
        )
        .iter()
        .map(|r| r.id)
        .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    // "Mường Hoong → Ngọc Linh": only what was registered in Mường Hoong.
    assert_eq!(in_area("62.610.02"), [muong_hoong]);
    assert_eq!(in_area("62.610.01"), [ngoc_linh_old]);
    // Today's Ngọc Linh: its own records and those of the old communes merged into it.
    assert_eq!(
        in_area("51.102"),
        sorted(vec![muong_hoong, ngoc_linh_old, ngoc_linh_new])
    );
    // Old Bờ Y became today's Bờ Y alone: a record of today's Bờ Y lies in old Bờ Y.
    assert_eq!(in_area("62.611.01"), [bo_y_new]);
    // The old district holds all of Ngọc Linh's old communes, so today's Ngọc Linh too.
    assert_eq!(
        in_area("62.610"),
        sorted(vec![muong_hoong, ngoc_linh_old, ngoc_linh_new])
    );
}
