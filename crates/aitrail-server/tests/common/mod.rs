//! The test harness shared by the API test files: a real SQLite store in a temporary
//! directory, tokens of any role, and requests through `tower::ServiceExt::oneshot`.
#![allow(dead_code)]

use aitrail_core::checkpoint::Signer;
use aitrail_server::metrics::Metrics;
use aitrail_server::state::{AppState, Keys, Settings};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::store::Store;
use aitrail_store::tokens::{token_hash, Role, SqliteTokens, TokenRecord, TokenStore};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub struct TestKeys {
    pub signers: Mutex<HashMap<String, Arc<Signer>>>,
}

impl Keys for TestKeys {
    fn signer(&self, log: &str) -> Result<Arc<Signer>, String> {
        let mut s = self.signers.lock().unwrap();
        Ok(s.entry(log.to_owned())
            .or_insert_with(|| {
                Arc::new(
                    Signer::from_seed(&format!("test.example/{log}"), [log.len() as u8; 32])
                        .unwrap(),
                )
            })
            .clone())
    }
    fn subject_key(&self) -> Arc<Vec<u8>> {
        Arc::new(b"test subject key".to_vec())
    }
}

pub struct Api {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub state: AppState,
}

impl Api {
    pub fn new() -> Api {
        Api::with_limit(1024 * 1024)
    }

    pub fn with_limit(body_limit: usize) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let tokens: Arc<dyn TokenStore> = Arc::new(SqliteTokens::open(&path).unwrap());
        let state = AppState {
            store: store.clone(),
            sequencer: Arc::new(Sequencer::new(store.clone())),
            tokens,
            keys: Arc::new(TestKeys {
                signers: Mutex::new(HashMap::new()),
            }),
            metrics: Arc::new(Metrics::new()),
            settings: Settings { body_limit },
            archive: None,
        };
        Api { dir, store, state }
    }

    /// Creates a token with `role` for `tenant` and returns it.
    pub fn token(&self, role: Role, tenant: &str) -> String {
        self.token_with_id(role, tenant).0
    }

    /// Creates a token; returns it and its id.
    pub fn token_with_id(&self, role: Role, tenant: &str) -> (String, String) {
        let token = format!("tok-{}-{tenant}-{}", role.as_str(), uuid::Uuid::new_v4());
        let rec = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: String::new(),
            role,
            tenant: tenant.into(),
            created_at: 0,
            revoked_at: None,
        };
        self.state.tokens.add(&rec, &token_hash(&token)).unwrap();
        (token, rec.id)
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        ctype: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(c) = ctype {
            req = req.header(header::CONTENT_TYPE, c);
        }
        let resp = aitrail_server::app(self.state.clone())
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        (
            status,
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    pub async fn post(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, b) = self
            .call(
                Method::POST,
                "/v1/events",
                Some(token),
                Some("application/json"),
                body.to_string(),
            )
            .await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: Option<&str>, uri: &str) -> (StatusCode, Value) {
        let (s, b) = self
            .call(Method::GET, uri, token, None, Body::empty())
            .await;
        (
            s,
            serde_json::from_slice(&b)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned())),
        )
    }

    pub fn entries(&self, log: &str) -> u64 {
        self.store.head(log).unwrap().size
    }
}

pub fn event(i: u32) -> Value {
    json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "type": "review.decision", "task_id": format!("loan-{i}"),
           "occurred_at": "2026-03-01T12:00:00Z", "actor": {"kind": "human", "id": "rev-ana", "role": "underwriter"},
           "review": {"decision": "modify", "changes": {"amount": {"from": 25000, "to": 18000}}, "duration_ms": 90000},
           "input": {"prompt": "Summarise the file"}, "subject": {"kind": "applicant", "id": format!("applicant-{i}")}})
}
