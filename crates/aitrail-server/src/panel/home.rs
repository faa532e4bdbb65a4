//! The panel's start page: the trail status card (entries, last checkpoint, last anchoring,
//! last verification), where to go next, and the form that records a log review (SOC 2
//! attestation, `audit.reviewed`, as `POST /v1/reviews` does).

use super::layout::{count, frame, respond, when, Nav, PanelError};
use super::session::{same_origin, Session};
use super::{blocking, day_start};
use crate::state::AppState;
use aitrail_core::event::{format_time, parse_time};
use aitrail_store::audit::{record_access, record_review};
use aitrail_store::status::trail_status;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
pub struct Flash {
    /// Seq of a review just recorded.
    reviewed: Option<u64>,
}

/// `GET /`: the status card and the review form.
pub async fn page(
    State(st): State<AppState>,
    who: Session,
    Query(flash): Query<Flash>,
) -> Result<Response, PanelError> {
    let log = who.log();
    let reader = who.reader();
    let last_verification = st.metrics.last_verification(&log);
    let store = st.store.clone();
    let status = blocking(move || {
        let status = trail_status(store.as_ref(), &log)?;
        record_access(
            &st.sequencer,
            &log,
            &reader,
            "status",
            json!({"panel": "status"}),
            0,
            None,
        )?;
        Ok(status)
    })
    .await?;
    let body = html! {
        @if let Some(seq) = flash.reviewed {
            p.notice role="status" { "Your review was recorded in the trail as entry #" (seq) " (audit.reviewed)." }
        }
        section aria-label="Trail status" {
            div.cards {
                div.card #card-entries {
                    h2 { "Entries" }
                    p.big { (count(status.entries)) }
                    p.muted { "events recorded in this log" }
                }
                div.card #card-checkpoint {
                    h2 { "Last checkpoint" }
                    @if let Some(cp) = &status.last_checkpoint {
                        p.big { "#" (cp.number) }
                        p { "covers " (count(cp.size)) " entries" }
                        p.muted { "signed " (when(&cp.signed_at)) }
                    } @else {
                        p { "None signed yet." }
                    }
                }
                div.card #card-anchor {
                    h2 { "Last anchoring" }
                    @if let Some(a) = &status.last_anchoring {
                        p.big { "checkpoint #" (a.checkpoint) }
                        p { "at " code { (a.anchor) } }
                        p.muted { (when(&a.at)) }
                    } @else {
                        p { "Not anchored yet." }
                        p.muted { "Anchors keep signed checkpoints outside aitrail (see README, Anchors)." }
                    }
                }
                div.card #card-verify {
                    h2 { "Last verification" }
                    @match last_verification {
                        Some((ok, entries, at)) => {
                            @if ok { p.big.ok { "Intact" } } @else { p.big.bad { "TAMPERING FOUND" } }
                            p { (count(entries)) " entries checked" }
                            p.muted { (when(&format_time(at * 1_000_000))) }
                        }
                        None => {
                            p { "Not run since the server started." }
                            p.muted { "The server verifies the whole trail on a schedule." }
                        }
                    }
                }
            }
        }
        section aria-labelledby="go-h" {
            h2 #go-h { "What would you like to do?" }
            ul {
                li { a href="/search" { "Search decisions" } " by task, reviewer, event type, model, decision or date, and download the results as CSV." }
                li { a href="/product" { "See override and escalation rates" } " and review times by model and prompt version." }
            }
        }
        section aria-labelledby="review-h" {
            h2 #review-h { "Record a log review" }
            p.muted { "Attest that you reviewed the trail for a period (SOC 2 log review evidence). It is written to the trail as an audit.reviewed entry with your note." }
            @if who.may_export() {
                form.filters method="post" action="/reviews" {
                    div { label for="r-from" { "From (first day)" } input #r-from name="from" type="date" required; }
                    div { label for="r-to" { "To (last day, included)" } input #r-to name="to" type="date" required; }
                    div style="grid-column: 1 / -1" {
                        label for="r-note" { "What you checked and found" }
                        textarea #r-note name="note" required {}
                    }
                    div { button type="submit" { "Record review" } }
                }
            } @else {
                p.warning { "Recording a review needs an auditor or admin token; you are signed in as " (who.principal.role.as_str()) "." }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        frame("Trail status", Some(&who.principal), Nav::Status, body),
    ))
}

#[derive(Deserialize)]
pub struct ReviewForm {
    from: String,
    to: String,
    note: String,
}

/// `POST /reviews`: records `audit.reviewed` for the days chosen (the "to" day included).
pub async fn review(
    State(st): State<AppState>,
    who: Session,
    headers: HeaderMap,
    Form(f): Form<ReviewForm>,
) -> Result<Response, PanelError> {
    same_origin(&headers)?;
    if !who.may_export() {
        return Err(PanelError::forbidden("Recording a review", &who.principal));
    }
    let bad = |m: &str| PanelError::new(StatusCode::BAD_REQUEST, m.to_owned());
    let from = parse_time(&day_start("from", f.from.trim(), false)?)
        .ok_or_else(|| bad("from: not a date"))?;
    let to =
        parse_time(&day_start("to", f.to.trim(), true)?).ok_or_else(|| bad("to: not a date"))?;
    if from >= to {
        return Err(bad("The first day must not be after the last day."));
    }
    if f.note.trim().is_empty() {
        return Err(bad("Say what you checked and found."));
    }
    let (log, reader) = (who.log(), who.reader());
    let receipt = blocking(move || {
        Ok(record_review(
            st.store.as_ref(),
            &st.sequencer,
            &log,
            &reader,
            from..to,
            f.note.trim(),
            None,
        )?)
    })
    .await?;
    // 303 See Other: the browser follows with a GET, so a reload does not post again.
    Ok(Redirect::to(&format!("/?reviewed={}", receipt.seq)).into_response())
}
