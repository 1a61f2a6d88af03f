//! A supervisor on a call, as data: their mode, who they are, their phone's
//! leg and where they are. The rules that govern them are in
//! `supervision.rs`.

use time::OffsetDateTime;

use super::leg::{LegObservation, Presence};
use crate::ids::{CallSid, PhoneNumber};

wire_enum!(
    /// How a supervisor is in the room.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    SupervisorMode {
        /// Muted: hears everyone, heard by nobody.
        Listen => "listen",
        /// Coaching the agent: heard by the agent only.
        Whisper => "whisper",
        /// Heard by everyone.
        Barge => "barge",
    }
);

impl SupervisorMode {
    /// The participant is muted.
    pub fn muted(self) -> bool {
        self == SupervisorMode::Listen
    }

    /// The participant coaches the agent (heard by them alone).
    pub fn coaching(self) -> bool {
        self == SupervisorMode::Whisper
    }
}

/// The supervisor on the call, from their request to their leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// Counts the call's supervisions from 1: the callbacks of this one's
    /// phone name it, so a late callback of an earlier one is ignored.
    pub visit: u32,
    /// Who, as the history names them (their sign-in's id).
    pub supervisor: String,
    /// The phone they join from.
    pub number: PhoneNumber,
    pub mode: SupervisorMode,
    /// The call of the agent they supervise (and coach when whispering).
    pub agent_call: CallSid,
    /// Their phone's call, once Twilio reported it.
    pub leg: Option<LegObservation>,
    pub presence: Presence,
    /// Asked to leave, or taken out with the agent or the customer: their
    /// call is to be ended.
    pub leaving: bool,
    pub requested_at: OffsetDateTime,
}

impl Supervision {
    /// Still on the call or on the way: not asked to leave, phone not hung
    /// up, not out of the room.
    pub fn live(&self) -> bool {
        !self.leaving
            && !self.leg.as_ref().is_some_and(|l| l.status.is_final())
            && self.presence != Presence::Left
    }
}

/// What a supervisor's request asks of Twilio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisionChange {
    /// Ring the supervisor into the room in this mode (the customer moved
    /// from the bridge into the room first when not there yet:
    /// `CallSession::customer_to_move_into_room`).
    Join,
    /// Already there in another mode: update their participant, never dial
    /// again.
    Switch { from: SupervisorMode },
    /// Already there in this mode.
    Unchanged,
}

/// An agent's request for a supervisor on their call, until one joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpRequest {
    /// The agent who asked, as the history names them.
    pub by: String,
    pub at: OffsetDateTime,
}
