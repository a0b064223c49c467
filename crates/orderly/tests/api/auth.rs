//! Who may call what: every route against no key, a bad key, a storefront key and an admin key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, problem};

#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Storefront,
    Admin,
}

async fn call(
    app: &TestApp,
    who: Who,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("idempotency-key", uuid::Uuid::new_v4().to_string());
    request = match who {
        Who::Nobody => request,
        Who::Storefront => request.bearer_auth(&app.storefront_key),
        Who::Admin => request.bearer_auth(&app.admin_key),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

backend_tests! {
    async fn every_route_answers_each_role_exactly_as_documented(app) {
        let product = app.create_product("AUTH-1", 100, 50).await;
        let id = product["id"].as_str().unwrap().to_owned();
        let order: Value = app.place_order(json!([{"sku": "AUTH-1", "quantity": 1}])).await.json().await.unwrap();
        let order = order["id"].as_str().unwrap().to_owned();
        let admin_order: Value = app.admin(Method::POST, "/v1/orders").header("idempotency-key", "auth-matrix")
            .json(&json!({"customer": {"email": "a@b.co", "name": "A"}, "lines": [{"sku": "AUTH-1", "quantity": 1}]}))
            .send().await.unwrap().json().await.unwrap();
        let admin_order = admin_order["id"].as_str().unwrap().to_owned();
        let mut sku = 0;
        let mut new_product = move || {
            sku += 1;
            Some(json!({"sku": format!("AUTH-NEW-{sku}"), "name": "n", "price": 1}))
        };
        let hook = app.store.create_webhook(&orderly_storage::NewWebhook {
            url: "https://hooks.example.com/orderly".into(),
            description: String::new(),
            event_types: vec!["order.created".into()],
        }).await.unwrap().id;
        let new_hook = Some(json!({"url": "https://hooks.example.com/b", "event_types": ["order.paid"]}));
        // (method, path, body, expected for nobody, storefront, admin)
        let matrix = [
            (Method::GET, "/healthz".to_owned(), None, [200, 200, 200]),
            (Method::GET, "/readyz".to_owned(), None, [200, 200, 200]),
            (Method::GET, "/openapi.json".to_owned(), None, [200, 200, 200]),
            (Method::GET, "/docs".to_owned(), None, [200, 200, 200]),
            (Method::GET, "/v1/products".to_owned(), None, [401, 200, 200]),
            (Method::GET, format!("/v1/products/{id}"), None, [401, 200, 200]),
            (Method::GET, "/v1/products/by-sku/AUTH-1".to_owned(), None, [401, 200, 200]),
            (Method::POST, "/v1/products".to_owned(), new_product(), [401, 403, 201]),
            (Method::PATCH, format!("/v1/products/{id}"), Some(json!({"stock": 6})), [401, 403, 200]),
            (Method::GET, "/v1/orders".to_owned(), None, [401, 403, 200]),
            (Method::GET, format!("/v1/orders/{order}"), None, [401, 200, 200]),
            (Method::GET, format!("/v1/orders/{admin_order}"), None, [401, 404, 200]),
            (Method::POST, "/v1/orders".to_owned(), None, [401, 201, 201]),
            (Method::POST, format!("/v1/orders/{order}/pay"), None, [401, 403, 200]),
            (Method::POST, format!("/v1/orders/{order}/fulfill"), None, [401, 403, 200]),
            (Method::POST, format!("/v1/orders/{admin_order}/cancel"), None, [401, 403, 200]),
            (Method::GET, "/v1/jobs".to_owned(), None, [401, 403, 200]),
            (Method::GET, "/v1/jobs/1".to_owned(), None, [401, 403, 200]),
            (Method::POST, "/v1/jobs/1/cancel".to_owned(), None, [401, 403, 200]),
            (Method::POST, "/v1/jobs/1/retry".to_owned(), None, [401, 403, 200]),
            (Method::POST, format!("/v1/products/{id}/archive"), None, [401, 403, 200]),
            (Method::POST, "/v1/webhooks".to_owned(), new_hook, [401, 403, 201]),
            (Method::GET, "/v1/webhooks".to_owned(), None, [401, 403, 200]),
            (Method::GET, format!("/v1/webhooks/{hook}"), None, [401, 403, 200]),
            (Method::PATCH, format!("/v1/webhooks/{hook}"), Some(json!({"description": "d"})), [401, 403, 200]),
            (Method::POST, format!("/v1/webhooks/{hook}/rotate-secret"), None, [401, 403, 200]),
            (Method::GET, format!("/v1/webhooks/{hook}/deliveries"), None, [401, 403, 200]),
            (Method::POST, format!("/v1/webhooks/{hook}/deliveries/1/redeliver"), None, [401, 403, 404]),
            (Method::POST, format!("/v1/webhooks/{hook}/disable"), None, [401, 403, 200]),
            (Method::DELETE, format!("/v1/webhooks/{hook}"), None, [401, 403, 204]),
        ];
        for (method, path, body, expected) in matrix {
            for (who, status) in [Who::Nobody, Who::Storefront, Who::Admin].into_iter().zip(expected) {
                let body = if method == Method::POST && path == "/v1/products" {
                    new_product()
                } else if method == Method::POST && path == "/v1/orders" {
                    Some(json!({"customer": {"email": "a@b.co", "name": "A"}, "lines": [{"sku": "AUTH-1", "quantity": 1}]}))
                } else {
                    body.clone()
                };
                let response = call(&app, who, method.clone(), &path, body).await;
                let got = response.status().as_u16();
                if got != status {
                    panic!("{method} {path} as {who:?}: {got}, expected {status}: {}", response.text().await.unwrap());
                }
                match status {
                    401 => {
                        assert_eq!(response.headers()["www-authenticate"], "Bearer");
                        assert_eq!(problem(response, StatusCode::UNAUTHORIZED).await["code"], "unauthenticated");
                    }
                    403 => assert_eq!(problem(response, StatusCode::FORBIDDEN).await["code"], "forbidden"),
                    _ => {}
                }
            }
        }
    }

    async fn a_wrong_malformed_or_revoked_key_is_401(app) {
        let revoked_key = {
            let new = orderly_storage::NewApiKey { name: "soon revoked".into(), role: orderly_domain::Role::Admin };
            let (info, secret) = app.store.create_api_key(&new).await.unwrap();
            assert!(app.store.revoke_api_key(info.id).await.unwrap());
            app.assert_times_in_one_form().await;
            secret
        };
        let forged = format!("{}x", &app.admin_key[..app.admin_key.len() - 1]);
        for header in [
            format!("Bearer {revoked_key}"),
            format!("Bearer {forged}"),
            "Bearer oly_".to_owned(),
            "Bearer ".to_owned(),
            format!("Basic {}", app.admin_key),
            format!("Bearer {}", "x".repeat(4000)),
        ] {
            let response = app.client.get(app.url("/v1/products")).header("authorization", &header)
                .send().await.unwrap();
            problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }

    async fn an_unauthorised_caller_learns_nothing_about_its_body(app) {
        let response = app.storefront(Method::POST, "/v1/products")
            .header("content-type", "application/json").body("{broken").send().await.unwrap();
        problem(response, StatusCode::FORBIDDEN).await;
        let response = app.client.post(app.url("/v1/products"))
            .header("content-type", "application/json").body("{broken").send().await.unwrap();
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
}
