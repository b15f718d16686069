//! Login and logout. The login form is protected by a double-submit token
//! (a cookie and a hidden field that must match), since there is no session
//! yet; the session itself is made by the same operation as the API's login
//! (`ops::sessions`), so it is throttled and audited the same way.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use minijinja::context;
use prism_api::sessions::LoginRequest;
use serde::Deserialize;

use super::error::{WebError, WebResult};
use super::session::{Posted, Web};
use crate::auth::caller::{session_cookie, session_removal, Address};
use crate::auth::secret_token;
use crate::ops::sessions;
use crate::state::AppState;

const LOGIN_CSRF_COOKIE: &str = "prism_login_csrf";

/// Where to go after logging in: a path on this server only (an open
/// redirect would let a link to Prism's login send people anywhere).
fn safe_next(raw: &str) -> Option<String> {
    let next = if raw.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("%2F")) {
        percent_decode(raw)?
    } else {
        raw.to_owned()
    };
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2000
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `next` from a raw query string: everything after `next=`, since nginx's
/// `/login?next=$request_uri` does not encode the tool's own query.
fn next_of(query: Option<&str>) -> Option<String> {
    let q = query?;
    let at = if q.starts_with("next=") {
        0
    } else {
        q.find("&next=")? + 1
    };
    safe_next(&q[at + 5..])
}

fn login_page(state: &AppState, jar: CookieJar, username: &str, error: Option<String>) -> WebResult<Response> {
    login_page_to(state, jar, username, error, None)
}

fn login_page_to(
    state: &AppState,
    jar: CookieJar,
    username: &str,
    error: Option<String>,
    next: Option<String>,
) -> WebResult<Response> {
    let token = secret_token::generate("");
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies)
        .path("/login")
        .build();
    let status = if error.is_some() {
        axum::http::StatusCode::UNAUTHORIZED
    } else {
        axum::http::StatusCode::OK
    };
    let html = super::render::standalone(
        "login.html",
        context! { login_csrf => token, username => username, error => error,
        sso => crate::ops::sso::label(state), next_path => next },
    )?;
    Ok((status, jar.add(cookie), axum::response::Html(html)).into_response())
}

pub async fn form(
    State(state): State<AppState>,
    jar: CookieJar,
    web: Result<Web, WebError>,
    uri: axum::http::Uri,
) -> WebResult<Response> {
    let next = next_of(uri.query());
    if web.is_ok() {
        return Ok(Redirect::to(next.as_deref().unwrap_or("/")).into_response());
    }
    login_page_to(&state, jar, "", None, next)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Where to go afterwards (checked: a path on this server).
    #[serde(default)]
    next: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Address(address, https): Address,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> WebResult<Response> {
    let expected = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let next = safe_next(&f.next);
    if expected.is_empty() || !secret_token::constant_time_eq(&f.csrf, &expected) {
        let message = super::text::get("login.expired").to_owned();
        return login_page_to(&state, jar, &f.username, Some(message), next);
    }
    let req = LoginRequest {
        username: f.username.clone(),
        password: f.password,
    };
    match sessions::login(&state, &address, &req).await {
        // The session's cookie; then the dashboard.
        Ok(session) => Ok((
            jar.add(session_cookie(&state, session.secret, https)),
            Redirect::to(next.as_deref().unwrap_or("/")),
        )
            .into_response()),
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            login_page_to(&state, jar, &f.username, Some(e.message), next)
        }
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn logout(State(state): State<AppState>, jar: CookieJar, p: Posted<NoFields>) -> WebResult<Response> {
    sessions::logout(&state, &p.caller).await?;
    Ok((jar.remove(session_removal()), Redirect::to("/login")).into_response())
}

/// The cookie that remembers a single sign-on until the provider sends the
/// browser back (sealed; SameSite=Lax so that the provider's redirect,
/// a top-level GET from another site, carries it).
const SSO_COOKIE: &str = "prism_oidc";

/// `/auth/oidc/login`: off to the provider.
pub async fn sso_start(
    State(state): State<AppState>,
    Address(_, https): Address,
    jar: CookieJar,
    uri: axum::http::Uri,
) -> WebResult<Response> {
    let (url, sealed) = crate::ops::sso::begin(&state, next_of(uri.query())).await?;
    let cookie = Cookie::build((SSO_COOKIE, sealed))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies || https)
        .path("/auth/oidc")
        .max_age(cookie::time::Duration::minutes(10))
        .build();
    Ok((jar.add(cookie), Redirect::to(&url)).into_response())
}

/// `/auth/oidc/callback`: the provider's answer; a session, or the login
/// page saying why not.
pub async fn sso_callback(
    State(state): State<AppState>,
    Address(address, https): Address,
    jar: CookieJar,
    axum::extract::Query(cb): axum::extract::Query<crate::ops::sso::Callback>,
) -> WebResult<Response> {
    let sealed = jar.get(SSO_COOKIE).map(|c| c.value().to_owned());
    let jar = jar.remove(Cookie::build(SSO_COOKIE).path("/auth/oidc").build());
    match crate::ops::sso::finish(&state, &address, &cb, sealed.as_deref()).await {
        Ok((session, next)) => {
            // Checked again: the cookie is ours, but the rule is the same everywhere.
            let to = next.and_then(|n| safe_next(&n)).unwrap_or_else(|| "/".into());
            Ok((
                jar.add(session_cookie(&state, session.secret, https)),
                Redirect::to(&to),
            )
                .into_response())
        }
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            login_page(&state, jar, "", Some(e.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_followed_after_login() {
        assert_eq!(
            next_of(Some("next=/tools/edge/prometheus/graph?g0.expr=up&g0.tab=1")).as_deref(),
            Some("/tools/edge/prometheus/graph?g0.expr=up&g0.tab=1")
        );
        assert_eq!(
            next_of(Some("lang=en&next=%2Fapps%2Fweb")).as_deref(),
            Some("/apps/web")
        );
        for evil in [
            "next=//evil.example/x",
            "next=https://evil.example",
            "next=/\\evil.example",
            "next=%2F%2Fevil.example",
            "next=evil",
            "next=/a%0d%0aSet-Cookie:x",
            "x=1",
        ] {
            let got = next_of(Some(evil));
            assert!(
                got.as_deref().is_none_or(|n| !n.starts_with("//") && !n.contains('\r')),
                "{evil}: {got:?}"
            );
            assert!(got.is_none() || evil.contains("%0d"), "{evil}: {got:?}");
        }
    }
}
