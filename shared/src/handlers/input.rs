//! What a front-end request carries, read and checked: its JSON body,
//! path parameters, headers, and the numbers it names. Each refusal names
//! the field (the API answers 400 or 404).

use lambda_http::Request;
use serde::de::DeserializeOwned;

use super::app::App;
use super::request;
use crate::ids::{CallSid, PhoneNumber};
use crate::web::ApiError;

/// Longest `Idempotency-Key` accepted; keys are opaque to us.
const MAX_IDEMPOTENCY_KEY: usize = 200;

pub(super) fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = request::body_bytes(req);
    if bytes.is_empty() {
        return Err(ApiError::bad_request("body", "a JSON object is required"));
    }
    let mut body = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut body).map_err(|error| {
        let field = error.path().to_string();
        let field = if field == "." { "body" } else { &field };
        ApiError::bad_request(field, error.into_inner().to_string())
    })
}

pub(super) fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::bad_request(field, "is required"))
}

pub(super) fn phone(field: &str, raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|_| {
        ApiError::bad_request(
            field,
            "must be a phone number in E.164 form, like +14155550100",
        )
    })
}

/// The toll-fraud guard on a number a request names.
pub(super) fn may_dial(app: &App, field: &str, number: &PhoneNumber) -> Result<(), ApiError> {
    app.config
        .dial_policy
        .may_dial(number)
        .map_err(|refused| ApiError::bad_request(field, refused.to_string()))
}

pub(super) fn call_sid(req: &Request) -> Result<CallSid, ApiError> {
    let raw = request::path_param(req, "callSid").unwrap_or_default();
    CallSid::parse(&raw)
        .map_err(|_| ApiError::bad_request("callSid", "must be CA followed by 32 hex digits"))
}

pub(super) fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_owned()))
}
