//! CORS for the console when it is served from another origin.

use http::StatusCode;
use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};

/// Adds the CORS headers the console's browser needs, when an origin is configured.
pub fn add_cors(response: &mut Response<Body>, allow_origin: Option<&str>) {
    let Some(origin) = allow_origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("content-type"),
    );
}

/// The answer to a CORS preflight (API Gateway answers these itself when
/// its CORS configuration is set; the development server relies on this).
pub fn preflight(allow_origin: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    if allow_origin.is_some() {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, idempotency-key"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    add_cors(&mut response, allow_origin);
    response
}

#[cfg(test)]
mod tests {
    use super::super::responses::json;
    use super::*;

    #[test]
    fn cors_headers_only_when_configured() {
        let mut response = json(StatusCode::OK, &serde_json::json!({}));
        add_cors(&mut response, None);
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        add_cors(&mut response, Some("https://console.example.com"));
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://console.example.com"
        );
        let preflight = preflight(Some("https://console.example.com"));
        assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
        assert!(
            preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("idempotency-key")
        );
    }
}
