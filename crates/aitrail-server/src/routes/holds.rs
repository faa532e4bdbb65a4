//! Legal holds, for admins (auditors may list them): nothing a hold covers expires while it
//! stands. Placing and releasing are recorded in the trail as `audit.retention` events.

use super::{blocking, now_micros};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aitrail_core::event::parse_time;
use aitrail_store::retention::{self, Hold, HoldScope};
use aitrail_store::tokens::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/holds", get(list).post(add))
        .route("/v1/holds/{id}/release", post(release))
}

/// What to hold: exactly one of a task, a subject (raw id, used only to compute its keyed
/// reference; or the reference itself), or a range of occurred_at (RFC 3339, `to` exclusive).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub task_id: Option<String>,
    pub subject_id: Option<String>,
    pub subject_ref: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Why: the matter or request (kept in the trail, after the tenant's PII policy).
    pub reason: String,
}

/// Why a hold is released.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub reason: String,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, m)
}

/// The reason, required, through the tenant's PII policy (it is kept in the trail).
fn reason(st: &AppState, log: &str, text: &str, what: &str) -> Result<String, ApiError> {
    if text.trim().is_empty() {
        return Err(bad(format!("reason: say why the hold is {what}")));
    }
    Ok(
        aitrail_core::pii::rewrite_text(text, &st.keys.pii_policy(log), &st.keys.tenant_key(log))
            .into_owned(),
    )
}

fn admin(who: &Principal, what: &str) -> Result<(), ApiError> {
    match who.role {
        Role::Admin => Ok(()),
        _ => Err(ApiError::forbidden(what)),
    }
}

/// The log's holds, released ones too (auditors and admins).
#[utoipa::path(get, path = "/v1/holds", tag = "retention",
    responses((status = 200, description = "Every hold, oldest first; `released` is null while it stands"),
              (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, who: Principal) -> Result<Json<Vec<Hold>>, ApiError> {
    if !matches!(who.role, Role::Admin | Role::Auditor) {
        return Err(ApiError::forbidden("list holds (auditor or admin needed)"));
    }
    let log = who.log().to_owned();
    let store = st.store.clone();
    Ok(Json(blocking(move || Ok(store.holds(&log)?)).await?))
}

/// Place a hold (admins only).
#[utoipa::path(post, path = "/v1/holds", tag = "retention", request_body = HoldRequest,
    responses((status = 201, description = "The hold placed"),
              (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn add(
    State(st): State<AppState>,
    who: Principal,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Hold>), ApiError> {
    admin(&who, "place holds (admin needed)")?;
    let req: HoldRequest = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "expected {{\"task_id\" | \"subject_id\" | \"subject_ref\" | \"from\" and \"to\", \"reason\"}}: {e}"
        ))
    })?;
    let log = who.log().to_owned();
    let time = |field: &str, v: &str| {
        parse_time(v).ok_or_else(|| bad(format!("{field}: {v:?} is not an RFC 3339 time")))
    };
    let scope = match (
        &req.task_id,
        &req.subject_id,
        &req.subject_ref,
        &req.from,
        &req.to,
    ) {
        (Some(t), None, None, None, None) if !t.is_empty() => {
            HoldScope::Task { task_id: t.clone() }
        }
        (None, Some(id), None, None, None) if !id.trim().is_empty() => HoldScope::Subject {
            subject_ref: aitrail_core::pii::subject_ref(&st.keys.tenant_key(&log), id),
        },
        (None, None, Some(r), None, None)
            if r.len() == 64
                && r.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            HoldScope::Subject {
                subject_ref: r.clone(),
            }
        }
        (None, None, Some(_), None, None) => {
            return Err(bad("subject_ref: expected 64 lowercase hex digits"))
        }
        (None, None, None, Some(f), Some(t)) => HoldScope::Time {
            from: time("from", f)?,
            to: time("to", t)?,
        },
        _ => {
            return Err(bad(
                "give exactly one of task_id, subject_id, subject_ref, or from and to",
            ))
        }
    };
    let reason = reason(&st, &log, &req.reason, "placed")?;
    let reader = super::query::reader(&who);
    let seq = st.sequencer.clone();
    let hold = blocking(move || {
        Ok(retention::place_hold(
            &seq,
            &log,
            &reader,
            scope,
            &reason,
            now_micros(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Release a hold (admins only); the hold stays listed, with its release.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "retention", request_body = ReleaseRequest,
    params(("id" = String, Path, description = "The hold's id")),
    responses((status = 200, description = "The hold, released"),
              (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "Released already", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn release(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Hold>, ApiError> {
    admin(&who, "release holds (admin needed)")?;
    let req: ReleaseRequest =
        serde_json::from_slice(&body).map_err(|e| bad(format!("expected {{\"reason\"}}: {e}")))?;
    let log = who.log().to_owned();
    let reason = reason(&st, &log, &req.reason, "released")?;
    let reader = super::query::reader(&who);
    let seq = st.sequencer.clone();
    let hold = blocking(move || {
        Ok(retention::release_hold(
            &seq,
            &log,
            &reader,
            &id,
            &reason,
            now_micros(),
        )?)
    })
    .await?;
    Ok(Json(hold))
}
