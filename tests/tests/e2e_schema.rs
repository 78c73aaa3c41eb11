//! `GET /v1/schema` carries exactly the record model's tables (every record type, field and
//! code, the 54 ethnic groups, every area, every problem and reject code), names each one in
//! both languages, gives each caller its own scope, and is revalidated by its ETag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, PASSWORD};
use fieldsync_core::model::{ethnic_groups, schema_of, Areas, FieldKind};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::RecordType;
use fieldsync_server::scope::communes_of;
use fieldsync_tests::https::HttpResponse;
use fieldsync_tests::phone::{call_json, enrol};
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;

async fn account(env: &Env, name: &str, role: &str, areas: &[&str], sensitive: bool) -> String {
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": role,
                 "areas": areas, "sensitive_access": sensitive }),
    )
    .await
    .unwrap();
    enrol(&env.http, env.addr(), name, PASSWORD).await.unwrap()
}

async fn ask(env: &Env, token: Option<&str>, if_none_match: Option<&str>) -> HttpResponse {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    if let Some(tag) = if_none_match {
        headers.push(("if-none-match", tag.to_owned()));
    }
    env.http
        .request(env.addr(), "GET", "/v1/schema", &headers, Vec::new())
        .await
        .unwrap()
}

fn body(response: &HttpResponse) -> Json {
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).unwrap()
}

fn named(label: &Json, what: &str) {
    for lang in ["vi", "en"] {
        assert!(
            label[lang].as_str().is_some_and(|s| !s.trim().is_empty()),
            "{what}: no {lang} name"
        );
    }
}

/// What the answer says of one field, checked against its spec.
fn check_field(t: RecordType, got: &Json, name: &str, kind: FieldKind, required: bool) {
    let what = format!("{t}.{name}");
    assert_eq!(got["name"], name, "{what}");
    assert_eq!(got["required"], required, "{what}");
    named(&got["label"], &what);
    let (expected_kind, codes) = match kind {
        FieldKind::Text { max_chars } => {
            assert_eq!(got["max_chars"], max_chars, "{what}");
            ("text", None)
        }
        FieldKind::Int { min, max } => {
            assert_eq!(
                (&got["min"], &got["max"]),
                (&json!(min), &json!(max)),
                "{what}"
            );
            ("int", None)
        }
        FieldKind::Bool => ("bool", None),
        FieldKind::Date => ("date", None),
        FieldKind::DateOrYear => ("date_or_year", None),
        FieldKind::Enum(list) => ("code", Some(list)),
        FieldKind::Commune => ("commune", None),
        FieldKind::Ethnicity => ("ethnicity", None),
        FieldKind::Ref(to) => {
            assert_eq!(got["record_type"], to.as_str(), "{what}");
            ("ref", None)
        }
        FieldKind::NationalId => ("national_id", None),
        FieldKind::Phone => ("phone", None),
        FieldKind::RefSet(to) => {
            assert_eq!(got["record_type"], to.as_str(), "{what}");
            ("ref_set", None)
        }
        FieldKind::EnumSet(list) => ("code_set", Some(list)),
    };
    assert_eq!(got["kind"], expected_kind, "{what}");
    match codes {
        Some(list) => {
            let sent = got["codes"].as_array().unwrap();
            let codes: Vec<&str> = sent.iter().map(|c| c["code"].as_str().unwrap()).collect();
            assert_eq!(codes, list, "{what}: the codes, in order");
            for c in sent {
                named(&c["label"], &format!("{what} {}", c["code"]));
            }
        }
        None => assert!(
            got.get("codes").is_none(),
            "{what}: codes of a field without"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_the_record_model_with_each_callers_scope() {
    let env = Env::start().await;
    let answer = ask(&env, Some(&env.admin), None).await;
    let schema = body(&answer);

    // Every record type, in the model's order, with every field in form order.
    let types = schema["record_types"].as_array().unwrap();
    assert_eq!(types.len(), RecordType::ALL.len());
    for (t, got) in RecordType::ALL.into_iter().zip(types) {
        assert_eq!(got["name"], t.as_str());
        assert_eq!(got["sensitive"], t.is_sensitive(), "{t}");
        named(&got["label"], t.as_str());
        let fields = got["fields"].as_array().unwrap();
        let specs = schema_of(t).fields;
        assert_eq!(fields.len(), specs.len(), "{t}: the fields");
        for (spec, field) in specs.iter().zip(fields) {
            check_field(t, field, spec.name, spec.kind, spec.required);
        }
    }
    assert_eq!(
        schema["schema_version"],
        fieldsync_core::model::SCHEMA_VERSION
    );

    // The 54 ethnic groups with their codes and names.
    let groups = schema["ethnic_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 54);
    for (g, got) in ethnic_groups().iter().zip(groups) {
        assert_eq!(
            (&got["code"], &got["name"]),
            (&json!(g.code), &json!(g.name_vi))
        );
    }

    // Every area, every commune among them, as GET /v1/areas gives them.
    let areas: Vec<Json> = Areas::bundled().all().map(|a| json!(a)).collect();
    assert_eq!(schema["areas"], json!(areas));
    let communes: BTreeSet<&str> = schema["areas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["level"] == "commune")
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = Areas::bundled()
        .communes()
        .map(|a| a.code.as_str())
        .collect();
    assert_eq!(communes, expected);
    let listed = call_json(
        &env.http,
        env.addr(),
        "GET",
        "/v1/areas",
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .unwrap();
    assert_eq!(schema["areas"], listed["areas"]);

    // Every reject code of the protocol, and the validation problems, each named.
    let rejections: Vec<&str> = schema["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            named(&r["label"], "rejection");
            r["code"].as_str().unwrap()
        })
        .collect();
    let all: Vec<&str> = RejectCode::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(rejections, all);
    let problems: BTreeSet<&str> = schema["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            named(&p["label"], "problem");
            p["code"].as_str().unwrap()
        })
        .collect();
    assert_eq!(problems.len(), 9);
    assert!(problems.contains("required") && problems.contains("not_a_scalar"));

    // The admin of every area, without sensitive access: all communes, no support cases.
    let admin_types = json!(["household", "person", "group", "activity"]);
    assert_eq!(
        schema["scope"],
        json!({ "record_types": admin_types, "communes": null })
    );

    // A district supervisor: the district's communes and what they became in 2025.
    let sup = account(&env, "giamsat-huyen", "supervisor", &["62.610"], true).await;
    let scope = body(&ask(&env, Some(&sup), None).await)["scope"].clone();
    assert_eq!(
        scope["record_types"],
        json!(["household", "person", "group", "activity", "support_case"])
    );
    let communes: BTreeSet<String> = scope["communes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(communes, communes_of(&["62.610".to_owned()]));
    assert!(communes.contains("62.610.01") && communes.contains("51.102"));
    assert!(
        !communes.contains("62.616.01"),
        "another district's commune"
    );

    // Revalidated by its ETag; kept by this browser only; not for collectors or strangers.
    assert_eq!(answer.header("cache-control"), Some("private, no-cache"));
    let tag = answer.header("etag").unwrap().to_owned();
    let again = ask(&env, Some(&env.admin), Some(&tag)).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let other = ask(&env, Some(&sup), Some(&tag)).await;
    assert_eq!(other.status, 200, "another scope is another answer");
    assert_ne!(other.header("etag"), Some(tag.as_str()));
    let collector = account(&env, "thu-thap", "collector", &["62.610.01"], false).await;
    assert_eq!(ask(&env, Some(&collector), None).await.status, 403);
    assert_eq!(ask(&env, None, None).await.status, 401);
}
