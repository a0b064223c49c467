//! The console session that follows signing in (`sign_in.rs`): the cookie
//! carries a random token (only its SHA-256 is stored), lasts `console.session_ttl`, is
//! HttpOnly and SameSite=Strict, and Secure when the request came over HTTPS (or
//! `console.secure_cookie`). Each session has a CSRF token of its own that every action
//! posts back. The key itself is never stored in the session or shown on a page; a storefront
//! key cannot sign in, and revoking the key ends its sessions.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use orderly_service::{Audited, ConsoleSession, StoreError, session_token_hash};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::Form;
use super::layout::PageError;
use crate::AppState;
use crate::error::redirect;

/// The session cookie's name.
pub(super) const COOKIE: &str = "orderly_console";

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) key_id: Uuid,
    pub(crate) key_name: String,
    csrf_token: String,
    token_hash: [u8; 32],
    /// The client's address, for the audit log.
    pub(crate) address: Option<IpAddr>,
}

impl Session {
    /// The operator as the actor of what they change.
    pub(crate) fn actor(&self) -> orderly_domain::Actor {
        orderly_domain::Actor::new(
            orderly_domain::ActorKind::Console,
            self.key_id.to_string(),
            self.key_name.as_str(),
        )
    }

    /// The hidden field every action form carries.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf_token); }
    }

    /// Refuses an action whose form did not carry this session's CSRF token.
    pub(crate) fn check(&self, presented: Option<&str>) -> Result<(), PageError> {
        if same_secret(presented.unwrap_or_default(), &self.csrf_token) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// Records an action in the audit log; a failure to record fails the request (after the
    /// change: the operator sees the error and the log says what happened).
    pub(crate) async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: &str,
        detail: Option<&str>,
    ) -> Result<(), PageError> {
        let address = self.address.map(|a| a.to_string());
        state
            .services
            .audit(Audited {
                key_id: self.key_id,
                address: address.as_deref(),
                action,
                target,
                detail,
            })
            .await?;
        Ok(())
    }
}

/// Where a request came from: the trusted balancer's header when one is configured for the
/// rate limits, else the connection's peer.
pub(crate) fn client_address(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    state
        .rate_limits
        .as_ref()
        .and_then(|limits| limits.client_address_header.as_ref())
        .and_then(|name| {
            let value = parts
                .headers
                .get_all(name)
                .iter()
                .next_back()?
                .to_str()
                .ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        })
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip())
        })
}

/// The session cookie's token, if the request carries one.
pub(super) fn presented_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the cookie `name`, if the request carries a non-empty one.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether `presented` is `expected`, compared in full whatever differs first, so that the
/// time it takes tells nothing.
pub(super) fn same_secret(presented: &str, expected: &str) -> bool {
    let (presented, expected) = (presented.as_bytes(), expected.as_bytes());
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether the request came over HTTPS (as the balancer says, or as configured): the cookies
/// set in answer are then `Secure`.
pub(super) fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .settings
        .console
        .as_ref()
        .is_some_and(|console| console.secure_cookie)
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Where a request without a live session goes: sign-in, then back to the page it asked for
/// (a page, never an action).
fn to_sign_in(parts: &Parts, expired: bool) -> Response {
    let next = (parts.method == axum::http::Method::GET)
        .then(|| parts.uri.path_and_query().map(|p| p.as_str()))
        .flatten()
        .filter(|p| {
            *p != "/console"
                && p.starts_with("/console/")
                && !p.starts_with("/console/overview/live")
        });
    let mut to = "/console/sign-in".to_owned();
    to.push_str(&super::layout::query(&[
        ("next", next),
        ("notice", expired.then_some("expired")),
    ]));
    let mut response = redirect(&to);
    if expired {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, clear_cookie());
    }
    response
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "orderly_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// The console session a request's cookie names, looked up once per request: by the edge,
/// which admits a signed-in operator as a keyed caller, and then taken from the request's
/// extensions by the [`Session`] extractor.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedSession {
    token_hash: [u8; 32],
    /// `None`: no live session of an admin key has that token.
    session: Option<ConsoleSession>,
}

impl VerifiedSession {
    /// Whether the cookie names a live session of an admin key.
    pub(crate) fn is_live(&self) -> bool {
        self.session.is_some()
    }
}

/// Looks up the session the request's cookie names; `None` when it carries no cookie.
pub(crate) async fn verify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<VerifiedSession>, StoreError> {
    let Some(token) = presented_token(headers) else {
        return Ok(None);
    };
    let token_hash = session_token_hash(token);
    let session = state.services.console_session(&token_hash).await?;
    Ok(Some(VerifiedSession {
        token_hash,
        session,
    }))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let verified = match parts.extensions.get::<VerifiedSession>() {
            Some(verified) => Some(verified.clone()),
            None => verify(state, &parts.headers)
                .await
                .map_err(|e| PageError::from(e).into_response())?,
        };
        let Some(verified) = verified else {
            return Err(to_sign_in(parts, false));
        };
        match verified.session {
            Some(session) => {
                tracing::Span::current().record("key_id", tracing::field::display(session.key_id));
                Ok(Session {
                    key_id: session.key_id,
                    key_name: session.key_name,
                    csrf_token: session.csrf_token,
                    token_hash: verified.token_hash,
                    address: client_address(state, parts),
                })
            }
            None => Err(to_sign_in(parts, true)),
        }
    }
}

/// A form that posts only its CSRF token.
#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// An action posted from a console page: the signed-in session whose CSRF token the form
/// carried. Without a session the browser goes to sign-in; without the token, `403`.
#[derive(Debug)]
pub(crate) struct Action(pub(crate) Session);

impl FromRequest<AppState> for Action {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<CsrfForm>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        session
            .check(form.csrf.as_deref())
            .map_err(IntoResponse::into_response)?;
        Ok(Self(session))
    }
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let address = session.address.map(|a| a.to_string());
    state
        .services
        .sign_out(&session.token_hash, session.key_id, address.as_deref())
        .await?;
    let mut response = redirect("/console/sign-in?notice=signed_out");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; orderly_console=tok; b=2"),
        );
        assert_eq!(presented_token(&headers), Some("tok"));
    }
}
