//! The events feed (`GET /v1/events`) pages through every event once while new ones commit.

use super::*;

relay_tests! {
    async fn the_feed_pages_through_every_event_once_while_new_ones_commit(app, nats, stream) {
        let _ = (&nats, &stream);
        app.create_product("EVT", 100, 100_000).await;
        let load = async {
            place_orders(&app, 400).await;
        };
        let read = async {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            let mut quiet = 0;
            while quiet < 20 {
                let path = match &after {
                    Some(after) => format!("/v1/events?limit=7&after={after}"),
                    None => "/v1/events?limit=7".to_owned(),
                };
                let page = app.read(&path).await;
                let data = page["data"].as_array().unwrap().clone();
                if data.is_empty() {
                    quiet += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    quiet = 0;
                }
                seen.extend(data);
                after = page["next_after"].as_str().map(str::to_owned);
            }
            seen
        };
        let ((), seen) = tokio::join!(load, read);
        let positions: Vec<i64> = seen.iter().map(|e| e["position"].as_i64().unwrap()).collect();
        let expected: Vec<i64> = (positions[0]..positions[0] + positions.len() as i64).collect();
        assert_eq!(positions, expected, "positions one after another: no gap, no repeat");
        assert_eq!(seen.len(), 401, "the product's event and every order's, once");
        // Filtering by type, and a cursor that names no event.
        let paid = app.read("/v1/events?type=order.paid").await;
        assert_eq!(paid["data"].as_array().unwrap().len(), 0);
        let unknown = app
            .admin(Method::GET, &format!("/v1/events?after={}", Uuid::new_v4()))
            .send()
            .await
            .unwrap();
        let problem = crate::helpers::problem(unknown, StatusCode::NOT_FOUND).await;
        assert!(problem["detail"].as_str().unwrap().contains("`after`"), "{problem}");
        let bad_type = app.admin(Method::GET, "/v1/events?type=0.5").send().await.unwrap();
        let problem = crate::helpers::problem(bad_type, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], "type", "{problem}");
        let storefront = app.storefront(Method::GET, "/v1/events").send().await.unwrap();
        assert_eq!(storefront.status(), StatusCode::FORBIDDEN);
    }
}
