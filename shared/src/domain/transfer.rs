//! One warm-transfer attempt and the state derived from what was observed.

use time::OffsetDateTime;

use super::leg::{LegObservation, LegStatus, Presence};
use super::names::{AgentId, TeamName};
use crate::ids::{PhoneNumber, RoomName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Twilio refused the redirect or the participant; the reason is Twilio's.
    Failed {
        reason: String,
    },
    Cancelled,
    /// The first agent dropped off: the customer is with the second agent.
    FirstAgentLeft,
}

wire_enum!(
    /// How the first agent hands the customer over.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    TransferKind {
        /// The first agent stays until the second answers, introduces the
        /// customer (optionally on hold, a consult) and then leaves.
        Warm => "warm",
        /// Blind: the first agent is free at once; the customer waits in the
        /// room, with music or a message, until the second agent answers.
        Cold => "cold",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// 1 for the first try, then one more per retry.
    pub attempt: u32,
    pub kind: TransferKind,
    pub target: PhoneNumber,
    /// Always the session's room: derived from the call SID, never user text.
    pub room: RoomName,
    pub idempotency_key: Option<String>,
    pub requested_at: OffsetDateTime,
    /// The second agent's call, learned from its participant callbacks.
    pub target_leg: Option<LegObservation>,
    pub target_presence: Presence,
    /// The second agent's leaving now ends the room (`EndConferenceOnExit`),
    /// set once the first agent is gone so the customer never stays behind.
    pub target_anchors_room: bool,
    /// The customer was put on hold while both agents were in the room:
    /// the agents consulted, and everybody talking afterwards is a
    /// three-way call.
    pub consulted: bool,
    pub outcome: Option<TransferOutcome>,
    /// The directory's agent this attempt rings, when the transfer named
    /// an agent or a team rather than a number.
    pub member: Option<Member>,
    /// A team transfer: who was passed over so far, and its limits.
    pub route: Option<TeamRoute>,
}

wire_enum!(
    /// Serialised as the API names it (kebab-case, same as `as_str`).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    TransferState {
        Requested => "requested",
        CustomerInRoom => "customer-in-room",
        FirstAgentInRoom => "first-agent-in-room",
        TargetRinging => "target-ringing",
        TargetAnswered => "target-answered",
        /// The second agent answered and talks with the first agent while
        /// the customer is on hold.
        Consulting => "consulting",
        /// After a consult, the customer, both agents talking together.
        ThreeWay => "three-way",
        TargetBusy => "target-busy",
        TargetNoAnswer => "target-no-answer",
        TargetFailed => "target-failed",
        /// The second agent answered, then hung up before the first agent left.
        TargetLeft => "target-left",
        Cancelled => "cancelled",
        Failed => "failed",
        FirstAgentLeft => "first-agent-left",
        Ended => "ended",
    }
);

impl TransferState {
    /// Still trying to reach the second agent or waiting for the handover.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TransferState::Requested
                | TransferState::CustomerInRoom
                | TransferState::FirstAgentInRoom
                | TransferState::TargetRinging
                | TransferState::TargetAnswered
                | TransferState::Consulting
                | TransferState::ThreeWay
        )
    }

    /// The second agent is on the line with the first (and perhaps the
    /// customer): the first agent may leave, or take the call back.
    pub fn target_on_the_line(self) -> bool {
        matches!(
            self,
            TransferState::TargetAnswered | TransferState::Consulting | TransferState::ThreeWay
        )
    }

    /// Over without a handover: the first agent may try again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            TransferState::TargetBusy
                | TransferState::TargetNoAnswer
                | TransferState::TargetFailed
                | TransferState::TargetLeft
                | TransferState::Cancelled
                | TransferState::Failed
        )
    }
}

impl Transfer {
    /// The second agent's call is live (dialling, ringing or talking) and
    /// has not left the room. A dial not yet reported counts as live until
    /// the attempt is over.
    pub fn target_live(&self) -> bool {
        if matches!(
            self.outcome,
            Some(TransferOutcome::Failed { .. } | TransferOutcome::Cancelled)
        ) {
            return false;
        }
        let leg_live = self
            .target_leg
            .as_ref()
            .is_none_or(|leg| !leg.status.is_final());
        leg_live && self.target_presence != Presence::Left
    }

    /// The second agent answered and is still on the call.
    pub fn target_talking(&self) -> bool {
        self.target_live()
            && self
                .target_leg
                .as_ref()
                .is_some_and(|leg| leg.status == LegStatus::InProgress)
    }

    /// The state, given where the customer and first agent are.
    pub(crate) fn state(
        &self,
        session_ended: bool,
        customer_in_room: bool,
        first_agent_in_room: bool,
        first_agent_gone: bool,
        customer_held: bool,
    ) -> TransferState {
        // Once nobody is left to talk to, that is all there is to say.
        if session_ended {
            return TransferState::Ended;
        }
        match &self.outcome {
            Some(TransferOutcome::Failed { .. }) => return TransferState::Failed,
            Some(TransferOutcome::Cancelled) => return TransferState::Cancelled,
            Some(TransferOutcome::FirstAgentLeft) => return TransferState::FirstAgentLeft,
            None => {}
        }
        if let Some(leg) = &self.target_leg {
            match leg.status {
                LegStatus::Busy => return TransferState::TargetBusy,
                LegStatus::NoAnswer => return TransferState::TargetNoAnswer,
                LegStatus::Failed | LegStatus::Canceled => return TransferState::TargetFailed,
                LegStatus::Completed => return TransferState::TargetLeft,
                _ => {}
            }
        }
        match self.target_leg.as_ref().map(|l| l.status) {
            // The first agent hung up once the second one had answered: a
            // handover all the same.
            Some(LegStatus::InProgress) if first_agent_gone => TransferState::FirstAgentLeft,
            Some(LegStatus::InProgress) if customer_held => TransferState::Consulting,
            Some(LegStatus::InProgress) if self.consulted => TransferState::ThreeWay,
            Some(LegStatus::InProgress) => TransferState::TargetAnswered,
            Some(LegStatus::Ringing) => TransferState::TargetRinging,
            _ if first_agent_in_room => TransferState::FirstAgentInRoom,
            _ if customer_in_room => TransferState::CustomerInRoom,
            // Queued or initiated: the dial is being placed.
            _ => TransferState::Requested,
        }
    }
}

// Who a transfer rings, when it named a colleague or a team: the member,
// and a team transfer's route. How the session moves along the route is
// in `team_transfer`.

/// The directory's agent an attempt rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: AgentId,
    pub name: String,
}

/// A member who was rung and did not take the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    pub member: Member,
    /// How their attempt ended: `target-busy`, `target-no-answer`,
    /// `target-failed` (declined, called off, unreachable).
    pub why: TransferState,
}

/// A team transfer's progress and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRoute {
    pub team: TeamName,
    /// Oldest first.
    pub passed: Vec<PassedOver>,
    /// Members rung so far, the current one included.
    pub rung: u32,
    /// At most this many members are rung.
    pub max_members: u32,
    /// No member is rung after this.
    pub until: OffsetDateTime,
    /// Nobody was left to ring: the transfer ends as a failed one does.
    pub exhausted: bool,
}

impl TeamRoute {
    pub fn new(team: TeamName, max_members: u32, until: OffsetDateTime) -> Self {
        Self {
            team,
            passed: Vec::new(),
            rung: 1,
            max_members,
            until,
            exhausted: false,
        }
    }

    /// Who must not be rung again on this call.
    pub fn passed_ids(&self) -> Vec<AgentId> {
        self.passed.iter().map(|p| p.member.id.clone()).collect()
    }
}
