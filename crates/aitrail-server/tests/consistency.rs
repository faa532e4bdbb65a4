//! `GET /v1/consistency`: what an outside monitor does with it. It keeps a signed checkpoint,
//! later asks for a proof from that size to the latest checkpoint, and checks it with RFC 9162
//! §2.1.4.2 (`verify_consistency`) against roots it verified itself; and a rewritten log
//! cannot produce one. Driven through `app()` with `oneshot`, on a real SQLite store.
//!
//! Where a new test belongs: another behaviour of this route goes here; a route's role row
//! also belongs in `api.rs` `every_route_with_every_role`.

use aitrail_core::checkpoint::{Checkpoint, Signer};
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{Event, Origin};
use aitrail_core::merkle::{leaf_hash, verify_consistency, Hash, MemoryTree};
use aitrail_server::metrics::Metrics;
use aitrail_server::state::{AppState, Keys, Settings};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::store::Store;
use aitrail_store::tokens::{token_hash, Role, SqliteTokens, TokenRecord, TokenStore};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// One signer for every log (tenants differ only by log).
struct TestKeys(Arc<Signer>);

impl Keys for TestKeys {
    fn signer(&self, _log: &str) -> Result<Arc<Signer>, String> {
        Ok(self.0.clone())
    }
    fn subject_key(&self) -> Arc<Vec<u8>> {
        Arc::new(b"test subject key".to_vec())
    }
}

struct Api {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    state: AppState,
    signer: Arc<Signer>,
}

impl Api {
    fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let signer = Arc::new(Signer::from_seed("test.example/default", [5; 32]).unwrap());
        let state = AppState {
            store: store.clone(),
            sequencer: Arc::new(Sequencer::new(store.clone())),
            tokens: Arc::new(SqliteTokens::open(&path).unwrap()) as Arc<dyn TokenStore>,
            keys: Arc::new(TestKeys(signer.clone())),
            metrics: Arc::new(Metrics::new()),
            settings: Settings::default(),
            archive: None,
        };
        Api {
            _dir: dir,
            store,
            state,
            signer,
        }
    }

    fn token(&self, role: Role) -> String {
        let token = format!("tok-{}-{}", role.as_str(), uuid::Uuid::new_v4());
        let rec = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: String::new(),
            role,
            tenant: "default".into(),
            created_at: 0,
            revoked_at: None,
        };
        self.state.tokens.add(&rec, &token_hash(&token)).unwrap();
        token
    }

    /// Appends `n` events to the default log.
    fn append(&self, n: u32) {
        let start = self.store.head("default").unwrap().size as u32;
        let events = (start..start + n)
            .map(|i| {
                let e = Event::from_value(
                    json!({"type": "task.created", "task_id": format!("loan-{i}"),
                           "occurred_at": "2026-03-01T12:00:00Z"}),
                    Origin::Client,
                )
                .unwrap();
                PreparedEvent::new(e, b"k").unwrap()
            })
            .collect();
        self.state.sequencer.append("default", events).unwrap();
    }

    async fn get(&self, token: Option<&str>, uri: &str) -> (StatusCode, Value) {
        let mut req = Request::builder().uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = aitrail_server::app(self.state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// The root of the first `size` entries, recomputed from the entry bytes (not from the
    /// server's stored nodes).
    fn recomputed_root(&self, size: u64) -> Hash {
        let mut tree = MemoryTree::new();
        self.store
            .scan("default", 0, &mut |row| {
                if row.seq < size {
                    tree.push(leaf_hash(&row.entry));
                }
                Ok(row.seq + 1 < size)
            })
            .unwrap();
        tree.root()
    }
}

fn hash(hex_text: &Value) -> Hash {
    hex::decode(hex_text.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn proof(body: &Value) -> Vec<Hash> {
    body["proof"].as_array().unwrap().iter().map(hash).collect()
}

#[tokio::test]
async fn a_monitor_proves_the_log_only_grew_since_its_checkpoint() {
    let api = Api::new();
    let viewer = api.token(Role::Viewer);
    api.append(5);
    let (status, kept) = api.get(Some(&viewer), "/v1/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let kept_note = kept.as_str().unwrap().to_owned();
    let verifier = api.signer.verifier();
    let old = Checkpoint::open(&kept_note, &verifier).unwrap();
    assert_eq!(old.size, 5);

    api.append(8);
    let (status, body) = api.get(Some(&viewer), "/v1/consistency?from=5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // `to` defaults to the latest checkpoint, signed now because the log grew.
    let new = Checkpoint::open(body["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    assert_eq!(
        (
            new.size,
            body["to"].as_u64(),
            body["checkpoint_size"].as_u64()
        ),
        (13, Some(13), Some(13))
    );
    assert_eq!(
        (body["from"].as_u64(), body["log"].as_str()),
        (Some(5), Some("default"))
    );
    // The monitor needs only its own root, the new signed root and the proof.
    verify_consistency(5, 13, &old.root, &new.root, &proof(&body)).unwrap();
    assert_eq!(hash(&body["from_root"]), old.root);
    assert_eq!(hash(&body["to_root"]), new.root);
    // And a proof for another root (a rewritten history) does not verify.
    let mut forged = old.root;
    forged[0] ^= 1;
    assert!(verify_consistency(5, 13, &forged, &new.root, &proof(&body)).is_err());
}

#[tokio::test]
async fn proofs_between_any_two_sizes_match_the_recomputed_tree() {
    let api = Api::new();
    let viewer = api.token(Role::Viewer);
    api.append(300);
    for (from, to) in [
        (1, 300),
        (7, 8),
        (8, 256),
        (255, 257),
        (100, 100),
        (299, 300),
    ] {
        let (status, body) = api
            .get(
                Some(&viewer),
                &format!("/v1/consistency?from={from}&to={to}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{from}..{to}: {body}");
        let (r1, r2) = (api.recomputed_root(from), api.recomputed_root(to));
        assert_eq!(hash(&body["from_root"]), r1, "{from}");
        assert_eq!(hash(&body["to_root"]), r2, "{to}");
        verify_consistency(from, to, &r1, &r2, &proof(&body))
            .unwrap_or_else(|e| panic!("{from}..{to}: {e}"));
        if from == to {
            assert!(proof(&body).is_empty());
        }
    }
}

#[tokio::test]
async fn bad_sizes_are_named() {
    let api = Api::new();
    let viewer = api.token(Role::Viewer);
    api.append(10);
    for (uri, field, says) in [
        ("/v1/consistency", "from", "required"),
        ("/v1/consistency?from=abc", "from", "not a tree size"),
        ("/v1/consistency?from=-1", "from", "not a tree size"),
        ("/v1/consistency?from=0", "from", "at least 1"),
        ("/v1/consistency?from=3&to=x", "to", "not a tree size"),
        (
            "/v1/consistency?from=3&to=11",
            "to",
            "beyond the log's 10 entries",
        ),
        ("/v1/consistency?from=8&to=4", "from", "must not exceed"),
    ] {
        let (status, body) = api.get(Some(&viewer), uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says) && message.contains(field),
            "{uri}: {message}"
        );
        assert_eq!(body["error"]["details"][0]["field"], field, "{uri}");
    }
}

#[tokio::test]
async fn an_empty_log_has_nothing_to_prove() {
    let api = Api::new();
    let viewer = api.token(Role::Viewer);
    let (status, body) = api.get(Some(&viewer), "/v1/consistency?from=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn viewers_and_above_may_ask() {
    let api = Api::new();
    api.append(4);
    let uri = "/v1/consistency?from=2&to=4";
    assert_eq!(api.get(None, uri).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.get(Some("nonsense"), uri).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get(Some(&api.token(Role::Ingest)), uri).await.0,
        StatusCode::FORBIDDEN
    );
    for role in [Role::Viewer, Role::Auditor, Role::Admin] {
        assert_eq!(
            api.get(Some(&api.token(role)), uri).await.0,
            StatusCode::OK,
            "{role:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_route() {
    let api = Api::new();
    let (status, doc) = api.get(None, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let op = &doc["paths"]["/v1/consistency"]["get"];
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["from", "to"]);
    assert!(op["responses"]["200"].is_object());
    assert!(doc["components"]["schemas"]["ConsistencyBody"].is_object());
}
