//! The agent console: one static page, compiled into the binary so the
//! function needs no bucket and the page always matches the API it calls.
//! The page signs agents in with the authorization-code + PKCE flow of the
//! configured identity provider; its public settings (client id, endpoints)
//! are written into the page, no secret ever is.

use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::auth::ConsoleSignIn;

const PAGE: &str = include_str!("../../console/index.html");
/// Where the sign-in settings go: a JSON script element of the page.
const SETTINGS: &str = "/*SIGN-IN*/null";
/// Where the WebSocket URL goes (null: the console polls).
const PUSH: &str = "/*PUSH*/null";

pub fn page(sign_in: Option<&ConsoleSignIn>, push: Option<&url::Url>) -> Response<Body> {
    let settings = sign_in.map_or(serde_json::Value::Null, |s| {
        json!({
            "clientId": s.client_id,
            "authorizeUrl": s.authorize_url,
            "tokenUrl": s.token_url,
        })
    });
    // `<` escaped: the settings cannot close the script element.
    let settings = settings.to_string().replace('<', "\\u003c");
    let push_setting = push
        .map_or(serde_json::Value::Null, |url| json!(url.as_str()))
        .to_string()
        .replace('<', "\\u003c");
    let mut response = Response::new(Body::from(
        PAGE.replace(SETTINGS, &settings)
            .replace(PUSH, &push_setting),
    ));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The page talks to its own origin and, to exchange the sign-in code, to
    // the identity provider's token endpoint; it runs only its own script.
    let token_origin = sign_in
        .and_then(|s| url::Url::parse(&s.token_url).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_default();
    // The WebSocket API is another origin (and scheme) than the page's.
    let push_origin = push
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .filter(|o| o != " null")
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' {token_origin}{push_origin}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> ConsoleSignIn {
        ConsoleSignIn {
            client_id: "4example".into(),
            authorize_url: "https://agents.auth.us-east-1.amazoncognito.com/oauth2/authorize"
                .into(),
            token_url: "https://agents.auth.us-east-1.amazoncognito.com/oauth2/token".into(),
        }
    }

    #[test]
    fn page_is_html_with_public_sign_in_settings_only() {
        let push =
            url::Url::parse("wss://ws0123.execute-api.us-east-1.amazonaws.com/prod").unwrap();
        let response = page(Some(&sign_in()), Some(&push));
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = std::str::from_utf8(response.body().as_ref()).unwrap();
        assert!(body.starts_with("<!doctype html>"));
        assert!(body.contains(r#""clientId":"4example""#));
        assert!(!body.contains(SETTINGS));
        assert!(body.contains(
            r#"const PUSH_URL = "wss://ws0123.execute-api.us-east-1.amazonaws.com/prod";"#
        ));
        // Authorization code with PKCE: a verifier and its S256 challenge.
        assert!(body.contains("code_challenge_method"));
        assert!(body.contains("S256"));
        // No client secret, no long-lived token: the ID token lives in this
        // tab's sessionStorage until it expires.
        assert!(!body.to_lowercase().contains("client_secret"));
        assert!(!body.contains("localStorage"));
        assert!(!body.contains("refresh_token"));
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            policy.contains("connect-src 'self' https://agents.auth.us-east-1.amazoncognito.com wss://ws0123.execute-api.us-east-1.amazonaws.com;"),
            "{policy}"
        );
    }

    #[test]
    fn without_sign_in_settings_the_page_says_so() {
        let response = page(None, None);
        let body = std::str::from_utf8(response.body().as_ref()).unwrap();
        assert!(body.contains("const SIGN_IN = null;"));
        assert!(body.contains("const PUSH_URL = null;"));
        assert!(body.contains("sign-in is not configured"));
    }
}
