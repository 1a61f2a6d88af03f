//! The front-end API's errors: each becomes `{"error": ...}` with the status
//! and the fields that help the caller act.

use http::StatusCode;
use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};
use serde::Serialize;

use super::responses::json;
use crate::domain::{AccessDenied, DomainError};
use crate::store::StoreError;

/// What the front-end API answers when it cannot do what was asked. Always
/// rendered as `{"error": "..."}` plus the fields that help the caller act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error("sign in first: the request carries no valid token")]
    Unauthorized,
    /// Signed in, but not allowed: not their number, not their call.
    #[error(transparent)]
    Forbidden(AccessDenied),
    /// Over a per-agent limit (the toll-fraud guard): try again later.
    #[error("{0}")]
    TooManyRequests(String),
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
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
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
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
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
            reason: match &self {
                ApiError::Forbidden(denied) => Some(denied.code()),
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

/// A store failure as the caller sees it: a refusal of the domain is a
/// conflict (or names the field at fault), a failing DynamoDB is "try again".
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound("no such call".into()),
            StoreError::Rejected(DomainError::TargetOnTheCall) => {
                ApiError::bad_request("to", DomainError::TargetOnTheCall.to_string())
            }
            StoreError::Rejected(DomainError::Denied(denied)) => ApiError::Forbidden(denied),
            StoreError::Rejected(refusal) => ApiError::Conflict {
                message: refusal.to_string(),
                state: refusal.state().to_string(),
            },
            StoreError::AlreadyExists => ApiError::Conflict {
                message: "the call already exists".into(),
                state: "exists".into(),
            },
            StoreError::Throttled
            | StoreError::Unavailable(_)
            | StoreError::Conflict
            | StoreError::Corrupt(_)
            | StoreError::Other(_) => {
                ApiError::Unavailable(format!("call state unavailable, try again: {error}"))
            }
        }
    }
}

impl From<AccessDenied> for ApiError {
    fn from(denied: AccessDenied) -> Self {
        ApiError::Forbidden(denied)
    }
}

impl From<DomainError> for ApiError {
    fn from(refusal: DomainError) -> Self {
        StoreError::Rejected(refusal).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let response = ApiError::Forbidden(AccessDenied::NotYourNumber).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = body_json(response);
        assert_eq!(body["reason"], "not-your-number");
        assert!(body["error"].as_str().unwrap().contains("your own number"));
    }
}
