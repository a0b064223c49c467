//! `hello [PORT]`: the bare axum server `bench/reads.sh` measures orderly's cached reads
//! against. No auth, no middleware, no logging: what this machine can serve at best.

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = r#"{"id":"01a2201b-8c9c-762f-86c4-4377c595057d","sku":"MUG-BLUE","name":"Blue mug","description":"","price":1250,"currency":"EUR","stock":40,"active":true,"archived_at":null,"created_at":"2026-11-28T03:03:26.113322Z","updated_at":"2026-11-28T03:03:26.113322Z"}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "18090".into());
    let app = Router::new().route(
        "/",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}
