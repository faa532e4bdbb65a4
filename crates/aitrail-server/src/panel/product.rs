//! The product view: override rate (reject and modify over all decisions), escalation rate,
//! and review time p50/p90, by model version, prompt version or both, over a chosen period,
//! as a table and inline SVG charts (horizontal bars, each value written beside its bar so
//! the chart reads without colour). Computed by `aitrail_store::stats`.

use super::layout::{count, duration, frame, percent, respond, Nav, PanelError};
use super::session::Session;
use super::{blocking, day_start, given};
use crate::state::AppState;
use aitrail_core::event::{format_time, parse_time};
use aitrail_store::audit::record_access;
use aitrail_store::stats::{review_stats, By, GroupStats, Version};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

/// Default period when none is chosen: the last 365 days.
const DEFAULT_DAYS: i64 = 365;

#[derive(Deserialize, Default)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}

fn label(v: &Version, by: By) -> String {
    match by {
        By::Model => v.model.clone(),
        By::Prompt => format!("prompt {}", v.prompt),
        By::Both => format!("{} · {}", v.model, v.prompt),
    }
}

fn date_of(micros: i64) -> String {
    format_time(micros).get(..10).unwrap_or_default().to_owned()
}

/// `GET /product`.
pub async fn page(
    State(st): State<AppState>,
    who: Session,
    Query(p): Query<Period>,
) -> Result<Response, PanelError> {
    let now = crate::routes::now_micros();
    let day = 86_400_000_000i64;
    let from_day = given(&p.from).unwrap_or_else(|| date_of(now - DEFAULT_DAYS * day));
    let to_day = given(&p.to).unwrap_or_else(|| date_of(now));
    let bad = |m: String| PanelError::new(StatusCode::BAD_REQUEST, m);
    let from = parse_time(&day_start("from", &from_day, false)?)
        .ok_or_else(|| bad(format!("from: {from_day:?} is not a date")))?;
    let to = parse_time(&day_start("to", &to_day, true)?)
        .ok_or_else(|| bad(format!("to: {to_day:?} is not a date")))?;
    if from >= to {
        return Err(bad("The first day must not be after the last day.".into()));
    }
    let (by, by_name) = match p.by.as_deref() {
        Some("model") => (By::Model, "model"),
        Some("prompt") => (By::Prompt, "prompt"),
        None | Some("") | Some("both") => (By::Both, "both"),
        Some(other) => {
            return Err(bad(format!(
                "by: {other:?}: expected model, prompt or both"
            )))
        }
    };
    let (log, reader) = (who.log(), who.reader());
    let stats = blocking(move || {
        let (stats, read) = review_stats(st.store.as_ref(), &log, from, to, by)?;
        record_access(
            &st.sequencer,
            &log,
            &reader,
            "stats",
            json!({"from": format_time(from), "to": format_time(to), "by": by_name}),
            read,
            None,
        )?;
        Ok(stats)
    })
    .await?;
    let groups: Vec<(String, &GroupStats)> = stats
        .groups
        .iter()
        .map(|(v, g)| (label(v, by), g))
        .collect();
    let rate_rows = |f: fn(&GroupStats) -> f64| -> Vec<Row> {
        groups
            .iter()
            .map(|(l, g)| Row {
                label: l.clone(),
                values: vec![(f(g), percent(f(g)))],
            })
            .collect()
    };
    let time_rows: Vec<Row> = groups
        .iter()
        .map(|(l, g)| Row {
            label: l.clone(),
            values: [g.p50_ms, g.p90_ms]
                .iter()
                .map(|ms| {
                    (
                        ms.unwrap_or(0) as f64,
                        ms.map(duration).unwrap_or_else(|| "n/a".into()),
                    )
                })
                .collect(),
        })
        .collect();
    let sel = |x: &str| by_name == x;
    let t = &stats.total;
    let body = html! {
        form.filters method="get" action="/product" aria-label="Choose the period" {
            div { label for="p-from" { "From (date)" } input #p-from name="from" type="date" value=(from_day); }
            div { label for="p-to" { "To (date, included)" } input #p-to name="to" type="date" value=(to_day); }
            div {
                label for="p-by" { "Group by" }
                select #p-by name="by" {
                    option value="both" selected[sel("both")] { "Model and prompt version" }
                    option value="model" selected[sel("model")] { "Model version" }
                    option value="prompt" selected[sel("prompt")] { "Prompt version" }
                }
            }
            div { button type="submit" { "Show" } }
        }
        p.muted {
            "Review decisions that occurred from " (from_day) " to " (to_day) " (UTC, both days included), each counted under the model and prompt it names, or else those of its task's latest model output before it. "
            "Override rate: reject and modify over all decisions. Escalation rate: escalate over all decisions. Review time: the reviewer's recorded time on the decision (p50 = median, p90 = 9 in 10 took at most this)."
        }
        @if t.decisions == 0 {
            p.warning { "No review decisions in this period. Choose another period." }
        } @else {
            div.cards #product-totals {
                div.card { h2 { "Decisions" } p.big { (count(t.decisions)) } }
                div.card { h2 { "Override rate" } p.big { (percent(t.override_rate())) } p.muted { (t.overrides) " rejected or modified" } }
                div.card { h2 { "Escalation rate" } p.big { (percent(t.escalation_rate())) } p.muted { (t.escalations) " escalated" } }
                div.card { h2 { "Review time" } p.big { (t.p50_ms.map(duration).unwrap_or_default()) } p.muted { "p50; p90 " (t.p90_ms.map(duration).unwrap_or_default()) } }
            }
            h2 { "By version" }
            table #product-table {
                thead { tr {
                    th scope="col" { "Model version" } th scope="col" { "Prompt version" } th.num scope="col" { "Decisions" }
                    th.num scope="col" { "Override rate" } th.num scope="col" { "Escalation rate" }
                    th.num scope="col" { "Review time p50" } th.num scope="col" { "Review time p90" }
                } }
                tbody {
                    @for (v, g) in &stats.groups {
                        tr {
                            td { (v.model) } td { (v.prompt) } td.num { (count(g.decisions)) }
                            td.num { (percent(g.override_rate())) } td.num { (percent(g.escalation_rate())) }
                            td.num { (g.p50_ms.map(duration).unwrap_or_default()) } td.num { (g.p90_ms.map(duration).unwrap_or_default()) }
                        }
                    }
                }
            }
            h2 { "Charts" }
            div.charts {
                (bar_chart("chart-override", "Override rate (reject + modify)", &["override rate"], &rate_rows(GroupStats::override_rate)))
                (bar_chart("chart-escalation", "Escalation rate", &["escalation rate"], &rate_rows(GroupStats::escalation_rate)))
                (bar_chart("chart-time", "Review time", &["p50", "p90"], &time_rows))
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        frame("Product view", Some(&who.principal), Nav::Product, body),
    ))
}

// --- Charts ---------------------------------------------------------------------------------
/// Colours of the series, in order (dark enough to read on white).
const COLOURS: &[&str] = &["#0a58ca", "#bc4c00", "#1a7f37", "#8250df"];

const WIDTH: f64 = 560.0;
const LABEL: f64 = 190.0;
const VALUE: f64 = 90.0;
const BAR: f64 = 14.0;
const GAP: f64 = 10.0;

/// One group's row: its label and one `(value, shown text)` per series.
pub struct Row {
    pub label: String,
    pub values: Vec<(f64, String)>,
}

/// A horizontal bar chart in a `<figure>`; bars are scaled to the largest value.
pub fn bar_chart(id: &str, caption: &str, series: &[&str], rows: &[Row]) -> Markup {
    let max = rows
        .iter()
        .flat_map(|r| r.values.iter().map(|(v, _)| *v))
        .fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL - VALUE;
    let per_row = BAR * series.len().max(1) as f64 + GAP;
    let legend = if series.len() > 1 { 22.0 } else { 0.0 };
    let height = legend + per_row * rows.len() as f64 + GAP;
    let title_id = format!("{id}-title");
    html! {
        figure #(id) {
            figcaption #(title_id) { (caption) }
            svg xmlns="http://www.w3.org/2000/svg" width="100%" style={ "max-width:" (WIDTH * 1.25) "px" } viewBox={ "0 0 " (WIDTH) " " (height) }
                role="img" aria-labelledby=(title_id) preserveAspectRatio="xMinYMin meet" {
                @if series.len() > 1 {
                    @for (i, name) in series.iter().enumerate() {
                        rect x=(LABEL + i as f64 * 110.0) y="4" width="12" height="12" fill=(COLOURS[i % COLOURS.len()]) {}
                        text x=(LABEL + 18.0 + i as f64 * 110.0) y="14" { (name) }
                    }
                }
                @for (r, row) in rows.iter().enumerate() {
                    @let top = legend + GAP / 2.0 + r as f64 * per_row;
                    text x="0" y=(top + per_row / 2.0 - 1.0) dominant-baseline="middle" { (row.label) }
                    @for (s, (value, shown)) in row.values.iter().enumerate() {
                        @let y = top + s as f64 * BAR;
                        @let w = if max > 0.0 { (value / max * span).max(1.0) } else { 1.0 };
                        rect class="bar" x=(LABEL) y=(y) width=(format!("{w:.1}")) height=(BAR - 2.0)
                            fill=(COLOURS[s % COLOURS.len()]) {
                            title { (row.label) ", " (series.get(s).copied().unwrap_or("")) ": " (shown) }
                        }
                        text x=(format!("{:.1}", LABEL + w + 6.0)) y=(y + BAR / 2.0) dominant-baseline="middle" { (shown) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let rows = vec![
            Row {
                label: "a <b>".into(),
                values: vec![(0.5, "50%".into())],
            },
            Row {
                label: "c".into(),
                values: vec![(0.25, "25%".into())],
            },
        ];
        let svg = bar_chart("x", "Override rate", &["rate"], &rows).into_string();
        let span = WIDTH - LABEL - VALUE;
        assert!(svg.contains(&format!("width=\"{span:.1}\"")), "{svg}");
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", span / 2.0)),
            "{svg}"
        );
        assert!(svg.contains("a &lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(
            svg.contains("</rect>"),
            "rects are closed inside HTML: {svg}"
        );
    }
}
