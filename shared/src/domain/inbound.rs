//! Customers calling in: what the session keeps of a call a customer
//! placed (how the session moves is in `queue`). An inbound call is a session whose customer starts
//! in the room, waiting, with no agent: the centre's number belongs to a
//! team, and the call is offered to its first available member as a blind
//! team transfer (one attempt per member rung, with every rule of a
//! transfer). Once a member answers, the call is theirs exactly as a call
//! handed over to them is, and every move works the same.
//!
//! While nobody has answered the caller is queued, not alone: they hear
//! the wait audio (a position message between pauses). They are alone only
//! once their maximum wait is over with no agent ringing; then the room is
//! ended, which sends them to the inbound fallback.

use time::OffsetDateTime;

use super::names::TeamName;
use crate::ids::{CallSid, PhoneNumber};

/// How an inbound call came in and how long it may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The team the centre's number routes to.
    pub team: TeamName,
    /// When the caller started waiting.
    pub since: OffsetDateTime,
    /// The caller waits no longer than this for an agent to answer.
    pub until: OffsetDateTime,
    /// The inbound call's `CallToken`: with it, the agents rung see the
    /// caller's number rather than the centre's. Never logged.
    pub call_token: Option<String>,
    /// The maximum wait was reached: the caller goes to the fallback.
    pub wait_over: bool,
}

/// What a new inbound call brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The caller's call: the session's key and its room's name.
    pub call_sid: CallSid,
    pub caller: PhoneNumber,
    /// The centre's number they dialled; the caller ID of what the product
    /// dials for them when the caller's own is refused.
    pub centre: PhoneNumber,
    pub team: TeamName,
    pub call_token: Option<String>,
    pub max_wait: time::Duration,
}
