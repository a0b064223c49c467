//! The order page's forms for the lifecycle (`/console/orders/{id}/changes/<route>`): record
//! a capture, ship units, cancel units, record a refund, ask for a return and receive it. Each form carries the order's version (a change made meanwhile by someone
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

/// The fields of a posted form, in order (a field may repeat: one per line), from the
/// signed-in session whose CSRF token it carried: the order's change forms, and the webhook
/// page's replay.
#[derive(Debug)]
pub(crate) struct ChangeForm {
    pub(crate) session: Session,
    fields: Vec<(String, String)>,
}

impl ChangeForm {
    /// The value of field `name`, trimmed, if it is there and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
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
    let forms = html! {
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
        (return_forms(order, &here, &hidden))
        (edit_form(order, &here, &hidden))
    };
    // No heading over nothing: a closed order with nothing left to record shows no section.
    html! {
        @if !forms.0.is_empty() {
            h2 { "Record" }
            div.changes { (forms) }
        }
    }
}

/// Editing the lines while nothing has shipped: each line's units (0 drops it), and a product
/// to add by SKU at today's price.
fn edit_form(order: &OrderResource, here: &str, hidden: &dyn Fn() -> Markup) -> Markup {
    let editable =
        matches!(order.status, "pending" | "paid") && order.lines.iter().all(|l| l.shipped == 0);
    html! {
        @if editable {
            form method="post" action={(here) "/changes/edit"} data-confirm="Change this order's lines? Stock is taken or given back, the totals change." {
                h3 { "Edit the lines" }
                (hidden())
                @for line in &order.lines {
                    label { (line.sku)
                        input type="number" name={"units." (line.sku)} min="0" max="1000" value=(line.quantity - line.cancelled);
                    }
                }
                label { "Add SKU" input type="text" name="add_sku" maxlength="64"; }
                label { "Units" input type="number" name="add_quantity" min="1" max="1000" value="1"; }
                button type="submit" { "Save lines" }
            }
        }
    }
}

/// Asking for a return of shipped units, and receiving each return asked for: per line the
/// units that came back and whether they go back in stock, and whether to refund them.
fn return_forms(order: &OrderResource, here: &str, hidden: &dyn Fn() -> Markup) -> Markup {
    let returnable: Vec<_> = order
        .lines
        .iter()
        .filter(|l| l.shipped - l.returned - l.return_requested > 0)
        .collect();
    let requested = order
        .returns
        .iter()
        .flatten()
        .filter(|r| r.status == "requested");
    html! {
        @if !returnable.is_empty() {
            form method="post" action={(here) "/changes/returns"} data-confirm="Ask for this return?" {
                h3 { "A return" }
                (hidden())
                @for line in &returnable {
                    label { (line.sku) " (" (line.shipped - line.returned - line.return_requested) " returnable)"
                        input type="number" name={"units." (line.sku)} min="0" max=(line.shipped - line.returned - line.return_requested) value="0";
                    }
                }
                label { "Reason" input type="text" name="reason" maxlength="1000"; }
                button type="submit" { "Ask for return" }
            }
        }
        @for ret in requested {
            form method="post" action={(here) "/changes/receive-" (ret.id)} data-confirm="Receive this return?" {
                h3 { "Receive return " (ret.id.to_string().get(..8).unwrap_or_default()) }
                (hidden())
                @for line in &ret.lines {
                    label { (line.sku) " (" (line.quantity) " asked for)"
                        input type="number" name={"units." (line.sku)} min="0" max=(line.quantity) value=(line.quantity);
                    }
                    label.check { input type="checkbox" name={"restock." (line.sku)} value="on" checked; "Back in stock" }
                }
                label.check { input type="checkbox" name="refund" value="due" checked; "Refund what they cost" }
                button type="submit" { "Receive" }
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
        "returns" => ChangeRoute::Returns,
        "edit" => ChangeRoute::Edit,
        other => match other
            .strip_prefix("receive-")
            .and_then(|id| id.parse().ok())
        {
            Some(return_id) => ChangeRoute::ReceiveReturn(return_id),
            None => return Err(ApiError::NotFound("resource").into()),
        },
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
        &format!("order_{}", route.as_str().replace('/', "_")),
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
        ChangeRoute::ReceiveReturn(_) => {
            let mut lines = form_lines(form);
            for line in &mut lines {
                let sku = line["sku"].as_str().unwrap_or_default();
                let restock = form.get(&format!("restock.{sku}")).is_some();
                line["restock"] = json!(restock);
            }
            body.insert("lines".into(), Value::Array(lines));
            if form.get("refund").is_some() {
                body.insert("refund".into(), json!(true));
            }
        }
        ChangeRoute::Returns => {
            body.insert("lines".into(), Value::Array(form_lines(form)));
            text(&mut body, "reason");
        }
        ChangeRoute::Edit => {
            let mut lines = form_lines(form);
            if let Some(sku) = form.get("add_sku") {
                let raw = form.get("add_quantity").unwrap_or("1");
                let quantity = raw.parse::<i64>().map_or(json!(raw), |q| json!(q));
                lines.push(json!({"sku": sku, "quantity": quantity}));
            }
            body.insert("lines".into(), Value::Array(lines));
        }
        ChangeRoute::Fulfillments | ChangeRoute::Cancellations => {
            body.insert("lines".into(), Value::Array(form_lines(form)));
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

/// The form's `units.<sku>` fields with units above zero, as the API's lines.
fn form_lines(form: &ChangeForm) -> Vec<Value> {
    form.fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("units.")?, v.trim())))
        .filter(|(_, v)| !v.is_empty() && *v != "0")
        .map(|(sku, v)| {
            let quantity = v.parse::<i64>().map_or(json!(v), |q| json!(q));
            json!({"sku": sku, "quantity": quantity})
        })
        .collect()
}
