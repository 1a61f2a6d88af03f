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
        if route.exhausted || transfer.outcome.is_some() || self.is_ended() {
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
        let first = numbers.contains(&self.agent_number)
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
