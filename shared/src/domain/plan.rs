//! What a newly recorded transfer asks of Twilio, as the domain decides it.
//! The start-transfer use case carries the plan out (two requests side by
//! side, then what they achieved recorded), as follow-ups are carried out.

use super::session::CallSession;
use super::transfer::TransferKind;
use crate::ids::{CallSid, PhoneNumber, RoomName};

/// Where the customer is sent to wait for the second agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerDestination {
    /// The conference room, with the agent handing over (warm).
    Room,
    /// The room's waiting music, without them (blind).
    WaitingRoom,
}

/// The requests of one transfer attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPlan {
    pub attempt: u32,
    pub room: RoomName,
    /// The agent to ring into the room, from the call's caller ID.
    pub target: PhoneNumber,
    pub caller_id: PhoneNumber,
    /// The customer's leg to redirect; none when they are in the room
    /// already (an earlier attempt moved them).
    pub redirect_customer: Option<CallSid>,
    pub destination: CustomerDestination,
    /// The second agent ends the room on leaving from the start: blind, the
    /// agent handing over never joins, so the customer follows the second
    /// agent out (to the fallback) rather than stay alone.
    pub target_anchors_room: bool,
    /// Blind from the room: the conference has started, so its waiting
    /// music no longer plays; the customer waits on hold, with music.
    pub hold_customer: bool,
    /// The agent handing the call on ends the room on leaving: lift that
    /// first (the attempt they came in with), so their hanging up leaves
    /// the customer with the agent being rung.
    pub lift_anchor: Option<u32>,
    /// On a call the customer placed: their number, shown to the agent
    /// rung, with the inbound call's token that lets Twilio show it.
    pub shown_caller: Option<ShownCaller>,
}

/// The caller's own number as the caller ID of a call placed for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownCaller {
    pub number: PhoneNumber,
    pub call_token: String,
}

impl TransferPlan {
    /// Once the customer waits on hold for a blind transfer, the agent
    /// handing over may be hung up, unless their leaving still ends the
    /// room (`lifted`: the anchor's lift went through).
    pub fn frees_the_agent(&self, held: bool, lifted: bool) -> bool {
        held && (lifted || self.lift_anchor.is_none())
    }
}

impl CallSession {
    /// The plan of the transfer just recorded; none without one.
    pub fn transfer_plan(&self) -> Option<TransferPlan> {
        let transfer = self.transfer.as_ref()?;
        let blind = transfer.kind == TransferKind::Cold;
        let in_room = self.customer_in_room();
        Some(TransferPlan {
            attempt: transfer.attempt,
            room: transfer.room.clone(),
            target: transfer.target.clone(),
            caller_id: self.caller_id.clone(),
            redirect_customer: self
                .customer_leg
                .as_ref()
                .filter(|_| !in_room)
                .map(|leg| leg.call_sid.clone()),
            destination: if blind {
                CustomerDestination::WaitingRoom
            } else {
                CustomerDestination::Room
            },
            target_anchors_room: transfer.target_anchors_room,
            // A queued caller's room has not started: its wait audio plays.
            hold_customer: blind && in_room && !self.queued(),
            lift_anchor: self
                .owner
                .as_ref()
                .filter(|owner| owner.anchors_room)
                .map(|owner| owner.attempt),
            shown_caller: self.shown_caller().map(|(number, token)| ShownCaller {
                number: number.clone(),
                call_token: token.to_owned(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{LegObservation, LegStatus, Observation};

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn leg(sid: &str) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(sid).unwrap(),
            status: LegStatus::InProgress,
            sequence: Some(1),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    const LEG1: &str = "CA00000000000000000000000000000001";
    const CUSTOMER: &str = "CA00000000000000000000000000000002";

    fn connected() -> CallSession {
        let mut s = CallSession::start(
            CallSid::parse(LEG1).unwrap(),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        );
        s.observe(Observation::AgentLeg(leg(LEG1)));
        s.observe(Observation::CustomerLeg(leg(CUSTOMER)));
        s
    }

    #[test]
    fn a_warm_transfer_moves_the_customer_into_the_room_and_rings_the_target() {
        let mut s = connected();
        assert_eq!(s.transfer_plan(), None, "no transfer recorded");
        let now = OffsetDateTime::UNIX_EPOCH;
        s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now)
            .unwrap();
        let plan = s.transfer_plan().unwrap();
        assert_eq!(
            plan.redirect_customer,
            Some(CallSid::parse(CUSTOMER).unwrap())
        );
        assert_eq!(plan.destination, CustomerDestination::Room);
        assert_eq!(plan.target, phone("+15550100003"));
        assert_eq!(plan.caller_id, phone("+15005550006"));
        assert!(!plan.target_anchors_room && !plan.hold_customer);
        assert_eq!(plan.lift_anchor, None);
        assert!(!plan.frees_the_agent(false, false));
    }

    #[test]
    fn a_blind_transfer_from_the_room_holds_the_customer_there_and_frees_the_agent() {
        let mut s = connected();
        let now = OffsetDateTime::UNIX_EPOCH;
        s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now)
            .unwrap();
        s.customer_redirected(1).unwrap();
        s.cancel_transfer().unwrap();
        s.request_transfer(phone("+15550100004"), TransferKind::Cold, None, now)
            .unwrap();
        let plan = s.transfer_plan().unwrap();
        assert_eq!(plan.attempt, 2);
        assert_eq!(plan.redirect_customer, None, "already in the room");
        assert_eq!(plan.destination, CustomerDestination::WaitingRoom);
        assert!(plan.target_anchors_room && plan.hold_customer);
        assert!(
            plan.frees_the_agent(true, false),
            "nobody else anchors the room"
        );
        assert!(
            !plan.frees_the_agent(false, false),
            "not while the hold failed"
        );
    }
}
