//! A supervisor on a call: they join the call's room from their own phone
//! to listen (muted), whisper (heard by the agent only: Twilio's coaching)
//! or barge in (heard by everyone), and switch between these without being
//! dialled again. The rules:
//!
//! - a supervisor never counts as an agent: a customer whose only company
//!   is a supervisor, listening or not, is alone
//!   ([`CallSession::customer_alone`] does not look at them);
//! - their leaving never ends the room (they join with
//!   `EndConferenceOnExit=false`, and nothing here reads their hang-up as
//!   the call's end);
//! - they supervise one agent, the call's current agent when they joined:
//!   when that agent goes (leaves, hangs up, hands the call over) or the
//!   customer goes (hangs up, is released to the fallback), they are taken
//!   out too. On a handover the supervisor leaves rather than follows:
//!   whom they coached is gone, and the agent taking the call did not ask
//!   to be listened to.

use time::OffsetDateTime;

use super::error::DomainError;
use super::leg::{LegObservation, LegStatus, Presence};
use super::session::{CallSession, advance, replace};
use super::supervisor::{HelpRequest, Supervision, SupervisionChange, SupervisorMode};
use crate::ids::{CallSid, PhoneNumber};

impl CallSession {
    /// The call of the agent the call belongs to now: leg 1, an owner
    /// handing on, or after a handover the agent it was handed to.
    pub fn current_agent_call(&self) -> Option<&CallSid> {
        match &self.transfer {
            Some(transfer) if self.handed_over() => {
                transfer.target_leg.as_ref().map(|l| &l.call_sid)
            }
            _ => self.handing_over_call(),
        }
    }

    /// The call's current agent is in the room (joined, not left): only
    /// then can they be coached. Twilio refuses a coach for someone not in
    /// the conference (error 16028).
    pub fn agent_in_room(&self) -> bool {
        let presence = match (&self.transfer, &self.owner) {
            (Some(transfer), _) if self.handed_over() => transfer.target_presence,
            (_, Some(owner)) => owner.presence,
            _ => self.first_agent_presence,
        };
        presence == Presence::Joined
    }

    /// The supervised agent is still the call's agent and still on it.
    fn supervised_agent_here(&self, supervision: &Supervision) -> bool {
        if self.current_agent_call() != Some(&supervision.agent_call) {
            return false;
        }
        match &self.transfer {
            Some(transfer) if self.handed_over() => {
                transfer.target_live() && transfer.target_presence != Presence::Left
            }
            _ => !self.first_agent_gone(),
        }
    }

    /// A supervisor (`supervisor`, from the phone `number`) asks to be on
    /// the call in `mode`. One supervisor at a time; the same supervisor
    /// asking again switches modes.
    pub fn supervise(
        &mut self,
        supervisor: &str,
        number: PhoneNumber,
        mode: SupervisorMode,
        now: OffsetDateTime,
    ) -> Result<SupervisionChange, DomainError> {
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
        // Whispering coaches the agent, never the customer, so a consult
        // (the customer on hold) does not stand in its way; an agent still
        // on the bridge, not in the room yet, does: listen first.
        if mode.coaching() && !self.agent_in_room() {
            return Err(DomainError::AgentNotInRoom {
                state: self.state().as_str(),
            });
        }
        if let Some(current) = self.supervision.as_mut().filter(|s| s.live()) {
            if current.supervisor != supervisor {
                return Err(DomainError::Supervised);
            }
            let from = current.mode;
            if from == mode {
                return Ok(SupervisionChange::Unchanged);
            }
            // Twilio cannot update a participant still connecting
            // (twilio-rules 3.9): switch once their phone is in the room.
            if current.presence != Presence::Joined {
                return Err(DomainError::SupervisorRinging);
            }
            current.mode = mode;
            return Ok(SupervisionChange::Switch { from });
        }
        if number == self.customer_number || number == *self.current_agent() {
            return Err(DomainError::SupervisorOnTheCall);
        }
        let agent_call = self
            .current_agent_call()
            .filter(|_| !self.first_agent_gone() || self.handed_over())
            .cloned()
            .ok_or(DomainError::NotConnected {
                state: self.state().as_str(),
            })?;
        let visit = self.supervision.as_ref().map_or(1, |s| s.visit + 1);
        // A supervisor joining answers the agent's request for help.
        self.help = None;
        self.supervision = Some(Supervision {
            visit,
            supervisor: supervisor.to_owned(),
            number,
            mode,
            agent_call,
            leg: None,
            presence: Presence::Never,
            leaving: false,
            requested_at: now,
        });
        Ok(SupervisionChange::Join)
    }

    /// The call's agent (`by`) asks for a supervisor: the supervisors'
    /// board shows the call as asking until one joins. Asking again while
    /// asking changes nothing; with a supervisor on the call there is
    /// nothing to ask.
    pub fn ask_for_help(&mut self, by: &str, now: OffsetDateTime) -> Result<(), DomainError> {
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
        if self.supervision.as_ref().is_some_and(Supervision::live) {
            return Err(DomainError::Supervised);
        }
        if self.help.is_none() {
            self.help = Some(HelpRequest {
                by: by.to_owned(),
                at: now,
            });
        }
        Ok(())
    }

    /// The agent's request for help, while it waits for a supervisor.
    pub fn help_waiting(&self) -> Option<&HelpRequest> {
        self.help.as_ref().filter(|_| !self.is_ended())
    }

    /// The supervisor leaves (any supervisor may take them out). Their call
    /// is ended as a follow-up; false when there was nobody to take out.
    pub fn stop_supervising(&mut self) -> bool {
        match self.supervision.as_mut().filter(|s| s.live()) {
            Some(supervision) => {
                supervision.leaving = true;
                true
            }
            None => false,
        }
    }

    /// Twilio accepted the customer's redirect into the room for the
    /// supervisor of visit `visit`: the customer is there, whether or not a
    /// join callback ever comes.
    pub fn customer_moved_for(&mut self, visit: u32) {
        if self.supervision.as_ref().is_some_and(|s| s.visit == visit) {
            self.customer_moved = true;
        }
    }

    /// Twilio refused to ring the supervisor (visit `visit`), or to move
    /// the customer into the room for them: nobody joins.
    pub fn supervision_failed(&mut self, visit: u32) {
        if let Some(s) = self.supervision.as_mut().filter(|s| s.visit == visit) {
            s.leaving = true;
        }
    }

    /// The customer's leg to move from the plain bridge into the room
    /// before a supervisor (or an outside party) can join, as a transfer
    /// moves it; none once they are in the room.
    pub fn customer_to_move_into_room(&self) -> Option<&CallSid> {
        self.customer_leg
            .as_ref()
            .filter(|_| !self.customer_in_room())
            .map(|l| &l.call_sid)
    }

    /// A supervisor's request is moving the customer into the room: leg
    /// 1's `<Dial>` ending then means the agent follows them in.
    pub(super) fn moving_for_supervisor(&self) -> bool {
        self.owner.is_none()
            && self
                .supervision
                .as_ref()
                .is_some_and(|s| s.live() && s.agent_call == self.id)
    }

    /// The supervisor's call, when it must be ended: asked to leave, or
    /// the agent they supervise or the customer is gone.
    pub(super) fn supervisor_leg_to_end(&self) -> Option<CallSid> {
        let supervision = self.supervision.as_ref()?;
        let leg = supervision.leg.as_ref().filter(|l| !l.status.is_final())?;
        let out = supervision.leaving
            || supervision.presence == Presence::Left
            || self.is_ended()
            || !self.supervised_agent_here(supervision);
        out.then(|| leg.call_sid.clone())
    }

    /// Applies the supervisor's call status (visit `visit`).
    pub(super) fn observe_supervisor_leg(
        &mut self,
        visit: u32,
        observation: LegObservation,
    ) -> bool {
        self.supervision
            .as_mut()
            .filter(|s| s.visit == visit)
            .is_some_and(|s| replace(&mut s.leg, observation))
    }

    /// The supervisor (visit `visit`) joined or left the room.
    pub(super) fn observe_supervisor_presence(&mut self, visit: u32, presence: Presence) -> bool {
        self.supervision
            .as_mut()
            .filter(|s| s.visit == visit)
            .is_some_and(|s| advance(&mut s.presence, presence))
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
    const TARGET: &str = "CA00000000000000000000000000000003";
    const SUPERVISOR: &str = "CA00000000000000000000000000000009";
    const SAM: &str = "sam@example.com";

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

    fn supervisor_leg(s: &mut CallSession, status: LegStatus, seq: u32) {
        s.observe(Observation::SupervisorLeg {
            visit: 1,
            observation: leg(SUPERVISOR, status, seq),
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

    fn supervise(
        s: &mut CallSession,
        mode: SupervisorMode,
    ) -> Result<SupervisionChange, DomainError> {
        s.supervise(SAM, phone("+15550100009"), mode, OffsetDateTime::UNIX_EPOCH)
    }

    /// The call in the room with a listening supervisor in it.
    fn listened_to() -> CallSession {
        let mut s = connected();
        assert_eq!(
            supervise(&mut s, SupervisorMode::Listen),
            Ok(SupervisionChange::Join)
        );
        assert_eq!(s.customer_to_move_into_room(), Some(&sid(CUSTOMER)));
        s.customer_moved_for(2);
        assert_eq!(
            s.customer_to_move_into_room(),
            Some(&sid(CUSTOMER)),
            "not that visit"
        );
        s.customer_moved_for(1);
        room(&mut s, ConferenceEvent::Join, RoomParticipant::Customer);
        room(&mut s, ConferenceEvent::Join, RoomParticipant::FirstAgent);
        supervisor_leg(&mut s, LegStatus::InProgress, 2);
        room(
            &mut s,
            ConferenceEvent::Join,
            RoomParticipant::Supervisor { visit: 1 },
        );
        assert_eq!(s.customer_to_move_into_room(), None);
        s
    }

    #[test]
    fn modes_switch_without_a_new_join() {
        let mut s = listened_to();
        assert_eq!(
            supervise(&mut s, SupervisorMode::Whisper),
            Ok(SupervisionChange::Switch {
                from: SupervisorMode::Listen
            })
        );
        assert_eq!(
            supervise(&mut s, SupervisorMode::Whisper),
            Ok(SupervisionChange::Unchanged)
        );
        assert_eq!(
            supervise(&mut s, SupervisorMode::Barge),
            Ok(SupervisionChange::Switch {
                from: SupervisorMode::Whisper
            })
        );
        let supervision = s.supervision.as_ref().unwrap();
        assert_eq!(supervision.visit, 1);
        assert_eq!(supervision.agent_call, sid(LEG1), "coaches leg 1");
        assert!(SupervisorMode::Listen.muted() && !SupervisorMode::Listen.coaching());
        assert!(!SupervisorMode::Whisper.muted() && SupervisorMode::Whisper.coaching());
        assert!(!SupervisorMode::Barge.muted() && !SupervisorMode::Barge.coaching());
    }

    #[test]
    fn whispering_needs_the_agent_in_the_room_not_the_customer_off_hold() {
        let mut s = connected();
        assert_eq!(
            supervise(&mut s, SupervisorMode::Whisper),
            Err(DomainError::AgentNotInRoom { state: "connected" }),
            "on the bridge: listen first"
        );
        assert!(s.supervision.is_none());
        let mut s = listened_to();
        // A consult: the customer on hold while agent one talks to agent two.
        s.request_transfer(
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        s.hold_customer(true).unwrap();
        assert_eq!(
            supervise(&mut s, SupervisorMode::Whisper),
            Ok(SupervisionChange::Switch {
                from: SupervisorMode::Listen
            })
        );
        assert_eq!(s.supervision.as_ref().unwrap().agent_call, sid(LEG1));
        room(&mut s, ConferenceEvent::Leave, RoomParticipant::FirstAgent);
        assert!(matches!(
            supervise(&mut s, SupervisorMode::Whisper),
            Err(DomainError::AgentNotInRoom { .. })
        ));
    }

    #[test]
    fn modes_switch_once_the_supervisors_phone_is_in_the_room() {
        let mut s = connected();
        supervise(&mut s, SupervisorMode::Listen).unwrap();
        s.customer_moved_for(1);
        room(&mut s, ConferenceEvent::Join, RoomParticipant::FirstAgent);
        supervisor_leg(&mut s, LegStatus::Ringing, 1);
        assert_eq!(
            supervise(&mut s, SupervisorMode::Barge),
            Err(DomainError::SupervisorRinging)
        );
        room(
            &mut s,
            ConferenceEvent::Join,
            RoomParticipant::Supervisor { visit: 1 },
        );
        assert_eq!(
            supervise(&mut s, SupervisorMode::Barge),
            Ok(SupervisionChange::Switch {
                from: SupervisorMode::Listen
            })
        );
    }

    #[test]
    fn a_help_request_waits_until_a_supervisor_joins() {
        let mut s = connected();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(s.ask_for_help("alice", now), Ok(()));
        assert_eq!(
            s.ask_for_help("alice", now),
            Ok(()),
            "asking again is harmless"
        );
        assert_eq!(s.help_waiting().map(|h| h.by.as_str()), Some("alice"));
        supervise(&mut s, SupervisorMode::Listen).unwrap();
        assert_eq!(s.help_waiting(), None, "answered by the supervisor's join");
        assert_eq!(s.ask_for_help("alice", now), Err(DomainError::Supervised));
        let mut ended = connected();
        ended.ask_for_help("alice", now).unwrap();
        ended.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::Completed,
            2,
        )));
        assert_eq!(ended.help_waiting(), None, "nobody to help any more");
        assert_eq!(ended.ask_for_help("alice", now), Err(DomainError::Ended));
    }

    #[test]
    fn one_supervisor_at_a_time_and_never_from_a_number_on_the_call() {
        let mut s = listened_to();
        assert_eq!(
            s.supervise(
                "other@example.com",
                phone("+15550100008"),
                SupervisorMode::Barge,
                OffsetDateTime::UNIX_EPOCH
            ),
            Err(DomainError::Supervised)
        );
        let mut fresh = connected();
        for number in ["+15550100001", "+15550100002"] {
            assert_eq!(
                fresh.supervise(
                    SAM,
                    phone(number),
                    SupervisorMode::Listen,
                    OffsetDateTime::UNIX_EPOCH
                ),
                Err(DomainError::SupervisorOnTheCall)
            );
        }
        assert!(fresh.supervision.is_none());
    }

    #[test]
    fn an_ended_or_unconnected_call_cannot_be_supervised() {
        let mut s = connected();
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::Completed,
            2,
        )));
        assert_eq!(
            supervise(&mut s, SupervisorMode::Listen),
            Err(DomainError::Ended)
        );
        let mut ringing = CallSession::start(
            sid(LEG1),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        );
        ringing.observe(Observation::AgentLeg(leg(LEG1, LegStatus::InProgress, 1)));
        assert!(matches!(
            supervise(&mut ringing, SupervisorMode::Listen),
            Err(DomainError::NotConnected { .. })
        ));
    }

    #[test]
    fn the_agent_follows_a_customer_moved_for_a_supervisor() {
        let mut s = connected();
        assert!(!s.first_agent_should_join_room(), "a plain call ends");
        supervise(&mut s, SupervisorMode::Listen).unwrap();
        assert!(s.first_agent_should_join_room());
        // Leg 1's <Dial> ended by the redirect: the call is not over.
        assert!(!s.is_ended());
        s.supervision_failed(1);
        assert!(!s.first_agent_should_join_room(), "nobody was moved");
    }

    #[test]
    fn a_supervisor_never_counts_as_an_agent() {
        for mode in SupervisorMode::ALL {
            let mut s = listened_to();
            supervise(&mut s, mode).unwrap();
            // The agent leaves the room: only the supervisor is with the customer.
            room(&mut s, ConferenceEvent::Leave, RoomParticipant::FirstAgent);
            assert!(s.customer_alone(), "{mode:?}");
            let follow_ups = s.follow_ups();
            assert!(follow_ups.contains(&FollowUp::ReleaseCustomer), "{mode:?}");
            assert!(
                follow_ups.contains(&FollowUp::EndLeg(sid(SUPERVISOR))),
                "taken out with the agent: {follow_ups:?}"
            );
        }
    }

    #[test]
    fn a_supervisor_hanging_up_ends_nothing() {
        let mut s = listened_to();
        supervisor_leg(&mut s, LegStatus::Completed, 3);
        room(
            &mut s,
            ConferenceEvent::Leave,
            RoomParticipant::Supervisor { visit: 1 },
        );
        assert_eq!(s.state(), SessionState::Connected);
        assert!(!s.customer_alone());
        assert_eq!(s.follow_ups(), Vec::new());
        // They may come back: a new visit.
        assert_eq!(
            supervise(&mut s, SupervisorMode::Barge),
            Ok(SupervisionChange::Join)
        );
        assert_eq!(s.supervision.as_ref().unwrap().visit, 2);
        // A late callback of the first visit changes nothing.
        supervisor_leg(&mut s, LegStatus::InProgress, 1);
        assert_eq!(s.supervision.as_ref().unwrap().leg, None);
    }

    #[test]
    fn leaving_ends_the_supervisors_call_only() {
        let mut s = listened_to();
        assert!(s.stop_supervising());
        assert!(!s.stop_supervising(), "nobody left to take out");
        assert_eq!(s.follow_ups(), vec![FollowUp::EndLeg(sid(SUPERVISOR))]);
        assert!(!s.is_ended());
    }

    #[test]
    fn the_customer_going_takes_the_supervisor_out() {
        let mut s = listened_to();
        supervise(&mut s, SupervisorMode::Whisper).unwrap();
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::Completed,
            3,
        )));
        assert!(s.is_ended());
        assert!(s.follow_ups().contains(&FollowUp::EndLeg(sid(SUPERVISOR))));
        assert!(!s.is_settled(), "until the supervisor's call is over");
        supervisor_leg(&mut s, LegStatus::Completed, 3);
        assert!(!s.follow_ups().contains(&FollowUp::EndLeg(sid(SUPERVISOR))));
    }

    #[test]
    fn on_a_handover_the_supervisor_leaves_with_the_agent_handing_over() {
        let mut s = listened_to();
        let now = OffsetDateTime::UNIX_EPOCH;
        s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now)
            .unwrap();
        s.observe(Observation::TargetLeg {
            attempt: 1,
            observation: leg(TARGET, LegStatus::InProgress, 2),
        });
        room(
            &mut s,
            ConferenceEvent::Join,
            RoomParticipant::SecondAgent { attempt: 1 },
        );
        // While the transfer goes on the supervisor stays with agent one.
        assert!(!s.follow_ups().contains(&FollowUp::EndLeg(sid(SUPERVISOR))));
        s.first_agent_leaves().unwrap();
        assert_eq!(s.current_agent_call(), Some(&sid(TARGET)));
        assert!(s.follow_ups().contains(&FollowUp::EndLeg(sid(SUPERVISOR))));
        assert!(!s.customer_alone(), "agent two is with the customer");
        // The agent the call was handed to may be supervised anew.
        supervisor_leg(&mut s, LegStatus::Completed, 3);
        assert_eq!(
            supervise(&mut s, SupervisorMode::Listen),
            Ok(SupervisionChange::Join)
        );
        assert_eq!(s.supervision.as_ref().unwrap().agent_call, sid(TARGET));
    }

    #[test]
    fn the_supervisors_leg_is_one_of_the_calls_legs() {
        let s = listened_to();
        assert!(s.live_leg_sids().contains(&sid(SUPERVISOR)));
        assert_eq!(
            s.role_of_leg(&sid(SUPERVISOR)),
            Some(crate::domain::Role::Supervisor)
        );
    }
}
