//! Transfers to a colleague or a team. A team transfer rings one member at
//! a time, the longest idle available one first (the directory picks,
//! [`super::directory::first_available`]); a member who is busy, does not
//! answer, declines or is called off is passed over and the next one rung,
//! until one answers or the route runs out of members, attempts or time.
//! Each member rung is one transfer attempt, so every rule of a transfer
//! (never alone, take-back, consult, handover) holds for each of them.

use time::OffsetDateTime;

use super::error::DomainError;
use super::leg::{LegObservation, Presence};
use super::session::CallSession;
use super::transfer::{Member, PassedOver, TeamRoute, TransferKind, TransferState};
use crate::ids::PhoneNumber;

impl CallSession {
    /// Names the member the current attempt rings and, for a team, its
    /// route. Part of the same command as [`CallSession::request_transfer`].
    pub fn ring_member(&mut self, member: Member, route: Option<TeamRoute>) {
        if let Some(transfer) = self.transfer.as_mut() {
            transfer.member = Some(member);
            transfer.route = route;
        }
    }

    /// The attempt whose member did not take the call and must be followed
    /// by the team's next one, if any. Only while the customer is with the
    /// agent handing over, or (blind) waiting on hold with music: after a
    /// warm transfer's agent left, a room with nobody in it is no place to
    /// wait, so the customer goes on as a failed transfer takes them.
    pub fn next_member_due(&self) -> Option<u32> {
        let transfer = self.transfer.as_ref()?;
        let route = transfer.route.as_ref()?;
        if route.exhausted || transfer.outcome.is_some() || self.is_ended() || self.wait_is_over() {
            return None;
        }
        let passed_over = matches!(
            self.transfer_state()?,
            TransferState::TargetBusy | TransferState::TargetNoAnswer | TransferState::TargetFailed
        );
        let someone_with_customer = transfer.kind == TransferKind::Cold || !self.first_agent_gone();
        (passed_over && someone_with_customer && route.rung < route.max_members)
            .then_some(transfer.attempt)
    }

    /// Rings the team's next member after `after` was passed over: a new
    /// attempt to `number`, the route carried on. Refused once another
    /// writer moved on (the attempt is no longer current), so of two
    /// handlers only one dials.
    pub fn ring_next_member(
        &mut self,
        after: u32,
        member: Member,
        number: PhoneNumber,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        if self.next_member_due() != Some(after) {
            return Err(DomainError::NoTransfer);
        }
        let (kind, mut route, why, passed) = {
            let transfer = self.transfer.as_ref().ok_or(DomainError::NoTransfer)?;
            let route = transfer.route.clone().ok_or(DomainError::NoTransfer)?;
            let why = self.transfer_state().ok_or(DomainError::NoTransfer)?;
            (transfer.kind, route, why, transfer.member.clone())
        };
        if let Some(member) = passed {
            route.passed.push(PassedOver { member, why });
        }
        route.rung += 1;
        self.request_transfer(number, kind, None, now)?;
        self.ring_member(member, Some(route));
        Ok(())
    }

    /// Nobody is left to ring (or the route ran out of time): the last
    /// member's attempt stands as the transfer's end.
    pub fn route_exhausted(&mut self, after: u32) -> Result<(), DomainError> {
        if self.next_member_due() != Some(after) {
            return Err(DomainError::NoTransfer);
        }
        let transfer = self.transfer.as_mut().ok_or(DomainError::NoTransfer)?;
        if let Some(route) = transfer.route.as_mut() {
            route.exhausted = true;
        }
        Ok(())
    }

    /// Whether any of `numbers` is on this call or ringing for it: the
    /// agent who placed it, the member a transfer rings or handed it to,
    /// an owner transferring it on. What makes an agent busy.
    pub fn has_on_the_line(&self, numbers: &[PhoneNumber]) -> bool {
        if self.is_ended() {
            return false;
        }
        let leg_live =
            |leg: &Option<LegObservation>| leg.as_ref().is_none_or(|l| !l.status.is_final());
        let first = self.inbound.is_none()
            && numbers.contains(&self.agent_number)
            && leg_live(&self.agent_leg)
            && self.first_agent_presence != Presence::Left;
        let owner = self
            .owner
            .as_ref()
            .is_some_and(|o| numbers.contains(&o.number) && o.live());
        let member = self
            .transfer
            .as_ref()
            .is_some_and(|t| numbers.contains(&t.target) && t.target_live());
        first || owner || member
    }

    /// When the last of `numbers`' legs on this call ended, if one did.
    pub fn left_at(&self, numbers: &[PhoneNumber]) -> Option<OffsetDateTime> {
        self.participants()
            .iter()
            .filter(|p| numbers.contains(p.number))
            .filter_map(|p| p.leg.filter(|l| l.status.is_final()).map(|l| l.at))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AgentId, ConferenceEvent, FollowUp, LegObservation, LegStatus, Observation,
        RoomParticipant, TeamName,
    };
    use crate::ids::CallSid;

    const AGENT_SID: &str = "CA00000000000000000000000000000001";
    const CUSTOMER_SID: &str = "CA00000000000000000000000000000002";

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn leg(sid: &str, status: LegStatus, sequence: u32) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(sid).unwrap(),
            status,
            sequence: Some(sequence),
            at: at(sequence.into()),
        }
    }

    fn member(name: &str) -> Member {
        Member {
            id: AgentId::parse(&format!("local-{name}")).unwrap(),
            name: name.to_owned(),
        }
    }

    /// A connected call whose `kind` transfer to team billing rings bob,
    /// with the customer in the room.
    fn ringing_bob(kind: TransferKind, max_members: u32) -> CallSession {
        let mut s = CallSession::start(
            CallSid::parse(AGENT_SID).unwrap(),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            at(0),
        );
        s.observe(Observation::AgentLeg(leg(
            AGENT_SID,
            LegStatus::InProgress,
            2,
        )));
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER_SID,
            LegStatus::InProgress,
            2,
        )));
        s.request_transfer(phone("+15550100003"), kind, None, at(10))
            .unwrap();
        let route = TeamRoute::new(TeamName::parse("billing").unwrap(), max_members, at(130));
        s.ring_member(member("bob"), Some(route));
        s.customer_redirected(1).unwrap();
        s.observe(Observation::Conference {
            event: ConferenceEvent::Join,
            participant: Some(RoomParticipant::Customer),
            sequence: None,
            conference: None,
            at: at(11),
        });
        if kind == TransferKind::Cold {
            s.waiting_on_hold(1).unwrap();
            s.observe(Observation::AgentLeg(leg(
                AGENT_SID,
                LegStatus::Completed,
                3,
            )));
        }
        s
    }

    fn target(s: &mut CallSession, attempt: u32, status: LegStatus, sequence: u32) {
        let sid = format!("CA{:032x}", 100 + attempt);
        s.observe(Observation::TargetLeg {
            attempt,
            observation: leg(&sid, status, sequence),
        });
    }

    #[test]
    fn a_member_who_does_not_answer_is_passed_over_for_the_next() {
        let mut s = ringing_bob(TransferKind::Warm, 5);
        assert_eq!(s.next_member_due(), None, "bob still rings");
        target(&mut s, 1, LegStatus::NoAnswer, 3);
        assert_eq!(s.next_member_due(), Some(1));
        s.ring_next_member(1, member("carol"), phone("+15550100004"), at(30))
            .unwrap();
        let transfer = s.transfer.as_ref().unwrap();
        assert_eq!(
            (transfer.attempt, &transfer.target),
            (2, &phone("+15550100004"))
        );
        let route = transfer.route.as_ref().unwrap();
        assert_eq!(route.passed.len(), 1);
        assert_eq!(route.passed[0].member.name, "bob");
        assert_eq!(route.passed[0].why, TransferState::TargetNoAnswer);
        assert_eq!(route.rung, 2);
        // A second handler that saw the same callback cannot ring another.
        let again = s.ring_next_member(1, member("dave"), phone("+15550100005"), at(30));
        assert_eq!(again, Err(DomainError::NoTransfer));
        assert_eq!(s.hops.len(), 1, "bob's attempt is a hop");
    }

    #[test]
    fn a_blind_transfer_keeps_the_customer_held_and_not_alone_between_members() {
        let mut s = ringing_bob(TransferKind::Cold, 5);
        assert!(s.first_agent_gone());
        target(&mut s, 1, LegStatus::Busy, 3);
        assert_eq!(s.next_member_due(), Some(1));
        assert!(!s.customer_alone(), "the next member is about to ring");
        assert_eq!(
            s.follow_ups(),
            Vec::<FollowUp>::new(),
            "no release, no resume"
        );
        assert!(s.next_check(at(31)).is_some_and(|check| check <= at(41)));
        // Nobody left: the transfer ends as a failed one does.
        s.route_exhausted(1).unwrap();
        assert_eq!(s.next_member_due(), None);
        assert!(s.customer_alone());
        assert!(s.follow_ups().contains(&FollowUp::ReleaseCustomer));
    }

    #[test]
    fn the_route_stops_at_its_member_limit_and_a_warm_one_leaves_the_customer_with_the_agent() {
        let mut s = ringing_bob(TransferKind::Warm, 1);
        target(&mut s, 1, LegStatus::Busy, 3);
        assert_eq!(s.next_member_due(), None, "one member at most");
        assert!(!s.customer_alone(), "the first agent is still with them");
        assert_eq!(s.transfer_state(), Some(TransferState::TargetBusy));
    }

    #[test]
    fn busy_means_on_the_line_or_ringing_for_the_call() {
        let mut s = ringing_bob(TransferKind::Warm, 5);
        let (lead, bob) = ([phone("+15550100001")], [phone("+15550100003")]);
        assert!(s.has_on_the_line(&lead) && s.has_on_the_line(&bob));
        target(&mut s, 1, LegStatus::Busy, 3);
        assert!(!s.has_on_the_line(&bob), "bob declined");
        assert_eq!(s.left_at(&bob), Some(at(3)));
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER_SID,
            LegStatus::Completed,
            9,
        )));
        assert!(!s.has_on_the_line(&lead), "the call is over");
    }
}
