//! The web panel through the router: sign-in and session cookie, CSRF refusal, search,
//! timeline, event proof status, CSV download, review attestation, product view, roles, and
//! the `audit.accessed` record every panel read leaves. The browser test (real chromium) is
//! `crates/aitrail/tests/browser.rs`.

mod common;

use aitrail_core::entry::Record;
use aitrail_store::query::{Filter, Query};
use aitrail_store::tokens::Role;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::Api;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A browser stand-in: one router (so one session table) and the session cookie.
struct Browser {
    app: Router,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Browser {
    fn new(api: &Api) -> Browser {
        Browser {
            app: aitrail_server::app(api.state.clone()),
            cookie: None,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        form: Option<&str>,
        origin: Option<&str>,
    ) -> Page {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "panel.test");
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let body = match form {
            Some(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(f.to_owned())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Page {
        self.send(Method::GET, uri, None, None).await
    }

    async fn post(&self, uri: &str, form: &str) -> Page {
        self.send(Method::POST, uri, Some(form), Some("http://panel.test"))
            .await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/sign-in", &format!("token={token}")).await;
        if let Some(c) = page.headers.get(header::SET_COOKIE) {
            self.cookie = Some(c.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        page
    }
}

fn location(p: &Page) -> &str {
    p.headers.get(header::LOCATION).unwrap().to_str().unwrap()
}

/// Six tasks: model output (1.4 on even tasks, 2.0 on odd), a review (1.4 rejected with
/// changes, 2.0 approved), a resolution.
async fn pipeline(api: &Api) {
    let t = api.token(Role::Ingest, "default");
    let mut events = Vec::new();
    for i in 0..6u32 {
        let task = format!("loan-{i:03}");
        let (version, decision) = if i % 2 == 0 {
            ("1.4", "reject")
        } else {
            ("2.0", "approve")
        };
        let reviewer = if i % 3 == 0 { "rev-ana" } else { "rev-bo" };
        let at = |m: u32| format!("2026-03-{:02}T09:{m:02}:00Z", 1 + i);
        events.push(json!({"type": "ai.inference", "task_id": task, "occurred_at": at(0), "model": {"name": "credit", "version": version},
                           "prompt": {"version": "v3"}, "output": {"text": "SECRET-MODEL-TEXT"}}));
        let mut review = json!({"decision": decision, "duration_ms": 60000 + i * 1000});
        if decision == "reject" {
            review["changes"] = json!({"to": "SECRET-CHANGE"});
        }
        events.push(json!({"type": "review.decision", "task_id": task, "occurred_at": at(5), "actor": {"kind": "human", "id": reviewer},
                           "review": review, "rationale": {"code": "R-INC-02", "note": "income not supported"}}));
        events.push(json!({"type": "task.resolved", "task_id": task, "occurred_at": at(9), "resolution": {"outcome": "done"}}));
    }
    let (s, body) = api.post(&t, Value::Array(events)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

/// The `audit.accessed` records: (action, actor kind, role).
fn accesses(api: &Api) -> Vec<(String, String, String)> {
    let q = Query {
        filter: Filter {
            types: vec!["audit.accessed".into()],
            ..Filter::default()
        },
        ..Query::default()
    };
    let mut out = Vec::new();
    api.store
        .query("default", &q, &mut |row| {
            let ev = Record::parse(&row.entry.entry).unwrap().event;
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            out.push((
                s(&ev["attributes"]["action"]),
                s(&ev["actor"]["kind"]),
                s(&ev["actor"]["role"]),
            ));
            Ok(true)
        })
        .unwrap();
    out
}

#[tokio::test]
async fn sign_in_sets_a_session_cookie_and_sign_out_clears_it() {
    let api = Api::new();
    let mut b = Browser::new(&api);
    let p = b.get("/").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&p), "/sign-in");
    let p = b.get("/sign-in").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains(r#"<label for="token">"#), "{}", p.body);

    let p = b.sign_in("not-a-token").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("not valid"));
    assert!(b.cookie.is_none());
    let p = b.sign_in(&api.token(Role::Ingest, "default")).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(b.cookie.is_none());

    let (token, id) = api.token_with_id(Role::Auditor, "default");
    let p = b.sign_in(&token).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let set = p.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "browser-session only: {set}"
    );
    assert!(
        !set.contains(&token),
        "the cookie holds a session id, not the token"
    );
    let p = b.get("/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("Signed in as <strong>auditor</strong>"),
        "{}",
        p.body
    );

    let p = b.post("/sign-out", "").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        b.get("/").await.status,
        StatusCode::SEE_OTHER,
        "the old session id is forgotten"
    );

    // Revoking the token ends a session opened with it.
    b.sign_in(&token).await;
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    api.state.tokens.revoke(&id, 1).unwrap();
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_pages_are_html_and_unknown_api_routes_json() {
    let api = Api::new();
    let b = Browser::new(&api);
    let p = b.get("/no-such-page").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("no such page"), "{}", p.body);
    let p = b.get("/v1/no-such-route").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.starts_with(r#"{"error""#), "{}", p.body);
}

#[tokio::test]
async fn posts_from_another_origin_are_refused() {
    let api = Api::new();
    let mut b = Browser::new(&api);
    let token = api.token(Role::Auditor, "default");
    let p = b
        .send(
            Method::POST,
            "/sign-in",
            Some(&format!("token={token}")),
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.headers.get(header::SET_COOKIE).is_none());
    b.sign_in(&token).await;
    let form = "from=2026-03-01&to=2026-03-31&note=checked";
    let p = b
        .send(
            Method::POST,
            "/reviews",
            Some(form),
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("another site"));
    assert!(p.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn search_timeline_and_event_pages_for_an_auditor() {
    let api = Api::new();
    pipeline(&api).await;
    let mut b = Browser::new(&api);
    b.sign_in(&api.token(Role::Auditor, "default")).await;

    let p = b.get("/search?actor=rev-ana&type=&decision=").await;
    assert_eq!(p.status, StatusCode::OK);
    // rev-ana reviewed tasks 0 and 3.
    assert!(p.body.contains("2 events."), "{}", p.body);
    assert!(
        p.body.contains(r#"href="/tasks/loan-000""#)
            && p.body.contains(r#"href="/tasks/loan-003""#)
    );
    assert!(!p.body.contains(r#"href="/tasks/loan-001""#));
    assert!(p.body.contains(r#"id="download-csv""#));

    let p = b.get("/tasks/loan-000").await;
    assert_eq!(p.status, StatusCode::OK);
    for text in [
        "SECRET-MODEL-TEXT",
        "SECRET-CHANGE",
        "R-INC-02",
        "income not supported",
        "1 min 00 s",
        "done",
    ] {
        assert!(p.body.contains(text), "timeline lacks {text}: {}", p.body);
    }
    assert_eq!(
        b.get("/tasks/no-such-task").await.status,
        StatusCode::NOT_FOUND
    );

    let id = {
        let start = p.body.find("href=\"/events/").unwrap() + "href=\"/events/".len();
        p.body[start..start + 36].to_owned()
    };
    let p = b.get(&format!("/events/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("Not yet in a signed checkpoint"),
        "{}",
        p.body
    );
    let signer = aitrail_server::state::Keys::signer(api.state.keys.as_ref(), "default").unwrap();
    aitrail_store::log::checkpoint(
        api.store.as_ref(),
        "default",
        &signer,
        1_800_000_000_000_000,
    )
    .unwrap();
    let p = b.get(&format!("/events/{id}")).await;
    assert!(p.body.contains("checkpoint #1</strong>"), "{}", p.body);
    assert!(p.body.contains("Not anchored outside aitrail yet"));
    // What `aitrail anchor` records when it keeps checkpoint 1 (18 entries) at an anchor.
    let anchored = aitrail_core::event::Event::from_value(
        json!({"type": "audit.anchored", "task_id": "aitrail.audit", "occurred_at": "2026-04-01T10:00:00Z",
               "actor": {"kind": "system", "id": "aitrail"},
               "attributes": {"anchor": "dir:/mnt/worm", "checkpoint": {"number": 1, "size": 18, "root": "00"}, "location": "/mnt/worm/default/1.note"}}),
        aitrail_core::event::Origin::Aitrail,
    )
    .unwrap();
    let prepared = aitrail_core::entry::PreparedEvent::new(anchored, b"k").unwrap();
    api.state
        .sequencer
        .append("default", vec![prepared])
        .unwrap();
    let p = b.get(&format!("/events/{id}")).await;
    assert!(
        p.body.contains(
            "Anchored at <code>dir:/mnt/worm</code> in checkpoint #1 on 2026-04-01 10:00:00 UTC"
        ),
        "{}",
        p.body
    );
    let p = b.get("/").await;
    assert!(
        p.body
            .contains("checkpoint #1</p><p>at <code>dir:/mnt/worm</code>"),
        "{}",
        p.body
    );
    let p = b.get(&format!("/events/{id}/proof.json")).await;
    assert_eq!(p.status, StatusCode::OK);
    let proof: Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(proof["seq"], 0);

    let actions: Vec<String> = accesses(&api)
        .into_iter()
        .map(|(a, kind, role)| {
            assert_eq!((kind.as_str(), role.as_str()), ("human", "auditor"));
            a
        })
        .collect();
    assert_eq!(
        actions,
        ["search", "timeline", "timeline", "read", "read", "read", "status", "proof"]
    );
}

#[tokio::test]
async fn csv_download_holds_the_search_and_is_recorded() {
    let api = Api::new();
    pipeline(&api).await;
    let mut b = Browser::new(&api);
    b.sign_in(&api.token(Role::Auditor, "default")).await;
    let p = b
        .get("/search.csv?decision=reject&from=2026-03-01&to=2026-03-03")
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut rows = csv::Reader::from_reader(p.body.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let task = headers.iter().position(|h| h == "task_id").unwrap();
    let tasks: Vec<String> = rows
        .records()
        .map(|r| r.unwrap()[task].to_owned())
        .collect();
    // Rejections are tasks 0, 2, 4; only 0 and 2 fall on March 1 to 3 (the "to" day included).
    assert_eq!(tasks, ["loan-000", "loan-002"]);
    let recorded = accesses(&api);
    assert_eq!(recorded.last().map(|r| r.0.as_str()), Some("export"));
}

#[tokio::test]
async fn a_viewer_sees_no_content_and_cannot_export_or_attest() {
    let api = Api::new();
    pipeline(&api).await;
    let mut b = Browser::new(&api);
    b.sign_in(&api.token(Role::Viewer, "default")).await;
    let p = b.get("/search?task=loan-000").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("3 events."));
    assert!(
        !p.body.contains("download-csv"),
        "no CSV button for a viewer"
    );
    let p = b.get("/search.csv?task=loan-000").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("needs an auditor or admin token"));

    let p = b.get("/tasks/loan-000").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        !p.body.contains("SECRET-MODEL-TEXT") && !p.body.contains("SECRET-CHANGE"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Withheld"));
    assert!(p.body.contains("R-INC-02"), "rationale is not content");
    let start = p.body.find("href=\"/events/").unwrap() + "href=\"/events/".len();
    let id = p.body[start..start + 36].to_owned();
    let p = b.get(&format!("/events/{id}")).await;
    assert!(!p.body.contains("SECRET-MODEL-TEXT") && !p.body.contains("proof.json"));
    assert_eq!(
        b.get(&format!("/events/{id}/proof.json")).await.status,
        StatusCode::FORBIDDEN
    );

    let p = b
        .post("/reviews", "from=2026-03-01&to=2026-03-31&note=checked")
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(accesses(&api).iter().all(|(_, _, role)| role == "viewer"));
    assert!(!accesses(&api).iter().any(|(a, _, _)| a == "export"));
}

#[tokio::test]
async fn a_review_attestation_is_recorded() {
    let api = Api::new();
    pipeline(&api).await;
    let mut b = Browser::new(&api);
    b.sign_in(&api.token(Role::Auditor, "default")).await;
    let p = b
        .post(
            "/reviews",
            "from=2026-03-01&to=2026-03-02&note=checked+overrides",
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let seq: u64 = location(&p)
        .strip_prefix("/?reviewed=")
        .unwrap()
        .parse()
        .unwrap();
    let entry = api.store.entry("default", seq).unwrap().unwrap();
    let ev = Record::parse(&entry.entry).unwrap().event;
    assert_eq!(ev["type"], "audit.reviewed");
    assert_eq!(ev["rationale"]["note"], "checked overrides");
    // March 1 and 2, both included: tasks 0 and 1, three events each.
    assert_eq!(ev["attributes"]["entries"], 6);
    assert_eq!(ev["attributes"]["to"], "2026-03-03T00:00:00.000000Z");
    let p = b.get(location(&p)).await;
    assert!(p.body.contains(&format!("entry #{seq}")));
    let p = b
        .post("/reviews", "from=2026-03-05&to=2026-03-01&note=x")
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_product_view_shows_rates_by_version() {
    let api = Api::new();
    pipeline(&api).await;
    let mut b = Browser::new(&api);
    b.sign_in(&api.token(Role::Viewer, "default")).await;
    let p = b
        .get("/product?from=2026-03-01&to=2026-03-31&by=model")
        .await;
    assert_eq!(p.status, StatusCode::OK);
    let row = |model: &str| {
        let start = p
            .body
            .find(&format!("<td>{model}</td>"))
            .unwrap_or_else(|| panic!("{}", p.body));
        p.body[start..start + 400].to_owned()
    };
    // 1.4: tasks 0, 2, 4 all rejected, 60, 62, 64 s; 2.0: tasks 1, 3, 5 all approved.
    assert!(
        row("credit 1.4").contains("100.0%"),
        "{}",
        row("credit 1.4")
    );
    assert!(row("credit 1.4").contains("1 min 02 s"));
    assert!(row("credit 2.0").contains("0.0%"));
    assert!(p.body.contains("<svg"));
    assert!(p.body.contains(r#"id="chart-override""#));
    let p = b.get("/product?from=2026-04-01&to=2026-04-30").await;
    assert!(p.body.contains("No review decisions in this period"));
    assert_eq!(accesses(&api).iter().filter(|a| a.0 == "stats").count(), 2);
}

/// An archive in memory (retention's `ArchiveStore`).
#[derive(Default)]
struct MemoryArchive {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl aitrail_store::retention::ArchiveStore for MemoryArchive {
    fn name(&self) -> &str {
        "memory"
    }
    fn put(&self, key: &str, bytes: &[u8], _: i64) -> Result<String, String> {
        let mut objects = self.objects.lock().unwrap();
        objects.insert(key.to_owned(), bytes.to_vec());
        Ok(key.to_owned())
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }
    fn delete(&self, key: &str) -> Result<aitrail_store::retention::Deleted, String> {
        self.objects.lock().unwrap().remove(key);
        Ok(aitrail_store::retention::Deleted::Yes)
    }
}

#[tokio::test]
async fn archived_days_are_searched_when_asked() {
    use aitrail_core::entry::PreparedEvent;
    use aitrail_core::event::{parse_time, Event, Origin};
    use aitrail_store::retention::{self, Context, Policy};
    use aitrail_store::sequencer::Sequencer;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    let mut api = Api::new();
    // A task of March 2019, recorded then, and one of today; then 2019 goes to the archive.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let clock = Arc::new(AtomicI64::new(parse_time("2019-03-01T10:00:00Z").unwrap()));
    let c = clock.clone();
    let seq = Sequencer::with_clock(
        api.store.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    );
    let ev = |task: &str, at: &str| {
        let v = json!({"type": "task.created", "task_id": task, "occurred_at": at});
        PreparedEvent::new(Event::from_value(v, Origin::Client).unwrap(), b"k").unwrap()
    };
    let old = vec![
        ev("old-task", "2019-03-01T09:00:00Z"),
        ev("old-task", "2019-03-01T09:30:00Z"),
    ];
    let old_id = old[0].id.to_string();
    seq.append("default", old).unwrap();
    clock.store(now, Ordering::SeqCst);
    seq.append("default", vec![ev("new-task", "2026-01-01T00:00:00Z")])
        .unwrap();
    let archive = Arc::new(MemoryArchive::default());
    let signer = api.state.keys.signer("default").unwrap();
    let policy = Policy::default();
    let ctx = Context {
        store: api.store.as_ref(),
        sequencer: &seq,
        archive: archive.as_ref(),
        signer: &signer,
        policy: &policy,
        now,
    };
    let plan = retention::plan(api.store.as_ref(), "default", &policy, now).unwrap();
    let report = retention::run(&ctx, &plan, &mut |_| {}).unwrap();
    assert_eq!(report.done.len(), 1, "{report:?}");
    seq.shutdown();

    // A server without an archive offers no box and finds nothing archived.
    let token = api.token(Role::Auditor, "default");
    let mut b = Browser::new(&api);
    b.sign_in(&token).await;
    let p = b.get("/search?task=old-task").await;
    assert!(p.body.contains("No events match"), "{}", p.body);
    assert!(!p.body.contains("f-archive"));
    let p = b.get("/search?task=old-task&archive=on").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    let event_page = format!("/events/{old_id}");
    assert_eq!(b.get(&event_page).await.status, StatusCode::NOT_FOUND);

    // With one: the box, the archived events, their task page and the CSV.
    let archive_objects = archive.clone();
    api.state.archive = Some(archive);
    let mut b = Browser::new(&api);
    b.sign_in(&token).await;
    assert!(b.get("/search").await.body.contains(r#"id="f-archive""#));
    let p = b.get("/search?task=old-task&archive=on").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("2 events."), "{}", p.body);
    assert!(
        p.body.contains(r#"href="/tasks/old-task?archive=on""#),
        "{}",
        p.body
    );
    assert_eq!(b.get("/tasks/old-task").await.status, StatusCode::NOT_FOUND);
    let p = b.get("/tasks/old-task?archive=on").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("2019-03-01"), "{}", p.body);
    let csv = b.get("/search.csv?task=old-task&archive=on").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.body.matches(",old-task,").count(), 2, "{}", csv.body);
    // An archived event's own page (the task page links to it), and the API's read of it.
    let p = b.get(&event_page).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("Event #0"), "{}", p.body);
    assert!(
        p.body.contains(r#"href="/tasks/old-task?archive=on""#),
        "{}",
        p.body
    );
    let proof = b.get(&format!("{event_page}/proof.json")).await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.body);
    let proof: Value = serde_json::from_str(&proof.body).unwrap();
    assert_eq!(proof["seq"], json!(0), "{proof}");
    let by_id = format!("/v1/events/{old_id}");
    assert_eq!(api.get(Some(&token), &by_id).await.0, StatusCode::NOT_FOUND);
    let (s, body) = api
        .get(Some(&token), &format!("{by_id}?include_archive=true"))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["event"]["task_id"], json!("old-task"), "{body}");
    let reads: Vec<_> = accesses(&api)
        .into_iter()
        .filter(|a| a.0 == "read")
        .collect();
    assert_eq!(reads.len(), 2, "the page and the API read: {reads:?}");
    assert_eq!(accesses(&api).iter().filter(|a| a.0 == "proof").count(), 1);

    // A segment gone from the archive: the API says which, as a bad gateway, not a 404.
    let key = "default/segments/2019-03-01-0.seg.gz";
    archive_objects.objects.lock().unwrap().remove(key);
    let (s, body) = api
        .get(
            Some(&token),
            "/v1/events?task=old-task&include_archive=true",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.to_string().contains(key), "{body}");

    // A viewer is offered no box and may not read the archive.
    let mut v = Browser::new(&api);
    v.sign_in(&api.token(Role::Viewer, "default")).await;
    assert!(!v.get("/search").await.body.contains("f-archive"));
    for uri in [
        "/search?task=old-task&archive=on",
        "/tasks/old-task?archive=on",
    ] {
        assert_eq!(v.get(uri).await.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(v.get(&event_page).await.status, StatusCode::NOT_FOUND);
}
