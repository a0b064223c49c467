//! The audit log: every action taken in the console (and each sign-in and sign-out), newest
//! first, with the key id, the client's address, what was done and to what.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use orderly_domain::PageLimit;
use serde::Deserialize;

use super::extract::Query;
use super::layout::{Nav, PageError, page, query, when};
use super::session::Session;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    before: Option<i64>,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let limit = PageLimit::parse(100).unwrap_or_default();
    let entries = state.services.audit_log(q.before, limit).await?;
    let next = (entries.len() == limit.get() as usize)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(page(
        "Audit log",
        Nav::Audit,
        Some(&session),
        None,
        html! {
            @if entries.is_empty() {
                p.hint { "Nothing has been done in the console yet." }
            } @else {
                table.audit {
                    thead { tr { th { "When" } th { "Key" } th { "Address" } th { "Action" } th { "Target" } th { "Detail" } } }
                    tbody {
                        @for entry in &entries {
                            tr {
                                td { (when(entry.at)) }
                                td { code { (entry.key_id.map(|k| k.to_string()).unwrap_or_else(|| "–".into())) } }
                                td { (entry.address.as_deref().unwrap_or("–")) }
                                td { code { (entry.action) } }
                                td { (entry.target) }
                                td { (entry.detail.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    a.more href={"/console/audit" (query(&[("before", Some(&next))]))} { "Older entries →" }
                }
            }
        },
    ))
}
