//! One delivery attempt over HTTP: the client every delivery shares, the signed POST within
//! the time limit, and what the endpoint answered (at most the excerpt's worth of it).

use std::sync::Arc;
use std::time::Duration;

use orderly_storage::{OutboxRecord, WebhookEndpoint};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::json;
use time::OffsetDateTime;

use super::WebhookSettings;
use super::guard::{self, GuardedResolver};
use super::signature::signature_header;

/// Why the webhook HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up TLS for webhooks")]
    Tls(#[source] rustls::Error),
    #[error("cannot build the webhook HTTP client")]
    Build(#[source] reqwest::Error),
}

/// The client deliveries share: rustls with the webpki roots, no redirects (a redirect to an
/// internal address would slip past the guard), no proxy, and the guarded resolver.
pub(super) fn http_client(settings: &WebhookSettings) -> Result<reqwest::Client, ClientError> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(ClientError::Tls)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("orderly-webhooks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.timeout)
        .pool_max_idle_per_host(settings.per_endpoint_concurrency);
    if !settings.allow_private {
        builder = builder.dns_resolver(GuardedResolver);
    }
    builder.build().map_err(ClientError::Build)
}

/// One POST, within the time limit, reading at most the excerpt's worth of the answer.
pub(super) async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    endpoint: &WebhookEndpoint,
    event: &OutboxRecord,
) -> Result<Answer, SendError> {
    let url = Url::parse(&endpoint.url)
        .map_err(|e| SendError::Transport(format!("bad endpoint URL: {e}")))?;
    if !settings.allow_private {
        if url.scheme() != "https" {
            return Err(SendError::Blocked("only https URLs are allowed".into()));
        }
        guard::check_literal(&url).map_err(|b| SendError::Blocked(b.0))?;
    }
    let body = event_body(event);
    let now = orderly_domain::now();
    let id = event.id.to_string();
    let signature = signature_header(
        &endpoint.signing_secrets(now),
        &id,
        now.unix_timestamp(),
        &body,
    );
    let exchange = async {
        let mut response = client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.unix_timestamp().to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(SendError::from_request)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), now);
        let limit = settings.response_excerpt_bytes;
        let mut read = Vec::with_capacity(limit.min(4_096));
        while read.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                // The status is what counts; a body cut short changes nothing.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Answer {
            status,
            retry_after,
            excerpt: excerpt(&read, limit),
        })
    };
    match tokio::time::timeout(settings.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Transport(format!(
            "timed out after {} s",
            settings.timeout.as_secs_f64()
        ))),
    }
}

/// The start of an answer's body as text that every backend can store, at most `limit`
/// bytes of it: UTF-8, with each invalid sequence and each NUL (which PostgreSQL's `text`
/// refuses: recording the attempt failed, and the delivery went out again and again) as
/// U+FFFD, cut on a character boundary.
fn excerpt(body: &[u8], limit: usize) -> String {
    let cut = body.len() > limit;
    let mut body = &body[..body.len().min(limit)];
    // A character the cut split in two is left out rather than shown as U+FFFD.
    if cut
        && let Err(error) = std::str::from_utf8(body)
        && error.error_len().is_none()
    {
        body = &body[..error.valid_up_to()];
    }
    let mut text = String::from_utf8_lossy(body).replace('\0', "\u{fffd}");
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// What an endpoint answered.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
    pub(super) excerpt: String,
}

pub(super) enum SendError {
    Blocked(String),
    Transport(String),
}

impl SendError {
    fn from_request(error: reqwest::Error) -> Self {
        match guard::blocked_in(&error) {
            Some(why) => Self::Blocked(why),
            None => Self::Transport(orderly_storage::cause_chain(&error)),
        }
    }
}

/// The body every endpoint receives for `event`: the same bytes on every attempt.
pub fn event_body(event: &OutboxRecord) -> Vec<u8> {
    let timestamp = event
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({ "type": event.kind, "timestamp": timestamp, "data": event.payload })
        .to_string()
        .into_bytes()
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_delivery_is_what_orderly_sends() {
        let readme = include_str!("../../../../docs/webhooks.md");
        let event = OutboxRecord {
            id: "019ac9b2-5b1e-7c4e-9a51-2f0d3c1e8b7a".parse().unwrap(),
            kind: "order.created".into(),
            payload: json!({
                "order_id": "019ac9b2-5a90-7d21-8c3f-6b2e4d1a9c05",
                "status": "pending",
                "email": "ana@example.com",
                "currency": "EUR",
                "total": 2500,
            }),
            created_at: time::macros::datetime!(2026-11-28 07:00:00.123456 UTC),
        };
        let body = event_body(&event);
        assert!(readme.contains(std::str::from_utf8(&body).unwrap()));
        let signature = signature_header(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            &event.id.to_string(),
            1_795_852_800,
            &body,
        );
        assert!(readme.contains(&format!("webhook-signature: {signature}")));
    }

    #[test]
    fn excerpts_are_storable_text_cut_on_a_character_boundary() {
        assert_eq!(excerpt(b"ok\0done", 100), "ok\u{fffd}done");
        assert_eq!(excerpt(b"a\xff\xfeb", 100), "a\u{fffd}\u{fffd}b");
        // "é" is two bytes: a cut between them leaves it out.
        assert_eq!(excerpt("abé".as_bytes(), 3), "ab");
        assert_eq!(excerpt("abé".as_bytes(), 4), "abé");
        assert_eq!(excerpt(b"ab\xc3", 100), "ab\u{fffd}");
        // NULs grow as they are replaced; the text still fits the limit.
        let text = excerpt(&[0u8; 10], 10);
        assert!(
            text.len() <= 10 && text.chars().all(|c| c == '\u{fffd}'),
            "{text:?}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = time::macros::datetime!(2026-11-28 10:00:00 UTC);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            "Sat, 28 Nov 2026 10:01:30 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(90)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn the_client_builds_with_and_without_the_guard() {
        for allow_private in [false, true] {
            let settings = WebhookSettings {
                allow_private,
                timeout: Duration::from_secs(15),
                retry_schedule: vec![Duration::from_secs(5)],
                per_endpoint_concurrency: 4,
                disable_after: Duration::from_secs(86_400),
                response_excerpt_bytes: 2_048,
                breaker: orderly_domain::breaker::BreakerPolicy {
                    failures: 5,
                    cool_down: Duration::from_secs(30),
                    probe_lease: Duration::from_secs(20),
                },
            };
            assert!(http_client(&settings).is_ok());
        }
    }
}
