//! The append-only history of a call, for the console's timeline and audit.

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// An action of the front-end API.
    Api,
    /// A callback or webhook from Twilio.
    Twilio,
    /// The product's own repair, so that nobody is left alone or ringing.
    Product,
    /// The reconciler: what it learned from Twilio after a callback was
    /// lost, and the repair it made.
    Reconciler,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Api => "api",
            EventSource::Twilio => "twilio",
            EventSource::Product => "product",
            EventSource::Reconciler => "reconciler",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "api" => Some(EventSource::Api),
            "twilio" => Some(EventSource::Twilio),
            "product" => Some(EventSource::Product),
            "reconciler" => Some(EventSource::Reconciler),
            _ => None,
        }
    }
}

/// One entry of the history. `detail` never holds a full phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub at: OffsetDateTime,
    pub source: EventSource,
    pub kind: String,
    pub detail: Option<String>,
}

impl HistoryEvent {
    pub fn api(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Api,
            kind: kind.into(),
            detail,
        }
    }

    pub fn twilio(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Twilio,
            kind: kind.into(),
            detail,
        }
    }

    pub fn reconciler(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Reconciler,
            kind: kind.into(),
            detail,
        }
    }

    pub fn product(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Product,
            kind: kind.into(),
            detail,
        }
    }
}
