//! Bearer tokens: the `Principal` extractor looks the token's hash up and carries its role
//! and tenant into the handler. Every `/v1` route and `/metrics` takes one.

use crate::error::ApiError;
use crate::state::AppState;
use aitrail_store::tokens::{token_hash, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// Who is calling: the token's role and tenant (whose log it works on).
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    pub tenant: String,
}

impl Principal {
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::forbidden("append events"))
        }
    }

    pub fn require_read(&self, level: Role) -> Result<(), ApiError> {
        if self.role.can_read(level) {
            Ok(())
        } else if level == Role::Auditor {
            Err(ApiError::forbidden(
                "read content or proofs (auditor or admin needed)",
            ))
        } else {
            Err(ApiError::forbidden("read the trail"))
        }
    }

    /// The log this principal works on.
    pub fn log(&self) -> &str {
        &self.tenant
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let tokens = state.tokens.clone();
        let hash = token_hash(token);
        let found = tokio::task::spawn_blocking(move || tokens.find_active(&hash))
            .await
            .map_err(ApiError::internal)??;
        let record = found.ok_or_else(ApiError::unauthorized)?;
        Ok(Principal {
            token_id: record.id,
            role: record.role,
            tenant: record.tenant,
        })
    }
}
