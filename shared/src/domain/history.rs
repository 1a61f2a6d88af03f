//! The append-only history of a call, for the console's timeline and audit.

use time::OffsetDateTime;

use super::access::Actor;
use super::recording::Recording;

wire_enum!(
    /// Who wrote a history entry.
    EventSource {
        /// An action of the front-end API.
        Api => "api",
        /// A callback or webhook from Twilio.
        Twilio => "twilio",
        /// The product's own repair, so that nobody is left alone or ringing.
        Product => "product",
        /// The reconciler: what it learned from Twilio after a callback was
        /// lost, and the repair it made.
        Reconciler => "reconciler",
    }
);

/// One entry of the history. `detail` never holds a full phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub at: OffsetDateTime,
    pub source: EventSource,
    pub kind: String,
    pub detail: Option<String>,
    /// Set on the entry of a recording status callback.
    pub recording: Option<Recording>,
    /// Who did it: the signed-in actor of a front-end action, none otherwise.
    pub actor: Option<String>,
}

impl HistoryEvent {
    /// A front-end action, named after the actor who asked for it.
    pub fn api(
        actor: &Actor,
        at: OffsetDateTime,
        kind: impl Into<String>,
        detail: Option<String>,
    ) -> Self {
        Self {
            at,
            source: EventSource::Api,
            kind: kind.into(),
            detail,
            recording: None,
            actor: Some(actor.id.clone()),
        }
    }

    pub fn twilio(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Twilio,
            kind: kind.into(),
            detail,
            recording: None,
            actor: None,
        }
    }

    pub fn reconciler(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Reconciler,
            kind: kind.into(),
            detail,
            recording: None,
            actor: None,
        }
    }

    /// What a recording status callback reported.
    pub fn recorded(at: OffsetDateTime, recording: Recording) -> Self {
        Self {
            at,
            source: EventSource::Twilio,
            kind: recording.describe(),
            detail: Some(recording.detail()),
            recording: Some(recording),
            actor: None,
        }
    }

    pub fn product(at: OffsetDateTime, kind: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            at,
            source: EventSource::Product,
            kind: kind.into(),
            detail,
            recording: None,
            actor: None,
        }
    }

    /// The call's recordings from its history: each once (a callback sent
    /// twice is still one recording), in the order first reported, with
    /// the latest status reported.
    pub fn recordings(events: &[HistoryEvent]) -> Vec<Recording> {
        let mut recordings: Vec<Recording> = Vec::new();
        for recording in events.iter().filter_map(|e| e.recording.as_ref()) {
            match recordings.iter_mut().find(|r| r.sid == recording.sid) {
                Some(known) => *known = recording.clone(),
                None => recordings.push(recording.clone()),
            }
        }
        recordings
    }
}
