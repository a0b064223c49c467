//! Orders: search by e-mail, status, creation date or id (newest first), and an order's page
//! with its lines and totals, its history (events), its receipt, its jobs and its webhook
//! deliveries, and the pay / fulfill / cancel buttons (each asks for confirmation).

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use orderly_domain::{OrderAction, OrderId, OrderStatus, PageLimit};
use orderly_service::{OrderDossier, OrderSearch};
use serde::Deserialize;
use time::macros::format_description;

use super::extract::{Path, Query};
use super::layout::{
    Nav, NoticeQuery, PageError, action_button, done, money, non_empty, notice_text, page, query,
    time_ago, when,
};
use super::session::{Action, Session};
use crate::AppState;
use crate::error::{ApiError, redirect};
use crate::jobs::JobResource;
use crate::orders::OrderResource;
use crate::webhooks::AttemptResource;

/// A page of the search.
const PAGE: u16 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    email: Option<String>,
    status: Option<String>,
    /// `YYYY-MM-DD`, UTC, inclusive.
    from: Option<String>,
    /// `YYYY-MM-DD`, UTC, inclusive.
    to: Option<String>,
    id: Option<String>,
    before: Option<String>,
    notice: Option<String>,
}

fn day(raw: Option<&str>) -> Result<Option<time::Date>, String> {
    match raw.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(raw) => time::Date::parse(raw, format_description!("[year]-[month]-[day]"))
            .map(Some)
            .map_err(|_| format!("{raw:?} is not a date like 2026-12-03")),
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(search): Query<SearchQuery>,
) -> Result<Response, PageError> {
    if let Some(id) = non_empty(&search.id) {
        // An id goes straight to its order (or says there is none).
        return match id.parse::<OrderId>() {
            Ok(id) => Ok(redirect(&format!("/console/orders/{id}"))),
            Err(_) => Err(ApiError::NotFound("order").into()),
        };
    }
    let (filter, problems) = parse_search(&search);
    let orders: Vec<OrderResource> = match &filter {
        Some(filter) => state.services.search_orders(filter).await?,
        None => Vec::new(),
    }
    .iter()
    .map(OrderResource::from)
    .collect();
    let status = filter.as_ref().and_then(|f| f.status);
    let notice = notice_text(search.notice.as_deref(), None);
    Ok(page(
        "Orders",
        Nav::Orders,
        Some(&session),
        notice.as_deref(),
        html! {
            (search_form(&search, status))
            @for problem in &problems { p.error { (problem) } }
            @if orders.is_empty() && problems.is_empty() {
                p.hint { "No order matches." }
            } @else if !orders.is_empty() {
                (results(&search, &orders))
            }
        },
    ))
}

/// The search a query asks for, or what is wrong with it.
fn parse_search(search: &SearchQuery) -> (Option<OrderSearch>, Vec<String>) {
    let mut problems = Vec::new();
    let status = match non_empty(&search.status) {
        None => None,
        Some(raw) => raw.parse::<OrderStatus>().map(Some).unwrap_or_else(|_| {
            problems.push(format!("{raw:?} is not an order status"));
            None
        }),
    };
    let from = day(search.from.as_deref()).unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let to = day(search.to.as_deref()).unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let filter = problems.is_empty().then(|| OrderSearch {
        status,
        email: non_empty(&search.email).map(str::to_owned),
        from: from.map(|d| d.midnight().assume_utc()),
        until: to
            .and_then(|d| d.next_day())
            .map(|d| d.midnight().assume_utc()),
        before: non_empty(&search.before).and_then(|b| b.parse().ok()),
        limit: PageLimit::parse(i64::from(PAGE)).unwrap_or_default(),
    });
    (filter, problems)
}

fn search_form(search: &SearchQuery, status: Option<OrderStatus>) -> Markup {
    html! {
        form.filters method="get" action="/console/orders" {
            label { "E-mail" input type="email" name="email" value=[non_empty(&search.email)]; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in OrderStatus::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "From" input type="date" name="from" value=[non_empty(&search.from)]; }
            label { "To" input type="date" name="to" value=[non_empty(&search.to)]; }
            label { "Order id" input type="text" name="id" placeholder="0193…" ; }
            button type="submit" { "Search" }
        }
    }
}

/// A page of orders found, with a link to the next when it is full.
fn results(search: &SearchQuery, orders: &[OrderResource]) -> Markup {
    let more = orders.len() == usize::from(PAGE);
    let next = orders.last().map(|o| o.id.to_string());
    html! {
        table.orders {
            thead { tr { th { "Order" } th { "Customer" } th { "Status" } th.num { "Total" } th { "Created" } } }
            tbody {
                @for order in orders {
                    tr {
                        td { a href={"/console/orders/" (order.id)} { code { (order.id) } } }
                        td { (order.customer.email) }
                        td { span.badge { (order.status) } }
                        td.num { (money(order.total, &order.currency)) }
                        td { (time_ago(order.created_at)) }
                    }
                }
            }
        }
        @if more {
            a.more href={"/console/orders" (query(&[
                ("email", non_empty(&search.email)),
                ("status", non_empty(&search.status)),
                ("from", non_empty(&search.from)),
                ("to", non_empty(&search.to)),
                ("before", next.as_deref()),
            ]))} { "Older orders →" }
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = crate::orders::parse_order_id(&id)?;
    let OrderDossier {
        order,
        events,
        jobs,
        deliveries,
    } = state
        .services
        .order_dossier(id)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let domain = state
        .settings
        .console
        .as_ref()
        .map_or("orderly.localhost", |c| c.receipt_domain.as_str());
    let notice = notice_text(query.notice.as_deref(), None);
    Ok(page(
        &format!("Order {id}"),
        Nav::Orders,
        Some(&session),
        notice.as_deref(),
        html! {
            (facts(&session, &OrderResource::from(&order), order.status))
            (lines(&OrderResource::from(&order)))
            (super::order_changes::forms(&session, &OrderResource::from(&order), order.version))
            h2 { "History" }
            ol.history {
                @for event in &events {
                    li {
                        code { (event.kind) } " " (time_ago(event.created_at))
                        @if let Some(actor) = event.payload.get("actor") {
                            " by " span.actor title=(actor["type"].as_str().unwrap_or("")) { (actor["name"].as_str().unwrap_or("?")) }
                        }
                        " · " span.hint { (when(event.created_at)) }
                    }
                }
            }
            h2 { "Receipt" }
            @match order.receipt_sent_at {
                Some(sent) => p { "Sent " (time_ago(sent)) " (" (when(sent)) "), Message-ID " code { (orderly_domain::receipt_message_id(id, domain)) } }
                None => p.hint { "Not sent yet." }
            }
            (jobs_table(&jobs.into_iter().map(JobResource::from).collect::<Vec<_>>()))
            (deliveries_table(&deliveries.into_iter().map(|(endpoint, a)| (endpoint, a.into())).collect::<Vec<_>>()))
        },
    ))
}

/// The order as the API shows it, with the transitions its `status` allows.
fn facts(session: &Session, order: &OrderResource, status: OrderStatus) -> Markup {
    let here = format!("/console/orders/{}", order.id);
    html! {
        section.facts {
            dl {
                dt { "Status" } dd { span.badge #order-status { (order.status) } }
                dt { "Customer" } dd { (order.customer.name) " <" (order.customer.email) ">" }
                dt { "Total" } dd { (money(order.total, &order.currency)) }
                dt { "Payment" } dd { span.badge #payment-status { (order.payment_status) } " captured " (money(order.captured, &order.currency)) ", refunded " (money(order.refunded, &order.currency)) }
                @if order.balance_due > 0 { dt { "Balance due" } dd { (money(order.balance_due, &order.currency)) } }
                @if order.refund_owed > 0 { dt { "Refund owed" } dd { (money(order.refund_owed, &order.currency)) } }
                dt { "Fulfillment" } dd { span.badge #fulfillment-status { (order.fulfillment_status) } }
                dt { "Created" } dd { (when(order.created_at)) }
                dt { "Updated" } dd { (when(order.updated_at)) }
                @if let Some(note) = &order.note { dt { "Note" } dd { (note) } }
            }
            div.actions {
                @if status.apply(OrderAction::Pay).is_ok() {
                    (action_button(session, &format!("{here}/pay"), "Mark paid", Some("Mark this order paid?")))
                }
                @if status.apply(OrderAction::Fulfill).is_ok() {
                    (action_button(session, &format!("{here}/fulfill"), "Mark fulfilled", Some("Mark this order fulfilled?")))
                }
                @if status.apply(OrderAction::Cancel).is_ok() {
                    (action_button(session, &format!("{here}/cancel"), "Cancel order", Some("Cancel this order? Its stock goes back on sale.")))
                }
            }
        }
    }
}

fn lines(order: &OrderResource) -> Markup {
    html! {
        h2 { "Lines" }
        table {
            thead { tr { th { "SKU" } th { "Product" } th.num { "Unit price" } th.num { "Quantity" } th.num { "Cancelled" } th.num { "Shipped" } th.num { "Returned" } th.num { "Line total" } } }
            tbody {
                @for line in &order.lines {
                    tr {
                        td { code { (line.sku) } }
                        td { (line.name) }
                        td.num { (money(line.unit_price, &order.currency)) }
                        td.num { (line.quantity) }
                        td.num { (line.cancelled) }
                        td.num { (line.shipped) }
                        td.num {
                            (line.returned)
                            @if line.restocked > 0 { " (" (line.restocked) " restocked)" }
                            @if line.return_requested > 0 { " + " (line.return_requested) " on a return" }
                        }
                        td.num { (money(line.line_total, &order.currency)) }
                    }
                }
            }
            tfoot { tr { td colspan="7" { "Total (units neither cancelled nor returned)" } td.num { (money(order.total, &order.currency)) } } }
        }
        @if let Some(returns) = order.returns.as_ref().filter(|r| !r.is_empty()) {
            h2 { "Returns" }
            table {
                thead { tr { th { "Return" } th { "Status" } th { "Units" } th { "Reason" } } }
                tbody {
                    @for ret in returns {
                        tr {
                            td { code { (ret.id) } }
                            td { (ret.status) }
                            td {
                                @for line in &ret.lines {
                                    (line.sku) " × " (line.quantity)
                                    @if let Some(got) = line.received { ", " (got) " back" @if line.restock == Some(true) { ", restocked" } }
                                    br;
                                }
                            }
                            td { (ret.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn jobs_table(jobs: &[JobResource]) -> Markup {
    html! {
        h2 { "Jobs" }
        @if jobs.is_empty() {
            p.hint { "No job of this order is kept." }
        } @else {
            table {
                thead { tr { th { "Job" } th { "Kind" } th { "State" } th.num { "Attempt" } th { "Last error" } } }
                tbody {
                    @for job in jobs {
                        tr {
                            td { a href={"/console/jobs/" (job.id)} { (job.id) } }
                            td { (job.kind) }
                            td { span.badge.warn[job.state == "discarded"] { (job.state) } }
                            td.num { (job.attempt) "/" (job.max_attempts) }
                            td.error { (job.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn deliveries_table(deliveries: &[(uuid::Uuid, AttemptResource)]) -> Markup {
    html! {
        h2 { "Webhook deliveries" }
        @if deliveries.is_empty() {
            p.hint { "No delivery was attempted." }
        } @else {
            table {
                thead { tr { th { "Endpoint" } th { "Event" } th.num { "Attempt" } th { "Outcome" } th.num { "Status" } th { "When" } } }
                tbody {
                    @for (endpoint, attempt) in deliveries {
                        tr {
                            td { a href={"/console/webhooks/" (endpoint)} { code { (endpoint.to_string().get(..8).unwrap_or_default()) } } }
                            td { (attempt.event_type) }
                            td.num { (attempt.attempt) }
                            td { span.badge.warn[attempt.outcome != "succeeded"] { (attempt.outcome) } }
                            td.num { (attempt.response_status.map(|s| s.to_string()).unwrap_or_default()) }
                            td { (time_ago(attempt.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let id = crate::orders::parse_order_id(&id)?;
    let (action, name, notice) = match action.as_str() {
        "pay" => (OrderAction::Pay, "order.pay", "order_paid"),
        "fulfill" => (OrderAction::Fulfill, "order.fulfill", "order_fulfilled"),
        "cancel" => (OrderAction::Cancel, "order.cancel", "order_cancelled"),
        _ => return Err(ApiError::NotFound("resource").into()),
    };
    let actor = session.actor();
    let order = crate::orders::apply_transition(&state, id, action, &actor).await?;
    session
        .audit(
            &state,
            name,
            &format!("order:{id}"),
            Some(&format!("now {}", order.status)),
        )
        .await?;
    Ok(done(&format!("/console/orders/{id}"), notice))
}
