//! The catalogue API: create, read, list, update and archive.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, backend_tests, problem};

backend_tests! {
    async fn creating_a_product_returns_201_with_location_etag_and_the_product(app) {
        let response = app
            .admin(Method::POST, "/v1/products")
            .json(&json!({
                "sku": "MUG-BLUE", "name": "  Blue mug ", "description": "350 ml\nstoneware",
                "price": 1250, "stock": 40
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(response.headers()["etag"], "\"1\"");
        let product: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/v1/products/{}", product["id"].as_str().unwrap()));
        assert_eq!(product["name"], "Blue mug");
        assert_eq!(product["description"], "350 ml\nstoneware");
        assert_eq!(product["price"], 1250);
        assert_eq!(product["currency"], "EUR");
        assert_eq!(product["stock"], 40);
        assert_eq!(product["active"], true);
        assert_eq!(product["archived_at"], Value::Null);
        assert_eq!(product["created_at"], product["updated_at"]);
    }

    async fn a_created_product_reads_back_identically_by_id_and_by_sku(app) {
        let created = app.create_product("TEA-01", 499, 3).await;
        let id = created["id"].as_str().unwrap();
        for path in [format!("/v1/products/{id}"), "/v1/products/by-sku/TEA-01".to_owned()] {
            let response = app.storefront(Method::GET, &path).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()["etag"], "\"1\"");
            let read: Value = response.json().await.unwrap();
            assert_eq!(read, created, "{path}");
        }
    }

    async fn a_second_product_with_the_same_sku_is_409_and_not_written(app) {
        app.create_product("DUP-1", 100, 1).await;
        let response = app
            .admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "DUP-1", "name": "Other", "price": 5}))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::CONFLICT).await;
        assert_eq!(body["code"], "sku_taken");
        let page: Value = app.read("/v1/products").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
    }

    async fn listing_walks_every_product_once_in_creation_order_with_a_cursor(app) {
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(app.create_product(&format!("SKU-{i}"), 100 + i, i).await["id"].clone());
        }
        let mut seen = Vec::new();
        let mut path = "/v1/products?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let page: Value = app.storefront(Method::GET, &path).send().await.unwrap().json().await.unwrap();
            pages += 1;
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            seen.extend(data.iter().map(|p| p["id"].clone()));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/products?limit=2&cursor={cursor}"),
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(seen, created);
        assert_eq!(pages, 3);
    }

    async fn listing_can_filter_on_active(app) {
        app.create_product("ON-1", 100, 1).await;
        let off = app
            .admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "OFF-1", "name": "Hidden", "price": 5, "active": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(off.status(), StatusCode::CREATED);
        for (filter, sku) in [("true", "ON-1"), ("false", "OFF-1")] {
            let page: Value = app.read(&format!("/v1/products?active={filter}")).await;
            let skus: Vec<_> = page["data"].as_array().unwrap().iter().map(|p| p["sku"].clone()).collect();
            assert_eq!(skus, [sku]);
        }
    }

    async fn patch_with_the_current_etag_changes_only_the_given_fields(app) {
        let created = app.create_product("PATCH-1", 1000, 5).await;
        let path = format!("/v1/products/{}", created["id"].as_str().unwrap());
        let response = app
            .admin(Method::PATCH, &path)
            .header("if-match", "\"1\"")
            .json(&json!({"price": 1200, "stock": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"2\"");
        let updated: Value = response.json().await.unwrap();
        assert_eq!(updated["price"], 1200);
        assert_eq!(updated["stock"], 0);
        assert_eq!(updated["name"], created["name"]);
        assert_ne!(updated["updated_at"], created["updated_at"]);
        let read: Value = app.read(&path).await;
        assert_eq!(read, updated);
    }

    async fn patch_with_a_stale_etag_is_412_and_changes_nothing(app) {
        let created = app.create_product("STALE-1", 1000, 5).await;
        let path = format!("/v1/products/{}", created["id"].as_str().unwrap());
        let first = app.admin(Method::PATCH, &path).header("if-match", "\"1\"")
            .json(&json!({"stock": 4})).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        for stale in ["\"1\"", "W/\"2\"", "garbage"] {
            let response = app.admin(Method::PATCH, &path).header("if-match", stale)
                .json(&json!({"stock": 99})).send().await.unwrap();
            let body = problem(response, StatusCode::PRECONDITION_FAILED).await;
            assert_eq!(body["code"], "precondition_failed");
        }
        let read: Value = app.read(&path).await;
        assert_eq!(read["stock"], 4);
        // A list matches when it holds the current tag (RFC 9110), not otherwise.
        let listed = app.admin(Method::PATCH, &path).header("if-match", "\"1\", W/\"2\", \"2\"")
            .json(&json!({"stock": 5})).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
        assert_eq!(listed.headers()["etag"], "\"3\"");
        let none_current = app.admin(Method::PATCH, &path).header("if-match", "\"1\", \"2\"")
            .json(&json!({"stock": 6})).send().await.unwrap();
        problem(none_current, StatusCode::PRECONDITION_FAILED).await;
    }

    async fn a_sku_that_is_not_utf8_is_a_404_problem(app) {
        let response = app.admin(Method::GET, "/v1/products/by-sku/%FF%FE").send().await.unwrap();
        assert_eq!(problem(response, StatusCode::NOT_FOUND).await["code"], "not_found");
    }

    async fn changing_the_sku_to_a_taken_one_is_409(app) {
        app.create_product("TAKEN", 1, 1).await;
        let other = app.create_product("FREE", 1, 1).await;
        let path = format!("/v1/products/{}", other["id"].as_str().unwrap());
        let response = app.admin(Method::PATCH, &path).json(&json!({"sku": "TAKEN"})).send().await.unwrap();
        assert_eq!(problem(response, StatusCode::CONFLICT).await["code"], "sku_taken");
    }

    async fn an_archived_product_is_inactive_and_read_only(app) {
        let created = app.create_product("ARCH-1", 1000, 5).await;
        let id = created["id"].as_str().unwrap();
        let archived = app.admin(Method::POST, &format!("/v1/products/{id}/archive")).send().await.unwrap();
        assert_eq!(archived.status(), StatusCode::OK);
        let archived: Value = archived.json().await.unwrap();
        assert_eq!(archived["active"], false);
        assert!(archived["archived_at"].is_string());
        let again = app.admin(Method::POST, &format!("/v1/products/{id}/archive")).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap(), archived);
        let patch = app.admin(Method::PATCH, &format!("/v1/products/{id}"))
            .json(&json!({"active": true})).send().await.unwrap();
        assert_eq!(problem(patch, StatusCode::CONFLICT).await["code"], "product_archived");
    }

    async fn an_unknown_or_malformed_product_id_is_404(app) {
        for path in [
            format!("/v1/products/{}", uuid::Uuid::now_v7()),
            "/v1/products/not-a-uuid".to_owned(),
            "/v1/products/by-sku/NOPE".to_owned(),
            "/v1/products/by-sku/bad%20sku".to_owned(),
        ] {
            let response = app.admin(Method::GET, &path).send().await.unwrap();
            assert_eq!(problem(response, StatusCode::NOT_FOUND).await["code"], "not_found", "{path}");
        }
        let patch = app.admin(Method::PATCH, &format!("/v1/products/{}", uuid::Uuid::now_v7()))
            .header("if-match", "\"1\"").json(&json!({"stock": 1})).send().await.unwrap();
        problem(patch, StatusCode::NOT_FOUND).await;
        let archive = app.admin(Method::POST, &format!("/v1/products/{}/archive", uuid::Uuid::now_v7()))
            .send().await.unwrap();
        problem(archive, StatusCode::NOT_FOUND).await;
    }
}
