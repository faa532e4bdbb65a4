//! Subjects: erasure by crypto-shredding (GDPR Art. 17), for admins. The subject's data key
//! is destroyed, so the content of its events becomes unreadable everywhere while every
//! hash still verifies; the erasure is recorded as an `audit.erased` event holding the
//! subject's keyed reference, never its id.

use super::blocking;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aitrail_store::keys::erase_subject;
use aitrail_store::tokens::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/subjects/erase", post(erase))
}

/// Whom to erase: the raw subject id (used only to compute its reference; never stored or
/// logged), or the reference itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub subject_id: Option<String>,
    /// The subject's keyed reference (64 hex), as `subject.ref` shows it.
    pub subject_ref: Option<String>,
    /// Why (kept in the `audit.erased` event): the request, its date, the legal basis.
    pub reason: Option<String>,
}

/// What the erasure did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureBody {
    pub subject_ref: String,
    /// The id of the destroyed data key.
    pub key_id: String,
    /// Entries whose content is now unreadable.
    pub entries: u64,
    /// The `audit.erased` event recording the erasure.
    pub event_id: String,
    pub seq: u64,
    /// What could not be scrubbed yet (for the operator).
    pub warnings: Vec<String>,
}

/// Erase a subject: destroy its data key (admins only).
#[utoipa::path(post, path = "/v1/subjects/erase", tag = "subjects", request_body = EraseRequest,
    responses((status = 200, body = ErasureBody),
              (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403),
              (status = 404, description = "The subject has no data key (nothing sealed, or erased already)", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase(
    State(st): State<AppState>,
    who: Principal,
    body: axum::body::Bytes,
) -> Result<Json<ErasureBody>, ApiError> {
    if who.role != Role::Admin {
        return Err(ApiError::forbidden("erase subjects (admin needed)"));
    }
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let req: EraseRequest = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "expected {{\"subject_id\"}} or {{\"subject_ref\"}}: {e}"
        ))
    })?;
    let log = who.log().to_owned();
    let subject_ref = match (&req.subject_id, &req.subject_ref) {
        (Some(id), None) if !id.trim().is_empty() => {
            aitrail_core::pii::subject_ref(&st.keys.tenant_key(&log), id)
        }
        (None, Some(r))
            if r.len() == 64
                && r.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            r.clone()
        }
        (None, Some(_)) => return Err(bad("subject_ref: expected 64 lowercase hex digits".into())),
        _ => return Err(bad("give exactly one of subject_id and subject_ref".into())),
    };
    // The reason is free text too: the tenant's policy applies to it.
    let reason = req.reason.as_deref().map(|r| {
        aitrail_core::pii::rewrite_text(r, &st.keys.pii_policy(&log), &st.keys.tenant_key(&log))
            .into_owned()
    });
    let reader = super::query::reader(&who);
    let seq = st.sequencer.clone();
    let erasure = blocking(move || {
        Ok(erase_subject(
            &seq,
            &log,
            &reader,
            &subject_ref,
            reason.as_deref(),
        )?)
    })
    .await?;
    Ok(Json(ErasureBody {
        subject_ref: erasure.subject_ref,
        key_id: erasure.key_id,
        entries: erasure.entries,
        event_id: erasure.receipt.id.to_string(),
        seq: erasure.receipt.seq,
        warnings: erasure.warnings,
    }))
}
