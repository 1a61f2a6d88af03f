//! Onward transfers: an agent who was handed the call transfers it again,
//! any number of times. Each transfer is a hop; the agent who holds the call
//! after a handover takes, for the next hop, the place the first agent (leg
//! 1) holds in the first one.

use time::OffsetDateTime;

use super::leg::{LegObservation, Presence};
use super::transfer::{Transfer, TransferKind, TransferState};
use crate::ids::PhoneNumber;

/// The agent the call was handed to in an earlier hop and who now transfers
/// it on. Twilio knows them by the participant label and the callbacks of
/// the attempt that brought them in (`second-agent-<attempt>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub attempt: u32,
    pub number: PhoneNumber,
    pub leg: Option<LegObservation>,
    pub presence: Presence,
    /// Their leaving ends the room (`EndConferenceOnExit`). Lifted while
    /// they transfer on, so that hanging up early leaves the customer with
    /// the next agent rather than ending the room on everybody; set again
    /// when the transfer comes to nothing and they keep the call.
    pub anchors_room: bool,
}

impl Owner {
    /// The agent a transfer handed the call to.
    pub(crate) fn from_transfer(transfer: &Transfer) -> Self {
        Self {
            attempt: transfer.attempt,
            number: transfer.target.clone(),
            leg: transfer.target_leg.clone(),
            presence: transfer.target_presence,
            anchors_room: transfer.target_anchors_room,
        }
    }

    /// Still on the call and in the room.
    pub fn live(&self) -> bool {
        let leg_live = self.leg.as_ref().is_none_or(|l| !l.status.is_final());
        leg_live && self.presence != Presence::Left
    }
}

/// A transfer attempt that is over and was followed by another: who sent
/// the call to whom, when, and how it ended. The current attempt is the
/// session's `transfer`; together they are the call's every hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub attempt: u32,
    pub kind: TransferKind,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub requested_at: OffsetDateTime,
    /// The attempt's last state: `first-agent-left` for a handover.
    pub outcome: TransferState,
}

impl Hop {
    pub(crate) fn of(transfer: &Transfer, from: &PhoneNumber, outcome: TransferState) -> Self {
        Self {
            attempt: transfer.attempt,
            kind: transfer.kind,
            from: from.clone(),
            to: transfer.target.clone(),
            requested_at: transfer.requested_at,
            outcome,
        }
    }
}
