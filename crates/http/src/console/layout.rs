//! The page shell every console page shares (navigation, the signed-in key, the notice an
//! action left), its security headers, the HTML error page, and small formatting helpers.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use super::session::Session;
use crate::error::{ApiError, redirect};

/// The pages in the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Orders,
    Jobs,
    Queues,
    Webhooks,
    Audit,
    None,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Overview, "/console", "Overview"),
    (Nav::Orders, "/console/orders", "Orders"),
    (Nav::Jobs, "/console/jobs", "Jobs"),
    (Nav::Queues, "/console/queues", "Queues"),
    (Nav::Webhooks, "/console/webhooks", "Webhooks"),
    (Nav::Audit, "/console/audit", "Audit log"),
];

/// Headers on every console page: nothing from elsewhere runs or frames it, nothing is
/// cached, and no address of it leaks in a `Referer`.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page's `<head>`: its title, the stylesheet and the script.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · orderly console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A whole page.
pub(crate) fn page(
    title: &str,
    nav: Nav,
    session: Option<&Session>,
    notice: Option<&str>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/console" { "orderly" }
                    @if let Some(session) = session {
                        nav {
                            @for (item, href, label) in NAV {
                                a href=(href) aria-current=[(item == nav).then_some("page")] { (label) }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (session.csrf_field())
                            span.who title="The API key this session signed in with" { (session.key_name) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(notice) = notice {
                        p.notice role="status" { (notice) }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    secure((StatusCode::OK, markup.into_string()).into_response()).with_html()
}

/// Sets the HTML content type on a response.
pub(crate) trait WithHtml {
    fn with_html(self) -> Response;
}

impl WithHtml for Response {
    fn with_html(mut self) -> Response {
        self.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        self
    }
}

/// A fragment of a page (the overview's live part), with the page's headers.
pub(crate) fn fragment(markup: Markup) -> Response {
    secure((StatusCode::OK, markup.into_string()).into_response()).with_html()
}

/// After an action: back to `to`, with a notice code the page turns into words.
pub(crate) fn done(to: &str, notice: &str) -> Response {
    let separator = if to.contains('?') { '&' } else { '?' };
    redirect(&format!("{to}{separator}notice={notice}"))
}

/// The words for a notice code left by [`done`]; unknown codes say nothing (a link cannot put
/// words of its own on a console page).
pub(crate) fn notice_text(code: Option<&str>, count: Option<u64>) -> Option<String> {
    let n = count.unwrap_or(0);
    Some(
        match code? {
            "order_paid" => "The order is paid.",
            "order_fulfilled" => "The order is fulfilled.",
            "order_cancelled" => "The order is cancelled; its stock is back.",
            "order_payments" => "The capture is recorded.",
            "order_fulfillments" => "The shipment is recorded.",
            "order_cancellations" => "The units are cancelled; their stock is back.",
            "order_refunds" => "The refund is recorded.",
            "order_returns" => "The return is asked for.",
            "order_returns_receive" => "The return is received.",
            "order_edit" => "The order's lines are changed.",
            "job_retried" => "The job is queued again with fresh attempts.",
            "job_cancelled" => "The job is cancelled.",
            "job_cancel_requested" => {
                "The job is running: its worker has been asked to stop it. It ends cancelled, \
                 or completed if its work had already been done."
            }
            "jobs_retried" => return Some(format!("{n} discarded jobs are queued again.")),
            "queue_paused" => "The queue is paused: no worker starts its jobs until it is resumed.",
            "queue_resumed" => "The queue is resumed.",
            "schedule_paused" => "The schedule is paused: its ticks pass without a job.",
            "schedule_resumed" => "The schedule is resumed.",
            "schedule_run" => "The schedule's job is queued.",
            "webhook_enabled" => "The endpoint is enabled.",
            "redelivery_queued" => "The delivery is queued again.",
            "webhook_replayed" => {
                return Some(format!(
                    "{n} missed events will be sent again (each once: a delivery waiting for its retry is brought forward)."
                ));
            }
            "signed_out" => "Signed out.",
            "expired" => "Your session has ended; sign in again.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The query of a page that may show a notice left by [`done`].
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NoticeQuery {
    pub(crate) notice: Option<String>,
}

/// A form field or query parameter with something in it, trimmed.
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A button that posts to `action` with the session's CSRF token; with `confirm`, the
/// browser asks first.
pub(crate) fn action_button(
    session: &Session,
    action: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (session.csrf_field())
            button type="submit" { (label) }
        }
    }
}

/// An instant as operators read it: `2026-12-03 07:00:00 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

/// A `<time>` element with the instant and how long ago it was.
pub(crate) fn time_ago(t: OffsetDateTime) -> Markup {
    let ago = orderly_domain::now() - t;
    let words = if ago.is_negative() {
        format!("in {}", span(-ago))
    } else {
        format!("{} ago", span(ago))
    };
    html! { time datetime=(t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()) title=(when(t)) { (words) } }
}

/// A duration in its largest whole unit: `42 s`, `5 min`, `3 h`, `2 d`.
pub(crate) fn span(d: time::Duration) -> String {
    let s = d.whole_seconds();
    match s {
        ..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min", s / 60),
        3_600..=86_399 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

pub(crate) use orderly_domain::format_money as money;

/// A query string of the non-empty pairs, `?a=1&b=2` (or nothing).
pub(crate) fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    format!("?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

/// A console error: the API's error as an HTML page with the same status.
#[derive(Debug)]
pub(crate) enum PageError {
    Api(ApiError),
    /// An action without the session's CSRF token.
    Csrf,
}

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, detail, mut response) = match self {
            Self::Api(error) => {
                let (status, _, detail) = error.parts();
                let title = status.canonical_reason().unwrap_or("Error");
                (status, title, detail, error.into_response())
            }
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This action did not carry the page's security token (the page may be out of \
                 date, or the request did not come from the console). Reload the page and try \
                 again."
                    .to_owned(),
                StatusCode::FORBIDDEN.into_response(),
            ),
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.top { a.brand href="/console" { "orderly" } }
                    main {
                        h1 { (status.as_u16()) " " (title) }
                        p.error { (detail) }
                        p { a href="/console" { "Back to the overview" } }
                    }
                }
            }
        };
        *response.body_mut() = Body::from(markup.into_string());
        response.headers_mut().remove(header::CONTENT_LENGTH);
        secure(response).with_html()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_amounts_read_as_operators_write_them() {
        assert_eq!(span(time::Duration::seconds(42)), "42 s");
        assert_eq!(span(time::Duration::seconds(300)), "5 min");
        assert_eq!(span(time::Duration::hours(50)), "2 d");
        assert_eq!(money(2_500, "EUR"), "25.00 EUR");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(
            query(&[("a", Some("x y")), ("b", None), ("c", Some(""))]),
            "?a=x+y"
        );
        assert_eq!(notice_text(Some("<script>"), None), None);
        assert_eq!(
            notice_text(Some("jobs_retried"), Some(3)).unwrap(),
            "3 discarded jobs are queued again."
        );
    }
}
