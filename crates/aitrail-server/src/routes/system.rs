//! Health, metrics and the OpenAPI document.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// Liveness: the store answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Value), (status = 503, body = crate::error::ErrorBody)))]
pub async fn health(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    super::blocking(move || {
        store.logs().map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {e}"),
            )
        })
    })
    .await?;
    Ok(Json(json!({"status": "ok"})))
}

/// Prometheus text exposition. Needs any token.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String), (status = 401)), security(("bearer" = [])))]
pub async fn metrics(State(st): State<AppState>, _who: Principal) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, body = Value)))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}
