//! The HTTP API driven through `tower::ServiceExt::oneshot` on `app()`, with a real SQLite
//! store in a temporary directory. Sections: auth matrix, ingest input handling, idempotency,
//! reads, concurrency, OpenAPI. A new route gets a row in `every_route_with_every_role`.

mod common;

use aitrail_store::tokens::Role;
use axum::http::{Method, StatusCode};
use common::{event, Api};
use serde_json::{json, Value};
use std::sync::Arc;

// ---- auth matrix ----

#[tokio::test]
async fn every_route_with_every_role() {
    let api = Api::new();
    let admin = api.token(Role::Admin, "default");
    assert_eq!(api.post(&admin, event(0)).await.0, StatusCode::CREATED);
    let (revoked, revoked_id) = api.token_with_id(Role::Admin, "default");
    api.state.tokens.revoke(&revoked_id, 1).unwrap();

    let id = "00000000-0000-4000-8000-000000000000";
    // (method, uri, needs a body, expected for: none, revoked, ingest, viewer, auditor, admin)
    use StatusCode as S;
    let ok_created = S::CREATED;
    let routes: Vec<(Method, String, [StatusCode; 6])> = vec![
        (
            Method::POST,
            "/v1/events".into(),
            [
                S::UNAUTHORIZED,
                S::UNAUTHORIZED,
                ok_created,
                S::FORBIDDEN,
                S::FORBIDDEN,
                ok_created,
            ],
        ),
        (
            Method::GET,
            format!("/v1/events/{id}"),
            [
                S::UNAUTHORIZED,
                S::UNAUTHORIZED,
                S::FORBIDDEN,
                S::OK,
                S::OK,
                S::OK,
            ],
        ),
        (
            Method::GET,
            format!("/v1/events/{id}/proof"),
            [
                S::UNAUTHORIZED,
                S::UNAUTHORIZED,
                S::FORBIDDEN,
                S::FORBIDDEN,
                S::OK,
                S::OK,
            ],
        ),
        (
            Method::GET,
            "/v1/checkpoint".into(),
            [
                S::UNAUTHORIZED,
                S::UNAUTHORIZED,
                S::FORBIDDEN,
                S::OK,
                S::OK,
                S::OK,
            ],
        ),
        (
            Method::GET,
            "/metrics".into(),
            [S::UNAUTHORIZED, S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::OK],
        ),
        (Method::GET, "/healthz".into(), [S::OK; 6]),
        (Method::GET, "/openapi.json".into(), [S::OK; 6]),
    ];
    let tokens = [
        None,
        Some(revoked.clone()),
        Some(api.token(Role::Ingest, "default")),
        Some(api.token(Role::Viewer, "default")),
        Some(api.token(Role::Auditor, "default")),
        Some(admin.clone()),
    ];
    let mut n = 1;
    for (method, uri, expected) in &routes {
        for (who, want) in tokens.iter().zip(expected) {
            let body = if *method == Method::POST {
                n += 1;
                event(n).to_string()
            } else {
                String::new()
            };
            let (got, b) = api
                .call(
                    method.clone(),
                    uri,
                    who.as_deref(),
                    Some("application/json"),
                    body,
                )
                .await;
            assert_eq!(
                got,
                *want,
                "{method} {uri} as {:?}: {}",
                who.as_deref().map(|t| t.split('-').nth(1)),
                String::from_utf8_lossy(&b)
            );
            if got == S::UNAUTHORIZED || got == S::FORBIDDEN {
                let err: Value = serde_json::from_slice(&b).unwrap();
                assert!(err["error"]["message"].is_string(), "{err}");
            }
        }
    }
}

#[tokio::test]
async fn tenants_are_isolated() {
    let api = Api::new();
    let a = api.token(Role::Admin, "acme");
    let b = api.token(Role::Admin, "globex");
    assert_eq!(api.post(&a, event(1)).await.0, StatusCode::CREATED);
    assert_eq!(
        api.get(Some(&b), "/v1/events/00000000-0000-4000-8000-000000000001")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(
            Some(&b),
            "/v1/events/00000000-0000-4000-8000-000000000001/proof"
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, r) = api.post(&b, event(1)).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "the same id in another tenant is another event: {r}"
    );
    assert_eq!(r["receipts"][0]["seq"], json!(0));
    assert_eq!(
        (
            api.entries("acme"),
            api.entries("globex"),
            api.entries("default")
        ),
        (1, 1, 0)
    );
    let (_, cp) = api.get(Some(&b), "/v1/checkpoint").await;
    assert!(
        cp.as_str().unwrap().starts_with("test.example/globex\n1\n"),
        "{cp}"
    );
}

// ---- ingest input handling: nothing of a rejected request is written ----

#[tokio::test]
async fn invalid_events_are_rejected_whole_with_index_and_field() {
    let api = Api::new();
    let t = api.token(Role::Ingest, "default");
    let mut bad = event(2);
    bad["review"]["decision"] = json!("maybe");
    let (s, body) = api
        .post(&t, json!([event(1), bad, {"type": "task.created"}]))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(details.contains(&json!({"index": 1, "field": "review.decision", "message": "expected one of approve, reject, modify, escalate"})), "{body}");
    assert!(
        details
            .iter()
            .any(|d| d["index"] == json!(2) && d["field"] == json!("task_id")),
        "{body}"
    );
    assert_eq!(api.entries("default"), 0);
}

#[tokio::test]
async fn reading_the_archive_needs_one_configured() {
    let api = Api::new();
    let t = api.token(Role::Auditor, "default");
    for uri in [
        "/v1/events?include_archive=true",
        "/v1/tasks/t1/timeline?include_archive=true",
        "/v1/export?format=csv&include_archive=true",
    ] {
        let (s, body) = api.get(Some(&t), uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(
            body["error"]["details"][0]["field"], "include_archive",
            "{body}"
        );
    }
    let (s, _) = api.get(Some(&t), "/v1/events?include_archive=false").await;
    assert_eq!(s, StatusCode::OK);
    // Reading segments back is an auditor's (or admin's) request.
    let viewer = api.token(Role::Viewer, "default");
    let (s, body) = api
        .get(Some(&viewer), "/v1/events?include_archive=true")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn malformed_bodies_name_line_and_column() {
    let api = Api::new();
    let t = api.token(Role::Ingest, "default");
    let (s, b) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(&t),
            Some("application/json"),
            "{\"type\": \n  tru}",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(body["error"]["details"][0]["line"], json!(2), "{body}");
    assert!(body["error"]["details"][0]["column"].as_u64().unwrap() > 0);

    let ndjson = format!("{}\n{}\n{{broken\n", event(1), event(2));
    let (s, b) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(&t),
            Some("application/x-ndjson"),
            ndjson,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(body["error"]["details"][0]["line"], json!(3), "{body}");

    let (s, _) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(&t),
            Some("text/plain"),
            event(1).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(&t),
            Some("application/json"),
            "[]",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(api.entries("default"), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let api = Api::with_limit(2048);
    let t = api.token(Role::Ingest, "default");
    let big = json!((0..10).map(event).collect::<Vec<_>>());
    let (s, _) = api.post(&t, big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.entries("default"), 0);
    assert_eq!(api.post(&t, event(1)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn ndjson_batches_are_appended_in_order() {
    let api = Api::new();
    let t = api.token(Role::Ingest, "default");
    let body: String = (0..5).map(|i| event(i).to_string() + "\n").collect();
    let (s, b) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(&t),
            Some("application/x-ndjson"),
            body,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let r: Value = serde_json::from_slice(&b).unwrap();
    let seqs: Vec<u64> = r["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        r["receipts"][4]["id"],
        json!("00000000-0000-4000-8000-000000000004")
    );
}

// ---- idempotency ----

#[tokio::test]
async fn repeated_id_returns_the_original_receipt_and_other_content_is_409() {
    let api = Api::new();
    let t = api.token(Role::Ingest, "default");
    let (s1, first) = api.post(&t, event(7)).await;
    assert_eq!(s1, StatusCode::CREATED);
    let (s2, again) = api.post(&t, event(7)).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(again["receipts"][0]["seq"], first["receipts"][0]["seq"]);
    assert_eq!(
        again["receipts"][0]["leaf_hash"],
        first["receipts"][0]["leaf_hash"]
    );
    assert_eq!(again["receipts"][0]["duplicate"], json!(true));
    let mut changed = event(7);
    changed["review"]["duration_ms"] = json!(1);
    let (s3, body) = api.post(&t, json!([event(8), changed])).await;
    assert_eq!(s3, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["details"][0]["index"], json!(1));
    assert_eq!(
        api.entries("default"),
        1,
        "event 8 must not be written either"
    );
}

// ---- reads ----

#[tokio::test]
async fn viewers_get_content_withheld_and_auditors_get_proofs() {
    let api = Api::new();
    let admin = api.token(Role::Admin, "default");
    for i in 0..10 {
        api.post(&admin, event(i)).await;
    }
    let id = "00000000-0000-4000-8000-000000000003";
    let (_, as_viewer) = api
        .get(
            Some(&api.token(Role::Viewer, "default")),
            &format!("/v1/events/{id}"),
        )
        .await;
    assert_eq!(as_viewer["seq"], json!(3));
    assert!(
        as_viewer["event"].get("input").is_none()
            && as_viewer["event"]["review"].get("changes").is_none(),
        "{as_viewer}"
    );
    assert_eq!(as_viewer["withheld"], json!(["input", "review.changes"]));
    assert_eq!(as_viewer["event"]["review"]["decision"], json!("modify"));
    assert!(
        as_viewer["event"]["subject"].get("id").is_none(),
        "raw subject id is never stored"
    );
    let auditor = api.token(Role::Auditor, "default");
    let (_, full) = api.get(Some(&auditor), &format!("/v1/events/{id}")).await;
    assert_eq!(
        full["event"]["review"]["changes"]["amount"]["to"],
        json!(18000)
    );
    assert_eq!(full["withheld"], json!([]));

    let (s, proof) = api
        .get(Some(&auditor), &format!("/v1/events/{id}/proof"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let proof: aitrail_core::proof::Proof = serde_json::from_value(proof).unwrap();
    let verifier = api.state.keys.signer("default").unwrap().verifier();
    let verified = proof.verify(&verifier).unwrap();
    assert_eq!(verified.record.seq, 3);
    assert!(
        verified.checkpoint.size >= 10,
        "reads are recorded too, so the tree grew"
    );
    assert_eq!(
        api.get(
            Some(&auditor),
            "/v1/events/00000000-0000-4000-8000-999999999999"
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

// ---- concurrency and group commit ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_get_gapless_unique_seqs() {
    let api = Arc::new(Api::new());
    let t = api.token(Role::Ingest, "default");
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let (api, t) = (api.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let body = if i % 4 == 0 {
                json!([event(i * 10), event(i * 10 + 1)])
            } else {
                event(i * 10)
            };
            let (s, r) = api.post(&t, body).await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
            r["receipts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["seq"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (0..250).collect::<Vec<u64>>());
    let report =
        aitrail_store::verify::verify_log(api.store.as_ref(), "default", None, &mut |_| {})
            .unwrap();
    assert!(report.ok && report.entries == 250, "{report:?}");
    let metrics = api.get(Some(&t), "/metrics").await.1;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("aitrail_events_ingested_total{log=\"default\"} 250"),
        "{metrics}"
    );
}

// ---- legal holds ----

#[tokio::test]
async fn holds_are_placed_listed_and_released_by_admins() {
    let api = Api::new();
    let admin = api.token(Role::Admin, "default");
    let auditor = api.token(Role::Auditor, "default");
    let viewer = api.token(Role::Viewer, "default");
    let call = |token: &str, method: Method, uri: &str, body: Value| {
        let (token, uri) = (token.to_owned(), uri.to_owned());
        let api = &api;
        async move {
            let (s, b) = api
                .call(
                    method,
                    &uri,
                    Some(&token),
                    Some("application/json"),
                    body.to_string(),
                )
                .await;
            (
                s,
                serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
            )
        }
    };
    let hold = json!({"task_id": "loan-7", "reason": "matter 42"});
    assert_eq!(
        call(&auditor, Method::POST, "/v1/holds", hold.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, placed) = call(&admin, Method::POST, "/v1/holds", hold).await;
    assert_eq!(s, StatusCode::CREATED, "{placed}");
    assert_eq!(
        placed["scope"],
        json!({"kind": "task", "task_id": "loan-7"})
    );
    let id = placed["id"].as_str().unwrap().to_owned();
    // A subject hold keeps only the keyed reference of the id it was given.
    let (s, by_subject) = call(
        &admin,
        Method::POST,
        "/v1/holds",
        json!({"subject_id": "ada@example.com", "reason": "DSAR 9"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(
        !by_subject.to_string().contains("ada@example.com"),
        "{by_subject}"
    );
    for (body, field) in [
        (
            json!({"task_id": "t", "from": "2020-01-01T00:00:00Z", "reason": "r"}),
            "exactly one",
        ),
        (
            json!({"from": "2020-01-01T00:00:00Z", "to": "yesterday", "reason": "r"}),
            "to",
        ),
        (json!({"task_id": "t", "reason": " "}), "reason"),
        (json!({"task_id": "t"}), "reason"),
    ] {
        let (s, err) = call(&admin, Method::POST, "/v1/holds", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{err}"
        );
    }
    let (s, list) = api.get(Some(&auditor), "/v1/holds").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        api.get(Some(&viewer), "/v1/holds").await.0,
        StatusCode::FORBIDDEN
    );
    let release = format!("/v1/holds/{id}/release");
    let (s, released) = call(&admin, Method::POST, &release, json!({"reason": "closed"})).await;
    assert_eq!(s, StatusCode::OK, "{released}");
    assert_eq!(released["released"]["reason"], "closed");
    assert_eq!(
        call(&admin, Method::POST, &release, json!({"reason": "again"}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call(
            &admin,
            Method::POST,
            "/v1/holds/nope/release",
            json!({"reason": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Placing and releasing are in the trail.
    let (_, page) = api
        .get(Some(&auditor), "/v1/events?type=audit.retention")
        .await;
    let actions: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["attributes"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["hold_added", "hold_added", "hold_released"]);
}

// ---- OpenAPI ----

#[tokio::test]
async fn openapi_documents_every_route() {
    let api = Api::new();
    let (s, doc) = api.get(None, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/events/{id}", "get"),
        ("/v1/events/{id}/proof", "get"),
        ("/v1/checkpoint", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/v1/holds", "get"),
        ("/v1/holds", "post"),
        ("/v1/holds/{id}/release", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
