//! The OpenAPI document: generated from the handlers' annotations, plus the security scheme and
//! the error responses every authenticated route shares, so the document lists every status a
//! client can meet.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::error::{PROBLEM_JSON, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderly",
        description = "An order service: catalogue, orders, jobs, webhooks. Errors are RFC 9457 \
                       `application/problem+json` documents with a stable `code`."
    ),
    components(schemas(Problem, crate::error::ProblemField)),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "products", description = "The catalogue"),
        (name = "orders", description = "Placing and managing orders"),
        (name = "jobs", description = "Background jobs, for operators"),
        (name = "webhooks", description = "Signed event notifications to your endpoints"),
        (name = "health", description = "Liveness and readiness for orchestrators"),
    )
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn problem(description: &str) -> RefOr<Response> {
    let mut response = Response::new(description);
    response.content.insert(
        PROBLEM_JSON.into(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
    );
    RefOr::T(response)
}

/// Adds the problems every route can answer with (401/403 where a key is needed, 400/413/415
/// where a body is read, and 405/500/503 everywhere). Runs on the finished document, after the
/// routers have contributed their paths.
pub fn add_shared_problems(openapi: &mut Document) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description));
            };
            if operation.security.is_some() {
                add("401", "No API key, or not a live one");
                add("403", "The key's role may not do this");
            }
            if operation.request_body.is_some() {
                add("400", "The body is not valid JSON");
                add("413", "The body exceeds the size limit");
                add("415", "The body is not declared as application/json");
            }
            add("405", "Method not allowed on this path");
            add(
                "500",
                "An internal error; the cause is logged, not returned",
            );
            add("503", "A dependency is unavailable; retry shortly");
        }
    }
}
