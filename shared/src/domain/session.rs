//! A call session: the first agent's call, the customer it dials, the room
//! they may move to, and at most one current transfer.

use time::OffsetDateTime;

use super::error::DomainError;
use super::hop::{Hop, Owner};
use super::inbound::Inbound;
use super::leg::{LegObservation, LegStatus, Presence};
use super::observation::{ConferenceEvent, Observation, Observed, RoomParticipant};
use super::party::OutsideParty;
use super::supervisor::{HelpRequest, Supervision};
use super::transfer::{Transfer, TransferKind, TransferOutcome, TransferState};
use crate::ids::{CallSid, PhoneNumber};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSession {
    /// Leg 1's call SID: the session's key and the name of its room.
    pub id: CallSid,
    pub agent_number: PhoneNumber,
    pub customer_number: PhoneNumber,
    pub caller_id: PhoneNumber,
    pub created_at: OffsetDateTime,
    pub agent_leg: Option<LegObservation>,
    pub customer_leg: Option<LegObservation>,
    pub customer_presence: Presence,
    pub first_agent_presence: Presence,
    /// Set by the conference's end event.
    pub room_ended: bool,
    /// The customer's leg was redirected into the room (known before the
    /// conference reports the join when a transfer fails half way).
    pub customer_moved: bool,
    /// The room's `CF...` SID, once Twilio named it (participant create).
    pub room_sid: Option<String>,
    /// The customer was found alone and their room was ended: their TwiML
    /// takes them to the fallback. Nothing is left to do on this call.
    pub customer_released: bool,
    /// The customer's participant is on hold (a consult between the agents).
    pub customer_held: bool,
    /// After a handover, the agent who holds the call and transfers it on.
    pub owner: Option<Owner>,
    /// Earlier transfer attempts, oldest first; `transfer` is the current one.
    pub hops: Vec<Hop>,
    pub transfer: Option<Transfer>,
    /// A call the customer placed to the centre (see `inbound`); `None`
    /// for the calls an agent places.
    pub inbound: Option<Inbound>,
    /// The supervisor on the call, or the last one (see `supervision.rs`).
    pub supervision: Option<Supervision>,
    /// The agent asked for a supervisor; cleared when one joins.
    pub help: Option<HelpRequest>,
    /// The outside party the agent added, or the last one (see
    /// `outside_party.rs`).
    pub party: Option<OutsideParty>,
    /// Bumped by every write; conditional writes compare it.
    pub version: u64,
}

/// Something Twilio must be asked to do after a change, so that nobody is
/// left ringing, waiting or alone. Each is idempotent on Twilio's side, so
/// a follow-up that two handlers both derive is harmless done twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Hang up (or cancel) a leg nobody needs any more.
    EndLeg(CallSid),
    /// The first agent is gone and the second agent talks with the
    /// customer: make the second agent's leaving end the room. Also sets
    /// it again on an owner whose onward transfer came to nothing (the
    /// agent who came in with `attempt`).
    AnchorRoomOnTarget { attempt: u32 },
    /// An owner transfers the call on: their leaving must no longer end
    /// the room, or hanging up would end it on the customer and the next
    /// agent.
    LiftAnchor { attempt: u32 },
    /// The customer is in the room with no agent present or ringing: end
    /// the room, which sends the customer on to the fallback.
    ReleaseCustomer,
    /// The customer is on hold but the consult is over (an agent left, the
    /// transfer was called off): take them off hold, so that whoever is
    /// left talks with them.
    ResumeCustomer,
}

impl FollowUp {
    /// What the call's history says once it was carried out (ending a leg
    /// says nothing: the leg's own callback tells). One text whoever
    /// carried it out, a handler or the reconciler.
    pub fn done_text(&self) -> Option<&'static str> {
        match self {
            FollowUp::EndLeg(_) => None,
            FollowUp::AnchorRoomOnTarget { .. } => {
                Some("second agent now ends the room on leaving")
            }
            FollowUp::LiftAnchor { .. } => Some("agent transferring on no longer ends the room"),
            FollowUp::ReleaseCustomer => Some("no agent left: customer sent to the fallback"),
            FollowUp::ResumeCustomer => Some("consult over: customer taken off hold"),
        }
    }
}

wire_enum!(
    /// Serialised as the API names it (kebab-case, same as `as_str`).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    SessionState {
        AgentRinging => "agent-ringing",
        AgentAnswered => "agent-answered",
        CustomerRinging => "customer-ringing",
        Connected => "connected",
        Transferring => "transferring",
        /// The first agent left; the customer talks with the second agent.
        Transferred => "transferred",
        Ended => "ended",
    }
);

/// What a transfer request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferDecision {
    /// A new attempt was recorded: the caller must now move the customer
    /// (unless already in the room) and ring the second agent.
    New,
    /// The same request (same idempotency key) was already accepted.
    Existing,
}

fn final_leg(leg: &Option<LegObservation>) -> bool {
    leg.as_ref().is_some_and(|l| l.status.is_final())
}

impl CallSession {
    pub fn start(
        id: CallSid,
        agent_number: PhoneNumber,
        customer_number: PhoneNumber,
        caller_id: PhoneNumber,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            agent_number,
            customer_number,
            caller_id,
            created_at: now,
            agent_leg: None,
            customer_leg: None,
            customer_presence: Presence::Never,
            first_agent_presence: Presence::Never,
            room_ended: false,
            customer_moved: false,
            room_sid: None,
            customer_released: false,
            customer_held: false,
            owner: None,
            hops: Vec::new(),
            transfer: None,
            inbound: None,
            supervision: None,
            help: None,
            party: None,
            version: 0,
        }
    }

    pub fn customer_in_room(&self) -> bool {
        self.customer_moved || self.customer_presence != Presence::Never
    }

    /// Nobody is left to talk to: the customer hung up, the room closed, or
    /// the first agent's call ended while the customer was still bridged to
    /// it and not being moved into the room.
    pub fn is_ended(&self) -> bool {
        let customer_never_answered = self
            .customer_leg
            .as_ref()
            .is_some_and(|l| l.status.is_final() && l.status != LegStatus::Completed);
        final_leg(&self.customer_leg)
            || customer_never_answered
            || self.customer_released
            || (self.room_ended && self.customer_in_room())
            || (final_leg(&self.agent_leg) && !self.customer_in_room() && !self.moving_customer())
            || self.caller_left()
    }

    /// A transfer is under way whose redirect of the customer may not be
    /// recorded yet. Leg 1 can end first: its `<Dial>` ends as the customer
    /// leaves the bridge, and a blind transfer hangs the agent up at once.
    /// A refused redirect fails the transfer, and the call ends after all.
    fn moving_customer(&self) -> bool {
        self.transfer.as_ref().is_some_and(|t| t.outcome.is_none()) || self.moving_for_a_joiner()
    }

    /// A supervisor or an outside party asked to join while leg 1 is the
    /// agent: their request moves the customer off leg 1's bridge into the
    /// room, as a transfer does.
    fn moving_for_a_joiner(&self) -> bool {
        self.moving_for_supervisor() || self.moving_for_party()
    }

    /// The agent the current transfer hands the call from: the first
    /// agent, or after a handover the owner who transfers it on.
    pub fn handing_over_agent(&self) -> &PhoneNumber {
        self.owner
            .as_ref()
            .map_or(&self.agent_number, |o| &o.number)
    }

    fn handing_over_leg(&self) -> &Option<LegObservation> {
        self.owner.as_ref().map_or(&self.agent_leg, |o| &o.leg)
    }

    fn handing_over_presence(&self) -> Presence {
        self.owner
            .as_ref()
            .map_or(self.first_agent_presence, |o| o.presence)
    }

    /// The call SID of the agent the current transfer hands the call from,
    /// when known: leg 1, or the owner's call.
    pub fn handing_over_call(&self) -> Option<&CallSid> {
        match &self.owner {
            None => Some(&self.id),
            Some(owner) => owner.leg.as_ref().map(|l| &l.call_sid),
        }
    }

    /// The agent the current transfer hands the call from (the first agent,
    /// or an owner transferring on) hung up, left the room, or handed over.
    pub fn first_agent_gone(&self) -> bool {
        // An inbound call has no agent until one answers an offer.
        let no_agent_yet = self.inbound.is_some() && self.owner.is_none();
        no_agent_yet
            || final_leg(self.handing_over_leg())
            || self.handing_over_presence() == Presence::Left
            || self
                .transfer
                .as_ref()
                .is_some_and(|t| t.outcome == Some(TransferOutcome::FirstAgentLeft))
    }

    /// The guarantee the product keeps: a customer in the room always has
    /// an agent present or ringing. This says when that no longer holds.
    pub fn customer_alone(&self) -> bool {
        let target_live = self.transfer.as_ref().is_some_and(Transfer::target_live);
        // Not ended: the customer's leg is live, the room has not closed on
        // them and they were not released already.
        // A team's next member is about to be rung: not alone, waiting.
        let next_member = self.next_member_due().is_some();
        // A caller queued for an agent hears the wait audio until their
        // maximum wait is over.
        !self.is_ended()
            && !self.waiting_in_queue()
            && self.customer_in_room()
            && self.first_agent_gone()
            && !target_live
            && !next_member
    }

    /// The call was handed over: the first agent left (or hung up) once the
    /// second agent had answered. It stays handed over after the call ends.
    pub fn handed_over(&self) -> bool {
        self.transfer.as_ref().is_some_and(|t| {
            t.outcome == Some(TransferOutcome::FirstAgentLeft)
                || (t.outcome.is_none()
                    && self.first_agent_gone()
                    && (t.target_anchors_room || t.target_talking()))
        })
    }

    /// The number of the agent the call belongs to now: the first agent's,
    /// and after each handover the agent it was handed to.
    pub fn current_agent(&self) -> &PhoneNumber {
        match &self.transfer {
            // A caller's call is the member's from the moment it rings them:
            // their console shows it before they answer.
            Some(transfer) if self.handed_over() || self.offer_ringing() => &transfer.target,
            _ => self.handing_over_agent(),
        }
    }

    pub fn state(&self) -> SessionState {
        if self.is_ended() {
            return SessionState::Ended;
        }
        if let Some(state) = self.transfer_state() {
            if state.is_active() {
                return SessionState::Transferring;
            }
            if state == TransferState::FirstAgentLeft {
                return SessionState::Transferred;
            }
        }
        match (
            self.customer_leg.as_ref().map(|l| l.status),
            self.agent_leg.as_ref().map(|l| l.status),
        ) {
            (Some(LegStatus::InProgress), _) => SessionState::Connected,
            (Some(_), _) => SessionState::CustomerRinging,
            (None, Some(LegStatus::InProgress)) => SessionState::AgentAnswered,
            _ => SessionState::AgentRinging,
        }
    }

    pub fn transfer_state(&self) -> Option<TransferState> {
        self.transfer.as_ref().map(|t| {
            t.state(
                self.is_ended(),
                self.customer_in_room(),
                self.handing_over_presence() == Presence::Joined,
                self.first_agent_gone(),
                self.customer_held,
            )
        })
    }

    /// Records a transfer to `target`, or finds the one already recorded
    /// under the same idempotency key.
    pub fn request_transfer(
        &mut self,
        target: PhoneNumber,
        kind: TransferKind,
        idempotency_key: Option<String>,
        now: OffsetDateTime,
    ) -> Result<TransferDecision, DomainError> {
        if let (Some(transfer), Some(key)) = (&self.transfer, &idempotency_key) {
            if transfer.idempotency_key.as_deref() == Some(key.as_str()) {
                return Ok(TransferDecision::Existing);
            }
        }
        if self.is_ended() {
            return Err(DomainError::Ended);
        }
        let previous = self.transfer_state();
        match previous {
            Some(state) if state.is_active() => {
                return Err(DomainError::TransferActive {
                    state: state.as_str(),
                });
            }
            _ => {}
        }
        // After a handover the agent who took the call transfers it on.
        let from = match (previous, &self.transfer) {
            (Some(TransferState::FirstAgentLeft), Some(t)) if t.target_talking() => {
                t.target.clone()
            }
            (Some(TransferState::FirstAgentLeft), _) => return Err(DomainError::HandedOver),
            _ => self.handing_over_agent().clone(),
        };
        let connected = self
            .customer_leg
            .as_ref()
            .is_some_and(|l| l.status == LegStatus::InProgress);
        if !connected {
            return Err(DomainError::NotConnected {
                state: self.state().as_str(),
            });
        }
        if target == self.customer_number || target == from {
            return Err(DomainError::TargetOnTheCall);
        }
        if !self.customer_in_room() {
            // The customer will be moved into a new conference of that name.
            self.room_ended = false;
            self.room_sid = None;
        }
        let attempt = self.transfer.as_ref().map_or(1, |t| t.attempt + 1);
        let queued = self.queued();
        if let (Some(done), Some(state)) = (&self.transfer, previous) {
            self.hops
                .push(Hop::of(done, self.handing_over_agent(), state));
        }
        if let Some(handed_to) = self.transfer.as_ref().filter(|_| handing_on_now(previous)) {
            self.owner = Some(Owner::from_transfer(handed_to));
        }
        self.transfer = Some(Transfer {
            attempt,
            kind,
            target,
            room: self.id.room(),
            idempotency_key,
            requested_at: now,
            target_leg: None,
            target_presence: Presence::Never,
            // Blind: the first agent never joins, so the second agent ends
            // the room from the start. Not a member offered a queued
            // caller: their not answering must not end the caller's room;
            // they are made its anchor once they answer.
            target_anchors_room: kind == TransferKind::Cold && !queued,
            consulted: false,
            outcome: None,
            member: None,
            route: None,
        });
        Ok(TransferDecision::New)
    }

    /// Twilio accepted the customer's redirect into the room: the customer
    /// is there (or on the way) whether or not a join callback ever comes.
    pub fn customer_redirected(&mut self, attempt: u32) -> Result<(), DomainError> {
        self.current_attempt(attempt)?;
        self.customer_moved = true;
        Ok(())
    }

    /// Twilio named the room (a participant create answered with its SID).
    pub fn room_named(&mut self, sid: &str) {
        if self.room_sid.is_none() {
            self.room_sid = Some(sid.to_owned());
        }
    }

    /// Records a follow-up Twilio has carried out.
    pub fn follow_up_done(&mut self, done: &FollowUp) {
        match done {
            FollowUp::EndLeg(_) => {}
            FollowUp::AnchorRoomOnTarget { attempt } => {
                if let Some(t) = self.transfer.as_mut().filter(|t| t.attempt == *attempt) {
                    t.target_anchors_room = true;
                }
                if let Some(o) = self.owner.as_mut().filter(|o| o.attempt == *attempt) {
                    o.anchors_room = true;
                }
            }
            FollowUp::LiftAnchor { attempt } => {
                if let Some(o) = self.owner.as_mut().filter(|o| o.attempt == *attempt) {
                    o.anchors_room = false;
                }
            }
            FollowUp::ReleaseCustomer => self.customer_released = true,
            FollowUp::ResumeCustomer => self.customer_held = false,
        }
    }

    /// A blind transfer from the room (the conference already started, so
    /// its wait music no longer plays): Twilio put the customer on hold with
    /// music until the next agent answers, and the agent handing over is
    /// free to go.
    pub fn waiting_on_hold(&mut self, attempt: u32) -> Result<(), DomainError> {
        let transfer = self.current_attempt(attempt)?;
        if transfer.kind == TransferKind::Cold {
            self.customer_held = true;
        }
        Ok(())
    }

    /// Puts the customer on hold, or takes them off it. Holding is a
    /// consult: only while the first agent is in the room with the customer
    /// during a warm transfer, so a held customer always has an agent who
    /// can take them off hold. Resuming is always allowed.
    pub fn hold_customer(&mut self, held: bool) -> Result<(), DomainError> {
        if !held {
            self.customer_held = false;
            return Ok(());
        }
        let state = self.transfer_state().ok_or(DomainError::NoTransfer)?;
        let warm = self
            .transfer
            .as_ref()
            .is_some_and(|t| t.kind == TransferKind::Warm);
        let first_agent_with_customer = self.customer_in_room() && !self.first_agent_gone();
        if !(warm && state.is_active() && first_agent_with_customer) {
            return Err(DomainError::CannotHold {
                state: state.as_str(),
            });
        }
        self.customer_held = true;
        if let Some(transfer) = self.transfer.as_mut() {
            transfer.consulted = true;
        }
        Ok(())
    }

    fn current_attempt(&mut self, attempt: u32) -> Result<&mut Transfer, DomainError> {
        self.transfer
            .as_mut()
            .filter(|t| t.attempt == attempt)
            .ok_or(DomainError::NoTransfer)
    }

    /// Twilio refused part of the transfer. `customer_moved` says whether the
    /// customer's redirect went through (then the customer is in the room).
    /// Repeating it changes nothing.
    pub fn fail_transfer(
        &mut self,
        attempt: u32,
        reason: String,
        customer_moved: bool,
    ) -> Result<(), DomainError> {
        let transfer = self.current_attempt(attempt)?;
        if transfer.outcome.is_none() {
            transfer.outcome = Some(TransferOutcome::Failed { reason });
        }
        self.customer_moved |= customer_moved;
        Ok(())
    }

    /// Calls off the second agent, ringing or already on the line (a
    /// take-back: wrong person, wrong team), as long as the first agent has
    /// not left. The first agent stays with the customer and may try again.
    pub fn cancel_transfer(&mut self) -> Result<(), DomainError> {
        let state = self.transfer_state().ok_or(DomainError::NoTransfer)?;
        if state == TransferState::Cancelled {
            return Ok(());
        }
        let blind = self
            .transfer
            .as_ref()
            .is_some_and(|t| t.kind == TransferKind::Cold);
        // Once agent one has left, the state is no longer active: the call
        // is agent two's to keep.
        let cancellable = state.is_active() && !blind;
        if !cancellable {
            return Err(DomainError::NotCancellable {
                state: state.as_str(),
            });
        }
        if let Some(transfer) = self.transfer.as_mut() {
            transfer.outcome = Some(TransferOutcome::Cancelled);
        }
        Ok(())
    }

    /// The first agent drops off, once the second agent is in. The second
    /// agent must first be made to end the room on leaving
    /// ([`FollowUp::AnchorRoomOnTarget`]), so the customer is never left
    /// behind in a room with nobody.
    /// A held customer must be taken off hold first (a consult completes
    /// with everybody hearing each other), so they are never left on hold
    /// with nobody who knows it.
    pub fn first_agent_leaves(&mut self) -> Result<(), DomainError> {
        let state = self.transfer_state().ok_or(DomainError::NoTransfer)?;
        match state {
            TransferState::FirstAgentLeft => Ok(()),
            state if state.target_on_the_line() && self.customer_held => {
                Err(DomainError::CannotLeave {
                    state: state.as_str(),
                })
            }
            state if state.target_on_the_line() => {
                if let Some(transfer) = self.transfer.as_mut() {
                    transfer.outcome = Some(TransferOutcome::FirstAgentLeft);
                }
                Ok(())
            }
            other => Err(DomainError::CannotLeave {
                state: other.as_str(),
            }),
        }
    }

    /// Applies what a callback reported. Idempotent, and never backwards.
    pub fn observe(&mut self, observation: Observation) -> Observed {
        let applied = match observation {
            // An inbound call has no leg 1: its SID is the caller's call.
            Observation::AgentLeg(obs) => {
                obs.call_sid == self.id
                    && self.inbound.is_none()
                    && replace(&mut self.agent_leg, obs)
            }
            Observation::CustomerLeg(obs) => replace(&mut self.customer_leg, obs),
            Observation::TargetLeg {
                attempt,
                observation,
            } => match (self.transfer.as_mut(), self.owner.as_mut()) {
                (Some(t), _) if t.attempt == attempt => replace(&mut t.target_leg, observation),
                // The owner came in with an earlier attempt.
                (_, Some(o)) if o.attempt == attempt => replace(&mut o.leg, observation),
                // An older attempt's callback: that attempt is over.
                _ => false,
            },
            Observation::SupervisorLeg { visit, observation } => {
                self.observe_supervisor_leg(visit, observation)
            }
            Observation::PartyLeg { visit, observation } => {
                self.observe_party_leg(visit, observation)
            }
            Observation::Conference {
                event,
                participant,
                conference,
                ..
            } => self.observe_room(event, participant, conference),
        };
        if applied {
            Observed::Applied
        } else {
            Observed::Ignored
        }
    }

    fn observe_room(
        &mut self,
        event: ConferenceEvent,
        who: Option<RoomParticipant>,
        conference: Option<String>,
    ) -> bool {
        let presence = match event {
            ConferenceEvent::Join => Presence::Joined,
            ConferenceEvent::Leave => Presence::Left,
            // The room's name outlives one conference: a room that ended
            // before the customer came in (a failed attempt) says nothing
            // about the next one. Its end may even come after the
            // customer's join of the next one (each conference's callbacks
            // are queued apart), so a named end counts only once the
            // customer is known to be in that very conference.
            ConferenceEvent::End => {
                let theirs = match &conference {
                    None => true,
                    Some(ended) => {
                        self.customer_presence != Presence::Never
                            && self.room_sid.as_deref() == Some(ended.as_str())
                    }
                };
                let changed = theirs && !self.room_ended && self.customer_in_room();
                self.room_ended |= changed;
                return changed;
            }
            ConferenceEvent::Start => return false,
        };
        if who == Some(RoomParticipant::Customer) && presence == Presence::Joined {
            if let Some(joined) = conference.filter(|_| self.customer_presence == Presence::Never) {
                // Where the customer is: the conference to end, hold in,
                // anchor (the participant create may have named an earlier one).
                let named = self.room_sid.as_deref() != Some(joined.as_str());
                self.room_sid = Some(joined);
                return advance(&mut self.customer_presence, presence) || named;
            }
        }
        let slot = match who {
            Some(RoomParticipant::Supervisor { visit }) => {
                return self.observe_supervisor_presence(visit, presence);
            }
            Some(RoomParticipant::Party { visit }) => {
                return self.observe_party_presence(visit, presence);
            }
            Some(RoomParticipant::Customer) => &mut self.customer_presence,
            Some(RoomParticipant::FirstAgent) => &mut self.first_agent_presence,
            Some(RoomParticipant::SecondAgent { attempt }) => {
                match (self.transfer.as_mut(), self.owner.as_mut()) {
                    (Some(t), _) if t.attempt == attempt => &mut t.target_presence,
                    (_, Some(o)) if o.attempt == attempt => &mut o.presence,
                    _ => return false,
                }
            }
            None => return false,
        };
        advance(slot, presence)
    }

    /// `<Dial action>` of leg 1: follow the customer into the room when a
    /// warm transfer moved (or is moving) the customer there. After a cold
    /// transfer the first agent is free at once.
    pub fn first_agent_should_join_room(&self) -> bool {
        // A supervisor or an outside party joining moves the customer into
        // the room as a transfer does, and leg 1 follows them there.
        if self.moving_for_a_joiner() && !self.is_ended() {
            return true;
        }
        let Some(state) = self.transfer_state() else {
            return false;
        };
        // Leg 1 left long ago: this transfer is an owner's, not theirs.
        if self.owner.is_some() {
            return false;
        }
        if self
            .transfer
            .as_ref()
            .is_some_and(|t| t.kind == TransferKind::Cold)
        {
            return false;
        }
        if self.is_ended() {
            return false;
        }
        let redirect_failed = matches!(state, TransferState::Failed) && !self.customer_in_room();
        !redirect_failed && (state.is_active() || self.customer_in_room())
    }

    /// What Twilio must be asked to do, given what is known now: legs
    /// nobody needs, the second agent made the room's anchor once the first
    /// agent is gone, and a customer found alone sent on to the fallback.
    pub fn follow_ups(&self) -> Vec<FollowUp> {
        let mut out: Vec<FollowUp> = self
            .legs_to_end()
            .into_iter()
            .map(FollowUp::EndLeg)
            .collect();
        if let Some(transfer) = &self.transfer {
            let handing_over = transfer.outcome.is_none()
                || transfer.outcome == Some(TransferOutcome::FirstAgentLeft);
            if handing_over
                && self.first_agent_gone()
                && transfer.target_talking()
                && !transfer.target_anchors_room
                && !self.is_ended()
            {
                out.push(FollowUp::AnchorRoomOnTarget {
                    attempt: transfer.attempt,
                });
            }
        }
        out.extend(self.owner_anchor());
        if self.customer_alone() {
            out.push(FollowUp::ReleaseCustomer);
        } else if self.customer_held && !self.consult_goes_on() && !self.waiting_for_target() {
            out.push(FollowUp::ResumeCustomer);
        }
        out
    }

    /// An owner transferring on must not end the room by leaving; once the
    /// transfer came to nothing and they keep the call, they must again.
    fn owner_anchor(&self) -> Option<FollowUp> {
        let owner = self
            .owner
            .as_ref()
            .filter(|o| o.live() && !self.is_ended())?;
        let state = self.transfer_state()?;
        let attempt = owner.attempt;
        if state.is_active() && owner.anchors_room {
            Some(FollowUp::LiftAnchor { attempt })
        } else if state.is_retryable() && !owner.anchors_room {
            Some(FollowUp::AnchorRoomOnTarget { attempt })
        } else {
            None
        }
    }

    /// After a blind transfer from the room the customer waits on hold,
    /// hearing music, while the next agent's phone rings; they come off hold
    /// when that agent answers.
    fn waiting_for_target(&self) -> bool {
        let Some(transfer) = &self.transfer else {
            return false;
        };
        let ringing = self.transfer_state().is_some_and(|s| s.is_active())
            && transfer.target_live()
            && !transfer.target_talking();
        // Between two members of a team the customer stays on hold too.
        transfer.kind == TransferKind::Cold && (ringing || self.next_member_due().is_some())
    }

    /// A consult needs both agents: the first in the room with the held
    /// customer (who can take them off hold) and the second on the line.
    fn consult_goes_on(&self) -> bool {
        let transfer_on = self.transfer_state().is_some_and(|s| s.is_active());
        let target_live = self.transfer.as_ref().is_some_and(Transfer::target_live);
        transfer_on && target_live && !self.first_agent_gone() && !self.is_ended()
    }

    /// Calls that must be ended after what was observed: nobody needs them,
    /// and left alone they would ring or sit in an empty room.
    fn legs_to_end(&self) -> Vec<CallSid> {
        let mut legs = Vec::new();
        let live = |leg: &Option<LegObservation>| {
            leg.as_ref()
                .filter(|l| !l.status.is_final())
                .map(|l| l.call_sid.clone())
        };
        if let (Some(transfer), Some(state)) = (&self.transfer, self.transfer_state()) {
            let called_off = matches!(
                state,
                TransferState::Cancelled | TransferState::Failed | TransferState::Ended
            );
            if called_off {
                legs.extend(live(&transfer.target_leg));
            }
            // The customer hung up mid-transfer: the first agent must not be
            // left waiting in a room that will never fill.
            if final_leg(&self.customer_leg) && transfer.outcome.is_none() {
                legs.extend(live(self.handing_over_leg()));
            }
        }
        // Nor left in a room a joiner's request moved the customer to.
        if final_leg(&self.customer_leg) && self.moving_for_a_joiner() {
            legs.extend(live(&self.agent_leg));
        }
        legs.extend(self.supervisor_leg_to_end());
        legs.extend(self.party_leg_to_end());
        legs
    }
}

/// A transfer after a handover: its target becomes the owner.
fn handing_on_now(previous: Option<TransferState>) -> bool {
    previous == Some(TransferState::FirstAgentLeft)
}

/// Keeps `observation` if it is news for `slot` (a leg's status only moves
/// forward); true if it was.
pub(super) fn replace(slot: &mut Option<LegObservation>, observation: LegObservation) -> bool {
    if observation.supersedes(slot.as_ref()) {
        *slot = Some(observation);
        true
    } else {
        false
    }
}

/// Moves a presence forward (never back); true if it moved.
pub(super) fn advance(slot: &mut Presence, to: Presence) -> bool {
    if to > *slot {
        *slot = to;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT_SID: &str = "CA00000000000000000000000000000001";
    const CUSTOMER_SID: &str = "CA00000000000000000000000000000002";
    const TARGET_SID: &str = "CA00000000000000000000000000000003";

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

    fn new_session() -> CallSession {
        CallSession::start(
            sid(AGENT_SID),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn agent(s: &mut CallSession, status: LegStatus, seq: u32) -> Observed {
        s.observe(Observation::AgentLeg(leg(AGENT_SID, status, seq)))
    }

    fn customer(s: &mut CallSession, status: LegStatus, seq: u32) -> Observed {
        s.observe(Observation::CustomerLeg(leg(CUSTOMER_SID, status, seq)))
    }

    fn target(s: &mut CallSession, attempt: u32, status: LegStatus, seq: u32) -> Observed {
        s.observe(Observation::TargetLeg {
            attempt,
            observation: leg(TARGET_SID, status, seq),
        })
    }

    fn room(s: &mut CallSession, event: ConferenceEvent, who: Option<RoomParticipant>) -> Observed {
        s.observe(Observation::Conference {
            event,
            participant: who,
            sequence: None,
            conference: None,
            at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn connected() -> CallSession {
        let mut s = new_session();
        agent(&mut s, LegStatus::Ringing, 1);
        agent(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::Ringing, 1);
        customer(&mut s, LegStatus::InProgress, 2);
        s
    }

    fn transfer(s: &mut CallSession) -> Result<TransferDecision, DomainError> {
        s.request_transfer(
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_call_goes_from_ringing_to_connected() {
        let mut s = new_session();
        assert_eq!(s.state(), SessionState::AgentRinging);
        agent(&mut s, LegStatus::InProgress, 2);
        assert_eq!(s.state(), SessionState::AgentAnswered);
        customer(&mut s, LegStatus::Ringing, 1);
        assert_eq!(s.state(), SessionState::CustomerRinging);
        customer(&mut s, LegStatus::InProgress, 2);
        assert_eq!(s.state(), SessionState::Connected);
        customer(&mut s, LegStatus::Completed, 3);
        assert_eq!(s.state(), SessionState::Ended);
    }

    #[test]
    fn a_customer_who_never_answers_ends_the_call() {
        for status in [LegStatus::Busy, LegStatus::NoAnswer, LegStatus::Failed] {
            let mut s = new_session();
            agent(&mut s, LegStatus::InProgress, 2);
            customer(&mut s, status, 2);
            assert_eq!(s.state(), SessionState::Ended, "{status:?}");
            assert_eq!(transfer(&mut s), Err(DomainError::Ended));
        }
    }

    #[test]
    fn happy_transfer_walks_every_state() {
        let mut s = connected();
        assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
        assert_eq!(s.transfer_state(), Some(TransferState::Requested));
        assert_eq!(s.state(), SessionState::Transferring);
        assert!(s.first_agent_should_join_room());
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::Customer),
        );
        assert_eq!(s.transfer_state(), Some(TransferState::CustomerInRoom));
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::FirstAgent),
        );
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentInRoom));
        target(&mut s, 1, LegStatus::Ringing, 1);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetRinging));
        assert_eq!(
            s.first_agent_leaves(),
            Err(DomainError::CannotLeave {
                state: "target-ringing"
            })
        );
        target(&mut s, 1, LegStatus::InProgress, 2);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetAnswered));
        assert_eq!(s.clone().cancel_transfer(), Ok(()), "a take-back");
        assert_eq!(s.first_agent_leaves(), Ok(()));
        assert_eq!(s.first_agent_leaves(), Ok(()), "repeating is harmless");
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentLeft));
        assert_eq!(s.state(), SessionState::Transferred);
        agent(&mut s, LegStatus::Completed, 5);
        assert_eq!(
            s.state(),
            SessionState::Transferred,
            "the customer is still talking"
        );
        assert_eq!(
            transfer(&mut s),
            Err(DomainError::TargetOnTheCall),
            "the call is the second agent's now"
        );
        customer(&mut s, LegStatus::Completed, 6);
        room(&mut s, ConferenceEvent::End, None);
        assert_eq!(s.state(), SessionState::Ended);
        assert_eq!(s.transfer_state(), Some(TransferState::Ended));
    }

    #[test]
    fn transfer_needs_a_connected_customer() {
        let mut s = new_session();
        assert_eq!(
            transfer(&mut s),
            Err(DomainError::NotConnected {
                state: "agent-ringing"
            })
        );
        agent(&mut s, LegStatus::InProgress, 2);
        customer(&mut s, LegStatus::Ringing, 1);
        assert_eq!(
            transfer(&mut s),
            Err(DomainError::NotConnected {
                state: "customer-ringing"
            })
        );
        assert!(s.transfer.is_none());
    }

    #[test]
    fn one_transfer_at_a_time_and_idempotency_keys() {
        let mut s = connected();
        let key = Some("k1".to_owned());
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, key.clone(), now),
            Ok(TransferDecision::New)
        );
        assert_eq!(
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, key.clone(), now),
            Ok(TransferDecision::Existing)
        );
        assert_eq!(
            s.request_transfer(
                phone("+15550100004"),
                TransferKind::Warm,
                Some("k2".into()),
                now
            ),
            Err(DomainError::TransferActive { state: "requested" })
        );
        assert_eq!(
            transfer(&mut s),
            Err(DomainError::TransferActive { state: "requested" })
        );
        assert_eq!(s.transfer.as_ref().unwrap().attempt, 1);
    }

    #[test]
    fn busy_no_answer_and_failure_can_be_retried() {
        for (status, state) in [
            (LegStatus::Busy, TransferState::TargetBusy),
            (LegStatus::NoAnswer, TransferState::TargetNoAnswer),
            (LegStatus::Failed, TransferState::TargetFailed),
            (LegStatus::Canceled, TransferState::TargetFailed),
        ] {
            let mut s = connected();
            transfer(&mut s).unwrap();
            room(
                &mut s,
                ConferenceEvent::Join,
                Some(RoomParticipant::Customer),
            );
            target(&mut s, 1, LegStatus::Ringing, 1);
            target(&mut s, 1, status, 2);
            assert_eq!(s.transfer_state(), Some(state));
            assert_eq!(
                s.state(),
                SessionState::Connected,
                "first agent and customer stay together"
            );
            assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
            let retry = s.transfer.as_ref().unwrap();
            assert_eq!(retry.attempt, 2);
            assert!(s.customer_in_room(), "no second redirect");
            // The first attempt's late callbacks are ignored.
            assert_eq!(
                target(&mut s, 1, LegStatus::Completed, 3),
                Observed::Ignored
            );
            assert_eq!(s.transfer_state(), Some(TransferState::CustomerInRoom));
        }
    }

    #[test]
    fn cancel_only_while_ringing() {
        let mut s = connected();
        assert_eq!(s.cancel_transfer(), Err(DomainError::NoTransfer));
        transfer(&mut s).unwrap();
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::Customer),
        );
        target(&mut s, 1, LegStatus::Ringing, 1);
        assert_eq!(s.cancel_transfer(), Ok(()));
        assert_eq!(s.cancel_transfer(), Ok(()), "repeating is harmless");
        assert_eq!(s.transfer_state(), Some(TransferState::Cancelled));
        assert_eq!(
            s.legs_to_end(),
            vec![sid(TARGET_SID)],
            "the ringing phone is called off"
        );
        target(&mut s, 1, LegStatus::Canceled, 2);
        assert!(s.legs_to_end().is_empty());
        assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
    }

    #[test]
    fn failed_redirect_leaves_the_bridge_alone() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.fail_transfer(1, "Call is not in-progress".into(), false)
            .unwrap();
        assert_eq!(s.transfer_state(), Some(TransferState::Failed));
        assert!(!s.first_agent_should_join_room());
        assert_eq!(s.state(), SessionState::Connected);
        assert_eq!(
            s.fail_transfer(2, "x".into(), false),
            Err(DomainError::NoTransfer)
        );
        assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
        assert!(!s.customer_in_room(), "the retry redirects again");
    }

    #[test]
    fn failed_participant_after_redirect_keeps_everyone_in_the_room() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.fail_transfer(1, "invalid To".into(), true).unwrap();
        assert!(
            s.first_agent_should_join_room(),
            "the agent follows the customer"
        );
        transfer(&mut s).unwrap();
        assert!(s.customer_in_room());
    }

    #[test]
    fn customer_hanging_up_mid_transfer_ends_everything() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::Customer),
        );
        target(&mut s, 1, LegStatus::Ringing, 1);
        customer(&mut s, LegStatus::Completed, 3);
        assert_eq!(s.state(), SessionState::Ended);
        assert_eq!(s.transfer_state(), Some(TransferState::Ended));
        assert!(!s.first_agent_should_join_room());
        let legs = s.legs_to_end();
        assert!(legs.contains(&sid(TARGET_SID)));
        assert!(legs.contains(&sid(AGENT_SID)));
        assert_eq!(transfer(&mut s), Err(DomainError::Ended));
    }

    #[test]
    fn plain_call_dial_action_hangs_up() {
        let mut s = connected();
        assert!(!s.first_agent_should_join_room());
        customer(&mut s, LegStatus::Completed, 3);
        assert!(!s.first_agent_should_join_room());
        assert!(s.legs_to_end().is_empty());
    }

    #[test]
    fn duplicates_and_out_of_order_callbacks_change_nothing() {
        let mut s = connected();
        let before = s.clone();
        assert_eq!(
            customer(&mut s, LegStatus::InProgress, 2),
            Observed::Ignored
        );
        assert_eq!(customer(&mut s, LegStatus::Ringing, 1), Observed::Ignored);
        assert_eq!(agent(&mut s, LegStatus::Ringing, 1), Observed::Ignored);
        assert_eq!(s, before);
        customer(&mut s, LegStatus::Completed, 4);
        assert_eq!(
            customer(&mut s, LegStatus::InProgress, 3),
            Observed::Ignored
        );
        assert_eq!(s.state(), SessionState::Ended);
        assert_eq!(
            room(&mut s, ConferenceEvent::Start, None),
            Observed::Ignored
        );
        // Leave before join (reordered): the join that arrives late is ignored.
        let mut s = connected();
        transfer(&mut s).unwrap();
        room(
            &mut s,
            ConferenceEvent::Leave,
            Some(RoomParticipant::FirstAgent),
        );
        assert_eq!(
            room(
                &mut s,
                ConferenceEvent::Join,
                Some(RoomParticipant::FirstAgent)
            ),
            Observed::Ignored
        );
        assert_eq!(s.first_agent_presence, Presence::Left);
    }

    #[test]
    fn callbacks_about_other_calls_are_ignored() {
        let mut s = connected();
        let stranger = LegObservation {
            call_sid: sid("CAffffffffffffffffffffffffffffffff"),
            status: LegStatus::Completed,
            sequence: Some(9),
            at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            s.observe(Observation::AgentLeg(stranger.clone())),
            Observed::Ignored
        );
        assert_eq!(
            s.observe(Observation::CustomerLeg(stranger)),
            Observed::Ignored
        );
        assert_eq!(
            target(&mut s, 1, LegStatus::Ringing, 1),
            Observed::Ignored,
            "no transfer yet"
        );
        assert_eq!(s.state(), SessionState::Connected);
    }

    #[test]
    fn second_agent_hanging_up_before_the_handover_can_be_retried() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        target(&mut s, 1, LegStatus::InProgress, 2);
        target(&mut s, 1, LegStatus::Completed, 3);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetLeft));
        assert_eq!(
            s.first_agent_leaves(),
            Err(DomainError::CannotLeave {
                state: "target-left"
            })
        );
        assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
    }

    #[test]
    fn states_serialise_as_the_api_names_them() {
        for state in [
            SessionState::AgentRinging,
            SessionState::AgentAnswered,
            SessionState::CustomerRinging,
            SessionState::Connected,
            SessionState::Transferring,
            SessionState::Transferred,
            SessionState::Ended,
        ] {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, serde_json::json!(state.as_str()));
        }
        for state in [
            TransferState::Requested,
            TransferState::CustomerInRoom,
            TransferState::FirstAgentInRoom,
            TransferState::TargetRinging,
            TransferState::TargetAnswered,
            TransferState::TargetBusy,
            TransferState::TargetNoAnswer,
            TransferState::TargetFailed,
            TransferState::TargetLeft,
            TransferState::Cancelled,
            TransferState::Failed,
            TransferState::FirstAgentLeft,
            TransferState::Ended,
        ] {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, serde_json::json!(state.as_str()));
        }
    }

    fn in_room_with_target_ringing() -> CallSession {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.customer_redirected(1).unwrap();
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::FirstAgent),
        );
        target(&mut s, 1, LegStatus::Ringing, 1);
        s
    }

    fn room_event(
        s: &mut CallSession,
        event: ConferenceEvent,
        who: Option<RoomParticipant>,
        conference: &str,
    ) -> Observed {
        s.observe(Observation::Conference {
            event,
            participant: who,
            sequence: None,
            conference: Some(conference.to_owned()),
            at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    /// Agent two was busy before the customer arrived: the conference the
    /// participant create opened ended, and the customer's redirect opened
    /// the next one of the same name. Each conference's callbacks are
    /// queued apart, so the first one's end can come after the customer's
    /// join of the second (seen in the scale run at 10 calls).
    #[test]
    fn an_earlier_conference_ending_late_does_not_end_the_call() {
        const FIRST: &str = "CF00000000000000000000000000000001";
        const SECOND: &str = "CF00000000000000000000000000000002";
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.room_named(FIRST);
        s.customer_redirected(1).unwrap();
        target(&mut s, 1, LegStatus::Busy, 2);
        // Its end before the customer's join changes nothing either.
        let customer_room = Some(RoomParticipant::Customer);
        assert_eq!(
            room_event(&mut s, ConferenceEvent::Join, customer_room, SECOND),
            Observed::Applied
        );
        assert_eq!(s.room_sid.as_deref(), Some(SECOND), "where the customer is");
        assert_eq!(
            room_event(&mut s, ConferenceEvent::End, None, FIRST),
            Observed::Ignored
        );
        assert_eq!(s.state(), SessionState::Connected);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetBusy));
        // The customer's own conference ending does end it.
        assert_eq!(
            room_event(&mut s, ConferenceEvent::End, None, SECOND),
            Observed::Applied
        );
        assert_eq!(s.state(), SessionState::Ended);
    }

    #[test]
    fn an_earlier_conference_ending_before_the_customers_join_changes_nothing() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.room_named("CF00000000000000000000000000000001");
        s.customer_redirected(1).unwrap();
        target(&mut s, 1, LegStatus::Busy, 2);
        assert_eq!(
            room_event(
                &mut s,
                ConferenceEvent::End,
                None,
                "CF00000000000000000000000000000001"
            ),
            Observed::Ignored
        );
        assert_eq!(s.state(), SessionState::Connected);
    }

    #[test]
    fn a_room_that_ended_before_the_customer_came_says_nothing_about_the_next() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.room_named("CF00000000000000000000000000000001");
        s.fail_transfer(1, "redirect refused".into(), false)
            .unwrap();
        assert_eq!(room(&mut s, ConferenceEvent::End, None), Observed::Ignored);
        assert_eq!(s.state(), SessionState::Connected);
        transfer(&mut s).unwrap();
        assert_eq!(s.room_sid, None, "the next room is a new conference");
        s.customer_redirected(2).unwrap();
        assert_eq!(room(&mut s, ConferenceEvent::End, None), Observed::Applied);
        assert_eq!(s.state(), SessionState::Ended);
    }

    #[test]
    fn a_transfer_to_someone_already_on_the_call_is_refused() {
        let mut s = connected();
        let now = OffsetDateTime::UNIX_EPOCH;
        for number in [s.customer_number.clone(), s.agent_number.clone()] {
            assert_eq!(
                s.request_transfer(number, TransferKind::Warm, None, now),
                Err(DomainError::TargetOnTheCall)
            );
        }
        assert!(s.transfer.is_none());
    }

    #[test]
    fn an_accepted_redirect_puts_the_customer_in_the_room_without_a_callback() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        assert!(!s.customer_in_room());
        s.customer_redirected(1).unwrap();
        assert!(s.customer_in_room());
        assert_eq!(s.customer_redirected(2), Err(DomainError::NoTransfer));
    }

    #[test]
    fn agent_two_hanging_up_after_the_handover_releases_the_customer() {
        let mut s = in_room_with_target_ringing();
        target(&mut s, 1, LegStatus::InProgress, 2);
        s.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: 1 });
        s.first_agent_leaves().unwrap();
        agent(&mut s, LegStatus::Completed, 5);
        assert!(!s.customer_alone(), "the second agent is there");
        assert!(s.follow_ups().is_empty(), "{:?}", s.follow_ups());
        target(&mut s, 1, LegStatus::Completed, 3);
        assert!(s.customer_alone());
        assert_eq!(s.follow_ups(), vec![FollowUp::ReleaseCustomer]);
        s.follow_up_done(&FollowUp::ReleaseCustomer);
        assert!(!s.customer_alone());
        assert!(s.follow_ups().is_empty());
        assert_eq!(s.state(), SessionState::Ended);
    }

    #[test]
    fn agent_one_hanging_up_while_agent_two_rings() {
        // Agent two answers: that is a handover, and agent two becomes the
        // room's anchor.
        let mut s = in_room_with_target_ringing();
        agent(&mut s, LegStatus::Completed, 5);
        assert!(s.first_agent_gone());
        assert!(!s.customer_alone(), "agent two is ringing");
        assert!(s.follow_ups().is_empty());
        target(&mut s, 1, LegStatus::InProgress, 2);
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentLeft));
        assert_eq!(s.state(), SessionState::Transferred);
        assert_eq!(
            s.follow_ups(),
            vec![FollowUp::AnchorRoomOnTarget { attempt: 1 }]
        );
        assert_eq!(s.first_agent_leaves(), Ok(()), "already gone: harmless");
        // Agent two busy, no answer or failed: the customer is released.
        for status in [LegStatus::Busy, LegStatus::NoAnswer, LegStatus::Failed] {
            let mut s = in_room_with_target_ringing();
            agent(&mut s, LegStatus::Completed, 5);
            target(&mut s, 1, status, 2);
            assert!(s.customer_alone(), "{status:?}");
            assert_eq!(
                s.follow_ups(),
                vec![FollowUp::ReleaseCustomer],
                "{status:?}"
            );
        }
    }

    #[test]
    fn the_first_agent_leaving_the_room_counts_as_gone() {
        let mut s = in_room_with_target_ringing();
        target(&mut s, 1, LegStatus::NoAnswer, 2);
        assert!(!s.customer_alone(), "agent one is still with the customer");
        room(
            &mut s,
            ConferenceEvent::Leave,
            Some(RoomParticipant::FirstAgent),
        );
        assert!(s.customer_alone());
    }

    #[test]
    fn a_customer_still_on_the_bridge_is_never_alone() {
        let mut s = connected();
        transfer(&mut s).unwrap();
        s.fail_transfer(1, "refused".into(), false).unwrap();
        assert!(!s.customer_alone());
        agent(&mut s, LegStatus::Completed, 5);
        assert!(
            !s.customer_alone(),
            "the bridge ended with the agent's hang-up"
        );
        assert_eq!(s.state(), SessionState::Ended);
    }

    #[test]
    fn a_cancelled_transfer_after_agent_one_left_releases_the_customer() {
        let mut s = in_room_with_target_ringing();
        agent(&mut s, LegStatus::Completed, 5);
        s.cancel_transfer().unwrap();
        let follow_ups = s.follow_ups();
        assert!(follow_ups.contains(&FollowUp::EndLeg(sid(TARGET_SID))));
        assert!(follow_ups.contains(&FollowUp::ReleaseCustomer));
    }

    #[test]
    fn first_agent_hanging_up_a_plain_call_ends_it() {
        let mut s = connected();
        agent(&mut s, LegStatus::Completed, 4);
        assert_eq!(s.state(), SessionState::Ended);
    }

    /// Customer and both agents in the room, agent two on the line.
    fn all_three_talking() -> CallSession {
        let mut s = in_room_with_target_ringing();
        target(&mut s, 1, LegStatus::InProgress, 2);
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::SecondAgent { attempt: 1 }),
        );
        assert_eq!(s.transfer_state(), Some(TransferState::TargetAnswered));
        s
    }

    fn blind(s: &mut CallSession) -> Result<TransferDecision, DomainError> {
        s.request_transfer(
            phone("+15550100003"),
            TransferKind::Cold,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_consult_holds_the_customer_then_completes_as_a_handover() {
        let mut s = all_three_talking();
        assert_eq!(s.hold_customer(true), Ok(()));
        assert_eq!(s.transfer_state(), Some(TransferState::Consulting));
        assert_eq!(s.state(), SessionState::Transferring);
        assert!(s.follow_ups().is_empty(), "{:?}", s.follow_ups());
        // Agent one cannot leave a customer on hold behind them.
        assert_eq!(
            s.clone().first_agent_leaves(),
            Err(DomainError::CannotLeave {
                state: "consulting"
            })
        );
        assert_eq!(s.hold_customer(false), Ok(()));
        assert_eq!(s.transfer_state(), Some(TransferState::ThreeWay));
        assert_eq!(s.first_agent_leaves(), Ok(()));
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentLeft));
    }

    #[test]
    fn holding_needs_the_first_agent_in_the_room_during_a_warm_transfer() {
        let mut s = connected();
        assert_eq!(s.hold_customer(true), Err(DomainError::NoTransfer));
        assert_eq!(s.hold_customer(false), Ok(()), "resuming is always allowed");
        let mut s = all_three_talking();
        assert_eq!(s.first_agent_leaves(), Ok(()));
        assert_eq!(
            s.hold_customer(true),
            Err(DomainError::CannotHold {
                state: "first-agent-left"
            })
        );
        let mut s = connected();
        blind(&mut s).unwrap();
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::Customer),
        );
        assert!(matches!(
            s.hold_customer(true),
            Err(DomainError::CannotHold { .. })
        ));
    }

    #[test]
    fn a_consult_that_loses_an_agent_takes_the_customer_off_hold() {
        // Agent two hangs up during the consult: agent one has the customer back.
        let mut s = all_three_talking();
        s.hold_customer(true).unwrap();
        target(&mut s, 1, LegStatus::Completed, 3);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetLeft));
        assert_eq!(s.follow_ups(), vec![FollowUp::ResumeCustomer]);
        s.follow_up_done(&FollowUp::ResumeCustomer);
        assert!(!s.customer_held);
        assert!(s.follow_ups().is_empty());

        // Agent one hangs up during the consult: agent two gets the customer.
        let mut s = all_three_talking();
        s.hold_customer(true).unwrap();
        agent(&mut s, LegStatus::Completed, 5);
        let follow_ups = s.follow_ups();
        assert!(
            follow_ups.contains(&FollowUp::ResumeCustomer),
            "{follow_ups:?}"
        );
        assert!(
            follow_ups.contains(&FollowUp::AnchorRoomOnTarget { attempt: 1 }),
            "{follow_ups:?}"
        );
    }

    #[test]
    fn the_first_agent_can_take_the_call_back_from_an_answered_second_agent() {
        let mut s = all_three_talking();
        s.hold_customer(true).unwrap();
        assert_eq!(s.cancel_transfer(), Ok(()));
        assert_eq!(s.transfer_state(), Some(TransferState::Cancelled));
        let follow_ups = s.follow_ups();
        assert!(
            follow_ups.contains(&FollowUp::EndLeg(sid(TARGET_SID))),
            "{follow_ups:?}"
        );
        assert!(
            follow_ups.contains(&FollowUp::ResumeCustomer),
            "{follow_ups:?}"
        );
        // And may try again, the customer still in the room.
        assert_eq!(transfer(&mut s), Ok(TransferDecision::New));
        assert_eq!(s.transfer.as_ref().unwrap().attempt, 2);
        assert!(s.customer_in_room());
        // Once agent one has left, the call is agent two's to keep.
        let mut s = all_three_talking();
        s.first_agent_leaves().unwrap();
        assert_eq!(
            s.cancel_transfer(),
            Err(DomainError::NotCancellable {
                state: "first-agent-left"
            })
        );
    }

    #[test]
    fn a_blind_transfer_frees_the_first_agent_and_never_strands_the_customer() {
        let mut s = connected();
        assert_eq!(blind(&mut s), Ok(TransferDecision::New));
        let transfer = s.transfer.clone().unwrap();
        assert_eq!(transfer.kind, TransferKind::Cold);
        assert!(transfer.target_anchors_room, "agent two ends the room");
        assert!(
            !s.first_agent_should_join_room(),
            "agent one is free at once"
        );
        assert_eq!(
            s.cancel_transfer(),
            Err(DomainError::NotCancellable { state: "requested" })
        );
        s.customer_redirected(1).unwrap();
        agent(&mut s, LegStatus::Completed, 5);
        assert!(!s.is_ended(), "the customer waits for agent two");
        target(&mut s, 1, LegStatus::Ringing, 1);
        assert!(!s.customer_alone());
        assert!(s.follow_ups().is_empty(), "{:?}", s.follow_ups());
        let mut busy = s.clone();
        target(&mut busy, 1, LegStatus::Busy, 2);
        assert!(busy.customer_alone());
        assert_eq!(busy.follow_ups(), vec![FollowUp::ReleaseCustomer]);
        target(&mut s, 1, LegStatus::InProgress, 2);
        assert_eq!(s.transfer_state(), Some(TransferState::FirstAgentLeft));
        assert_eq!(s.state(), SessionState::Transferred);
        assert!(
            s.follow_ups().is_empty(),
            "already anchored: {:?}",
            s.follow_ups()
        );
    }

    #[test]
    fn a_blind_transfer_from_the_room_waits_on_hold_until_the_next_agent_answers() {
        let mut s = in_room_with_target_ringing();
        target(&mut s, 1, LegStatus::Busy, 2);
        assert_eq!(blind(&mut s), Ok(TransferDecision::New));
        assert!(s.customer_in_room(), "no second redirect");
        s.waiting_on_hold(2).unwrap();
        assert!(s.customer_held);
        // Agent one is free at once; the customer waits for agent two.
        agent(&mut s, LegStatus::Completed, 5);
        target(&mut s, 2, LegStatus::Ringing, 1);
        assert!(!s.customer_alone());
        assert!(s.follow_ups().is_empty(), "{:?}", s.follow_ups());
        let mut answered = s.clone();
        target(&mut answered, 2, LegStatus::InProgress, 2);
        assert_eq!(answered.follow_ups(), vec![FollowUp::ResumeCustomer]);
        assert_eq!(
            answered.transfer_state(),
            Some(TransferState::FirstAgentLeft)
        );
        // Nobody answers: the customer is sent on to the fallback.
        target(&mut s, 2, LegStatus::NoAnswer, 2);
        assert_eq!(s.follow_ups(), vec![FollowUp::ReleaseCustomer]);
    }

    #[test]
    fn agent_one_hung_up_by_a_blind_transfer_before_the_move_is_recorded() {
        let mut s = connected();
        blind(&mut s).unwrap();
        agent(&mut s, LegStatus::Completed, 5);
        assert!(!s.is_ended(), "the customer is on the way to the room");
        assert!(s.follow_ups().is_empty(), "{:?}", s.follow_ups());
        target(&mut s, 1, LegStatus::Ringing, 1);
        assert!(s.follow_ups().is_empty(), "agent two must keep ringing");
        s.customer_redirected(1).unwrap();
        assert_eq!(s.transfer_state(), Some(TransferState::TargetRinging));
        // Had Twilio refused the redirect, the call would be over.
        let mut refused = connected();
        blind(&mut refused).unwrap();
        agent(&mut refused, LegStatus::Completed, 5);
        refused
            .fail_transfer(1, "not in progress".into(), false)
            .unwrap();
        assert!(refused.is_ended());
    }

    #[test]
    fn waiting_on_hold_is_only_for_a_blind_transfer() {
        let mut s = in_room_with_target_ringing();
        s.waiting_on_hold(1).unwrap();
        assert!(!s.customer_held, "a warm transfer holds only for a consult");
        assert_eq!(s.waiting_on_hold(7), Err(DomainError::NoTransfer));
    }

    #[test]
    fn the_call_belongs_to_the_second_agent_only_after_a_handover() {
        let first = phone("+15550100001");
        let second = phone("+15550100003");
        let mut s = in_room_with_target_ringing();
        assert_eq!(s.current_agent(), &first, "ringing");
        target(&mut s, 1, LegStatus::InProgress, 2);
        assert_eq!(
            s.current_agent(),
            &first,
            "answered, first agent still there"
        );
        s.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: 1 });
        assert_eq!(s.current_agent(), &first, "anchored is not yet handed over");
        s.first_agent_leaves().unwrap();
        assert!(s.handed_over());
        assert_eq!(s.current_agent(), &second);
        agent(&mut s, LegStatus::Completed, 5);
        target(&mut s, 1, LegStatus::Completed, 3);
        s.follow_up_done(&FollowUp::ReleaseCustomer);
        assert_eq!(s.state(), SessionState::Ended);
        assert_eq!(s.current_agent(), &second, "still theirs once ended");

        // The first agent hung up while the second rang; the second answered.
        let mut s = in_room_with_target_ringing();
        agent(&mut s, LegStatus::Completed, 5);
        assert_eq!(s.current_agent(), &first, "nobody answered yet");
        target(&mut s, 1, LegStatus::InProgress, 2);
        assert_eq!(s.current_agent(), &second);
        s.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: 1 });
        target(&mut s, 1, LegStatus::Completed, 3);
        assert_eq!(
            s.current_agent(),
            &second,
            "after the second agent's goodbye"
        );

        // A transfer that never reached the second agent leaves the call as it was.
        for status in [LegStatus::Busy, LegStatus::NoAnswer, LegStatus::Failed] {
            let mut s = in_room_with_target_ringing();
            target(&mut s, 1, status, 2);
            assert_eq!(s.current_agent(), &first, "{status:?}");
        }
        let mut s = in_room_with_target_ringing();
        s.cancel_transfer().unwrap();
        assert_eq!(s.current_agent(), &first, "cancelled");
    }

    /// The agents of a three-hop call: A (leg 1), then B, C and D.
    const B: &str = "+15550100003";
    const C: &str = "+15550100004";
    const D: &str = "+15550100005";

    fn agent_sid(attempt: u32) -> String {
        format!("CA{attempt:032x}").replace("CA0", "CAa")
    }

    /// The agent of `attempt`'s leg and room presence, as its callbacks say.
    fn agent_of(s: &mut CallSession, attempt: u32, status: LegStatus, seq: u32) -> Observed {
        s.observe(Observation::TargetLeg {
            attempt,
            observation: leg(&agent_sid(attempt), status, seq),
        })
    }

    fn transfer_to(s: &mut CallSession, to: &str) -> Result<TransferDecision, DomainError> {
        s.request_transfer(
            phone(to),
            TransferKind::Warm,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn hand_to(s: &mut CallSession, to: &str) -> u32 {
        let request = transfer_to(s, to);
        assert_eq!(request, Ok(TransferDecision::New), "to {to}");
        let attempt = s.transfer.as_ref().unwrap().attempt;
        s.customer_redirected(attempt).unwrap();
        // An owner transferring on stops ending the room first.
        if let Some(owner) = &s.owner {
            let lift = FollowUp::LiftAnchor {
                attempt: owner.attempt,
            };
            assert!(s.follow_ups().contains(&lift), "{:?}", s.follow_ups());
            s.follow_up_done(&lift);
            assert!(!s.owner.as_ref().unwrap().anchors_room);
        }
        agent_of(s, attempt, LegStatus::Ringing, 1);
        agent_of(s, attempt, LegStatus::InProgress, 2);
        let who = RoomParticipant::SecondAgent { attempt };
        room(s, ConferenceEvent::Join, Some(who));
        assert_eq!(s.transfer_state(), Some(TransferState::TargetAnswered));
        s.first_agent_leaves().unwrap();
        let anchor = FollowUp::AnchorRoomOnTarget { attempt };
        assert!(s.follow_ups().contains(&anchor), "{:?}", s.follow_ups());
        s.follow_up_done(&anchor);
        attempt
    }

    #[test]
    fn a_call_is_handed_on_three_times_and_keeps_every_hop() {
        let mut s = connected();
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::Customer),
        );
        room(
            &mut s,
            ConferenceEvent::Join,
            Some(RoomParticipant::FirstAgent),
        );
        let to_b = hand_to(&mut s, B);
        agent(&mut s, LegStatus::Completed, 5);
        assert_eq!(s.current_agent(), &phone(B));
        assert_eq!(s.state(), SessionState::Transferred);

        let to_c = hand_to(&mut s, C);
        let owner = s.owner.as_ref().unwrap();
        assert_eq!((owner.attempt, &owner.number), (to_b, &phone(B)));
        assert_eq!(s.current_agent(), &phone(C));
        // B's own callbacks (attempt 1) still reach B: they hang up.
        agent_of(&mut s, to_b, LegStatus::Completed, 3);
        room(
            &mut s,
            ConferenceEvent::Leave,
            Some(RoomParticipant::SecondAgent { attempt: to_b }),
        );
        assert!(!s.owner.as_ref().unwrap().live());
        assert!(!s.customer_alone(), "C talks with the customer");

        let to_d = hand_to(&mut s, D);
        assert_eq!(s.owner.as_ref().unwrap().number, phone(C));
        assert_eq!(s.current_agent(), &phone(D));
        let hops: Vec<_> = s
            .hops
            .iter()
            .map(|h| (h.attempt, h.from.as_str(), h.to.as_str(), h.outcome))
            .collect();
        assert_eq!(
            hops,
            vec![
                (to_b, "+15550100001", B, TransferState::FirstAgentLeft),
                (to_c, B, C, TransferState::FirstAgentLeft),
            ]
        );
        assert_eq!(s.transfer.as_ref().unwrap().attempt, to_d);
        assert_eq!(s.handing_over_agent(), &phone(C));
        // D says goodbye: their leaving ends the room and the call.
        agent_of(&mut s, to_c, LegStatus::Completed, 3);
        agent_of(&mut s, to_d, LegStatus::Completed, 3);
        room(&mut s, ConferenceEvent::End, None);
        assert_eq!(s.state(), SessionState::Ended);
    }

    /// "Live legs" is one rule: the reconciler looks at the owner's leg
    /// after an onward transfer, so the session must not leave its index
    /// (settle) while that leg is live.
    #[test]
    fn a_call_is_not_settled_while_the_agent_who_handed_it_on_has_a_live_leg() {
        let mut s = connected();
        let to_b = hand_to(&mut s, B);
        agent(&mut s, LegStatus::Completed, 5);
        let to_c = hand_to(&mut s, C);
        // C and the customer hang up and the room ends; B's own completed
        // callback is lost.
        agent_of(&mut s, to_c, LegStatus::Completed, 3);
        customer(&mut s, LegStatus::Completed, 5);
        room(&mut s, ConferenceEvent::End, None);
        assert_eq!(s.state(), SessionState::Ended);
        let b = s.owner.as_ref().and_then(|o| o.leg.clone()).unwrap();
        assert!(!b.status.is_final());
        assert!(s.live_legs(), "B's leg is live as far as anyone knows");
        assert!(s.live_leg_sids().contains(&b.call_sid));
        assert!(!s.is_settled());
        assert!(s.next_check(OffsetDateTime::UNIX_EPOCH).is_some());
        agent_of(&mut s, to_b, LegStatus::Completed, 3);
        assert!(s.is_settled(), "{:?}", s.follow_ups());
    }

    #[test]
    fn an_owner_whose_onward_transfer_fails_keeps_the_call_and_ends_the_room_again() {
        let mut s = connected();
        let to_b = hand_to(&mut s, B);
        agent(&mut s, LegStatus::Completed, 5);
        transfer_to(&mut s, C).unwrap();
        s.follow_up_done(&FollowUp::LiftAnchor { attempt: to_b });
        agent_of(&mut s, 2, LegStatus::Busy, 2);
        assert_eq!(s.transfer_state(), Some(TransferState::TargetBusy));
        assert_eq!(
            s.follow_ups(),
            vec![FollowUp::AnchorRoomOnTarget { attempt: to_b }]
        );
        assert!(!s.customer_alone(), "B is still with the customer");
        assert_eq!(s.current_agent(), &phone(B));
        assert_eq!(s.state(), SessionState::Connected);
        s.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: to_b });
        assert!(s.follow_ups().is_empty());
        // And B may try again: the hop that failed is kept.
        transfer_to(&mut s, C).unwrap();
        assert_eq!(
            s.hops.last().map(|h| h.outcome),
            Some(TransferState::TargetBusy)
        );
        assert_eq!(
            s.owner.as_ref().map(|o| o.attempt),
            Some(to_b),
            "still B's call"
        );
    }

    #[test]
    fn an_owner_hanging_up_while_the_next_agent_rings_never_strands_the_customer() {
        let mut s = connected();
        let to_b = hand_to(&mut s, B);
        transfer_to(&mut s, C).unwrap();
        agent_of(&mut s, 2, LegStatus::Ringing, 1);
        agent_of(&mut s, to_b, LegStatus::Completed, 3);
        assert!(s.first_agent_gone(), "the agent handing on is gone");
        assert!(!s.customer_alone(), "C is ringing");
        assert!(
            !s.follow_ups()
                .iter()
                .any(|f| matches!(f, FollowUp::LiftAnchor { .. }))
        );
        agent_of(&mut s, 2, LegStatus::NoAnswer, 2);
        assert!(s.customer_alone());
        assert_eq!(s.follow_ups(), vec![FollowUp::ReleaseCustomer]);
    }

    #[test]
    fn an_owner_cannot_hand_to_themselves_but_may_hand_back_to_the_first_agent() {
        let mut s = connected();
        hand_to(&mut s, B);
        let myself = transfer_to(&mut s, B);
        assert_eq!(myself, Err(DomainError::TargetOnTheCall));
        assert!(
            s.owner.is_none() && s.hops.is_empty(),
            "a refusal changes nothing"
        );
        let back = s.request_transfer(
            phone("+15550100001"),
            TransferKind::Warm,
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(back, Ok(TransferDecision::New));
        assert!(
            !s.first_agent_should_join_room(),
            "leg 1's dial is long over"
        );
    }

    #[test]
    fn a_handed_over_call_whose_agent_left_cannot_be_handed_on() {
        let mut s = connected();
        let to_b = hand_to(&mut s, B);
        agent_of(&mut s, to_b, LegStatus::Completed, 3);
        assert_eq!(transfer_to(&mut s, C), Err(DomainError::HandedOver));
    }

    #[test]
    fn an_owner_consults_with_the_customer_on_hold() {
        let mut s = connected();
        hand_to(&mut s, B);
        transfer_to(&mut s, C).unwrap();
        agent_of(&mut s, 2, LegStatus::InProgress, 2);
        assert_eq!(
            s.hold_customer(true),
            Ok(()),
            "B is in the room with the customer"
        );
        assert_eq!(s.transfer_state(), Some(TransferState::Consulting));
        agent_of(&mut s, 2, LegStatus::Completed, 3);
        assert!(s.follow_ups().contains(&FollowUp::ResumeCustomer));
    }
}
