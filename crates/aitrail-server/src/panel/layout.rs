//! The panel's frame and small components: the page layout (skip link, navigation, who is
//! signed in), the one stylesheet, error pages, and formatting of times, durations and JSON.

use crate::auth::Principal;
use crate::error::ApiError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Status,
    Search,
    Product,
    None,
}

/// A whole page: `<head>`, navigation (when signed in), and `body` in `<main>`.
pub fn frame(title: &str, who: Option<&Principal>, nav: Nav, body: Markup) -> Markup {
    let item = |href: &str, label: &str, this: Nav| {
        html! {
            li { a href=(href) aria-current=[(nav == this).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aitrail" }
                link rel="stylesheet" href="/panel.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "aitrail" }
                    @if let Some(who) = who {
                        nav aria-label="Main" {
                            ul {
                                (item("/", "Trail status", Nav::Status))
                                (item("/search", "Search", Nav::Search))
                                (item("/product", "Product view", Nav::Product))
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (who.role.as_str()) } }
                            form method="post" action="/sign-out" {
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main.narrow[who.is_none()] tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A rendered page as a response.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A failure shown as a readable page (never JSON).
#[derive(Debug)]
pub struct PanelError {
    pub status: StatusCode,
    pub message: String,
}

impl PanelError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PanelError {
        PanelError {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(what: &str, who: &Principal) -> PanelError {
        PanelError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{what} needs an auditor or admin token; you are signed in as {}. \
                 Ask your aitrail administrator for one.",
                who.role.as_str()
            ),
        )
    }
}

impl From<ApiError> for PanelError {
    fn from(e: ApiError) -> PanelError {
        PanelError::new(e.status, e.message)
    }
}

impl From<aitrail_store::StoreError> for PanelError {
    fn from(e: aitrail_store::StoreError) -> PanelError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Please check the form",
            s if s.is_server_error() => "Something went wrong",
            _ => "Cannot do that",
        };
        respond(
            self.status,
            frame(
                title,
                None,
                Nav::None,
                html! {
                    p.error role="alert" { (self.message) }
                    p { a href="/" { "Back to the trail status" } " · " a href="/search" { "Search" } }
                },
            ),
        )
    }
}

/// `2026-06-01T08:00:12.123456Z` as `2026-06-01 08:00:12 UTC`.
pub fn when(rfc3339: &str) -> String {
    match rfc3339.split_once('T') {
        Some((date, rest)) => {
            let time = rest.get(..8).unwrap_or(rest);
            format!("{date} {time} UTC")
        }
        None => rfc3339.to_owned(),
    }
}

/// Milliseconds for people: `850 ms`, `42 s`, `3 min 20 s`, `2 h 05 min`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// A count with thousands separators: `10,222`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal.
pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// A JSON value for reading: a string as itself, anything else pretty-printed.
pub fn json_block(v: &Value) -> Markup {
    match v {
        Value::String(s) => html! { pre.json { (s) } },
        other => html! {
            pre.json { (serde_json::to_string_pretty(other).unwrap_or_default()) }
        },
    }
}

/// The notice shown where content is withheld from this role.
pub fn withheld() -> Markup {
    html! {
        span.withheld { "Withheld: your role (viewer) does not see model input, output or reviewer changes." }
    }
}

/// A decision as a coloured label (text carries the meaning; colour only helps).
pub fn decision_badge(d: &str) -> Markup {
    html! { span class={ "badge " (d) } { (d) } }
}

/// `GET /panel.css`.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

const CSS: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; --accent:#0a58ca;
        --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:#fff; font-size:15px; line-height:1.45; }
.skip { position:absolute; left:-999px; top:0; background:#fff; padding:.5rem 1rem; z-index:10; }
.skip:focus { left:1rem; }
header.top { display:flex; align-items:center; gap:2rem; padding:.6rem 1.5rem; background:#24292f; color:#fff; flex-wrap:wrap; }
header.top .brand { font-weight:700; font-size:1.15rem; letter-spacing:.02em; }
header.top nav ul { list-style:none; display:flex; gap:1.25rem; margin:0; padding:0; }
header.top a { color:#fff; text-decoration:none; padding:.25rem .1rem; border-bottom:2px solid transparent; }
header.top a[aria-current=page] { border-bottom-color:#fff; font-weight:600; }
header.top .who { margin-left:auto; display:flex; gap:.75rem; align-items:center; }
header.top .who form { margin:0; }
header.top button.link { color:#fff; }
main { max-width:1200px; margin:0 auto; padding:1rem 1.5rem 3rem; }
main:focus { outline:none; }
main.narrow { max-width:34rem; }
blockquote.output { margin:.3rem 0; padding:.5rem 1rem; border-left:4px solid var(--accent); background:var(--bg); font-size:1rem; }
details { margin:.5rem 0; } summary { cursor:pointer; font-weight:600; }
h1 { font-size:1.5rem; margin:.5rem 0 1rem; }
h2 { font-size:1.15rem; margin:1.75rem 0 .6rem; }
h3 { font-size:1rem; margin:1rem 0 .3rem; }
a { color:var(--accent); }
:focus-visible { outline:3px solid #fb8f44; outline-offset:2px; }
form.filters { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:.75rem 1rem; align-items:end;
               background:var(--bg); border:1px solid var(--line); border-radius:6px; padding:1rem; }
label { display:block; font-weight:600; font-size:.85rem; margin-bottom:.2rem; }
input, select, textarea { width:100%; font:inherit; padding:.4rem .5rem; border:1px solid #8c959f; border-radius:4px; background:#fff; }
textarea { min-height:5rem; }
.button, button { display:inline-block; font:inherit; font-weight:600; padding:.45rem 1rem; border-radius:4px; border:1px solid var(--accent);
                  background:var(--accent); color:#fff; text-decoration:none; cursor:pointer; }
.button.secondary, button.secondary { background:#fff; color:var(--accent); }
button.link { background:none; border:none; padding:0; text-decoration:underline; font-weight:400; }
.actions { display:flex; gap:.75rem; align-items:center; margin:1rem 0; flex-wrap:wrap; }
table { border-collapse:collapse; width:100%; margin:.5rem 0; }
th, td { text-align:left; padding:.4rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--bg); font-size:.85rem; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(240px, 1fr)); gap:1rem; }
.card { border:1px solid var(--line); border-radius:6px; padding:.8rem 1rem; background:#fff; }
.card h2 { margin:0 0 .3rem; font-size:.9rem; color:var(--muted); font-weight:600; }
.card .big { font-size:1.35rem; font-weight:700; }
.card p { margin:.2rem 0; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.3rem 1.25rem; margin:0; }
dl.facts dt { font-weight:600; color:var(--muted); }
dl.facts dd { margin:0; overflow-wrap:anywhere; }
pre.json { background:var(--bg); border:1px solid var(--line); border-radius:4px; padding:.5rem .75rem; margin:.2rem 0;
           white-space:pre-wrap; overflow-wrap:anywhere; font-size:.85rem; max-height:24rem; overflow:auto; }
.muted { color:var(--muted); }
.error { color:var(--bad); font-weight:600; }
.notice { border-left:4px solid var(--ok); background:#dafbe1; padding:.6rem 1rem; }
.warning { border-left:4px solid var(--warn); background:#fff8c5; padding:.6rem 1rem; }
.proof { border-left:4px solid var(--accent); background:#ddf4ff; padding:.6rem 1rem; }
.withheld { color:var(--muted); font-style:italic; }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:1rem; font-size:.8rem; font-weight:600; border:1px solid; }
.badge.approve { color:var(--ok); } .badge.reject { color:var(--bad); } .badge.modify { color:var(--warn); } .badge.escalate { color:#8250df; }
.ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; }
.signin { margin:1rem 0; }
.signin form { display:grid; gap:.75rem; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(540px, 1fr)); gap:1.25rem; }
figure { margin:0; border:1px solid var(--line); border-radius:6px; padding:.75rem; }
figcaption { font-weight:600; margin-bottom:.4rem; }
svg text { font-family: inherit; font-size:12px; fill:var(--fg); }
ol.steps { padding-left:1.25rem; } ol.steps li { margin:.25rem 0; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            when("2026-06-01T08:00:12.123456Z"),
            "2026-06-01 08:00:12 UTC"
        );
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(42_000), "42 s");
        assert_eq!(duration(200_000), "3 min 20 s");
        assert_eq!(duration(7_500_000), "2 h 05 min");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(10_222), "10,222");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
