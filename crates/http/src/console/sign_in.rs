//! Signing in to the console: the page, and the post that checks an admin key and starts a
//! session. The post is refused (`403`, no session, no cookie) unless it comes from the
//! sign-in page itself: the page sets a random token in a cookie of its own
//! (`orderly_console_sign_in`, SameSite=Strict, for the sign-in path only) and in the form,
//! and the post must carry both, equal; a post that says it was sent cross-site (an `Origin`
//! other than the host it was sent to, `Sec-Fetch-Site: cross-site` or `same-site`) is
//! refused whatever it carries. Without this, a page elsewhere could sign a browser in with
//! the attacker's own admin key (login CSRF) and watch what the operator then does.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use orderly_service::{SignInError, random_token};
use serde::Deserialize;

use super::extract::{Form, Query};
use super::layout::{Nav, PageError, page};
use super::session::{COOKIE, client_address, cookie, over_https, same_secret};
use crate::AppState;
use crate::error::{ApiError, redirect};

/// The cookie that carries the sign-in form's token.
const SIGN_IN_COOKIE: &str = "orderly_console_sign_in";

/// How long a sign-in page's token stays good.
const SIGN_IN_TTL_SECS: u32 = 3_600;

/// The sign-in page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// The sign-in form.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    key: Option<String>,
    next: Option<String>,
    csrf: Option<String>,
}

/// A `next` that stays within the console, else the overview.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/console/")
                && !next.starts_with("/console//")
                && !next.contains('\\')
                && !next.contains(char::is_control) =>
        {
            next
        }
        _ => "/console",
    }
}

fn sign_in_form(token: &str, next: Option<&str>, problem: Option<&str>) -> Markup {
    html! {
        form.signin method="post" action="/console/sign-in" {
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            input type="hidden" name="csrf" value=(token);
            label for="key" { "Admin API key" }
            input #key type="password" name="key" autocomplete="off" required autofocus;
            @if let Some(next) = next {
                input type="hidden" name="next" value=(next);
            }
            button type="submit" { "Sign in" }
            p.hint { "Storefront keys cannot sign in. The key is checked once and never kept in the session." }
        }
    }
}

/// The sign-in page with `form`, and the token's cookie.
fn sign_in_page_with(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    notice: Option<&str>,
    form: Markup,
) -> Result<Response, PageError> {
    let mut response = page("Sign in", Nav::None, None, notice, form);
    let cookie = format!(
        "{SIGN_IN_COOKIE}={token}; Path=/console/sign-in; HttpOnly; SameSite=Strict; \
         Max-Age={SIGN_IN_TTL_SECS}{}",
        if over_https(state, headers) {
            "; Secure"
        } else {
            ""
        }
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// The sign-in form's token: the one the browser's cookie already holds (another tab's page
/// stays good), else a new one.
fn form_token(headers: &HeaderMap) -> Result<String, ApiError> {
    match cookie(headers, SIGN_IN_COOKIE) {
        Some(token) if token.len() == 43 && token.bytes().all(is_token_byte) => {
            Ok(token.to_owned())
        }
        _ => random_token().map_err(ApiError::internal),
    }
}

/// A byte of a token as [`random_token`] writes it (URL-safe base64).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

pub(crate) async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, PageError> {
    let notice = super::layout::notice_text(query.notice.as_deref(), None);
    let token = form_token(&headers)?;
    let form = sign_in_form(&token, query.next.as_deref(), None);
    sign_in_page_with(&state, &headers, &token, notice.as_deref(), form)
}

/// Whether the request says it was sent from another site: an `Origin` naming another host
/// than the one it was sent to, or `Sec-Fetch-Site` other than `same-origin` or `none` (a
/// browser sends both on every form post).
fn sent_cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.as_bytes().to_ascii_lowercase());
    if fetch_site.is_some_and(|site| site != b"same-origin" && site != b"none") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority.as_bytes());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        // `Origin: null` (a sandboxed or privacy-sensitive context) or no Host to compare.
        _ => true,
    }
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let address = client_address(&state, &parts);
    let headers = &parts.headers;
    let expected = cookie(headers, SIGN_IN_COOKIE);
    let from_our_page = expected
        .zip(form.csrf.as_deref())
        .is_some_and(|(expected, presented)| same_secret(presented, expected));
    if !from_our_page || sent_cross_site(headers) {
        tracing::warn!(address = ?address, "console sign-in refused: not posted from the sign-in page");
        return Err(PageError::Csrf);
    }
    // Refused, the form is shown again with the same token (its cookie is still good).
    let token = expected.unwrap_or_default();
    let refuse = |status: StatusCode, problem: &str| {
        let form = sign_in_form(token, form.next.as_deref(), Some(problem));
        let mut response = page("Sign in", Nav::None, None, None, form);
        *response.status_mut() = status;
        Ok(response)
    };
    let Some(console) = state.settings.console.as_ref() else {
        return Err(ApiError::NotFound("resource").into());
    };
    let ttl = console.session_ttl;
    let address_text = address.map(|a| a.to_string());
    let key = form.key.as_deref().unwrap_or_default();
    let opened = match state
        .services
        .sign_in(key, address_text.as_deref(), ttl)
        .await
    {
        Ok(opened) => opened,
        Err(SignInError::NotLive) => {
            tracing::warn!(address = ?address, "console sign-in with a key that is not live");
            return refuse(StatusCode::UNAUTHORIZED, "That is not a live API key.");
        }
        Err(SignInError::NotAdmin(key_id)) => {
            tracing::warn!(%key_id, "console sign-in with a storefront key refused");
            return refuse(
                StatusCode::FORBIDDEN,
                "Storefront keys cannot sign in to the console: use an admin key.",
            );
        }
        Err(SignInError::Random(error)) => return Err(ApiError::internal(error).into()),
        Err(SignInError::Store(error)) => return Err(error.into()),
    };
    tracing::info!(key_id = %opened.key_id, "console sign-in");
    let session_token = opened.token;
    let cookie = format!(
        "{COOKIE}={session_token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.whole_seconds(),
        if over_https(&state, headers) {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = redirect(safe_next(form.next.as_deref()));
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    // The sign-in page's token has served.
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "orderly_console_sign_in=; Path=/console/sign-in; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/jobs?state=discarded")),
            "/console/jobs?state=discarded"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console");
        assert_eq!(safe_next(Some("/console/\u{1}")), "/console");
        assert_eq!(safe_next(Some("/console/\u{7f}")), "/console");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn posts_from_another_site_are_recognised() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let host = ("host", "shop.example:8080");
        assert!(!sent_cross_site(&headers(&[host])));
        assert!(!sent_cross_site(&headers(&[
            host,
            ("origin", "https://shop.example:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(sent_cross_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(sent_cross_site(&headers(&[host, ("origin", "null")])));
        assert!(sent_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(sent_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
    }
}
