//! Search, timeline, export and review attestations over HTTP, and the record every read
//! leaves. Uses the shared harness in `common`.

mod common;

use aitrail_store::query::{Filter, Query};
use aitrail_store::tokens::Role;
use axum::http::{Method, StatusCode};
use common::Api;
use serde_json::{json, Value};

/// A small pipeline: for each of `tasks` tasks, a model output, a review and a resolution.
async fn pipeline(api: &Api, tasks: u32) {
    let t = api.token(Role::Ingest, "default");
    let mut events = Vec::new();
    for i in 0..tasks {
        let task = format!("loan-{i:03}");
        let (version, decision) = if i % 2 == 0 {
            ("1.4", "reject")
        } else {
            ("2.0", "approve")
        };
        let reviewer = if i % 3 == 0 { "rev-ana" } else { "rev-bo" };
        let at = |m: u32| {
            format!(
                "2026-03-{:02}T{:02}:{:02}:00Z",
                1 + i % 28,
                9 + m / 60,
                m % 60
            )
        };
        events.push(json!({"type": "ai.inference", "task_id": task, "occurred_at": at(0), "model": {"name": "credit", "version": version},
                           "prompt": {"version": "v3"}, "output": {"text": "approve"}, "subject": {"kind": "applicant", "id": format!("person-{i}@example.com")}}));
        events.push(json!({"type": "review.decision", "task_id": task, "occurred_at": at(5), "actor": {"kind": "human", "id": reviewer},
                           "model": {"name": "credit", "version": version}, "review": {"decision": decision, "duration_ms": 60000 + i,
                           "changes": if decision == "reject" { json!({"to": "decline"}) } else { Value::Null }}, "rationale": {"code": "R1"}}));
        events.push(json!({"type": "task.resolved", "task_id": task, "occurred_at": at(9), "resolution": {"outcome": "done"}}));
    }
    for e in &mut events {
        if let Some(r) = e.get_mut("review").and_then(Value::as_object_mut) {
            r.retain(|_, v| !v.is_null());
        }
    }
    let (s, body) = api.post(&t, Value::Array(events)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

fn count(api: &Api, kind: &str) -> usize {
    let mut n = 0;
    let q = Query {
        filter: Filter {
            types: vec![kind.into()],
            ..Filter::default()
        },
        ..Query::default()
    };
    api.store
        .query("default", &q, &mut |_| {
            n += 1;
            Ok(true)
        })
        .unwrap();
    n
}

#[tokio::test]
async fn search_filters_and_pages_through_everything_once() {
    let api = Api::new();
    pipeline(&api, 30).await;
    let viewer = api.token(Role::Viewer, "default");
    let get = |uri: String| {
        let (api, viewer) = (&api, viewer.clone());
        async move {
            let (s, body) = api.get(Some(&viewer), &uri).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {body}");
            body
        }
    };
    let n = |v: &Value| v["events"].as_array().unwrap().len();
    assert_eq!(n(&get("/v1/events?task=loan-007".into()).await), 3);
    assert_eq!(
        n(&get("/v1/events?actor=rev-ana&limit=100".into()).await),
        10
    );
    assert_eq!(
        n(&get("/v1/events?type=review.decision,task.resolved&limit=100".into()).await),
        60
    );
    assert_eq!(
        n(
            &get("/v1/events?model=credit&model_version=2.0&type=review.decision&limit=100".into())
                .await
        ),
        15
    );
    assert_eq!(
        n(&get("/v1/events?decision=reject&limit=100".into()).await),
        15
    );
    assert_eq!(
        n(&get("/v1/events?prompt_version=v3&limit=100".into()).await),
        30
    );
    let by_subject = get("/v1/events?subject=Person-4@Example.com".into()).await;
    assert_eq!(
        n(&by_subject),
        1,
        "subject ids are matched through their keyed reference"
    );
    assert_eq!(
        by_subject["events"][0]["event"]["task_id"],
        json!("loan-004")
    );
    assert_eq!(
        n(
            &get("/v1/events?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z&limit=100".into())
                .await
        ),
        6
    );

    // Pages of 7 in both orders cover the 90 pipeline events exactly once, in order.
    for order in ["asc", "desc"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut uri = format!(
                "/v1/events?limit=7&order={order}&type=ai.inference,review.decision,task.resolved"
            );
            if let Some(c) = &cursor {
                uri += &format!("&cursor={c}");
            }
            let page = get(uri).await;
            for e in page["events"].as_array().unwrap() {
                seen.push((
                    e["event"]["occurred_at"].as_str().unwrap().to_owned(),
                    e["seq"].as_u64().unwrap(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "{order}: stable order");
        sorted.dedup();
        assert_eq!(sorted.len(), 90, "{order}: every event once");
    }
    let (s, body) = api.get(Some(&viewer), "/v1/events?decision=maybe").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], json!("decision"));
}

#[tokio::test]
async fn viewers_see_no_content_and_cannot_export() {
    let api = Api::new();
    pipeline(&api, 4).await;
    let viewer = api.token(Role::Viewer, "default");
    let (_, page) = api.get(Some(&viewer), "/v1/events?type=ai.inference").await;
    for e in page["events"].as_array().unwrap() {
        assert!(e["event"].get("output").is_none(), "{e}");
        assert_eq!(e["withheld"], json!(["output"]));
    }
    let (_, tl) = api.get(Some(&viewer), "/v1/tasks/loan-000/timeline").await;
    assert!(tl["summary"]["decisions"][0]["changes"].is_null(), "{tl}");
    assert_eq!(
        api.get(Some(&viewer), "/v1/export?format=csv").await.0,
        StatusCode::FORBIDDEN
    );
    let auditor = api.token(Role::Auditor, "default");
    let (_, full) = api.get(Some(&auditor), "/v1/tasks/loan-000/timeline").await;
    assert_eq!(
        full["summary"]["decisions"][0]["changes"],
        json!({"to": "decline"})
    );
}

#[tokio::test]
async fn timeline_derives_review_facts() {
    let api = Api::new();
    pipeline(&api, 3).await;
    let auditor = api.token(Role::Auditor, "default");
    let (s, tl) = api.get(Some(&auditor), "/v1/tasks/loan-002/timeline").await;
    assert_eq!(s, StatusCode::OK, "{tl}");
    let types: Vec<&str> = tl["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ai.inference", "review.decision", "task.resolved"],
        "reading a task adds nothing to its timeline"
    );
    assert_eq!(tl["summary"]["time_to_first_review_ms"], json!(300_000));
    assert_eq!(tl["summary"]["overrides"], json!(1));
    assert_eq!(tl["summary"]["human_time_ms"], json!(60_002));
    assert_eq!(tl["summary"]["resolution"]["outcome"], json!("done"));
    assert_eq!(
        api.get(Some(&auditor), "/v1/tasks/nope/timeline").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn export_streams_csv_and_verifiable_ndjson() {
    let api = Api::new();
    pipeline(&api, 10).await;
    let auditor = api.token(Role::Auditor, "default");
    let (s, body) = api
        .call(
            Method::GET,
            "/v1/export?format=csv&type=review.decision",
            Some(&auditor),
            None,
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("UTF-8 byte order mark for Excel");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        aitrail_core::export::CSV_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(rows
        .iter()
        .all(|r| r[col("type")] == *"review.decision" && !r[col("leaf_hash")].is_empty()));
    assert!(text.contains("\r\n"), "RFC 4180 line ends");

    // `sealed=true`: the stored entry bytes, sealed content and all, each line verifiable.
    // (By default sealed content is opened, and such lines no longer hash to their leaf.)
    let (s, body) = api
        .call(
            Method::GET,
            "/v1/export?format=ndjson&sealed=true",
            Some(&auditor),
            None,
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 30);
    for line in lines {
        let record = aitrail_core::entry::Record::parse(line).unwrap();
        let stored = api.store.entry("default", record.seq).unwrap().unwrap();
        assert_eq!(
            aitrail_core::merkle::leaf_hash(line),
            stored.leaf(),
            "each line is the entry bytes"
        );
    }
}

#[tokio::test]
async fn every_read_is_recorded_and_reviews_are_attested() {
    let api = Api::new();
    pipeline(&api, 2).await;
    let auditor = api.token(Role::Auditor, "default");
    assert_eq!(count(&api, "audit.accessed"), 0);
    api.get(Some(&auditor), "/v1/events?task=loan-001").await;
    api.get(Some(&auditor), "/v1/tasks/loan-001/timeline").await;
    api.call(
        Method::GET,
        "/v1/export?format=ndjson",
        Some(&auditor),
        None,
        axum::body::Body::empty(),
    )
    .await;
    let id = {
        let (_, p) = api.get(Some(&auditor), "/v1/events?limit=1").await;
        p["events"][0]["event"]["id"].as_str().unwrap().to_owned()
    };
    api.get(Some(&auditor), &format!("/v1/events/{id}")).await;
    api.get(Some(&auditor), &format!("/v1/events/{id}/proof"))
        .await;
    // The export's record is written after the stream ends; give it a moment.
    for _ in 0..50 {
        if count(&api, "audit.accessed") >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, page) = api
        .get(Some(&auditor), "/v1/events?type=audit.accessed&limit=100")
        .await;
    let mut actions: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["attributes"]["action"].as_str().unwrap())
        .collect();
    // The export is recorded when its stream ends, so its place in the order may vary.
    actions.sort();
    assert_eq!(
        actions,
        ["export", "proof", "read", "search", "search", "timeline"]
    );
    let first = &page["events"][0]["event"];
    assert_eq!(first["attributes"]["query"]["task_id"], json!("loan-001"));
    assert_eq!(first["actor"]["role"], json!("auditor"));

    let body = json!({"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "note": "Checked March overrides against policy 4.2"});
    let (s, b) = api
        .call(
            Method::POST,
            "/v1/reviews",
            Some(&auditor),
            Some("application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    assert_eq!(count(&api, "audit.reviewed"), 1);
    let viewer = api.token(Role::Viewer, "default");
    let (s, _) = api
        .call(
            Method::POST,
            "/v1/reviews",
            Some(&viewer),
            Some("application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call(
            Method::POST,
            "/v1/reviews",
            Some(&auditor),
            Some("application/json"),
            json!({"from": "x", "to": "y", "note": "n"}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// The attributes of every `audit.accessed` entry, read from the store (not through the API,
/// which would add records of its own).
fn accesses(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    let q = Query {
        filter: Filter {
            types: vec!["audit.accessed".into()],
            ..Filter::default()
        },
        ..Query::default()
    };
    api.store
        .query("default", &q, &mut |row| {
            let r = aitrail_core::entry::Record::parse(&row.entry.entry).unwrap();
            out.push(serde_json::to_value(&r.event).unwrap()["attributes"].clone());
            Ok(true)
        })
        .unwrap();
    out
}

#[tokio::test]
async fn an_export_the_client_abandons_is_recorded_with_what_was_sent() {
    use axum::body::Body;
    use axum::http::{header, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let api = Api::with_limit(64 << 20);
    // Far more than the stream buffers between the reader and the client (about 1 MB).
    pipeline(&api, 2000).await;
    let total = api.entries("default");
    let auditor = api.token(Role::Auditor, "default");
    let req = Request::builder()
        .uri("/v1/export?format=ndjson")
        .header(header::AUTHORIZATION, format!("Bearer {auditor}"))
        .body(Body::empty())
        .unwrap();
    let resp = aitrail_server::app(api.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    // The client goes away after the first chunk.
    drop(body);
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = accesses(&api);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen.len(), 1, "one record of the export: {seen:?}");
    let a = &seen[0];
    assert_eq!(a["action"], json!("export"));
    assert_eq!(a["complete"], json!(false), "{a}");
    let sent = a["results"].as_u64().unwrap();
    assert!(
        sent > 0 && sent < total,
        "{sent} of {total} entries sent: {a}"
    );
}
