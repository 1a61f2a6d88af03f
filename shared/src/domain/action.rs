//! What an actor may ask to do with a call, and why they may be refused:
//! the words the access rules ([`super::access`]) and the commands' errors
//! ([`super::DomainError`]) share.

/// What an actor asks to do with an existing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Transfer,
    CancelTransfer,
    Hold,
    Leave,
    /// Listen to, whisper on or barge into the call, or stop.
    Supervise,
    /// Ask for a supervisor.
    AskForHelp,
    /// Add an outside party to the call, or drop them.
    Party,
}

wire_enum!(
    /// A change an agent may make to a call from the console: what the call
    /// view offers (see [`CallSession::offers`](super::CallSession::offers)).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    Offer {
        /// Transfer the call (again, or on after a handover).
        Transfer => "transfer",
        /// Call off the second agent (a take-back once they answered).
        CancelTransfer => "cancel-transfer",
        /// Put the customer on hold to consult the second agent.
        Hold => "hold",
        /// Take the customer off hold.
        Resume => "resume",
        /// Drop off, leaving the customer with the second agent.
        Leave => "leave",
        /// A supervisor joins (or switches to) listening, muted.
        Listen => "listen",
        /// A supervisor joins (or switches to) whispering to the agent.
        Whisper => "whisper",
        /// A supervisor joins (or switches to) talking with everyone.
        Barge => "barge",
        /// The supervisor on the call leaves it.
        StopSupervising => "stop-supervising",
        /// The agent asks for a supervisor to join.
        AskForHelp => "ask-for-help",
        /// The agent adds an outside party to the call.
        AddParty => "add-party",
        /// The agent drops the outside party.
        DropParty => "drop-party",
    }
);

impl Offer {
    /// The access it needs.
    pub fn action(self) -> Action {
        match self {
            Offer::Transfer => Action::Transfer,
            Offer::CancelTransfer => Action::CancelTransfer,
            Offer::Hold | Offer::Resume => Action::Hold,
            Offer::Leave => Action::Leave,
            Offer::Listen | Offer::Whisper | Offer::Barge | Offer::StopSupervising => {
                Action::Supervise
            }
            Offer::AskForHelp => Action::AskForHelp,
            Offer::AddParty | Offer::DropParty => Action::Party,
        }
    }
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Transfer => "transfer",
            Action::CancelTransfer => "cancel the transfer of",
            Action::Hold => "hold the customer of",
            Action::Leave => "leave",
            Action::Supervise => "supervise",
            Action::AskForHelp => "ask for help on",
            Action::Party => "add someone to",
        }
    }
}

/// Why an actor was refused (the API answers 403 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("your sign-in carries no phone number; ask an administrator to give you one")]
    NoNumber,
    #[error("you may start calls only from your own number")]
    NotYourNumber,
    #[error("you handed this call over; it is the second agent's now, so you may not {}", .0.verb())]
    HandedOver(Action),
    #[error("this call is another agent's; you may {} only your own calls", .0.verb())]
    NotYourCall(Action),
    #[error("only members of the supervisor group may listen, whisper or barge in")]
    NotSupervisor,
}

impl AccessDenied {
    /// A stable code for the console to tell the cases apart.
    pub fn code(&self) -> &'static str {
        match self {
            AccessDenied::NoNumber => "no-number",
            AccessDenied::NotYourNumber => "not-your-number",
            AccessDenied::HandedOver(_) => "handed-over",
            AccessDenied::NotYourCall(_) => "not-your-call",
            AccessDenied::NotSupervisor => "not-supervisor",
        }
    }
}
