//! The order page's forms for the lifecycle (`/console/orders/{id}/changes/<route>`): record
//! a capture, ship units, cancel units, record a refund. Each form carries the order's version (a change made meanwhile by someone
//! else refuses it, as `If-Match` does) and an idempotency key made when the page was drawn
//! (a form sent twice records once). The form is turned into the API's body and parsed by
//! the API's own rules, so the console accepts exactly what the API does.

use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use orderly_domain::{FieldError, ValidationErrors};
use orderly_service::{ChangeKey, ChangeRequest};
use serde_json::{Map, Value, json};

use super::extract::{Form, Path};
use super::layout::{PageError, done};
use super::session::Session;
use crate::AppState;
use crate::error::ApiError;
use crate::orders::changes::{fingerprint, settle};
use crate::orders::{ChangeRoute, OrderResource, parse_order_id};

/// The fields of a posted change form, in order (a field may repeat: one per line).
#[derive(Debug)]
pub(crate) struct ChangeForm {
    session: Session,
    fields: Vec<(String, String)>,
}

impl ChangeForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

impl FromRequest<AppState> for ChangeForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = {
            use axum::extract::FromRequestParts;
            Session::from_request_parts(&mut parts, state).await?
        };
        let Form(fields) =
            Form::<Vec<(String, String)>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        let csrf = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        session.check(csrf).map_err(IntoResponse::into_response)?;
        Ok(Self { session, fields })
    }
}

/// The four forms, for an order as the API shows it, at `version`.
pub(crate) fn forms(session: &Session, order: &OrderResource, version: i64) -> Markup {
    let here = format!("/console/orders/{}", order.id);
    let hidden = || {
        html! {
            (session.csrf_field())
            input type="hidden" name="version" value=(version);
            input type="hidden" name="key" value=(uuid::Uuid::new_v4().to_string());
        }
    };
    let open: Vec<_> = order
        .lines
        .iter()
        .filter(|l| l.quantity - l.cancelled - l.shipped > 0)
        .collect();
    let units = || {
        html! {
            @for line in &open {
                label { (line.sku) " (" (line.quantity - line.cancelled - line.shipped) " open)"
                    input type="number" name={"units." (line.sku)} min="0" max=(line.quantity - line.cancelled - line.shipped) value="0";
                }
            }
        }
    };
    html! {
        h2 { "Record" }
        div.changes {
            @if order.balance_due > 0 {
                form method="post" action={(here) "/changes/payments"} data-confirm="Record this capture?" {
                    h3 { "A capture" }
                    (hidden())
                    label { "Amount (" (order.currency) ")" input type="text" name="amount" inputmode="decimal" placeholder="12.50" required; }
                    label { "Provider" input type="text" name="provider" value="manual" maxlength="100" required; }
                    label { "Reference" input type="text" name="reference" maxlength="200" required; }
                    button type="submit" { "Record capture" }
                }
            }
            @if order.balance_due == 0 && !open.is_empty() {
                form method="post" action={(here) "/changes/fulfillments"} data-confirm="Record this shipment?" {
                    h3 { "A shipment" }
                    (hidden())
                    (units())
                    label { "Carrier" input type="text" name="carrier" maxlength="100"; }
                    label { "Tracking number" input type="text" name="number" maxlength="200"; }
                    label { "Tracking URL" input type="url" name="url" maxlength="2048"; }
                    button type="submit" { "Record shipment" }
                }
            }
            @if !open.is_empty() && matches!(order.status, "pending" | "paid") {
                form method="post" action={(here) "/changes/cancellations"} data-confirm="Cancel these units? Their stock goes back on sale." {
                    h3 { "Cancel units" }
                    (hidden())
                    (units())
                    button type="submit" { "Cancel units" }
                }
            }
            @if order.captured > order.refunded {
                form method="post" action={(here) "/changes/refunds"} data-confirm="Record this refund?" {
                    h3 { "A refund" }
                    (hidden())
                    label { "Amount (" (order.currency) ")" input type="text" name="amount" inputmode="decimal" required; }
                    label { "Reason" input type="text" name="reason" maxlength="1000"; }
                    button type="submit" { "Record refund" }
                }
            }
        }
    }
}

/// `POST /console/orders/{id}/{payments|fulfillments|cancellations|refunds}`.
pub(crate) async fn change(
    State(state): State<AppState>,
    Path((id, route)): Path<(String, String)>,
    form: ChangeForm,
) -> Result<Response, PageError> {
    let id = parse_order_id(&id)?;
    let route = match route.as_str() {
        "payments" => ChangeRoute::Payments,
        "fulfillments" => ChangeRoute::Fulfillments,
        "cancellations" => ChangeRoute::Cancellations,
        "refunds" => ChangeRoute::Refunds,
        _ => return Err(ApiError::NotFound("resource").into()),
    };
    let body = api_body(route, &form)?;
    let request = ChangeRequest {
        order: id,
        change: route
            .parse(body.clone(), state.settings.currency)
            .map_err(ApiError::Validation)?,
        actor: form.session.actor(),
        expected_version: form.get("version").and_then(|v| v.parse().ok()),
        key: form.get("key").map(|key| ChangeKey {
            api_key: form.session.key_id,
            key: format!("console:{key}"),
            fingerprint: fingerprint(route, &body),
        }),
        trace: crate::tracing_context::current_traceparent(),
    };
    let settled = settle(state.services.change_order(&request).await?)?;
    if !settled.replayed {
        let detail = serde_json::to_string(&body).unwrap_or_default();
        form.session
            .audit(
                &state,
                &format!("order.{}", route.as_str()),
                &format!("order:{id}"),
                Some(&detail),
            )
            .await?;
    }
    Ok(done(
        &format!("/console/orders/{id}"),
        &format!("order_{}", route.as_str()),
    ))
}

/// The API's body for the form: amounts read as people write them, one line per product with
/// units above zero, empty fields left out.
fn api_body(route: ChangeRoute, form: &ChangeForm) -> Result<Value, ApiError> {
    let mut body = Map::new();
    let amount = |body: &mut Map<String, Value>| -> Result<(), ApiError> {
        let raw = form.get("amount").unwrap_or_default();
        let minor = orderly_domain::parse_money(raw).ok_or_else(|| {
            ApiError::Validation(ValidationErrors::single(FieldError::new(
                "amount",
                "invalid_format",
                "must be an amount such as 12.50",
            )))
        })?;
        body.insert("amount".into(), json!(minor));
        Ok(())
    };
    let text = |body: &mut Map<String, Value>, name: &str| {
        if let Some(value) = form.get(name) {
            body.insert(name.into(), json!(value));
        }
    };
    match route {
        ChangeRoute::Payments => {
            amount(&mut body)?;
            text(&mut body, "provider");
            text(&mut body, "reference");
        }
        ChangeRoute::Refunds => {
            amount(&mut body)?;
            text(&mut body, "reason");
        }
        ChangeRoute::Fulfillments | ChangeRoute::Cancellations => {
            let lines: Vec<Value> = form
                .fields
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("units.")?, v.trim())))
                .filter(|(_, v)| !v.is_empty() && *v != "0")
                .map(|(sku, v)| {
                    let quantity = v.parse::<i64>().map_or(json!(v), |q| json!(q));
                    json!({"sku": sku, "quantity": quantity})
                })
                .collect();
            body.insert("lines".into(), Value::Array(lines));
            if route == ChangeRoute::Fulfillments {
                let mut tracking = Map::new();
                for name in ["carrier", "number", "url"] {
                    text(&mut tracking, name);
                }
                if !tracking.is_empty() {
                    body.insert("tracking".into(), Value::Object(tracking));
                }
            }
        }
    }
    Ok(Value::Object(body))
}
