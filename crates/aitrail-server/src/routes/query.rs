//! Reads for people and programs: search, a task's timeline, streaming export, and the
//! attestation that a range was reviewed. Every read is recorded as `audit.accessed`.

use super::blocking;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::events::EntryBody;
use crate::state::AppState;
use aitrail_core::entry::Record;
use aitrail_core::event::{parse_time, withhold_content, DECISIONS};
use aitrail_core::timeline::Timeline;
use aitrail_store::audit::{
    record_access, record_partial_export, record_review, search, task_timeline, Reader,
};
use aitrail_store::export::{export, Format};
use aitrail_store::keys::Keyring;
use aitrail_store::query::{Cursor, Filter, Order, Query, TimeField};
use aitrail_store::retention::{ArchiveStore, WithArchive};
use aitrail_store::store::Store;
use aitrail_store::tokens::Role;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as Params, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks/{task_id}/timeline", get(timeline))
        .route("/v1/export", get(export_events))
        .route("/v1/reviews", post(review))
}

/// Filters as query parameters (the same as the CLI's).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Task id.
    pub task: Option<String>,
    /// Actor (reviewer) id.
    pub actor: Option<String>,
    /// Event types, comma-separated.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// Model name.
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub prompt_version: Option<String>,
    /// approve, reject, modify or escalate.
    pub decision: Option<String>,
    /// Raw subject id: matched through its keyed reference, never stored or logged.
    pub subject: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// `occurred` (default) or `recorded`.
    pub time: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Results per page, 1 to 1000 (default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
}

/// Whether a read also reaches the archive (retention).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchiveParams {
    /// `true`: archived segments are read back, checked, and their matches merged in order
    /// with the hot rows, as the CLI's `--include-archive`. Needs an archive configured, and
    /// an auditor or admin (reading segments back is heavy work).
    pub include_archive: Option<bool>,
}

impl ArchiveParams {
    /// The archive to read too, when asked for; an error naming the parameter when the
    /// server has none, 403 below auditor.
    pub(crate) fn archive(
        &self,
        st: &AppState,
        who: &Principal,
    ) -> Result<Option<Arc<dyn ArchiveStore>>, ApiError> {
        let asked = self.include_archive.unwrap_or(false);
        if asked {
            who.require_read(Role::Auditor)?;
        }
        match (asked, &st.archive) {
            (false, _) => Ok(None),
            (true, Some(archive)) => Ok(Some(archive.clone())),
            (true, None) => Err(bad(
                "include_archive",
                "this server has no archive ([retention] archive in aitrail.toml)".into(),
            )),
        }
    }
}

/// Runs `f` on the store a read goes to: the hot store, or the hot store and `archive`
/// merged (`WithArchive`).
pub(crate) fn reading<T>(
    store: &dyn Store,
    archive: Option<&dyn ArchiveStore>,
    f: impl FnOnce(&dyn Store) -> T,
) -> T {
    match archive {
        Some(archive) => f(&WithArchive { store, archive }),
        None => f(store),
    }
}

fn bad(field: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
        .with_details(vec![json!({"field": field, "message": message})])
}

impl FilterParams {
    /// `policy` and `subject_key` are the tenant's: the subject and any field the policy
    /// references are looked up by their keyed reference.
    pub fn to_filter(
        &self,
        policy: &aitrail_core::pii::Policy,
        subject_key: &[u8],
    ) -> Result<Filter, ApiError> {
        let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            v.as_deref()
                .map(|s| {
                    parse_time(s)
                        .ok_or_else(|| bad(field, format!("{s:?} is not an RFC 3339 time")))
                })
                .transpose()
        };
        if let Some(d) = &self.decision {
            if !DECISIONS.contains(&d.as_str()) {
                return Err(bad(
                    "decision",
                    format!("expected one of {}", DECISIONS.join(", ")),
                ));
            }
        }
        Ok(Filter {
            task_id: self.task.clone(),
            actor_id: self.actor.clone(),
            types: self
                .types
                .as_deref()
                .map(|t| {
                    t.split(',')
                        .map(|x| x.trim().to_owned())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            model_name: self.model.clone(),
            model_version: self.model_version.clone(),
            prompt_version: self.prompt_version.clone(),
            decision: self.decision.clone(),
            subject_ref: self
                .subject
                .as_deref()
                .map(|s| aitrail_core::pii::subject_ref(subject_key, s)),
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            time: match self.time.as_deref() {
                None | Some("occurred") => TimeField::Occurred,
                Some("recorded") => TimeField::Recorded,
                Some(other) => {
                    return Err(bad(
                        "time",
                        format!("{other:?}: expected occurred or recorded"),
                    ))
                }
            },
        }
        .under_policy(policy, subject_key))
    }
}

/// The reader behind a token, for audit records.
pub fn reader(who: &Principal) -> Reader {
    Reader {
        kind: "system",
        id: format!("token:{}", who.token_id),
        role: who.role.as_str().to_owned(),
    }
}

/// One page of search results.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page {
    pub events: Vec<EntryBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An entry as a reader with this role may see it.
///
/// Auditors and admins see sealed content opened with `keyring` (or `{"erased": true}` once
/// the subject was erased); viewers see content fields withheld.
pub fn entry_body(
    entry: &aitrail_store::store::StoredEntry,
    role: Role,
    keyring: Option<&mut Keyring<'_>>,
) -> Result<EntryBody, ApiError> {
    let record = Record::parse(&entry.entry).map_err(ApiError::internal)?;
    let mut event = record.event;
    let withheld = if role.can_read(Role::Auditor) {
        if let Some(k) = keyring {
            k.reveal(&mut event)?;
        }
        Vec::new()
    } else {
        withhold_content(&mut event)
    };
    Ok(EntryBody {
        log: record.log,
        seq: record.seq,
        recorded_at: record.recorded_at,
        leaf_hash: entry.leaf().iter().map(|b| format!("{b:02x}")).collect(),
        event: Value::Object(event),
        withheld: withheld.into_iter().map(str::to_owned).collect(),
    })
}

/// Search events: every filter set must match; keyset pagination in a stable order.
#[utoipa::path(get, path = "/v1/events", tag = "query", params(FilterParams, PageParams, ArchiveParams),
    responses((status = 200, body = Page), (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    who: Principal,
    Params(f): Params<FilterParams>,
    Params(p): Params<PageParams>,
    Params(a): Params<ArchiveParams>,
) -> Result<Json<Page>, ApiError> {
    who.require_read(Role::Viewer)?;
    let archive = a.archive(&st, &who)?;
    let tenant_key = st.keys.tenant_key(who.log());
    let filter = f.to_filter(&st.keys.pii_policy(who.log()), &tenant_key)?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", "expected 1 to 1000".into()));
    }
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c).ok_or_else(|| bad("cursor", "not a cursor this API gave out".into()))
        })
        .transpose()?;
    let order = match p.order.as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(o) => return Err(bad("order", format!("{o:?}: expected asc or desc"))),
    };
    let query = Query {
        filter,
        order,
        after,
        limit: Some(limit),
        from_seq: None,
    };
    let log = who.log().to_owned();
    let page = blocking(move || {
        let (rows, next) = reading(st.store.as_ref(), archive.as_deref(), |s| {
            search(s, &log, &query)
        })?;
        let mut keyring = Keyring::new(st.store.as_ref(), &log, &tenant_key);
        let events = rows
            .iter()
            .map(|r| entry_body(&r.entry, who.role, Some(&mut keyring)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut asked = serde_json::to_value(&query.filter).map_err(ApiError::internal)?;
        if archive.is_some() {
            asked["include_archive"] = true.into();
        }
        record_access(
            &st.sequencer,
            &log,
            &reader(&who),
            "search",
            asked,
            events.len() as u64,
            query.filter.task_id.as_deref(),
        )?;
        Ok(Page {
            events,
            next_cursor: next,
        })
    })
    .await?;
    Ok(Json(page))
}

/// Every event of a task in the order it occurred, with derived facts.
#[utoipa::path(get, path = "/v1/tasks/{task_id}/timeline", tag = "query",
    params(("task_id" = String, Path, description = "Task id"), ArchiveParams),
    responses((status = 200, description = "task_id, summary (time to first review, decisions, overrides, escalations, resolution, human time), steps", body = Value),
              (status = 401), (status = 403), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn timeline(
    State(st): State<AppState>,
    who: Principal,
    Path(task): Path<String>,
    Params(a): Params<ArchiveParams>,
) -> Result<Json<Value>, ApiError> {
    who.require_read(Role::Viewer)?;
    let archive = a.archive(&st, &who)?;
    let (log, reader, role) = (who.log().to_owned(), reader(&who), who.role);
    let tl = blocking(move || {
        Ok(read_timeline(
            &st,
            &log,
            &reader,
            role,
            &task,
            archive.as_deref(),
        )?)
    })
    .await?;
    if tl.steps.is_empty() {
        return Err(ApiError::not_found(format!(
            "no events for task {:?}",
            tl.task_id
        )));
    }
    Ok(Json(serde_json::to_value(tl).map_err(ApiError::internal)?))
}

/// The timeline of `task` as `role` may see it (sealed content opened for auditors and
/// admins, content withheld from viewers), its read recorded as `audit.accessed`; with
/// `archive`, archived entries of the task too. Shared with the web panel.
pub fn read_timeline(
    st: &AppState,
    log: &str,
    reader: &Reader,
    role: Role,
    task: &str,
    archive: Option<&dyn ArchiveStore>,
) -> aitrail_store::Result<Timeline> {
    let tenant_key = st.keys.tenant_key(log);
    let opens = role.can_read(Role::Auditor);
    let mut keyring = Keyring::new(st.store.as_ref(), log, &tenant_key);
    let mut tl = reading(st.store.as_ref(), archive, |s| {
        task_timeline(s, log, task, opens.then_some(&mut keyring))
    })?;
    let mut asked = json!({"task_id": task});
    if archive.is_some() {
        asked["include_archive"] = true.into();
    }
    record_access(
        &st.sequencer,
        log,
        reader,
        "timeline",
        asked,
        tl.steps.len() as u64,
        Some(task),
    )?;
    if !opens {
        for step in &mut tl.steps {
            withhold_content(&mut step.event);
        }
        for d in &mut tl.summary.decisions {
            d.changes = None;
        }
    }
    Ok(tl)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` or `ndjson`.
    pub format: String,
    /// `true`: NDJSON lines are the stored entry bytes even where content is sealed (each
    /// line then hashes to its leaf). Default: sealed content is opened.
    pub sealed: Option<bool>,
}

/// Every matching event, streamed: CSV (RFC 4180) or NDJSON (stored entry bytes). Auditors and
/// admins only.
#[utoipa::path(get, path = "/v1/export", tag = "query", params(ExportParams, FilterParams, ArchiveParams),
    responses((status = 200, description = "text/csv or application/x-ndjson, streamed", body = String),
              (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn export_events(
    State(st): State<AppState>,
    who: Principal,
    Params(e): Params<ExportParams>,
    Params(f): Params<FilterParams>,
    Params(a): Params<ArchiveParams>,
) -> Result<Response, ApiError> {
    who.require_read(Role::Auditor)?;
    let archive = a.archive(&st, &who)?;
    let format = match e.format.as_str() {
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        other => return Err(bad("format", format!("{other:?}: expected csv or ndjson"))),
    };
    let tenant_key = st.keys.tenant_key(who.log());
    let filter = f.to_filter(&st.keys.pii_policy(who.log()), &tenant_key)?;
    let sealed = e.sealed.unwrap_or(false);
    let log = who.log().to_owned();
    Ok(stream_export(
        st,
        log,
        reader(&who),
        filter,
        format,
        tenant_key,
        sealed,
        archive,
    ))
}

/// Streams every event of `log` matching `filter` as an attachment and records the export
/// (`audit.accessed`, action `export`) when it ends: complete, or stopped part way (the
/// client went away) with the entries sent until then and `"complete": false`. Sealed content is opened with
/// `tenant_key` unless `sealed` (NDJSON lines then are the stored bytes); with `archive`,
/// archived entries too. Shared with the web panel.
#[allow(clippy::too_many_arguments)]
pub fn stream_export(
    st: AppState,
    log: String,
    reader: Reader,
    filter: Filter,
    format: Format,
    tenant_key: std::sync::Arc<Vec<u8>>,
    sealed: bool,
    archive: Option<Arc<dyn ArchiveStore>>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let query = Query {
            filter,
            ..Query::default()
        };
        let mut keyring = Keyring::new(st.store.as_ref(), &log, &tenant_key);
        // Entries read and handed to the response so far.
        let mut sent = 0u64;
        // A panic part way must not end the body as if the export were complete, nor leave
        // the read unrecorded.
        let exported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reading(st.store.as_ref(), archive.as_deref(), |s| {
                export(
                    s,
                    &log,
                    &query,
                    format,
                    &mut out,
                    &mut |n| sent = n,
                    (!sealed).then_some(&mut keyring),
                )
            })
        }));
        let result = match exported {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the export stopped on a panic".to_owned()),
        };
        let mut asked = serde_json::to_value(&query.filter).unwrap_or_default();
        asked["format"] = format.as_str().into();
        if archive.is_some() {
            asked["include_archive"] = true.into();
        }
        let task = query.filter.task_id.as_deref();
        let recorded = match result {
            Ok(rows) => {
                record_access(&st.sequencer, &log, &reader, "export", asked, rows, task).map(drop)
            }
            Err(e) => {
                // The reason goes to the log; the client sees a truncated body (or has gone).
                eprintln!("aitrail-server: export failed: {e}");
                // What was read before it stopped was read all the same; recorded before the
                // error goes to a client that may have stopped reading.
                let recorded = match sent {
                    0 => Ok(()),
                    _ => record_partial_export(&st.sequencer, &log, &reader, asked, sent, task)
                        .map(drop),
                };
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                recorded
            }
        };
        if let Err(e) = recorded {
            eprintln!("aitrail-server: could not record an export: {e}");
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    (
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"aitrail-export.{ext}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

const CHUNK: usize = 64 * 1024;

/// A `Write` that sends 64 KiB chunks to the response body; blocks when the client is slow,
/// so memory stays constant.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away")
            })?;
        }
        Ok(())
    }
}

/// An attestation that a person reviewed the trail over a range.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewRequest {
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive.
    pub to: String,
    /// What was checked and found.
    pub note: String,
}

/// Record that a range of the trail was reviewed (SOC 2 log review evidence): an
/// `audit.reviewed` event. Auditors and admins.
#[utoipa::path(post, path = "/v1/reviews", tag = "query", request_body = ReviewRequest,
    responses((status = 201, description = "The attestation's receipt", body = crate::routes::events::ReceiptBody),
              (status = 400, body = crate::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn review(
    State(st): State<AppState>,
    who: Principal,
    Json(r): Json<ReviewRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_read(Role::Auditor)?;
    let from = parse_time(&r.from)
        .ok_or_else(|| bad("from", format!("{:?} is not an RFC 3339 time", r.from)))?;
    let to = parse_time(&r.to)
        .ok_or_else(|| bad("to", format!("{:?} is not an RFC 3339 time", r.to)))?;
    if from >= to {
        return Err(bad("from", "must be before `to`".into()));
    }
    if r.note.trim().is_empty() {
        return Err(bad("note", "say what was checked".into()));
    }
    let log = who.log().to_owned();
    let receipt = blocking(move || {
        Ok(record_review(
            st.store.as_ref(),
            &st.sequencer,
            &log,
            &reader(&who),
            from..to,
            &r.note,
            None,
        )?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": receipt.id, "seq": receipt.seq, "leaf_hash": hex_of(&receipt.leaf_hash), "recorded_at": receipt.recorded_at, "duplicate": false}),
        ),
    ))
}

fn hex_of(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}
