//! The agent console: one static page, compiled into the binary so the
//! function needs no bucket and the page always matches the API it calls.

use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};

const PAGE: &str = include_str!("../../console/index.html");

pub fn page() -> Response<Body> {
    let mut response = Response::new(Body::from(PAGE));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The page only ever talks to its own origin and runs its own inline script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_html_without_secrets() {
        let response = page();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = std::str::from_utf8(response.body().as_ref()).unwrap();
        assert!(body.starts_with("<!doctype html>"));
        // The token is typed in and kept in sessionStorage, never in the page.
        assert!(body.contains("sessionStorage"));
        assert!(!body.to_lowercase().contains("bearer ey"));
    }
}
