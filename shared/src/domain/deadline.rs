//! When a session must next be looked at by the reconciler, in case a
//! Twilio callback that would have moved it on was lost. Pure: the store
//! writes the answer on the session item (a sparse index the reconciler
//! queries), so the read cost grows with the open calls, never the table.

use time::{Duration, OffsetDateTime};

use super::session::CallSession;
use crate::ids::CallSid;

/// A decision is pending (a transfer under way, a customer alone, a repair
/// outstanding, a leg still live on an ended call): look again soon. This
/// bounds how long a customer can be alone when every callback saying so
/// is lost (the reconciler's `longest_wait_alone`).
pub const RECHECK_SOON: Duration = Duration::seconds(10);
/// A caller waiting for an agent: their wait loop offers the call and ends
/// the wait, so the reconciler only catches what every callback and the
/// loop missed (a hang-up, a ring that ended unreported).
pub const RECHECK_QUEUED: Duration = Duration::seconds(30);
/// Phones ringing before the call is connected.
pub const RECHECK_SETTLING: Duration = Duration::minutes(2);
/// A connected call with nothing pending: an occasional look suffices.
pub const RECHECK_CONNECTED: Duration = Duration::minutes(10);
/// Twilio ends a call after `TimeLimit`, 4 hours by default: a call still
/// open past that is looked at closely.
pub const PLAUSIBLE_CALL_LENGTH: Duration = Duration::hours(4);

impl CallSession {
    /// The legs the session knows of whose last reported status is not
    /// final: the first agent's, the customer's, the current transfer's
    /// target's, and after an onward transfer the owner's (the agent
    /// handing the call on). The one definition: the reconciler fetches
    /// these, and a session with any of them does not settle.
    pub fn live_leg_sids(&self) -> Vec<CallSid> {
        self.participants()
            .into_iter()
            .filter_map(|p| p.leg)
            .filter(|leg| !leg.status.is_final())
            .map(|leg| leg.call_sid.clone())
            .collect()
    }

    /// Whether any leg the session knows of is live ([`Self::live_leg_sids`]).
    pub fn live_legs(&self) -> bool {
        !self.live_leg_sids().is_empty()
    }

    /// Nothing can change any more: the call is over, every leg the session
    /// knows of has ended, and no follow-up is outstanding. The session then
    /// leaves the reconciler's index.
    pub fn is_settled(&self) -> bool {
        self.is_ended() && !self.live_legs() && self.follow_ups().is_empty()
    }

    /// When the reconciler must check this session against Twilio if no
    /// callback has moved it on by then; `None` once it is settled. Every
    /// write recomputes it, so it measures time without progress.
    pub fn next_check(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.is_settled() {
            return None;
        }
        let past_plausible_length = now >= self.created_at + PLAUSIBLE_CALL_LENGTH;
        let pending = self.is_ended()
            || self.customer_alone()
            || !self.follow_ups().is_empty()
            || self.transfer_state().is_some_and(|s| s.is_active())
            || self.next_member_due().is_some();
        let delay = if pending {
            RECHECK_SOON
        } else if self.waiting_in_queue() {
            RECHECK_QUEUED
        } else if past_plausible_length {
            RECHECK_SETTLING
        } else {
            match self.state() {
                super::SessionState::Connected | super::SessionState::Transferred => {
                    RECHECK_CONNECTED
                }
                _ => RECHECK_SETTLING,
            }
        };
        let mut next = now + delay;
        // A caller's wait ends on time even if nothing else happens.
        if let Some(inbound) = self.inbound.as_ref().filter(|_| self.waiting_in_queue()) {
            next = next.min(inbound.until.max(now + Duration::seconds(1)));
        }
        if past_plausible_length {
            return Some(next);
        }
        // A call is looked at no later than its plausible length.
        let cap = (self.created_at + PLAUSIBLE_CALL_LENGTH).max(now + RECHECK_SOON);
        Some(next.min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        ConferenceEvent, FollowUp, LegObservation, LegStatus, Observation, RoomParticipant,
    };
    use super::*;
    use crate::ids::{CallSid, PhoneNumber};

    const AGENT_SID: &str = "CA00000000000000000000000000000001";
    const CUSTOMER_SID: &str = "CA00000000000000000000000000000002";
    const TARGET_SID: &str = "CA00000000000000000000000000000003";

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn leg(sid: &str, status: LegStatus, seq: u32) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(sid).unwrap(),
            status,
            sequence: Some(seq),
            at: t0(),
        }
    }

    fn new_session() -> CallSession {
        CallSession::start(
            CallSid::parse(AGENT_SID).unwrap(),
            PhoneNumber::parse("+15550100001").unwrap(),
            PhoneNumber::parse("+15550100002").unwrap(),
            PhoneNumber::parse("+15005550006").unwrap(),
            t0(),
        )
    }

    fn agent(s: &mut CallSession, status: LegStatus, seq: u32) {
        s.observe(Observation::AgentLeg(leg(AGENT_SID, status, seq)));
    }

    fn customer(s: &mut CallSession, status: LegStatus, seq: u32) {
        s.observe(Observation::CustomerLeg(leg(CUSTOMER_SID, status, seq)));
    }

    fn target(s: &mut CallSession, status: LegStatus, seq: u32) {
        s.observe(Observation::TargetLeg {
            attempt: 1,
            observation: leg(TARGET_SID, status, seq),
        });
    }

    fn connected() -> CallSession {
        let mut s = new_session();
        agent(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::InProgress, 2);
        s
    }

    fn transferring() -> CallSession {
        let mut s = connected();
        s.request_transfer(
            PhoneNumber::parse("+15550100003").unwrap(),
            super::super::TransferKind::Warm,
            None,
            t0(),
        )
        .unwrap();
        s.customer_redirected(1).unwrap();
        s.observe(Observation::Conference {
            event: ConferenceEvent::Join,
            participant: Some(RoomParticipant::FirstAgent),
            sequence: None,
            conference: None,
            at: t0(),
        });
        target(&mut s, LegStatus::Ringing, 1);
        s
    }

    fn delay(s: &CallSession, now: OffsetDateTime) -> Option<Duration> {
        s.next_check(now).map(|at| at - now)
    }

    #[test]
    fn ringing_phones_are_checked_after_a_couple_of_minutes() {
        let mut s = new_session();
        assert_eq!(delay(&s, t0()), Some(RECHECK_SETTLING));
        agent(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::Ringing, 1);
        assert_eq!(delay(&s, t0()), Some(RECHECK_SETTLING));
    }

    #[test]
    fn a_connected_call_is_checked_rarely() {
        assert_eq!(delay(&connected(), t0()), Some(RECHECK_CONNECTED));
    }

    #[test]
    fn a_transfer_under_way_is_checked_soon() {
        let s = transferring();
        assert!(s.transfer_state().unwrap().is_active());
        assert_eq!(delay(&s, t0()), Some(RECHECK_SOON));
    }

    #[test]
    fn a_customer_alone_is_checked_soon() {
        let mut s = transferring();
        agent(&mut s, LegStatus::Completed, 5);
        target(&mut s, LegStatus::NoAnswer, 2);
        assert!(s.customer_alone());
        assert_eq!(delay(&s, t0()), Some(RECHECK_SOON));
        // Released: the customer's leg still has to report its end.
        s.follow_up_done(&FollowUp::ReleaseCustomer);
        assert!(s.is_ended());
        assert_eq!(
            delay(&s, t0()),
            Some(RECHECK_SOON),
            "the customer's leg is still live"
        );
        customer(&mut s, LegStatus::Completed, 6);
        assert_eq!(s.next_check(t0()), None);
    }

    #[test]
    fn a_handed_over_call_is_checked_like_a_connected_one() {
        let mut s = transferring();
        target(&mut s, LegStatus::InProgress, 2);
        s.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: 1 });
        s.first_agent_leaves().unwrap();
        agent(&mut s, LegStatus::Completed, 5);
        assert!(s.follow_ups().is_empty());
        assert_eq!(delay(&s, t0()), Some(RECHECK_CONNECTED));
    }

    #[test]
    fn an_ended_call_with_a_live_leg_stays_open() {
        // The customer hung up; the second agent's leg never reported its end.
        let mut s = transferring();
        target(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::Completed, 3);
        assert!(s.is_ended());
        assert_eq!(delay(&s, t0()), Some(RECHECK_SOON));
        target(&mut s, LegStatus::Completed, 3);
        agent(&mut s, LegStatus::Completed, 4);
        assert!(s.is_settled());
        assert_eq!(s.next_check(t0()), None);
    }

    #[test]
    fn an_ended_plain_call_leaves_the_index() {
        let mut s = connected();
        customer(&mut s, LegStatus::Completed, 3);
        agent(&mut s, LegStatus::Completed, 3);
        assert_eq!(s.next_check(t0()), None);
        let mut s = new_session();
        agent(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::Busy, 2);
        agent(&mut s, LegStatus::Completed, 3);
        assert_eq!(s.next_check(t0()), None);
    }

    #[test]
    fn a_call_past_its_plausible_length_is_checked_closely() {
        let s = connected();
        let late = t0() + PLAUSIBLE_CALL_LENGTH - Duration::minutes(3);
        assert_eq!(
            s.next_check(late),
            Some(t0() + PLAUSIBLE_CALL_LENGTH),
            "capped at the plausible length"
        );
        let later = t0() + PLAUSIBLE_CALL_LENGTH + Duration::minutes(1);
        assert_eq!(delay(&s, later), Some(RECHECK_SETTLING));
        let just_before = t0() + PLAUSIBLE_CALL_LENGTH - Duration::seconds(1);
        assert_eq!(delay(&s, just_before), Some(RECHECK_SOON));
    }

    #[test]
    fn the_next_check_is_never_in_the_past() {
        for s in [new_session(), connected(), transferring()] {
            for minutes in [0, 5, 239, 240, 241, 10_000] {
                let now = t0() + Duration::minutes(minutes);
                let at = s.next_check(now).unwrap();
                assert!(at > now, "{minutes}");
                assert!(at <= now + RECHECK_CONNECTED, "{minutes}");
            }
        }
    }
}
