//! Integration tests: each starts the real application on port 0 with a database of its own
//! and talks HTTP to it. Tests written with `backend_tests!` run once on SQLite and once on
//! PostgreSQL (when `ORDERLY_TEST_POSTGRES_URL` is set; CI always sets it).

#![allow(clippy::unwrap_used)]

mod helpers;

mod auth;
mod cache;
mod cli;
mod connections;
mod console;
mod database_loss;
mod edits;
mod errors;
mod events;
mod flash_sale;
mod health;
mod jobs;
mod lifecycle;
mod mail;
mod metrics;
mod orders;
mod overload;
mod product_events;
mod products;
mod queues;
mod rate_limits;
mod returns;
mod scheduler;
mod slow_bodies;
mod traces;
mod webhooks;
mod workers;
