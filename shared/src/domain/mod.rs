//! The call session and its warm transfer as a state machine: plain data
//! and pure functions, no HTTP and no AWS. The store persists it, the
//! handlers drive it with commands (from the console) and observations (from
//! Twilio's callbacks).

mod access;
mod action;
mod deadline;
mod dial_policy;
mod directory;
mod error;
mod history;
mod hop;
mod inbound;
mod leg;
mod milestone;
mod names;
mod observation;
mod outside_party;
mod participants;
mod party;
mod plan;
mod queue;
mod recording;
mod session;
mod supervision;
mod supervisor;
mod team_transfer;
mod transfer;

pub use access::Actor;
pub use action::{AccessDenied, Action, Offer};
pub use deadline::{PLAUSIBLE_CALL_LENGTH, RECHECK_CONNECTED, RECHECK_SETTLING, RECHECK_SOON};
pub use dial_policy::{DEFAULT_BLOCKED, DialPolicy, DialRefused, NumberPrefix, country_code};
pub use directory::{
    AgentProfile, Availability, DirectoryAgent, HEARTBEAT, OFFLINE_AFTER,
    Presence as AgentPresence, RESERVATION_HOLD, first_available, presence_moved,
};
pub use error::DomainError;
pub use history::{EventSource, HistoryEvent};
pub use hop::{Hop, Owner};
pub use inbound::{Inbound, IncomingCall};
pub use leg::{LegObservation, LegStatus, Presence};
pub use milestone::{FailReason, Milestone};
pub use names::{AgentId, NameError, TeamName};
pub use observation::{ConferenceEvent, Observation, Observed, RoomParticipant};
pub use participants::{Participant, Role};
pub use party::OutsideParty;
pub use plan::{CustomerDestination, ShownCaller, TransferPlan};
pub use recording::{Recording, RecordingSource, RecordingStatus};
pub use session::{CallSession, FollowUp, SessionState, TransferDecision};
pub use supervisor::{HelpRequest, Supervision, SupervisionChange, SupervisorMode};
pub use transfer::{
    Member, PassedOver, TeamRoute, Transfer, TransferKind, TransferOutcome, TransferState,
};
