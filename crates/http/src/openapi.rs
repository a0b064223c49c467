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
        (name = "events", description = "Every event in commit order, for consumers that pull"),
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

/// The request bodies, and the objects inside them, whose unknown fields are refused
/// (`422 unknown_field`): the document says so, `additionalProperties: false`.
const CLOSED_OBJECTS: [&str; 16] = [
    "CreateProduct",
    "UpdateProduct",
    "CreateOrderBody",
    "CustomerBody",
    "OrderLineBody",
    "CreateWebhook",
    "UpdateWebhook",
    "PaymentBody",
    "FulfillmentBody",
    "TrackingBody",
    "CancellationBody",
    "RefundBody",
    "ReturnBody",
    "ReceiveReturnBody",
    "ReceivedLineBody",
    "EditOrderBody",
];

/// Marks [`CLOSED_OBJECTS`] as taking no other fields.
pub fn close_request_objects(openapi: &mut Document) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for name in CLOSED_OBJECTS {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// Adds the problems every route can answer with (401/403 where a key is needed, 400/413/415
/// where a body is read, 507 where something is written, 429 outside health, and 405/500/503 everywhere). Runs on the finished document, after the
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
                add("507", "The database's disk is full; nothing was written");
            }
            if !operation
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "health"))
            {
                add(
                    "429",
                    "The key's (or, without a key, the address's) rate limit is spent; retry after Retry-After",
                );
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

/// No control characters (Unicode's Cc: U+0000–U+001F, U+007F–U+009F) but line breaks and
/// tabs (descriptions, notes).
const LINES: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
/// No control characters but line feeds (a webhook's description).
const LINE_FEEDS: &str = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$";
/// Not blank, and no control characters (names).
const NAME: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// An e-mail address as orders take it: something, one `@`, a domain with a dot inside; no
/// whitespace, control characters, `<`, `>` or `"`.
const EMAIL: &str = r#"^[^@\s\u0000-\u001F\u007F-\u009F<>"]{1,64}@[^@.\s\u0000-\u001F\u007F-\u009F<>"][^@\s\u0000-\u001F\u007F-\u009F<>"]*\.[^@\s\u0000-\u001F\u007F-\u009F<>"]*[^@.\s\u0000-\u001F\u007F-\u009F<>"]$"#;

/// The text fields' rules the handlers check (`orderly_domain`), in the document too, so that
/// a client (or a generator of test requests) can tell a body the API takes from one it
/// refuses: (schema, property, most characters, pattern).
const TEXT_RULES: [(&str, &str, u64, &str); 17] = [
    ("CreateProduct", "name", 200, NAME),
    ("CreateProduct", "description", 5_000, LINES),
    ("UpdateProduct", "name", 200, NAME),
    ("UpdateProduct", "description", 5_000, LINES),
    ("UpdateProduct", "reason", 500, NAME),
    ("CustomerBody", "name", 200, NAME),
    ("CustomerBody", "email", 254, EMAIL),
    ("CreateOrderBody", "note", 1_000, LINES),
    ("CreateWebhook", "description", 500, LINE_FEEDS),
    ("UpdateWebhook", "description", 500, LINE_FEEDS),
    ("PaymentBody", "provider", 100, NAME),
    ("PaymentBody", "reference", 200, NAME),
    ("TrackingBody", "carrier", 100, NAME),
    ("TrackingBody", "number", 200, NAME),
    ("TrackingBody", "url", 2_048, HTTP_URL),
    ("RefundBody", "reason", 1_000, NAME),
    ("ReturnBody", "reason", 1_000, NAME),
];

/// An absolute `http` or `https` URL with a host, no whitespace or control characters.
const HTTP_URL: &str = r"^[hH][tT][tT][pP][sS]?://[^/?#@\s\u0000-\u001F\u007F-\u009F]+(?:[/?#][^\s\u0000-\u001F\u007F-\u009F]*)?$";

/// Adds to the JSON document the rules its annotations cannot say: each text field's length
/// and characters ([`TEXT_RULES`]), the store's one currency, the known webhook event types,
/// that a change names at least one field, that a stock change's reason comes with the stock,
/// and that an order line names its product by `product_id` or by `sku`, not both.
pub fn add_field_rules(document: &mut serde_json::Value, currency: &str) {
    use serde_json::json;
    let schemas = &mut document["components"]["schemas"];
    for (schema, property, max_length, pattern) in TEXT_RULES {
        let field = &mut schemas[schema]["properties"][property];
        if field.is_object() {
            field["maxLength"] = json!(max_length);
            field["pattern"] = json!(pattern);
        }
    }
    for schema in [
        "CreateProduct",
        "UpdateProduct",
        "PaymentBody",
        "RefundBody",
    ] {
        let field = &mut schemas[schema]["properties"]["currency"];
        if field.is_object() {
            field["enum"] = json!([currency]);
        }
    }
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        let field = &mut schemas[schema]["properties"]["event_types"];
        if field.is_object() {
            field["items"] =
                json!({"type": "string", "enum": orderly_domain::webhook::EVENT_TYPES});
        }
    }
    // A change that names no field is refused (`422 empty`).
    for schema in ["UpdateProduct", "UpdateWebhook"] {
        if schemas[schema].is_object() {
            schemas[schema]["minProperties"] = json!(1);
        }
    }
    // A stock change's reason comes with the stock (`422 requires_stock`).
    if schemas["UpdateProduct"].is_object() {
        schemas["UpdateProduct"]["anyOf"] =
            json!([{"not": {"required": ["reason"]}}, {"required": ["stock"]}]);
    }
    for schema in ["OrderLineBody", "ReceivedLineBody"] {
        let line = &mut schemas[schema];
        if line.is_object() {
            line["oneOf"] = json!([{"required": ["product_id"]}, {"required": ["sku"]}]);
        }
    }
    // A received return's refund: an amount, or `true` for what the units cost.
    let refund = &mut schemas["ReceiveReturnBody"]["properties"]["refund"];
    if refund.is_object() {
        *refund = json!({"oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 1_000_000_000_000_000_i64},
            {"type": "boolean"},
            {"type": "null"},
        ]});
    }
}
