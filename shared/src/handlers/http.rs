//! HTTP plumbing shared by the handlers: responses, the front-end API's
//! error body, bearer-token auth, CORS and request parsing.

use std::collections::HashMap;

use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;

/// What the front-end API answers when it cannot do what was asked. Always
/// rendered as `{"error": "..."}` plus the fields that help the caller act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, state: String },
    /// Twilio refused or failed; the state was left consistent.
    #[error("{0}")]
    Upstream(String),
    /// DynamoDB is throttling or unreachable: safe to retry.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn bad_request(field: &str, reason: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            state: Option<&'a str>,
        }
        let body = ErrorBody {
            error: self.to_string(),
            field: match &self {
                ApiError::BadRequest { field, .. } => Some(field),
                _ => None,
            },
            state: match &self {
                ApiError::Conflict { state, .. } => Some(state),
                _ => None,
            },
        };
        let mut response = json(self.status(), &body);
        if self == ApiError::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serialising our own response types cannot fail; the fallback keeps the
    // "nothing panics" promise anyway.
    let text = serde_json::to_string(body)
        .unwrap_or_else(|_| r#"{"error":"response could not be encoded"}"#.to_owned());
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A TwiML answer. Twilio reads any 200 `text/xml` body as the next verbs.
pub fn twiml(xml: String) -> Response<Body> {
    let mut response = Response::new(Body::from(xml));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// Valid TwiML with a 503: Twilio sends the request again where the URL's
/// connection overrides allow it.
pub fn retry_later(xml: String) -> Response<Body> {
    let mut response = twiml(xml);
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// The answer to a request whose `X-Twilio-Signature` does not verify.
pub fn forbidden() -> Response<Body> {
    let mut response = Response::new(Body::from("invalid X-Twilio-Signature"));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Checks `Authorization: Bearer <token>` in constant time, so the answer's
/// timing tells nothing about how much of a guess was right.
pub fn check_bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

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

/// The request body as bytes (API Gateway may hand it over base64-decoded
/// already; lambda_http takes care of that).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The form fields of a Twilio webhook, in the order sent (repeated keys kept).
pub fn form_params(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(body_bytes(req))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// First value of each form field, for reading the fields by name.
pub fn form_map(params: &[(String, String)]) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for (key, value) in params {
        map.entry(key.as_str()).or_insert(value.as_str());
    }
    map
}

/// A query-string parameter. lambda_http fills these from the API Gateway
/// event; the development server fills them from the URI.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_owned))
        .or_else(|| {
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
}

/// The request id that ties log lines together: Lambda's own when there is
/// one, API Gateway's otherwise, a fresh one for local runs.
pub fn request_id(req: &Request) -> String {
    if let Some(context) = req.lambda_context_ref() {
        return context.request_id.clone();
    }
    if let Some(value) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        return value.to_owned();
    }
    format!("local-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(value) = auth {
            map.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(check_bearer(&headers(Some("Bearer s3cret-token")), "s3cret-token").is_ok());
        assert!(check_bearer(&headers(Some("bearer  s3cret-token ")), "s3cret-token").is_ok());
        for bad in [
            None,
            Some("Bearer s3cret-tokeN"),
            Some("Bearer s3cret"),
            Some("Bearer s3cret-token-and-more"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
            Some("Bearer "),
        ] {
            assert_eq!(
                check_bearer(&headers(bad), "s3cret-token"),
                Err(ApiError::Unauthorized),
                "{bad:?}"
            );
        }
    }

    fn body_json(response: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn errors_render_as_json_naming_what_is_wrong() {
        let response = ApiError::bad_request("customerNumber", "must be E.164").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = body_json(response);
        assert_eq!(body["field"], "customerNumber");
        assert!(body["error"].as_str().unwrap().contains("customerNumber"));

        let response = ApiError::Conflict {
            message: "a transfer is already ringing".into(),
            state: "target-ringing".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(body_json(response)["state"], "target-ringing");

        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

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

    #[test]
    fn form_fields_keep_order_and_repeats() {
        let req: Request = http::Request::builder()
            .method("POST")
            .uri("/events/conference")
            .body(Body::from("A=1&B=two+words&A=3&C=%2B1415"))
            .unwrap();
        let params = form_params(&req);
        assert_eq!(
            params,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("A".into(), "3".into()),
                ("C".into(), "+1415".into()),
            ]
        );
        assert_eq!(form_map(&params)["A"], "1");
    }
}
