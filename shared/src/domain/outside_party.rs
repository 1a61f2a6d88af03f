//! An outside party on a call: the agent adds a number to the call without
//! leaving it, and may drop it again. The rules:
//!
//! - an outside party never counts as an agent: a customer whose only
//!   company is an outside party is alone ([`CallSession::customer_alone`]
//!   does not look at them), so when the agent goes the customer is
//!   released to the fallback and the party's call ended. A handover to the
//!   outside party is not built: the customer is never left with only them;
//! - their leaving never ends the room (`EndConferenceOnExit=false`);
//! - one outside party at a time, added while no transfer is under way; a
//!   call still on its plain bridge is first moved into the room, as for a
//!   supervisor.

use time::OffsetDateTime;

use super::error::DomainError;
use super::leg::{LegObservation, LegStatus, Presence};
use super::party::OutsideParty;
use super::session::{CallSession, advance, replace};
use crate::ids::{CallSid, PhoneNumber};

impl CallSession {
    /// The call's agent (`by`) adds `number` to the call.
    pub fn add_party(
        &mut self,
        by: &str,
        number: PhoneNumber,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        if self.is_ended() {
            return Err(DomainError::Ended);
        }
        let connected = self
            .customer_leg
            .as_ref()
            .is_some_and(|l| l.status == LegStatus::InProgress);
        if !connected {
            return Err(DomainError::NotConnected {
                state: self.state().as_str(),
            });
        }
        if let Some(state) = self.transfer_state().filter(|s| s.is_active()) {
            return Err(DomainError::TransferActive {
                state: state.as_str(),
            });
        }
        if self.party.as_ref().is_some_and(OutsideParty::live) {
            return Err(DomainError::PartyOnTheCall);
        }
        let on_the_call = number == self.customer_number
            || number == *self.current_agent()
            || self
                .supervision
                .as_ref()
                .is_some_and(|s| s.live() && s.number == number);
        if on_the_call {
            return Err(DomainError::TargetOnTheCall);
        }
        if self.first_agent_gone() && !self.handed_over() {
            return Err(DomainError::NotConnected {
                state: self.state().as_str(),
            });
        }
        let visit = self.party.as_ref().map_or(1, |p| p.visit + 1);
        self.party = Some(OutsideParty {
            visit,
            added_by: by.to_owned(),
            number,
            leg: None,
            presence: Presence::Never,
            dropping: false,
            added_at: now,
        });
        Ok(())
    }

    /// The agent drops the outside party: their call is ended as a
    /// follow-up. False when there was nobody to drop.
    pub fn drop_party(&mut self) -> bool {
        match self.party.as_mut().filter(|p| p.live()) {
            Some(party) => {
                party.dropping = true;
                true
            }
            None => false,
        }
    }

    /// Twilio refused to ring the party (visit `visit`), or to move the
    /// customer into the room for them: nobody joins.
    pub fn party_failed(&mut self, visit: u32) {
        if let Some(p) = self.party.as_mut().filter(|p| p.visit == visit) {
            p.dropping = true;
        }
    }

    /// Twilio accepted the customer's redirect into the room for the party
    /// of visit `visit`.
    pub fn customer_moved_for_party(&mut self, visit: u32) {
        if self.party.as_ref().is_some_and(|p| p.visit == visit) {
            self.customer_moved = true;
        }
    }

    /// Adding a party is moving the customer off leg 1's bridge: its
    /// `<Dial>` ending then means the agent follows them into the room.
    pub(super) fn moving_for_party(&self) -> bool {
        self.owner.is_none()
            && !self.handed_over()
            && self.party.as_ref().is_some_and(OutsideParty::live)
    }

    /// The party's call, when it must be ended: dropped, or the call over.
    pub(super) fn party_leg_to_end(&self) -> Option<CallSid> {
        let party = self.party.as_ref()?;
        let leg = party.leg.as_ref().filter(|l| !l.status.is_final())?;
        let out = party.dropping || party.presence == Presence::Left || self.is_ended();
        out.then(|| leg.call_sid.clone())
    }

    pub(super) fn observe_party_leg(&mut self, visit: u32, observation: LegObservation) -> bool {
        self.party
            .as_mut()
            .filter(|p| p.visit == visit)
            .is_some_and(|p| replace(&mut p.leg, observation))
    }

    pub(super) fn observe_party_presence(&mut self, visit: u32, presence: Presence) -> bool {
        self.party
            .as_mut()
            .filter(|p| p.visit == visit)
            .is_some_and(|p| advance(&mut p.presence, presence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ConferenceEvent, FollowUp, Observation, RoomParticipant, SessionState, TransferKind,
    };

    const LEG1: &str = "CA00000000000000000000000000000001";
    const CUSTOMER: &str = "CA00000000000000000000000000000002";
    const PARTY: &str = "CA00000000000000000000000000000008";

    fn sid(s: &str) -> CallSid {
        CallSid::parse(s).unwrap()
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn leg(call: &str, status: LegStatus, sequence: u32) -> LegObservation {
        LegObservation {
            call_sid: sid(call),
            status,
            sequence: Some(sequence),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn room(s: &mut CallSession, event: ConferenceEvent, who: RoomParticipant) {
        s.observe(Observation::Conference {
            event,
            participant: Some(who),
            sequence: None,
            conference: None,
            at: OffsetDateTime::UNIX_EPOCH,
        });
    }

    fn connected() -> CallSession {
        let mut s = CallSession::start(
            sid(LEG1),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        );
        s.observe(Observation::AgentLeg(leg(LEG1, LegStatus::InProgress, 1)));
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::InProgress,
            1,
        )));
        s
    }

    /// The agent, the customer and an outside party talking in the room.
    fn with_party() -> CallSession {
        let mut s = connected();
        let now = OffsetDateTime::UNIX_EPOCH;
        s.add_party("alice", phone("+15550100007"), now).unwrap();
        assert!(s.first_agent_should_join_room(), "the agent follows");
        assert!(!s.is_ended(), "leg 1's dial ending is no end");
        s.customer_moved_for_party(1);
        room(&mut s, ConferenceEvent::Join, RoomParticipant::Customer);
        room(&mut s, ConferenceEvent::Join, RoomParticipant::FirstAgent);
        s.observe(Observation::PartyLeg {
            visit: 1,
            observation: leg(PARTY, LegStatus::InProgress, 2),
        });
        room(
            &mut s,
            ConferenceEvent::Join,
            RoomParticipant::Party { visit: 1 },
        );
        s
    }

    #[test]
    fn an_outside_party_never_counts_as_an_agent() {
        let mut s = with_party();
        assert!(!s.customer_alone());
        assert_eq!(s.follow_ups(), Vec::new());
        // The agent leaves the room: the customer is alone with the party.
        room(&mut s, ConferenceEvent::Leave, RoomParticipant::FirstAgent);
        assert!(s.customer_alone());
        assert!(s.follow_ups().contains(&FollowUp::ReleaseCustomer));
        s.follow_up_done(&FollowUp::ReleaseCustomer);
        assert!(s.is_ended());
        assert_eq!(s.follow_ups(), vec![FollowUp::EndLeg(sid(PARTY))]);
    }

    #[test]
    fn a_party_is_dropped_and_hanging_up_ends_nothing() {
        let mut s = with_party();
        assert!(s.drop_party());
        assert!(!s.drop_party(), "nobody left to drop");
        assert_eq!(s.follow_ups(), vec![FollowUp::EndLeg(sid(PARTY))]);
        s.observe(Observation::PartyLeg {
            visit: 1,
            observation: leg(PARTY, LegStatus::Completed, 3),
        });
        assert_eq!(s.follow_ups(), Vec::new());
        assert_eq!(s.state(), SessionState::Connected);
        // Another may be added: a new visit; a late callback of the first
        // one changes nothing.
        let now = OffsetDateTime::UNIX_EPOCH;
        s.add_party("alice", phone("+15550100007"), now).unwrap();
        assert_eq!(s.party.as_ref().unwrap().visit, 2);
        s.observe(Observation::PartyLeg {
            visit: 1,
            observation: leg(PARTY, LegStatus::InProgress, 1),
        });
        assert_eq!(s.party.as_ref().unwrap().leg, None);
    }

    #[test]
    fn one_party_at_a_time_off_the_call_and_never_during_a_transfer() {
        let mut s = with_party();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            s.add_party("alice", phone("+15550100006"), now),
            Err(DomainError::PartyOnTheCall)
        );
        let mut s = connected();
        for number in ["+15550100001", "+15550100002"] {
            assert_eq!(
                s.add_party("alice", phone(number), now),
                Err(DomainError::TargetOnTheCall)
            );
        }
        s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now)
            .unwrap();
        assert!(matches!(
            s.add_party("alice", phone("+15550100007"), now),
            Err(DomainError::TransferActive { .. })
        ));
        assert!(s.party.is_none());
    }

    #[test]
    fn after_a_failed_transfer_the_agent_still_follows_a_customer_moved_for_a_party() {
        let mut s = connected();
        let now = OffsetDateTime::UNIX_EPOCH;
        s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now)
            .unwrap();
        s.fail_transfer(1, "refused".into(), false).unwrap();
        assert!(!s.first_agent_should_join_room(), "nobody was moved");
        s.add_party("alice", phone("+15550100007"), now).unwrap();
        assert!(s.first_agent_should_join_room());
    }

    #[test]
    fn the_customer_hanging_up_takes_the_party_out() {
        let mut s = with_party();
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::Completed,
            3,
        )));
        assert!(s.is_ended());
        let follow_ups = s.follow_ups();
        assert!(
            follow_ups.contains(&FollowUp::EndLeg(sid(PARTY))),
            "{follow_ups:?}"
        );
        assert!(s.live_leg_sids().contains(&sid(PARTY)));
        assert_eq!(
            s.role_of_leg(&sid(PARTY)),
            Some(crate::domain::Role::OutsideParty)
        );
    }
}
