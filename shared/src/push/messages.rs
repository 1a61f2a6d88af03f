//! What the console receives over the WebSocket: JSON text frames, each
//! about the one call the connection subscribed to, or the directory.
//!
//! - `{"type":"call","version":N,"call":{...}}`: the session as
//!   `GET /calls/{callSid}` shows it, without its history (`events` empty,
//!   `repairs` and `recordings` counted from no entries, `actions` those
//!   of the listener); a console keeps the highest `version` it has seen;
//! - `{"type":"events","callSid":"CA...","events":[...]}`: history entries
//!   as they are written, shaped as in `GET /calls/{callSid}`;
//! - `{"type":"revoked","callSid":"CA...","reason":"handed-over"}`: the
//!   listener may no longer see the call (the reason codes of a 403, or
//!   `signed-out` when their token expired); nothing more will come;
//! - `{"type":"board"}`, on a supervisor's connection that follows the
//!   directory: a call began or a line of the board changed; the console
//!   reads `GET /board` again.
//! - `{"type":"directory","directory":{...}}`, on a connection that
//!   follows the directory (`?directory=1`): someone's presence changed;
//!   the directory as `GET /directory` shows it, without numbers.

use serde::Serialize;

use crate::domain::{Actor, CallSession, HistoryEvent};
use crate::usecases::view::{CallView, DirectoryView, EventView};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PushMessage {
    #[serde(rename_all = "camelCase")]
    Call { version: u64, call: Box<CallView> },
    #[serde(rename_all = "camelCase")]
    Events {
        call_sid: String,
        events: Vec<EventView>,
    },
    #[serde(rename_all = "camelCase")]
    Revoked {
        call_sid: String,
        reason: &'static str,
    },
    /// Someone's presence changed: the directory as it is now (names,
    /// teams and presence; no numbers, no `me`), the same frame for every
    /// listener, so a change costs one read however many consoles follow.
    Directory { directory: Box<DirectoryView> },
    /// A line of the supervisors' board changed: sent to supervisors only,
    /// with nothing in it (the board is theirs to read again).
    Board,
}

impl PushMessage {
    /// The call as `listener` sees it (the actions they may take).
    pub fn call(session: &CallSession, listener: &Actor) -> Self {
        PushMessage::Call {
            version: session.version,
            call: Box::new(CallView::new(session, listener, Vec::new())),
        }
    }

    pub fn events(session: &CallSession, events: &[HistoryEvent]) -> Self {
        PushMessage::Events {
            call_sid: session.id.to_string(),
            events: events.iter().cloned().map(EventView::from).collect(),
        }
    }

    pub fn revoked(session: &CallSession, reason: &'static str) -> Self {
        PushMessage::Revoked {
            call_sid: session.id.to_string(),
            reason,
        }
    }

    /// The frame's text.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
