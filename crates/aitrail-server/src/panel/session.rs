//! Signing in to the panel: a token is checked as bearer auth checks it, then the browser
//! gets a session cookie holding only a random id (no Expires or Max-Age, so it lasts for
//! the browser session; HttpOnly; SameSite=Strict). The id maps, in memory, to the token's
//! principal; every request checks the token is still active, so revoking it signs out, and
//! a session idle for 12 hours is forgotten.
//! State-changing POSTs whose `Origin` differs from the `Host` are refused (CSRF).

use super::layout::{frame, respond, Nav, PanelError};
use crate::auth::Principal;
use crate::state::AppState;
use aitrail_store::audit::Reader;
use aitrail_store::tokens::{token_hash, Role};
use axum::extract::{Extension, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "aitrail_session";

/// A session unused this long is forgotten (the cookie itself lasts the browser session).
pub const IDLE: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone)]
struct Entry {
    principal: Principal,
    token_hash: String,
    last_seen: Instant,
}

/// Sessions by id, in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, principal: Principal, token_hash: String) -> Result<String, PanelError> {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| {
            PanelError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no randomness: {e}"),
            )
        })?;
        let id = hex::encode(raw);
        let now = Instant::now();
        let mut sessions = self.lock();
        // Sessions whose browser never signed out do not pile up.
        sessions.retain(|_, e| now.duration_since(e.last_seen) < IDLE);
        sessions.insert(
            id.clone(),
            Entry {
                principal,
                token_hash,
                last_seen: now,
            },
        );
        Ok(id)
    }

    /// The session, if it exists and was used within `IDLE`; marks it used.
    fn get(&self, id: &str) -> Option<Entry> {
        let now = Instant::now();
        let mut sessions = self.lock();
        match sessions.get_mut(id) {
            Some(e) if now.duration_since(e.last_seen) < IDLE => {
                e.last_seen = now;
                Some(e.clone())
            }
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The session id in the request's cookies.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A signed-in person: the principal of the token they signed in with.
#[derive(Clone, Debug)]
pub struct Session {
    pub principal: Principal,
}

impl Session {
    /// How the trail's `audit.accessed` records name a person using the panel.
    pub fn reader(&self) -> Reader {
        Reader {
            kind: "human",
            id: format!("token:{}", self.principal.token_id),
            role: self.principal.role.as_str().to_owned(),
        }
    }

    pub fn log(&self) -> String {
        self.principal.tenant.clone()
    }

    pub fn may_export(&self) -> bool {
        self.principal.role.can_read(Role::Auditor)
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_sign_in = || Redirect::to("/sign-in").into_response();
        let sessions = parts
            .extensions
            .get::<Arc<Sessions>>()
            .cloned()
            .ok_or_else(to_sign_in)?;
        let id = session_id(&parts.headers).ok_or_else(to_sign_in)?;
        let entry = sessions.get(&id).ok_or_else(to_sign_in)?;
        let tokens = st.tokens.clone();
        let hash = entry.token_hash.clone();
        let active = tokio::task::spawn_blocking(move || tokens.find_active(&hash))
            .await
            .map_err(|e| PanelError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            .and_then(|r| r.map_err(PanelError::from))
            .map_err(IntoResponse::into_response)?;
        if active.is_none() {
            sessions.close(&id);
            return Err(to_sign_in());
        }
        Ok(Session {
            principal: entry.principal,
        })
    }
}

/// Refuses a state-changing request sent from another site: its `Origin`, when present,
/// must name this `Host`.
pub fn same_origin(headers: &HeaderMap) -> Result<(), PanelError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(PanelError::new(
            StatusCode::FORBIDDEN,
            "this form was sent from another site, so it was refused; open the panel itself and try again",
        )),
    }
}

fn sign_in_page(status: StatusCode, problem: Option<&str>) -> Response {
    respond(
        status,
        frame(
            "Sign in",
            None,
            Nav::None,
            html! {
                div.signin {
                    p { "Paste the access token your aitrail administrator gave you. You stay signed in until you sign out or close the browser." }
                    @if let Some(p) = problem { p.error role="alert" #problem { (p) } }
                    form method="post" action="/sign-in" {
                        div {
                            label for="token" { "Access token" }
                            input #token name="token" type="password" autocomplete="off" required autofocus
                                aria-describedby=[problem.map(|_| "problem")];
                        }
                        div { button type="submit" { "Sign in" } }
                    }
                }
            },
        ),
    )
}

/// `GET /sign-in`.
pub async fn form() -> Response {
    sign_in_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

/// `POST /sign-in`: checks the token, opens a session, sets the cookie.
pub async fn sign_in(
    State(st): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Result<Response, PanelError> {
    same_origin(&headers)?;
    let token = f.token.trim();
    if token.is_empty() {
        return Ok(sign_in_page(
            StatusCode::BAD_REQUEST,
            Some("Enter your access token."),
        ));
    }
    let hash = token_hash(token);
    let tokens = st.tokens.clone();
    let lookup = hash.clone();
    let found = tokio::task::spawn_blocking(move || tokens.find_active(&lookup))
        .await
        .map_err(|e| PanelError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let Some(record) = found else {
        return Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid or has been revoked. Check it and try again."),
        ));
    };
    if !record.role.can_read(Role::Viewer) {
        return Ok(sign_in_page(
            StatusCode::FORBIDDEN,
            Some("This token may only send events, not read the trail. Ask for a viewer or auditor token."),
        ));
    }
    let id = sessions.open(
        Principal {
            token_id: record.id,
            role: record.role,
            tenant: record.tenant,
        },
        hash,
    )?;
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/");
    let mut res = Redirect::to("/").into_response(); // 303 See Other
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|e| PanelError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(res)
}

/// `POST /sign-out`: forgets the session and clears the cookie.
pub async fn sign_out(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    same_origin(&headers)?;
    if let Some(id) = session_id(&headers) {
        sessions.close(&id);
    }
    let mut res = Redirect::to("/sign-in").into_response(); // 303 See Other
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("aitrail_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        let host = (header::HOST, "127.0.0.1:8080");
        assert!(same_origin(&headers(std::slice::from_ref(&host))).is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:8080")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "http://evil.example")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[host, (header::ORIGIN, "null")])).is_err());
    }

    #[test]
    fn idle_sessions_are_forgotten() {
        let sessions = Sessions::default();
        let who = Principal {
            token_id: "t".into(),
            role: Role::Viewer,
            tenant: "default".into(),
        };
        let id = sessions.open(who.clone(), "h".into()).unwrap();
        assert!(sessions.get(&id).is_some());
        let Some(long_ago) = Instant::now().checked_sub(IDLE + Duration::from_secs(1)) else {
            return; // the clock started less than IDLE ago: nothing to age
        };
        sessions.lock().get_mut(&id).unwrap().last_seen = long_ago;
        assert!(sessions.get(&id).is_none());
        assert!(sessions.lock().is_empty());
        let stale = sessions.open(who.clone(), "h".into()).unwrap();
        sessions.lock().get_mut(&stale).unwrap().last_seen = long_ago;
        let fresh = sessions.open(who, "h".into()).unwrap();
        assert_eq!(sessions.lock().keys().collect::<Vec<_>>(), vec![&fresh]);
    }

    #[test]
    fn finds_the_session_cookie() {
        let h = headers(&[(header::COOKIE, "a=1; aitrail_session=abc; b=2")]);
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        assert_eq!(session_id(&headers(&[(header::COOKIE, "a=1")])), None);
    }
}
