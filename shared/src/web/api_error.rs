//! The front-end API's errors: each becomes `{"error": ...}` with the status
//! and the fields that help the caller act.

use http::StatusCode;
use http::header::{self, HeaderValue};
use lambda_http::{Body, Response};
use serde::Serialize;

use super::responses::json;
use crate::domain::{AccessDenied, DomainError};
use crate::store::StoreError;
use crate::usecases::follow_up::FollowUpError;

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

    /// The response, without a request id (see [`ApiError::into_response_for`]).
    pub fn into_response(self) -> Response<Body> {
        self.respond(None)
    }

    /// The response to the request `request_id`. A 5xx says only what the
    /// caller can do and the request id: its detail (a DynamoDB or Twilio
    /// error, which may name the function's role, the table or an account)
    /// goes to the function's log under that id, never to the caller.
    pub fn into_response_for(self, request_id: &str) -> Response<Body> {
        self.respond(Some(request_id))
    }

    fn respond(self, request_id: Option<&str>) -> Response<Body> {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            state: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
            request_id: Option<&'a str>,
        }
        let status = self.status();
        let error = if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "failed; the caller is told no more than the request id");
            self.public_message().to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error,
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
            request_id: request_id.filter(|_| status.is_server_error()),
        };
        let mut response = json(status, &body);
        if self == ApiError::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// What a 5xx body says: what happened, in words for the agent, and
    /// that trying again is safe. Nothing from the error itself.
    fn public_message(&self) -> &'static str {
        match self {
            ApiError::Upstream(_) => {
                "Twilio refused or did not answer, and the call was left as it was: try again, or quote the request id"
            }
            _ => {
                "the call's state could not be read or written just now; try again, or quote the request id"
            }
        }
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
            StoreError::Rejected(DomainError::SupervisorOnTheCall) => ApiError::bad_request(
                "supervisorNumber",
                DomainError::SupervisorOnTheCall.to_string(),
            ),
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

impl ApiError {
    /// As the front-end API answers it: a refusal (the participant or room
    /// is gone) is a conflict in state `gone.1`, saying `gone.0`; anything
    /// else is Twilio failing to `what`.
    pub fn from_follow_up(error: FollowUpError, gone: (&str, &str), what: &str) -> ApiError {
        if error.is_refusal() {
            ApiError::Conflict {
                message: gone.0.to_owned(),
                state: gone.1.to_owned(),
            }
        } else {
            ApiError::Upstream(format!("Twilio could not {what}: {error}"))
        }
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

    /// A 5xx body carries no internal error text: not the AccessDenied a
    /// missing permission gives (with the role's ARN), not Twilio's answer.
    /// The request id lets the operator find the detail in the log.
    #[test]
    fn server_errors_tell_the_caller_the_request_id_and_nothing_internal() {
        let role = "arn:aws:sts::123456789012:assumed-role/warm-transfer-StartCallRole/start-call";
        let denied = StoreError::Other(format!(
            "AccessDeniedException: User: {role} is not authorized to perform: dynamodb:GetItem"
        ));
        let twilio =
            ApiError::Upstream("Twilio could not start the call: 20003 Authenticate AC0123".into());
        for (error, status) in [
            (ApiError::from(denied), StatusCode::SERVICE_UNAVAILABLE),
            (
                ApiError::from(StoreError::Throttled),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (twilio, StatusCode::BAD_GATEWAY),
        ] {
            let response = error.clone().into_response_for("req-42");
            assert_eq!(response.status(), status, "{error:?}");
            let text = String::from_utf8(response.body().as_ref().to_vec()).unwrap();
            for internal in [
                "arn:aws",
                "AccessDenied",
                "dynamodb:",
                "DynamoDB",
                "20003",
                "AC0123",
            ] {
                assert!(!text.contains(internal), "{internal} in {text}");
            }
            let body: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["requestId"], "req-42", "{text}");
            assert!(
                body["error"].as_str().unwrap().contains("try again"),
                "{text}"
            );
        }
        // A 4xx still says what is wrong, and needs no request id.
        let body =
            body_json(ApiError::bad_request("to", "must be E.164").into_response_for("req-43"));
        assert_eq!(body["error"], "to: must be E.164");
        assert!(body["requestId"].is_null());
    }
}
