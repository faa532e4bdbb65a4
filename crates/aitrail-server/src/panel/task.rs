//! A task's timeline (model output, reviews with decision, rationale, changes and time
//! spent, escalations, resolution, every event) and one event with its proof status
//! ("included in checkpoint N, signed at T, anchored at ..."), plus the proof download.

use super::blocking;
use super::layout::{
    decision_badge, duration, frame, json_block, respond, when, withheld, Nav, PanelError,
};
use super::session::Session;
use crate::routes::events::prove_event;
use crate::routes::query::{entry_body, read_timeline};
use crate::state::AppState;
use aitrail_store::audit::record_access;
use aitrail_store::keys::Keyring;
use aitrail_store::retention::archived_entry;
use aitrail_store::status::inclusion;
use aitrail_store::tokens::Role;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

fn text<'a>(ev: &'a Map<String, Value>, obj: &str, key: &str) -> Option<&'a str> {
    ev.get(obj)?.get(key)?.as_str()
}

/// The model's answer: its text when it has one, then the other fields.
fn output(ev: &Map<String, Value>) -> Markup {
    match ev.get("output") {
        None => withheld(),
        Some(Value::Object(o)) if o.get("text").is_some_and(Value::is_string) => {
            let mut rest = o.clone();
            let text = rest.remove("text").unwrap_or_default();
            rest.remove("token_logprobs");
            let details: Vec<String> = rest
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_string().trim_matches('"')))
                .collect();
            html! {
                blockquote.output { (text.as_str().unwrap_or("")) }
                p.muted { (details.join(" · ")) }
            }
        }
        Some(other) => json_block(other),
    }
}

/// `?archive=on` on a task page: its archived events too (links from an archive search).
#[derive(Debug, Default, serde::Deserialize)]
pub struct TaskParams {
    archive: Option<String>,
}

/// `GET /tasks/{task_id}`.
pub async fn timeline(
    State(st): State<AppState>,
    who: Session,
    Path(task): Path<String>,
    Query(q): Query<TaskParams>,
) -> Result<Response, PanelError> {
    let (log, reader, role) = (who.log(), who.reader(), who.principal.role);
    let id = task.clone();
    // Without an archive on this server, `archive=on` reads what there is: the hot store.
    if q.archive.is_some() && !role.can_read(Role::Auditor) {
        return Err(PanelError::forbidden(
            "Reading archived days",
            &who.principal,
        ));
    }
    let archive = q.archive.is_some().then(|| st.archive.clone()).flatten();
    let tl = blocking(move || {
        Ok(read_timeline(
            &st,
            &log,
            &reader,
            role,
            &id,
            archive.as_deref(),
        )?)
    })
    .await?;
    if tl.steps.is_empty() {
        return Err(PanelError::new(
            StatusCode::NOT_FOUND,
            format!("There are no events for task {task:?}. Check the task id, or search for it."),
        ));
    }
    let content = role.can_read(Role::Auditor);
    let s = &tl.summary;
    let inferences: Vec<_> = tl
        .steps
        .iter()
        .filter(|st| st.event.get("type").and_then(Value::as_str) == Some("ai.inference"))
        .collect();
    let body = html! {
        @if !content { p.warning { (withheld()) } }
        dl.facts #summary {
            dt { "Events" } dd { (s.events) }
            dt { "Model" } dd { (s.models.join(", ")) }
            dt { "Prompt version" } dd { (s.prompt_versions.join(", ")) }
            dt { "Model output at" } dd { (s.model_output_at.as_deref().map(when).unwrap_or_default()) }
            dt { "First review at" } dd {
                (s.first_review_at.as_deref().map(when).unwrap_or_else(|| "not reviewed".into()))
                @if let Some(ms) = s.time_to_first_review_ms { " (" (duration(ms.max(0) as u64)) " after the model output)" }
            }
            dt { "Decisions" } dd { (s.decisions.len()) ", of which " (s.overrides) " overrode the model" }
            dt { "Human time spent" } dd { (duration(s.human_time_ms)) }
            dt { "Resolution" } dd {
                @if let Some(r) = &s.resolution { strong { (r.outcome.as_deref().unwrap_or("resolved")) } " on " (when(&r.at)) }
                @else { "open" }
            }
        }
        h2 { "Model output" }
        @for step in &inferences {
            @let ev = &step.event;
            p {
                strong { (text(ev, "model", "name").unwrap_or("model")) " " (text(ev, "model", "version").unwrap_or("")) }
                " · prompt " (text(ev, "prompt", "id").unwrap_or("")) " " (text(ev, "prompt", "version").unwrap_or(""))
                " · " (when(&step.occurred_at))
            }
            (output(ev))
        }
        h2 { "Reviews" }
        @if s.decisions.is_empty() { p { "No review decisions yet." } } @else {
            table #reviews {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Reviewer" } th scope="col" { "Decision" }
                    th scope="col" { "Rationale" } th scope="col" { "Changes" } th.num scope="col" { "Time spent" }
                } }
                tbody {
                    @for d in &s.decisions {
                        tr {
                            td { (when(&d.at)) }
                            td { (d.actor.as_deref().unwrap_or("")) @if let Some(r) = &d.role { br; span.muted { (r) } } }
                            td { (decision_badge(&d.decision)) }
                            td { @if let Some(c) = &d.rationale_code { code { (c) } " " } (d.rationale_note.as_deref().unwrap_or("")) }
                            td {
                                @if let Some(c) = &d.changes { (json_block(c)) }
                                @else if !content && d.overrides_model { (withheld()) }
                                @else { span.muted { "none" } }
                            }
                            td.num { (d.duration_ms.map(duration).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        h2 { "Escalations" }
        @if s.escalations.is_empty() { p { "None." } } @else {
            ul { @for e in &s.escalations {
                li { (when(&e.at)) ": from " strong { (e.from.as_deref().unwrap_or("?")) } " to " strong { (e.to.as_deref().unwrap_or("?")) }
                     " because " (e.reason.as_deref().unwrap_or("(no reason given)")) }
            } }
        }
        h2 { "Resolution" }
        @if let Some(r) = &s.resolution {
            p { strong { (r.outcome.as_deref().unwrap_or("resolved")) } " on " (when(&r.at)) @if let Some(n) = &r.note { ": " (n) } }
        } @else { p { "Not resolved yet." } }
        h2 { "Every event" }
        ol.steps #steps {
            @for step in &tl.steps {
                @let ev = &step.event;
                li {
                    (when(&step.occurred_at)) " · " code { (ev.get("type").and_then(Value::as_str).unwrap_or("")) }
                    @if let Some(a) = text(ev, "actor", "id") { " by " (a) }
                    " · " a href={ "/events/" (ev.get("id").and_then(Value::as_str).unwrap_or("")) } { "entry #" (step.seq) }
                }
            }
        }
    };
    let title = format!("Task {task}");
    Ok(respond(
        StatusCode::OK,
        frame(&title, Some(&who.principal), Nav::Search, body),
    ))
}

/// `GET /events/{id}`: the event as this role may see it, and what vouches for it.
pub async fn event(
    State(st): State<AppState>,
    who: Session,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let (log, reader, role) = (who.log(), who.reader(), who.principal.role);
    let tenant_key = st.keys.tenant_key(&log);
    let lookup = id.clone();
    let (body, inc, from_archive) = blocking(move || {
        let store = st.store.as_ref();
        let mut keyring = Keyring::new(store, &log, &tenant_key);
        // An event no longer in the hot store is read back from the archive for those who
        // may read it (the links of an archive search or task page lead here).
        let archive = st
            .archive
            .as_deref()
            .filter(|_| role.can_read(Role::Auditor));
        let hot = store.entry_by_id(&log, &lookup)?;
        let from_archive = hot.is_none() && archive.is_some();
        let entry = match (hot, archive) {
            (Some(e), _) => Some(e),
            (None, Some(archive)) => archived_entry(store, archive, &log, &lookup)?,
            (None, None) => None,
        }
        .ok_or_else(|| {
            PanelError::new(
                StatusCode::NOT_FOUND,
                format!("There is no event {lookup} in this trail."),
            )
        })?;
        let body = entry_body(&entry, role, Some(&mut keyring))?;
        let inc = inclusion(store, &log, entry.seq)?;
        let mut asked = json!({"event_id": lookup});
        if from_archive {
            asked["include_archive"] = true.into();
        }
        record_access(&st.sequencer, &log, &reader, "read", asked, 1, None)?;
        Ok((body, inc, from_archive))
    })
    .await?;
    let ev = body.event.as_object().cloned().unwrap_or_default();
    let t = |o: &str, k: &str| text(&ev, o, k).unwrap_or("").to_owned();
    let task = ev
        .get("task_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let html = html! {
        section.proof #proof-status aria-labelledby="proof-h" {
            h2 #proof-h style="margin-top:0" { "Proof status" }
            @if let Some(cp) = &inc.checkpoint {
                p { "Included in " strong { "checkpoint #" (cp.number) } " (tree of " (cp.size) " entries), signed at " (when(&cp.signed_at)) "." }
            } @else {
                p { "Not yet in a signed checkpoint; the next scheduled checkpoint will include it." }
            }
            @if inc.anchorings.is_empty() {
                p { "Not anchored outside aitrail yet." }
            } @else {
                @for a in &inc.anchorings {
                    p { "Anchored at " code { (a.anchor) } " in checkpoint #" (a.checkpoint) " on " (when(&a.at)) @if !a.location.is_empty() { " (" (a.location) ")" } "." }
                }
            }
            @if who.may_export() {
                p { a href={ "/events/" (id) "/proof.json" } download={ "proof-" (id) ".json" } { "Download the proof (JSON)" }
                    span.muted { " — anyone with the log's public key can check it offline: aitrail verify-proof FILE" } }
            }
        }
        h2 { "Event" }
        dl.facts #event-facts {
            dt { "Type" } dd { code { (ev.get("type").and_then(Value::as_str).unwrap_or("")) } }
            dt { "Task" } dd { a href={ "/tasks/" (task) @if from_archive { "?archive=on" } } { (task) } }
            dt { "Occurred" } dd { (when(ev.get("occurred_at").and_then(Value::as_str).unwrap_or(""))) }
            dt { "Recorded" } dd { (when(&body.recorded_at)) }
            dt { "Entry" } dd { "#" (body.seq) " in log " (body.log) }
            dt { "Event id" } dd { code { (id) } }
            dt { "Leaf hash" } dd { code { (body.leaf_hash) } }
            dt { "Actor" } dd { (t("actor", "id")) " " span.muted { (t("actor", "kind")) " " (t("actor", "role")) } }
            @if ev.contains_key("model") { dt { "Model" } dd { (t("model", "provider")) " " (t("model", "name")) " " (t("model", "version")) } }
            @if ev.contains_key("prompt") { dt { "Prompt" } dd { (t("prompt", "id")) " " (t("prompt", "version")) } }
            @if ev.contains_key("review") {
                dt { "Decision" } dd { (decision_badge(&t("review", "decision"))) " "
                    @if let Some(ms) = ev.get("review").and_then(|r| r.get("duration_ms")).and_then(Value::as_u64) { "after " (duration(ms)) } }
            }
            @if ev.contains_key("rationale") { dt { "Rationale" } dd { code { (t("rationale", "code")) } " " (t("rationale", "note")) } }
            @if ev.contains_key("escalation") { dt { "Escalation" } dd { (t("escalation", "from")) " → " (t("escalation", "to")) ": " (t("escalation", "reason")) } }
            @if ev.contains_key("resolution") { dt { "Resolution" } dd { (t("resolution", "outcome")) " " (t("resolution", "note")) } }
        }
        h2 { "Content" }
        @if body.withheld.is_empty() {
            @for (key, label) in [("input", "Model input"), ("output", "Model output")] {
                @if let Some(v) = ev.get(key) { h3 { (label) } (json_block(v)) }
            }
            @if let Some(c) = ev.get("review").and_then(|r| r.get("changes")) { h3 { "Reviewer's changes" } (json_block(c)) }
            @if !["input", "output"].iter().any(|k| ev.contains_key(*k)) && ev.get("review").and_then(|r| r.get("changes")).is_none() {
                p.muted { "This event carries no model input, output or reviewer changes." }
            }
        } @else {
            p { (withheld()) }
        }
        details {
            summary { "The whole event as stored (JSON)" }
            (json_block(&Value::Object(ev.clone())))
        }
    };
    let title = format!("Event #{}", body.seq);
    Ok(respond(
        StatusCode::OK,
        frame(&title, Some(&who.principal), Nav::Search, html),
    ))
}

/// `GET /events/{id}/proof.json`: the self-contained proof, as `GET /v1/events/{id}/proof`.
pub async fn proof(
    State(st): State<AppState>,
    who: Session,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    if !who.may_export() {
        return Err(PanelError::forbidden("Downloading a proof", &who.principal));
    }
    let (log, reader) = (who.log(), who.reader());
    let file = format!(
        "attachment; filename=\"proof-{}.json\"",
        id.replace('"', "")
    );
    let proof = blocking(move || Ok(prove_event(&st, &log, &id, &reader)?)).await?;
    let text = serde_json::to_string_pretty(&proof).unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        text,
    )
        .into_response())
}
