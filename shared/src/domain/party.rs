//! An outside party on a call, as data: a number the agent added (an
//! interpreter, a specialist outside the centre), their phone's leg and
//! where they are. The rules that govern them are in `outside_party.rs`.

use time::OffsetDateTime;

use super::leg::{LegObservation, Presence};
use crate::ids::PhoneNumber;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideParty {
    /// Counts the call's outside parties from 1: the callbacks of this
    /// one's phone name it, so a late callback of an earlier one is ignored.
    pub visit: u32,
    /// The agent who added them, as the history names them.
    pub added_by: String,
    pub number: PhoneNumber,
    /// Their call, once Twilio reported it.
    pub leg: Option<LegObservation>,
    pub presence: Presence,
    /// Dropped by the agent (or never reached): their call is to be ended.
    pub dropping: bool,
    pub added_at: OffsetDateTime,
}

impl OutsideParty {
    /// On the call or on the way: not dropped, phone not hung up, not out
    /// of the room.
    pub fn live(&self) -> bool {
        !self.dropping
            && !self.leg.as_ref().is_some_and(|l| l.status.is_final())
            && self.presence != Presence::Left
    }
}
