//! The web panel for compliance teams, served at `/`: server-rendered HTML (maud), no
//! JavaScript, one stylesheet. Sign in with a token; then the trail status and review
//! attestations (`home`), search with CSV download (`search`), a task's timeline and an
//! event with its proof status (`task`), and review statistics for product people
//! (`product`).
//!
//! Roles apply as in the API: a viewer sees no content and cannot export. Every read is
//! recorded as `audit.accessed` through `aitrail_store::audit`, as the API's reads are;
//! handlers parse, call the library, render.

mod home;
mod layout;
mod product;
mod search;
mod session;
mod task;

pub use session::{Sessions, COOKIE};

use crate::state::AppState;
use axum::routing::{get, post};
use axum::{Extension, Router};
use layout::PanelError;
use std::sync::Arc;

/// The panel's routes, with a fresh session table.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/reviews", post(home::review))
        .route("/sign-in", get(session::form).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/search", get(search::page))
        .route("/search.csv", get(search::csv))
        .route("/tasks/{task_id}", get(task::timeline))
        .route("/events/{id}", get(task::event))
        .route("/events/{id}/proof.json", get(task::proof))
        .route("/product", get(product::page))
        .route("/panel.css", get(layout::css))
        .layer(Extension(Arc::new(Sessions::default())))
}

/// The page for a panel address that does not exist.
pub fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    PanelError::new(
        axum::http::StatusCode::NOT_FOUND,
        "There is no such page in the panel.",
    )
    .into_response()
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PanelError> + Send + 'static,
) -> Result<T, PanelError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        PanelError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    })?
}

/// An empty form field is no filter.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A date field (`YYYY-MM-DD`, or a full RFC 3339 time) as the RFC 3339 start of that day;
/// with `next_day`, the start of the day after (a "to" date includes its whole day).
fn day_start(field: &str, v: &str, next_day: bool) -> Result<String, PanelError> {
    let bad = || {
        PanelError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{field}: {v:?} is not a date; use the form YYYY-MM-DD"),
        )
    };
    if aitrail_core::event::parse_time(v).is_some() {
        return Ok(v.to_owned());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut date = time::Date::parse(v, &format).map_err(|_| bad())?;
    if next_day {
        date = date.next_day().ok_or_else(bad)?;
    }
    Ok(format!(
        "{}T00:00:00Z",
        date.format(&format).map_err(|_| bad())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_day_bounds() {
        assert_eq!(
            day_start("from", "2026-06-30", false).unwrap(),
            "2026-06-30T00:00:00Z"
        );
        assert_eq!(
            day_start("to", "2026-06-30", true).unwrap(),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(
            day_start("to", "2026-06-30T12:00:00Z", true).unwrap(),
            "2026-06-30T12:00:00Z"
        );
        assert!(day_start("from", "30/06/2026", false).is_err());
        assert_eq!(given(&Some("  ".into())), None);
    }
}
