//! Why a command was refused, with the state it met (the API answers 409).

use super::action::AccessDenied;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the customer is not connected yet")]
    NotConnected { state: &'static str },
    #[error("a transfer is already under way")]
    TransferActive { state: &'static str },
    #[error("the call has ended")]
    Ended,
    #[error("the call has been handed over; the first agent has left")]
    HandedOver,
    #[error("there is no transfer to act on")]
    NoTransfer,
    #[error("the caller is not waiting for an agent, or not yet past their maximum wait")]
    NotQueued,
    #[error("the transfer can only be cancelled before the first agent leaves")]
    NotCancellable { state: &'static str },
    #[error("the first agent can leave only once the second agent has answered")]
    CannotLeave { state: &'static str },
    #[error("the customer can be held only while the first agent is in the room with them")]
    CannotHold { state: &'static str },
    #[error("another supervisor is on this call")]
    Supervised,
    #[error("the supervisor's phone has not joined the call yet")]
    SupervisorRinging,
    #[error("an outside party is already on this call; drop them first")]
    PartyOnTheCall,
    #[error("the agent is not in the call's room yet: listen first, then whisper")]
    AgentNotInRoom { state: &'static str },
    /// Bad input rather than a wrong state: the API answers 400.
    #[error("must differ from the customer's and the agent's numbers")]
    SupervisorOnTheCall,
    /// Bad input rather than a wrong state: the API answers 400.
    #[error("must differ from the customer's and the first agent's numbers")]
    TargetOnTheCall,
    /// Not the actor's call: the API answers 403.
    #[error(transparent)]
    Denied(#[from] AccessDenied),
}

impl DomainError {
    /// The state the command met, as the API names it.
    pub fn state(&self) -> &'static str {
        match self {
            DomainError::NotConnected { state }
            | DomainError::TransferActive { state }
            | DomainError::NotCancellable { state }
            | DomainError::CannotLeave { state }
            | DomainError::CannotHold { state }
            | DomainError::AgentNotInRoom { state } => state,
            DomainError::Ended => "ended",
            DomainError::HandedOver => "first-agent-left",
            DomainError::NoTransfer => "no-transfer",
            DomainError::NotQueued => "not-queued",
            DomainError::TargetOnTheCall | DomainError::SupervisorOnTheCall => "connected",
            DomainError::Supervised => "supervised",
            DomainError::SupervisorRinging => "supervisor-ringing",
            DomainError::PartyOnTheCall => "party-on-the-call",
            DomainError::Denied(_) => "forbidden",
        }
    }
}
