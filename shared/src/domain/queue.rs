//! A caller queued for a team (see `inbound`): when they are waiting, when
//! an offer is due, the end of their wait.

use time::OffsetDateTime;

use super::error::DomainError;
use super::inbound::{Inbound, IncomingCall};
use super::leg::{LegObservation, LegStatus, Presence};
use super::session::CallSession;
use crate::ids::PhoneNumber;

impl CallSession {
    /// A caller who just dialled in: answered (their call is in progress),
    /// sent straight into the room to wait, no agent yet. The centre's
    /// number stands where an outbound call has its first agent's: nobody
    /// answers on it, so nobody is offered this call by it.
    pub fn start_inbound(call: IncomingCall, now: OffsetDateTime) -> Self {
        let mut session = CallSession::start(
            call.call_sid.clone(),
            call.centre.clone(),
            call.caller,
            call.centre,
            now,
        );
        session.customer_leg = Some(LegObservation {
            call_sid: call.call_sid,
            status: LegStatus::InProgress,
            sequence: None,
            at: now,
        });
        session.customer_moved = true;
        session.inbound = Some(Inbound {
            team: call.team,
            since: now,
            until: now + call.max_wait,
            call_token: call.call_token,
            wait_over: false,
        });
        session
    }

    /// No agent has taken this inbound call yet: nobody answered an offer,
    /// so it has no agent of its own to hand it over.
    pub fn queued(&self) -> bool {
        self.inbound.is_some() && self.owner.is_none() && !self.answered() && !self.is_ended()
    }

    /// A member rung for this inbound call answered it. (A blind transfer
    /// counts as handed over from the moment it rings: for a caller, only
    /// an answer ends the wait.)
    fn answered(&self) -> bool {
        self.transfer.as_ref().is_some_and(|t| {
            // Left without a join is a ring that ended: not an answer.
            t.target_presence == Presence::Joined
                || t.target_leg.as_ref().is_some_and(|l| {
                    matches!(l.status, LegStatus::InProgress | LegStatus::Completed)
                })
        })
    }

    /// Queued and still within the maximum wait: the caller hears the wait
    /// audio, which is not being alone.
    pub fn waiting_in_queue(&self) -> bool {
        self.queued() && self.inbound.as_ref().is_some_and(|i| !i.wait_over)
    }

    /// The caller may be offered to the next available member now: queued,
    /// within the wait, and no member ringing or about to be rung.
    pub fn offer_due(&self) -> bool {
        let ringing = self.transfer.as_ref().is_some_and(|t| {
            t.outcome.is_none()
                && t.target_live()
                && self.transfer_state().is_some_and(|s| s.is_active())
        });
        self.waiting_in_queue() && !ringing && self.next_member_due().is_none()
    }

    /// The maximum wait is over: no further member is rung, and once none
    /// is ringing the caller is sent to the fallback
    /// ([`super::FollowUp::ReleaseCustomer`]). Refused before the time
    /// (a clock behind is no reason to give up on a caller).
    pub fn end_wait(&mut self, now: OffsetDateTime) -> Result<bool, DomainError> {
        if !self.queued() {
            return Err(DomainError::NotQueued);
        }
        let inbound = self.inbound.as_mut().ok_or(DomainError::NotQueued)?;
        if inbound.wait_over {
            return Ok(false);
        }
        if now < inbound.until {
            return Err(DomainError::NotQueued);
        }
        inbound.wait_over = true;
        Ok(true)
    }

    /// A queued caller's maximum wait is over: no further member is rung.
    pub(crate) fn wait_is_over(&self) -> bool {
        self.queued() && self.inbound.as_ref().is_some_and(|i| i.wait_over)
    }

    /// The maximum wait has passed and is not yet recorded as over.
    pub fn wait_due_to_end(&self, now: OffsetDateTime) -> bool {
        self.queued()
            && self
                .inbound
                .as_ref()
                .is_some_and(|i| !i.wait_over && now >= i.until)
    }

    /// The caller left the room: for an inbound call that is their hang-up
    /// (or the fallback after the room ended), as no move takes an inbound
    /// caller out of the room.
    pub(crate) fn caller_left(&self) -> bool {
        self.inbound.is_some() && self.customer_presence == Presence::Left
    }

    /// A caller's call ringing a member, not yet answered.
    pub(crate) fn offer_ringing(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| self.rings_for_caller(std::slice::from_ref(&t.target)))
    }

    /// A caller's call ringing one of `numbers` (an offer, or a transfer of
    /// an inbound call to them), not yet answered.
    pub fn rings_for_caller(&self, numbers: &[PhoneNumber]) -> bool {
        self.inbound.is_some()
            && !self.is_ended()
            && self.transfer.as_ref().is_some_and(|t| {
                numbers.contains(&t.target) && t.target_live() && !t.target_talking()
            })
    }

    /// The number the agents rung for this call see, with the token that
    /// lets Twilio show it: the caller's, on an inbound call whose token
    /// is known.
    pub fn shown_caller(&self) -> Option<(&PhoneNumber, &str)> {
        let token = self.inbound.as_ref()?.call_token.as_deref()?;
        Some((&self.customer_number, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TeamName;
    use crate::domain::{
        ConferenceEvent, FollowUp, Member, Observation, RoomParticipant, TeamRoute, TransferKind,
        TransferState,
    };
    use crate::ids::CallSid;

    const CALLER_SID: &str = "CA00000000000000000000000000000010";
    const AGENT_SID: &str = "CA00000000000000000000000000000011";

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn incoming() -> CallSession {
        CallSession::start_inbound(
            IncomingCall {
                call_sid: CallSid::parse(CALLER_SID).unwrap(),
                caller: phone("+15550170001"),
                centre: phone("+15005550006"),
                team: TeamName::parse("billing").unwrap(),
                call_token: Some("token".into()),
                max_wait: time::Duration::seconds(300),
            },
            at(0),
        )
    }

    fn offer_to_bob(s: &mut CallSession, now: OffsetDateTime) {
        s.request_transfer(phone("+15550100003"), TransferKind::Cold, None, now)
            .unwrap();
        let member = Member {
            id: crate::domain::AgentId::parse("bob").unwrap(),
            name: "Bob".into(),
        };
        let route = TeamRoute::new(TeamName::parse("billing").unwrap(), 5, at(120));
        s.ring_member(member, Some(route));
    }

    fn bob(s: &mut CallSession, status: LegStatus, seq: u32) {
        s.observe(Observation::TargetLeg {
            attempt: s.transfer.as_ref().unwrap().attempt,
            observation: LegObservation {
                call_sid: CallSid::parse(AGENT_SID).unwrap(),
                status,
                sequence: Some(seq),
                at: at(1),
            },
        });
    }

    #[test]
    fn a_caller_waiting_for_an_agent_is_queued_not_alone() {
        let s = incoming();
        assert!(s.queued() && s.waiting_in_queue() && s.offer_due());
        assert!(s.customer_in_room() && s.first_agent_gone());
        assert!(!s.customer_alone(), "waiting with the wait audio");
        assert!(s.follow_ups().is_empty());
        assert_eq!(s.shown_caller(), Some((&phone("+15550170001"), "token")));
    }

    #[test]
    fn an_offer_rings_one_member_and_no_other_offer_is_due_meanwhile() {
        let mut s = incoming();
        offer_to_bob(&mut s, at(1));
        let plan = s.transfer_plan().unwrap();
        assert_eq!(plan.redirect_customer, None, "already in the room");
        assert!(
            !plan.hold_customer,
            "the room has not started: its wait audio plays"
        );
        assert!(
            !plan.target_anchors_room,
            "a member who does not answer must not end the room"
        );
        assert!(!s.offer_due());
        bob(&mut s, LegStatus::Ringing, 1);
        assert!(!s.offer_due() && !s.customer_alone());
        assert_eq!(
            s.current_agent(),
            &phone("+15550100003"),
            "the call is the member's to see while it rings them"
        );
    }

    #[test]
    fn an_answered_offer_makes_the_call_the_members_own() {
        let mut s = incoming();
        offer_to_bob(&mut s, at(1));
        bob(&mut s, LegStatus::InProgress, 2);
        s.observe(Observation::Conference {
            event: ConferenceEvent::Join,
            participant: Some(RoomParticipant::SecondAgent { attempt: 1 }),
            sequence: Some(3),
            conference: None,
            at: at(2),
        });
        assert!(s.handed_over() && !s.queued());
        assert_eq!(s.current_agent(), &phone("+15550100003"));
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentLeft));
        // Bob transfers it on, warm, as any agent handed a call does.
        s.request_transfer(phone("+15550100004"), TransferKind::Warm, None, at(30))
            .unwrap();
        assert_eq!(s.owner.as_ref().unwrap().number, phone("+15550100003"));
        assert!(!s.first_agent_gone(), "Bob is still with the caller");
    }

    #[test]
    fn with_nobody_answering_the_caller_waits_until_the_maximum_then_is_released() {
        let mut s = incoming();
        offer_to_bob(&mut s, at(1));
        bob(&mut s, LegStatus::NoAnswer, 2);
        // A route of one: nobody left to ring, the caller waits on.
        let after = s.next_member_due().unwrap();
        s.route_exhausted(after).unwrap();
        assert!(!s.customer_alone() && s.offer_due());
        assert!(!s.wait_due_to_end(at(299)));
        assert!(s.end_wait(at(299)).is_err(), "not before the maximum");
        assert!(s.wait_due_to_end(at(300)));
        assert_eq!(s.end_wait(at(300)), Ok(true));
        assert_eq!(s.end_wait(at(301)), Ok(false), "once");
        assert!(s.customer_alone() && !s.offer_due());
        assert_eq!(s.follow_ups(), vec![FollowUp::ReleaseCustomer]);
    }

    #[test]
    fn the_wait_ending_while_a_member_rings_lets_the_ring_finish() {
        let mut s = incoming();
        offer_to_bob(&mut s, at(1));
        bob(&mut s, LegStatus::Ringing, 1);
        s.end_wait(at(300)).unwrap();
        assert!(!s.customer_alone(), "Bob may still answer");
        bob(&mut s, LegStatus::NoAnswer, 2);
        assert!(s.customer_alone());
    }

    #[test]
    fn a_caller_hanging_up_while_a_member_rings_ends_the_call_and_the_ring() {
        let mut s = incoming();
        offer_to_bob(&mut s, at(1));
        bob(&mut s, LegStatus::Ringing, 1);
        s.observe(Observation::Conference {
            event: ConferenceEvent::Leave,
            participant: Some(RoomParticipant::Customer),
            sequence: Some(2),
            conference: None,
            at: at(5),
        });
        assert!(s.is_ended() && !s.queued());
        assert_eq!(
            s.follow_ups(),
            vec![FollowUp::EndLeg(CallSid::parse(AGENT_SID).unwrap())]
        );
    }
}
