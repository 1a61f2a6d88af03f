//! The answers every handler gives: JSON for the console, TwiML for Twilio,
//! and the few plain answers in between.

use http::StatusCode;
use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};
use serde::Serialize;

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

/// A webhook refused for its size: the status says why, and the body is
/// still valid TwiML, as every answer to a Twilio route is.
pub fn refused_webhook(status: StatusCode, xml: String) -> Response<Body> {
    let mut response = twiml(xml);
    *response.status_mut() = status;
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
