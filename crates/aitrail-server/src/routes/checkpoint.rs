//! The latest signed checkpoint, as C2SP signed-note text.

use super::{blocking, now_micros};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aitrail_store::tokens::Role;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/checkpoint", get(latest))
}

/// The latest checkpoint of the caller's log; one is signed first when the latest is behind.
#[utoipa::path(get, path = "/v1/checkpoint", tag = "checkpoints",
    responses((status = 200, description = "C2SP signed note (tlog-checkpoint)", content_type = "text/plain", body = String),
              (status = 401), (status = 403), (status = 404, description = "The log has no entries yet", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn latest(
    State(st): State<AppState>,
    who: Principal,
) -> Result<impl IntoResponse, ApiError> {
    who.require_read(Role::Viewer)?;
    let log = who.log().to_owned();
    let cp = blocking(move || {
        let signer = st.keys.signer(&log).map_err(ApiError::internal)?;
        Ok(aitrail_store::log::checkpoint(st.store.as_ref(), &log, &signer, now_micros())?.0)
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    ))
}
