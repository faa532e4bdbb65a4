//! Events: append (one, an array, or NDJSON), read one, prove one.

use super::{blocking, now_micros};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aitrail_core::event::{Event, Origin};
use aitrail_store::keys::{prepare_events, Keyring};
use aitrail_store::sequencer::Outcome;
use aitrail_store::tokens::Role;
use aitrail_store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Instant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", post(append).get(super::query::list))
        .route("/v1/events/{id}", get(read))
        .route("/v1/events/{id}/proof", get(proof))
}

/// One receipt per event, in request order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Receipts {
    pub receipts: Vec<ReceiptBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptBody {
    pub id: String,
    pub seq: u64,
    /// Hex SHA-256 leaf hash of the entry (RFC 6962).
    pub leaf_hash: String,
    pub recorded_at: String,
    /// True when the event was already recorded with this id and content (nothing written).
    pub duplicate: bool,
}

/// Splits a request body into event values: one object, an array, or NDJSON lines.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let malformed = |line: Option<usize>, e: serde_json::Error| {
        let mut detail = json!({"column": e.column(), "message": e.to_string()});
        detail["line"] = json!(line.unwrap_or(e.line()));
        ApiError::new(StatusCode::BAD_REQUEST, "malformed JSON").with_details(vec![detail])
    };
    match essence.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body).map_err(|e| malformed(None, e))? {
            Value::Array(items) => Ok(items),
            obj @ Value::Object(_) => Ok(vec![obj]),
            _ => Err(ApiError::new(StatusCode::BAD_REQUEST, "expected an event object or an array of events")),
        },
        "application/x-ndjson" | "application/jsonl" => {
            let text = std::str::from_utf8(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body is not UTF-8: {e}")))?;
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    out.push(serde_json::from_str(line).map_err(|e| malformed(Some(i + 1), e))?);
                }
            }
            Ok(out)
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ctype:?} is not accepted: send application/json or application/x-ndjson"),
        )),
    }
}

/// Append events: all or nothing.
#[utoipa::path(post, path = "/v1/events", tag = "events",
    request_body(content = Value, description = "One event, an array of events, or NDJSON (application/x-ndjson)", content_type = "application/json"),
    responses(
        (status = 201, description = "Appended (durable); one receipt per event", body = Receipts),
        (status = 200, description = "Every event was already recorded with the same content; original receipts", body = Receipts),
        (status = 400, description = "Malformed JSON or NDJSON (line and column)", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "The token may not append", body = crate::error::ErrorBody),
        (status = 409, description = "An id already recorded with different content", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the size limit"),
        (status = 415, description = "Wrong content type", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid events: every problem by index and field", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn append(
    State(st): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Receipts>), ApiError> {
    who.require_write()?;
    let rejected = |e: ApiError| {
        st.metrics.rejected_requests.inc();
        e
    };
    let values = parse_body(&headers, &body).map_err(rejected)?;
    if values.is_empty() {
        return Err(rejected(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request holds no events",
        )));
    }
    let mut events = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (index, v) in values.into_iter().enumerate() {
        match Event::from_value(v, Origin::Client) {
            Ok(e) => events.push(e),
            Err(errs) => problems.extend(
                errs.into_iter()
                    .map(|f| json!({"index": index, "field": f.field, "message": f.message})),
            ),
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        return Err(rejected(
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{n} problem(s) in the events; nothing was written"),
            )
            .with_details(problems),
        ));
    }
    let count = events.len();
    let log = who.log().to_owned();
    let seq = st.sequencer.clone();
    let (policy, tenant_key) = (st.keys.pii_policy(&log), st.keys.tenant_key(&log));
    let started = Instant::now();
    let outcomes = blocking(move || {
        // Subjects' data keys are created (committed) here, before the events that use them;
        // if the append below is refused they stay unused, sealing nothing.
        let events = prepare_events(seq.store().as_ref(), &log, events, &policy, &tenant_key)
            .map_err(|e| match e {
                StoreError::Core(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
                other => ApiError::from(other),
            })?;
        seq.append(&log, events).map_err(|e| match e {
            StoreError::Conflict { index, id } => ApiError::new(
                StatusCode::CONFLICT,
                format!("event {id} was already recorded with different content; nothing of this request was written"),
            )
            .with_details(vec![json!({"index": index, "field": "id", "message": "already recorded with different content"})]),
            other => ApiError::from(other),
        })
    })
    .await
    .map_err(rejected)?;
    st.metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    st.metrics.batch_size.observe(count as f64);
    let label = crate::metrics::LogLabel {
        log: who.log().to_owned(),
    };
    let mut created = 0;
    let receipts = outcomes
        .into_iter()
        .map(|o| {
            let duplicate = matches!(o, Outcome::Duplicate(_));
            created += usize::from(!duplicate);
            let r = o.receipt();
            ReceiptBody {
                id: r.id.to_string(),
                seq: r.seq,
                leaf_hash: hex(&r.leaf_hash),
                recorded_at: r.recorded_at.clone(),
                duplicate,
            }
        })
        .collect::<Vec<_>>();
    st.metrics
        .events_ingested
        .get_or_create(&label)
        .inc_by(created as u64);
    st.metrics
        .duplicates
        .get_or_create(&label)
        .inc_by((count - created) as u64);
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Receipts { receipts })))
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored entry as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryBody {
    pub log: String,
    pub seq: u64,
    pub recorded_at: String,
    pub leaf_hash: String,
    /// The event as stored (after PII processing).
    pub event: Value,
    /// Content fields left out for this reader's role.
    pub withheld: Vec<String>,
}

/// Read one event by id (with `include_archive=true`, an archived one too).
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "Event id"), super::query::ArchiveParams),
    responses((status = 200, body = EntryBody), (status = 401), (status = 403), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(a): Query<super::query::ArchiveParams>,
) -> Result<Json<EntryBody>, ApiError> {
    who.require_read(Role::Viewer)?;
    let archive = a.archive(&st, &who)?;
    let mut asked = json!({"event_id": id});
    if archive.is_some() {
        asked["include_archive"] = true.into();
    }
    let log = who.log().to_owned();
    let store = st.store.clone();
    let lookup = id.clone();
    let tenant_key = st.keys.tenant_key(&log);
    let role = who.role;
    let body = blocking(move || {
        let entry = super::query::reading(store.as_ref(), archive.as_deref(), |s| {
            s.entry_by_id(&log, &lookup)
        })?
        .ok_or_else(|| ApiError::not_found(format!("no event {lookup}")))?;
        let mut keyring = Keyring::new(store.as_ref(), &log, &tenant_key);
        super::query::entry_body(&entry, role, Some(&mut keyring))
    })
    .await?;
    let (seq, log) = (st.sequencer.clone(), who.log().to_owned());
    let reader = super::query::reader(&who);
    blocking(move || {
        Ok(aitrail_store::audit::record_access(
            &seq, &log, &reader, "read", asked, 1, None,
        )?)
    })
    .await?;
    Ok(Json(body))
}

/// A self-contained inclusion proof of one event against a signed checkpoint.
#[utoipa::path(get, path = "/v1/events/{id}/proof", tag = "events",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "The proof (DESIGN.md): log, seq, tree_size, entry, leaf_hash, audit_path, root_hash, checkpoint", body = Value),
              (status = 401), (status = 403), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn proof(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_read(Role::Auditor)?;
    let log = who.log().to_owned();
    let reader = super::query::reader(&who);
    let proof = blocking(move || prove_event(&st, &log, &id, &reader)).await?;
    Ok(Json(
        serde_json::to_value(proof).map_err(ApiError::internal)?,
    ))
}

/// The proof of one event (signing a checkpoint first when none covers it yet), recorded as
/// a read (`audit.accessed`, action `proof`). Blocking; shared with the web panel.
pub fn prove_event(
    st: &AppState,
    log: &str,
    id: &str,
    reader: &aitrail_store::audit::Reader,
) -> Result<aitrail_core::proof::Proof, ApiError> {
    let store = st.store.as_ref();
    // An archived event is proven from its segment, as the CLI's `prove` does (only auditors
    // and admins get here).
    let prove = || {
        super::query::reading(store, st.archive.as_deref(), |s| {
            aitrail_store::log::prove(s, log, id)
        })
    };
    let proof = match prove()? {
        Some(p) => p,
        None => {
            let signer = st.keys.signer(log).map_err(ApiError::internal)?;
            aitrail_store::log::checkpoint(store, log, &signer, now_micros())?;
            prove()?.ok_or_else(|| {
                ApiError::internal("no checkpoint covers the entry after signing one")
            })?
        }
    };
    aitrail_store::audit::record_access(
        &st.sequencer,
        log,
        reader,
        "proof",
        json!({"event_id": id}),
        1,
        None,
    )?;
    Ok(proof)
}
