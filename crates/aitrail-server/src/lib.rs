//! aitrail-server: the HTTP API (DESIGN.md "HTTP contract").
//!
//! [`app`] builds the router from an [`state::AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot`; [`serve`] runs it with graceful shutdown. Handlers parse,
//! call the library, render: no SQL here. Every `/v1` route and `/metrics` needs a bearer
//! token ([`auth::Principal`]); errors are one JSON shape ([`error::ApiError`]). The web
//! panel ([`panel`]) is served at `/` with its own sign-in and session cookie.

pub mod auth;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod panel;
pub mod routes;
pub mod state;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use state::AppState;
use std::future::Future;

/// The whole API.
pub fn app(state: AppState) -> Router {
    let limit = state.settings.body_limit;
    Router::new()
        .merge(routes::events::router())
        .merge(routes::query::router())
        .merge(routes::subjects::router())
        .merge(routes::holds::router())
        .merge(routes::checkpoint::router())
        .merge(routes::consistency::router())
        .merge(routes::system::router())
        .merge(panel::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// An unknown route: JSON under the API's prefixes, a readable page anywhere else.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    if path.starts_with("/v1/") || path == "/metrics" || path == "/healthz" {
        error::ApiError::not_found("no such route").into_response()
    } else {
        panel::not_found().into_response()
    }
}

/// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish,
/// and drains the sequencers so everything acknowledged is committed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sequencer = state.sequencer.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::task::spawn_blocking(move || sequencer.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
