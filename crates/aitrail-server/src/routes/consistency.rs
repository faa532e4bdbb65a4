//! Consistency proofs between two sizes of the caller's log (RFC 6962 §2.1.2), so that an
//! outside monitor holding an earlier checkpoint can check that the log only grew: with the
//! old root it kept, the new signed checkpoint and this proof, RFC 9162 §2.1.4.2 verification
//! needs nothing else from aitrail.

use super::{blocking, now_micros};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aitrail_store::tokens::Role;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/consistency", get(consistency))
}

/// A consistency proof and the trees it links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyBody {
    pub log: String,
    /// The smaller tree size.
    pub from: u64,
    /// The larger tree size.
    pub to: u64,
    /// Hex root hash of the first `from` entries.
    pub from_root: String,
    /// Hex root hash of the first `to` entries.
    pub to_root: String,
    /// PROOF(from, D[0:to]) (RFC 6962 §2.1.2): hex hashes in order; empty when from = to.
    pub proof: Vec<String>,
    /// The latest signed checkpoint (C2SP signed note; signed now when behind the log).
    pub checkpoint: String,
    /// The tree size of `checkpoint`; `to` defaults to it.
    pub checkpoint_size: u64,
}

/// Parses a size parameter, naming it when it is wrong.
fn size_param(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("query parameter `{name}`: {v:?} is not a tree size (a whole number)"),
                )
                .with_details(vec![
                    serde_json::json!({"field": name, "message": "expected a whole number"}),
                ])
            })
        })
        .transpose()
}

fn bad(field: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message.clone()).with_details(vec![
        serde_json::json!({"field": field, "message": message}),
    ])
}

/// The consistency proof from tree size `from` to `to` (default: the latest checkpoint).
#[utoipa::path(get, path = "/v1/consistency", tag = "checkpoints",
    params(
        ("from" = u64, Query, description = "The smaller tree size, at least 1 (e.g. the size of a checkpoint you kept)"),
        ("to" = Option<u64>, Query, description = "The larger tree size, at most the log's size; default: the latest checkpoint's size"),
    ),
    responses(
        (status = 200, description = "The proof, both roots and the latest signed checkpoint", body = ConsistencyBody),
        (status = 400, description = "`from` or `to` missing, not a number, or out of range", body = crate::error::ErrorBody),
        (status = 401), (status = 403),
        (status = 404, description = "The log has no entries yet", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn consistency(
    State(st): State<AppState>,
    who: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ConsistencyBody>, ApiError> {
    who.require_read(Role::Viewer)?;
    let from = size_param(&params, "from")?.ok_or_else(|| {
        bad(
            "from",
            "query parameter `from` is required: the tree size to prove consistency from".into(),
        )
    })?;
    if from == 0 {
        return Err(bad(
            "from",
            "query parameter `from` must be at least 1 (every tree extends the empty one)".into(),
        ));
    }
    let to = size_param(&params, "to")?;
    let log = who.log().to_owned();
    let body = blocking(move || {
        let store = st.store.as_ref();
        let signer = st.keys.signer(&log).map_err(ApiError::internal)?;
        let (cp, _) = aitrail_store::log::checkpoint(store, &log, &signer, now_micros())?;
        let size = store.head(&log)?.size;
        let to = to.unwrap_or(cp.size);
        if to > size {
            return Err(bad(
                "to",
                format!("query parameter `to` ({to}) is beyond the log's {size} entries"),
            ));
        }
        if from > to {
            return Err(bad(
                "from",
                format!("query parameter `from` ({from}) must not exceed `to` ({to})"),
            ));
        }
        let proof = if from == to {
            Vec::new()
        } else {
            aitrail_store::log::consistency_path(store, &log, from, to)?
        };
        Ok(ConsistencyBody {
            from_root: hex::encode(aitrail_store::log::root_at(store, &log, from)?),
            to_root: hex::encode(aitrail_store::log::root_at(store, &log, to)?),
            proof: proof.iter().map(hex::encode).collect(),
            log,
            from,
            to,
            checkpoint: cp.note,
            checkpoint_size: cp.size,
        })
    })
    .await?;
    Ok(Json(body))
}
