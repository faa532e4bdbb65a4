//! PII over HTTP: content of events about a subject is sealed in the store, opened for
//! auditors and admins, withheld from viewers, and erased for everyone by
//! `POST /v1/subjects/erase` (admins only), while every hash still verifies.
//!
//! A new PII behaviour of the API gets its test here.

mod common;

use aitrail_store::tokens::Role;
use axum::http::{Method, StatusCode};
use common::Api;
use serde_json::{json, Value};

fn events(subject: &str, task: &str) -> Value {
    json!([
        {"type": "ai.inference", "task_id": task, "occurred_at": "2026-03-01T12:00:00Z",
         "subject": {"kind": "applicant", "id": subject}, "model": {"name": "m"},
         "input": {"prompt": format!("{task}: write to {subject}")},
         "output": {"text": format!("approve {task}")}},
        {"type": "review.decision", "task_id": task, "occurred_at": "2026-03-01T12:05:00Z",
         "subject": {"kind": "applicant", "id": subject},
         "actor": {"kind": "human", "id": "rev-1"},
         "review": {"decision": "modify", "changes": {"limit": task}}}
    ])
}

async fn erase(api: &Api, token: &str, body: Value) -> (StatusCode, Value) {
    let (s, b) = api
        .call(
            Method::POST,
            "/v1/subjects/erase",
            Some(token),
            Some("application/json"),
            body.to_string(),
        )
        .await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test]
async fn content_is_sealed_opened_by_role_and_erased_by_admins() {
    let api = Api::new();
    let ingest = api.token(Role::Ingest, "default");
    for (who, task) in [("ada@example.com", "loan-a"), ("bob@example.com", "loan-b")] {
        let (s, r) = api.post(&ingest, events(who, task)).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
    }
    // Stored: sealed, and no raw id or email anywhere.
    let stored = api.store.entry("default", 0).unwrap().unwrap();
    let text = String::from_utf8(stored.entry.clone()).unwrap();
    assert!(
        text.contains("\"encrypted\":{\"alg\":\"A256GCM\""),
        "{text}"
    );
    assert!(
        !text.contains("ada@example.com") && !text.contains("approve loan-a"),
        "{text}"
    );

    let viewer = api.token(Role::Viewer, "default");
    let auditor = api.token(Role::Auditor, "default");
    let admin = api.token(Role::Admin, "default");
    let (_, page) = api
        .get(Some(&viewer), "/v1/events?subject=ada@example.com")
        .await;
    assert_eq!(page["events"][0]["withheld"], json!(["input", "output"]));
    assert!(page["events"][0]["event"].get("output").is_none());
    let (_, page) = api
        .get(Some(&auditor), "/v1/events?subject=Ada@Example.com")
        .await;
    let first = &page["events"][0]["event"];
    assert_eq!(first["output"]["text"], "approve loan-a");
    let prompt = first["input"]["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("loan-a: write to ⟦EMAIL:"), "{prompt}");
    let id = first["id"].as_str().unwrap().to_owned();
    let (_, one) = api.get(Some(&auditor), &format!("/v1/events/{id}")).await;
    assert_eq!(one["event"]["output"]["text"], "approve loan-a");

    // Only admins erase; bad requests name what is wrong.
    for t in [&ingest, &viewer, &auditor] {
        let (s, _) = erase(&api, t, json!({"subject_id": "ada@example.com"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, e) = erase(&api, &admin, json!({"subject_ref": "xyz"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("subject_ref"),
        "{e}"
    );
    let (s, done) = erase(
        &api,
        &admin,
        json!({"subject_id": "ada@example.com", "reason": "Art. 17"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["entries"], 2);
    assert!(!done.to_string().contains("ada@example.com"));
    let (s, _) = erase(&api, &admin, json!({"subject_id": "ada@example.com"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "erased already");

    let (_, one) = api.get(Some(&auditor), &format!("/v1/events/{id}")).await;
    assert_eq!(one["event"]["output"], json!({"erased": true}));
    assert_eq!(one["event"]["input"], json!({"erased": true}));
    let (_, tl) = api.get(Some(&admin), "/v1/tasks/loan-a/timeline").await;
    assert_eq!(
        tl["summary"]["decisions"][0]["changes"],
        json!({"erased": true})
    );
    let (_, tl) = api.get(Some(&admin), "/v1/tasks/loan-b/timeline").await;
    assert_eq!(
        tl["summary"]["decisions"][0]["changes"],
        json!({"limit": "loan-b"})
    );
    let (_, body) = api
        .call(
            Method::GET,
            "/v1/export?format=ndjson",
            Some(&auditor),
            None,
            axum::body::Body::empty(),
        )
        .await;
    let export = String::from_utf8(body).unwrap();
    assert!(!export.contains("approve loan-a") && export.contains("approve loan-b"));

    let report =
        aitrail_store::verify::verify_log(api.store.as_ref(), "default", None, &mut |_| {})
            .unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let (_, doc) = api.get(None, "/openapi.json").await;
    assert!(doc["paths"]["/v1/subjects/erase"]["post"].is_object());
}
