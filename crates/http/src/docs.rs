//! `/docs`: the API reference, rendered in the browser by Scalar from the OpenAPI document,
//! which the page carries inline. The script is one pinned release on jsDelivr, loaded with
//! its Subresource Integrity hash, so a changed or compromised file is refused by the
//! browser; the page's Content-Security-Policy lets it load nothing else and talk to nothing
//! but this server (Scalar's "try it" requests, never its third-party proxy).
//! `scripts/check-deploy.sh` checks the hash against the npm registry's package.
//!
//! Written by hand rather than with `utoipa-scalar`, whose page loads the latest script,
//! unpinned and without an integrity hash.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The `@scalar/api-reference` release the page loads.
pub const SCALAR_VERSION: &str = "1.76.0";
/// Its `dist/browser/standalone.js`, as `sha384-<base64>`.
pub const SCALAR_INTEGRITY: &str =
    "sha384-oH1C0RwqcwbVXkC+r8A+4qRoyEUQdtxAzOwumkxZtQBBcsy61FOoPt7B50OVJYYQ";

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src https://cdn.jsdelivr.net; \
     style-src 'unsafe-inline'; \
     img-src 'self' data:; \
     font-src data:; \
     connect-src 'self'; \
     base-uri 'none'; \
     form-action 'none'; \
     frame-ancestors 'none'";

/// The page for `document` (the OpenAPI JSON), built once at start.
pub fn page(document: &str) -> String {
    // Inside a <script> element only `</` can end it early: written `<\/`, JSON reads the same.
    let spec = document.replace("</", "<\\/");
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<title>orderly API</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<script id="api-reference" type="application/json">{spec}</script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@{SCALAR_VERSION}/dist/browser/standalone.js" integrity="{SCALAR_INTEGRITY}" crossorigin="anonymous"></script>
</body>
</html>
"#
    )
}

/// Answers `/docs` with `page`, under the page's Content-Security-Policy.
pub fn respond(page: &str) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.to_owned(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inline_document_cannot_end_its_script_element() {
        let html = page(r#"{"description":"</script><script>alert(1)</script>"}"#);
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(html.contains(r#"<\/script><script>alert(1)<\/script>"#));
    }
}
