//! Every route's request body, decoded as its handler decodes it, from arbitrary bytes: no
//! input panics, and every refusal is answered with a client error (4xx problem document).
//! The first byte picks the route; the rest is the body.

#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use orderly_domain::Currency;
use orderly_http::bodies::{BodyKind, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = BodyKind::ALL[usize::from(pick) % BodyKind::ALL.len()];
    let currency = Currency::parse("currency", "EUR").expect("EUR is a currency");
    for allow_private in [false, true] {
        if let Err(refusal) = decode(kind, body, currency, allow_private) {
            let status = refusal.into_response().status();
            assert!(
                status.is_client_error(),
                "{kind:?} body {:?} answered {status}",
                String::from_utf8_lossy(body)
            );
        }
    }
});
