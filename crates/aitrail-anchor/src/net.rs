//! The async I/O the network anchors (S3, TSA) need, driven from synchronous callers.
//!
//! Each network anchor owns one small current-thread tokio runtime and blocks on it, so the
//! `Anchor` trait stays synchronous for the CLI. Async callers (the server) call anchors from
//! `spawn_blocking`, never from an async task.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::time::Duration;

/// How long one HTTP exchange with a TSA may take.
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A runtime that is shut down without blocking when dropped, so an anchor may be dropped
/// anywhere, also inside an async context.
pub(crate) struct Io {
    rt: Option<tokio::runtime::Runtime>,
}

impl Io {
    pub(crate) fn new() -> std::io::Result<Io> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Io { rt: Some(rt) })
    }

    /// Runs `f` to completion. Must not be called from inside an async task.
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            // Only `drop` takes the runtime out.
            None => unreachable!("the anchor's runtime is gone"),
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

/// An HTTP answer: status, content type and body.
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// POSTs `body` to `url` (http or https; https checks the server against the system's
/// roots) and reads at most `limit` bytes of the answer.
pub(crate) async fn post(
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    limit: usize,
) -> Result<Answer, String> {
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::USER_AGENT, "aitrail")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let exchange = async {
        let response = if url.starts_with("https://") {
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(provider)
                .map_err(|e| format!("loading the system's TLS roots: {e}"))?
                .https_only()
                .enable_http1()
                .build();
            Client::builder(TokioExecutor::new())
                .build::<_, Full<Bytes>>(https)
                .request(request)
                .await
        } else {
            Client::builder(TokioExecutor::new())
                .build::<_, Full<Bytes>>(HttpConnector::new())
                .request(request)
                .await
        }
        .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("reading the answer (at most {limit} bytes): {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Answer {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", HTTP_TIMEOUT.as_secs()))?
}
