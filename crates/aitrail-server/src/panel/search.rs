//! Search: a form (task, reviewer, event type, model, decision, date range), a page of
//! results with links to each task and event, the next page, and the current search as a
//! CSV download (auditors and admins; the route refuses viewers with 403).

use super::layout::{decision_badge, frame, respond, when, Nav, PanelError};
use super::session::Session;
use super::{blocking, day_start, given};
use crate::routes::query::{entry_body, reading, stream_export, FilterParams};
use crate::state::AppState;
use aitrail_core::event::{AUDIT_TYPES, KNOWN_TYPES};
use aitrail_store::audit::{record_access, search};
use aitrail_store::export::Format;
use aitrail_store::keys::Keyring;
use aitrail_store::query::{Cursor, Filter, Query as StoreQuery};
use aitrail_store::retention::ArchiveStore;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Results per page.
const PAGE: usize = 50;

/// The search form as submitted; empty fields are no filter.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SearchForm {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    types: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// `on`: archived days too (the checkbox shows when the server has an archive).
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

impl SearchForm {
    /// The archive to search too, when the box is ticked (auditors and admins: reading
    /// segments back is heavy work); a clear error when this server has none.
    fn archive(
        &self,
        st: &AppState,
        who: &Session,
    ) -> Result<Option<Arc<dyn ArchiveStore>>, PanelError> {
        let asked = given(&self.archive).is_some();
        if asked && !who.may_export() {
            return Err(PanelError::forbidden(
                "Searching archived days",
                &who.principal,
            ));
        }
        match (asked, &st.archive) {
            (false, _) => Ok(None),
            (true, Some(archive)) => Ok(Some(archive.clone())),
            (true, None) => Err(PanelError::new(
                StatusCode::BAD_REQUEST,
                "This server keeps no archive; search without \"include archived days\".",
            )),
        }
    }

    /// The store filter, through the API's own parameter parsing.
    fn filter(
        &self,
        policy: &aitrail_core::pii::Policy,
        subject_key: &[u8],
    ) -> Result<Filter, PanelError> {
        let from = given(&self.from)
            .map(|d| day_start("from", &d, false))
            .transpose()?;
        let to = given(&self.to)
            .map(|d| day_start("to", &d, true))
            .transpose()?;
        let params = FilterParams {
            task: given(&self.task),
            actor: given(&self.actor),
            types: given(&self.types),
            model: given(&self.model),
            model_version: given(&self.model_version),
            decision: given(&self.decision),
            from,
            to,
            ..FilterParams::default()
        };
        Ok(params.to_filter(policy, subject_key)?)
    }

    /// The query string of this search, without empty fields; `cursor` replaced.
    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut clean = SearchForm {
            task: given(&self.task),
            actor: given(&self.actor),
            types: given(&self.types),
            model: given(&self.model),
            model_version: given(&self.model_version),
            decision: given(&self.decision),
            from: given(&self.from),
            to: given(&self.to),
            archive: given(&self.archive),
            cursor: None,
        };
        clean.cursor = cursor.map(str::to_owned);
        serde_urlencoded::to_string(&clean).unwrap_or_default()
    }
}

fn form(f: &SearchForm, has_archive: bool) -> Markup {
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let selected = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    html! {
        form.filters method="get" action="/search" role="search" aria-label="Search the trail" {
            div { label for="f-task" { "Task id" } input #f-task name="task" value=(val(&f.task)) placeholder="loan-000042"; }
            div { label for="f-actor" { "Reviewer (actor id)" } input #f-actor name="actor" value=(val(&f.actor)) placeholder="rev-amara"; }
            div {
                label for="f-type" { "Event type" }
                select #f-type name="type" {
                    option value="" { "Any" }
                    @for t in KNOWN_TYPES.iter().chain(AUDIT_TYPES) { option value=(t) selected[selected(&f.types, t)] { (t) } }
                }
            }
            div { label for="f-model" { "Model name" } input #f-model name="model" value=(val(&f.model)) placeholder="credit-risk-llm"; }
            div { label for="f-model-version" { "Model version" } input #f-model-version name="model_version" value=(val(&f.model_version)) placeholder="2.0.0"; }
            div {
                label for="f-decision" { "Decision" }
                select #f-decision name="decision" {
                    option value="" { "Any" }
                    @for d in aitrail_core::event::DECISIONS { option value=(d) selected[selected(&f.decision, d)] { (d) } }
                }
            }
            div { label for="f-from" { "From (date)" } input #f-from name="from" type="date" value=(val(&f.from)); }
            div { label for="f-to" { "To (date, included)" } input #f-to name="to" type="date" value=(val(&f.to)); }
            @if has_archive {
                div { label for="f-archive" { input #f-archive name="archive" type="checkbox" value="on" checked[given(&f.archive).is_some()]; " Include archived days" } }
            }
            div { button type="submit" { "Search" } }
        }
    }
}

fn text<'a>(ev: &'a Value, obj: &str, key: &str) -> &'a str {
    ev.get(obj)
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `GET /search`: the form; with a query, a page of results (recorded as `audit.accessed`).
pub async fn page(
    State(st): State<AppState>,
    who: Session,
    RawQuery(raw): RawQuery,
    Query(f): Query<SearchForm>,
) -> Result<Response, PanelError> {
    let title = "Search";
    let st_archive = st.archive.is_some() && who.may_export();
    if raw.as_deref().unwrap_or("").is_empty() {
        let body = html! {
            (form(&f, st_archive))
            p.muted { "Leave a field empty to match everything. Dates are in UTC; the \"to\" day is included." }
        };
        return Ok(respond(
            StatusCode::OK,
            frame(title, Some(&who.principal), Nav::Search, body),
        ));
    }
    let tenant_key = st.keys.tenant_key(&who.log());
    let filter = f.filter(&st.keys.pii_policy(&who.log()), &tenant_key)?;
    let archive = f.archive(&st, &who)?;
    let archived = archive.is_some();
    let after = given(&f.cursor)
        .map(|c| {
            Cursor::decode(&c).ok_or_else(|| {
                PanelError::new(
                    StatusCode::BAD_REQUEST,
                    "that page link is not valid; search again",
                )
            })
        })
        .transpose()?;
    let query = StoreQuery {
        filter,
        after,
        limit: Some(PAGE),
        ..StoreQuery::default()
    };
    let (log, reader, role) = (who.log(), who.reader(), who.principal.role);
    let (rows, next) = blocking(move || {
        let (rows, next) = reading(st.store.as_ref(), archive.as_deref(), |s| {
            search(s, &log, &query)
        })?;
        let mut keyring = Keyring::new(st.store.as_ref(), &log, &tenant_key);
        let bodies = rows
            .iter()
            .map(|r| entry_body(&r.entry, role, Some(&mut keyring)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut asked = serde_json::to_value(&query.filter).unwrap_or_default();
        if archive.is_some() {
            asked["include_archive"] = true.into();
        }
        record_access(
            &st.sequencer,
            &log,
            &reader,
            "search",
            asked,
            bodies.len() as u64,
            query.filter.task_id.as_deref(),
        )?;
        Ok((bodies, next))
    })
    .await?;
    let body = html! {
        (form(&f, st_archive))
        div.actions {
            p #result-count role="status" {
                @if rows.is_empty() { "No events match this search." }
                @else if next.is_some() { "Showing " (rows.len()) " events; more on the next page." }
                @else { (rows.len()) " events." }
            }
            @if who.may_export() && !rows.is_empty() {
                a.button.secondary #download-csv href={ "/search.csv?" (f.query_string(None)) } download="aitrail-export.csv" { "Download all results as CSV" }
            }
        }
        @if !rows.is_empty() {
            table #results {
                caption.muted style="text-align:left" { "Events in the order they occurred" }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Event type" } th scope="col" { "Task" }
                    th scope="col" { "Actor" } th scope="col" { "Model" } th scope="col" { "Decision" } th scope="col" { "Details" }
                } }
                tbody {
                    @for r in &rows {
                        @let ev = &r.event;
                        @let task = ev.get("task_id").and_then(Value::as_str).unwrap_or("");
                        @let id = ev.get("id").and_then(Value::as_str).unwrap_or("");
                        tr {
                            td { (when(ev.get("occurred_at").and_then(Value::as_str).unwrap_or(""))) }
                            td { code { (ev.get("type").and_then(Value::as_str).unwrap_or("")) } }
                            td { a href={ "/tasks/" (task) @if archived { "?archive=on" } } { (task) } }
                            td { (text(ev, "actor", "id")) }
                            td { (text(ev, "model", "name")) " " (text(ev, "model", "version")) }
                            td { @let d = text(ev, "review", "decision"); @if !d.is_empty() { (decision_badge(d)) } }
                            td { a href={ "/events/" (id) } aria-label={ "Event " (id) } { "Event #" (r.seq) } }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &next {
            p { a.button.secondary #next-page href={ "/search?" (f.query_string(Some(c))) } { "Next " (PAGE) " results" } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        frame(title, Some(&who.principal), Nav::Search, body),
    ))
}

/// `GET /search.csv`: every event of the search (all pages) as CSV, streamed and recorded
/// as an export. Auditors and admins; anyone else gets 403.
pub async fn csv(
    State(st): State<AppState>,
    who: Session,
    Query(f): Query<SearchForm>,
) -> Result<Response, PanelError> {
    if !who.may_export() {
        return Err(PanelError::forbidden("Downloading CSV", &who.principal));
    }
    let tenant_key = st.keys.tenant_key(&who.log());
    let filter = f.filter(&st.keys.pii_policy(&who.log()), &tenant_key)?;
    let archive = f.archive(&st, &who)?;
    let (log, reader) = (who.log(), who.reader());
    Ok(stream_export(
        st,
        log,
        reader,
        filter,
        Format::Csv,
        tenant_key,
        false,
        archive,
    ))
}
