//! Twilio's failures as one typed error. Never carries credentials.

use std::time::Duration;

use serde::Deserialize;

use crate::ids::mask_numbers_in;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error body: `{code, message, more_info, status}`.
    #[error("Twilio answered {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Api {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    #[error("Twilio did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Twilio: {0}")]
    Connection(String),
    #[error("unexpected answer from Twilio: {0}")]
    Decode(String),
    #[error("invalid Twilio client configuration: {0}")]
    Config(String),
}

/// Twilio's JSON error body.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub code: Option<u32>,
    pub message: Option<String>,
    pub more_info: Option<String>,
    pub status: Option<u16>,
}

impl TwilioError {
    /// The kind of failure, as the `TwilioErrors` metric's dimension names it.
    pub fn kind(&self) -> &'static str {
        match self {
            TwilioError::Api { status: 429, .. } => "throttled",
            TwilioError::Api { status, .. } if *status >= 500 => "server-error",
            TwilioError::Api { .. } => "refused",
            TwilioError::Timeout(_) => "timeout",
            TwilioError::Connection(_) => "connection",
            TwilioError::Decode(_) => "unreadable-answer",
            TwilioError::Config(_) => "configuration",
        }
    }

    /// Twilio's messages quote the numbers they refuse ("The number
    /// +1555... is unverified"): masked here, where they enter the product,
    /// so no log line, response, history entry or pushed frame carries them.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => TwilioError::Api {
                status: parsed.status.unwrap_or(status),
                code: parsed.code,
                message: parsed.message.map_or_else(
                    || "no message".to_owned(),
                    |m| mask_numbers_in(&m).into_owned(),
                ),
                more_info: parsed.more_info,
            },
            Err(_) => {
                let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
                TwilioError::Api {
                    status,
                    code: None,
                    message: mask_numbers_in(&text).into_owned(),
                    more_info: None,
                }
            }
        }
    }

    /// An answer that could not be read; its text may quote the body.
    pub(crate) fn decode(detail: impl std::fmt::Display) -> Self {
        TwilioError::Decode(mask_numbers_in(&detail.to_string()).into_owned())
    }

    /// Worth another try if the operation may be repeated: throttled,
    /// Twilio-side failure, or the network.
    pub fn is_retryable(&self) -> bool {
        match self {
            TwilioError::Api { status, .. } => *status == 429 || *status >= 500,
            TwilioError::Timeout(_) | TwilioError::Connection(_) => true,
            TwilioError::Decode(_) | TwilioError::Config(_) => false,
        }
    }

    /// The request may have taken effect: Twilio failed on its side, did
    /// not answer in time, the connection broke after sending, or it
    /// answered success in a shape we could not read. A 4xx (429 included)
    /// is a refusal: nothing happened. What is uncertain must be looked up,
    /// not sent again.
    pub fn is_uncertain(&self) -> bool {
        match self {
            TwilioError::Api { status, .. } => *status >= 500,
            TwilioError::Timeout(_) | TwilioError::Connection(_) | TwilioError::Decode(_) => true,
            TwilioError::Config(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            TwilioError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
