//! The request bodies of the webhook API and their parsing, every problem reported at once.

use orderly_domain::webhook::{parse_description, parse_event_types, parse_url};
use orderly_domain::{FieldError, ValidationErrors};
use orderly_storage::{NewWebhook, WebhookChange};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::fields::{Fields, present};

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWebhook {
    /// Where events are POSTed: an `https` URL on the public internet.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = true, example = "https://shop.example/hooks/orderly")]
    pub url: Option<Value>,
    /// The event types to receive, e.g. `["order.created", "order.paid"]`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, required = true, example = json!(["order.created"]))]
    pub event_types: Option<Value>,
    /// Up to 500 characters, for people.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub description: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

/// A change to an endpoint: only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub url: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>)]
    pub event_types: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub description: Option<Value>,
    /// `true` enables a disabled endpoint (its failure record starts afresh); `false`
    /// disables it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub enabled: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

fn url(f: &mut Fields, value: Option<Value>, allow_private: bool) -> Option<String> {
    f.string("url", value)
        .and_then(|raw| f.check(parse_url(&raw, allow_private)))
        .map(String::from)
}

fn event_types(f: &mut Fields, value: Option<Value>) -> Option<Vec<String>> {
    let items = match value? {
        Value::Array(items) => items,
        _ => {
            f.push(FieldError::new(
                "event_types",
                "invalid_type",
                "must be an array of event type names",
            ));
            return None;
        }
    };
    let mut types = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        types.push(f.string(&format!("event_types[{i}]"), Some(item))?);
    }
    f.check(parse_event_types(&types))
}

fn description(f: &mut Fields, value: Option<Value>) -> Option<String> {
    f.string("description", value)
        .and_then(|d| f.check(parse_description(&d)))
}

impl CreateWebhook {
    pub fn parse(self, allow_private: bool) -> Result<NewWebhook, ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let raw_url = f.required("url", self.url);
        let url = url(&mut f, raw_url, allow_private);
        let raw_types = f.required("event_types", self.event_types);
        let event_types = event_types(&mut f, raw_types);
        let description = match self.description {
            None => Some(String::new()),
            value => description(&mut f, value),
        };
        f.finish(|| {
            Some(NewWebhook {
                url: url?,
                description: description?,
                event_types: event_types?,
            })
        })
    }
}

impl UpdateWebhook {
    pub fn parse(self, allow_private: bool) -> Result<WebhookChange, ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let sent = [
            &self.url,
            &self.event_types,
            &self.description,
            &self.enabled,
        ];
        if sent.iter().all(|v| v.is_none()) && self.unknown.is_empty() {
            f.push(FieldError::new(
                "",
                "empty_change",
                "send at least one of url, event_types, description, enabled",
            ));
        }
        let change = WebhookChange {
            url: self.url.and_then(|v| url(&mut f, Some(v), allow_private)),
            event_types: self.event_types.and_then(|v| event_types(&mut f, Some(v))),
            description: self.description.and_then(|v| description(&mut f, Some(v))),
            enabled: self.enabled.and_then(|v| f.boolean("enabled", Some(v))),
        };
        f.finish(|| Some(change))
    }
}

/// A replay: every event since `since` that the endpoint missed, sent once more.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplayWebhook {
    /// An RFC 3339 time, such as `2026-12-07T09:00:00Z`: events from then on.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = DateTime, required = true, example = "2026-12-07T09:00:00Z")]
    pub since: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

impl ReplayWebhook {
    /// The time, not after `now`.
    pub fn parse(self, now: OffsetDateTime) -> Result<OffsetDateTime, ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let raw = f.required("since", self.since);
        let since = f.string("since", raw).and_then(|text| {
            let parsed = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                FieldError::new(
                    "since",
                    "invalid_time",
                    "must be an RFC 3339 time, such as 2026-12-07T09:00:00Z",
                )
            });
            let parsed = parsed.and_then(|at| {
                if at > now {
                    Err(FieldError::new(
                        "since",
                        "in_future",
                        "must not be in the future",
                    ))
                } else {
                    Ok(at)
                }
            });
            f.check(parsed)
        });
        f.finish(|| since)
    }
}
