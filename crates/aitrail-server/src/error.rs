//! One error type for every route: JSON `{"error": {"message", "details"}}`, internals hidden.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

/// An error answer. `details` names what was wrong and where (index, line, field).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Vec<Value>) -> ApiError {
        self.details = details;
        self
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token")
    }

    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this token's role may not {what}"),
        )
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    /// A failure inside aitrail: logged in full, answered without internals.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        eprintln!("aitrail-server: internal error: {err}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; nothing of this request was written",
        )
    }
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    /// What was wrong and where: `{"index", "field", "message"}`, `{"line", "column"}`, ...
    pub details: Vec<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"message": self.message, "details": self.details}})),
        )
            .into_response()
    }
}

impl From<aitrail_store::StoreError> for ApiError {
    fn from(e: aitrail_store::StoreError) -> ApiError {
        match e {
            aitrail_store::StoreError::NotFound(what) => {
                ApiError::not_found(format!("not found: {what}"))
            }
            e @ aitrail_store::StoreError::MissingArchive(_) => {
                ApiError::new(axum::http::StatusCode::BAD_GATEWAY, e.to_string())
            }
            e @ aitrail_store::StoreError::Refused(_) => {
                ApiError::new(axum::http::StatusCode::CONFLICT, e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}
