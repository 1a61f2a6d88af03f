//! Call state persistence. Handlers talk to the [`CallStore`] trait; the
//! DynamoDB adapter implements it with one item per session plus an
//! append-only event history, every state change a conditional write.

mod directory;
mod dynamo;
pub mod dynamodb_json;
mod item;
mod memory;
pub mod subscriptions;
pub mod table;

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

pub use directory::{
    AGENT_PREFIX, CheckIn, DIRECTORY_PK, DIRECTORY_TTL, Directory, agent_from_item,
};
pub use dynamo::{ATTEMPT_TIMEOUT, DynamoStore, OPERATION_TIMEOUT};
pub use item::{
    CHECK_AT, CHECK_LEASE, EVENT_PREFIX, Item, ItemMeta, OPEN_SHARD, SESSION_SK, event_from_item,
    event_item, open_shard, session_from_item, session_item,
};
pub use memory::MemoryStore;
pub use subscriptions::{DynamoSubscriptions, Subscriber, Subscriptions};

use crate::domain::{CallSession, DomainError, HistoryEvent, Observation, Observed, TeamName};
use crate::ids::CallSid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such call")]
    NotFound,
    #[error("the call already exists")]
    AlreadyExists,
    /// Other writers kept winning; the caller may try again.
    #[error("the call changed concurrently too many times")]
    Conflict,
    #[error(transparent)]
    Rejected(#[from] DomainError),
    #[error("DynamoDB is throttling requests")]
    Throttled,
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    #[error("stored call is unreadable: {0}")]
    Corrupt(String),
    #[error("DynamoDB refused the request: {0}")]
    Other(String),
}

/// How long a claim to end a leg holds off other handlers: Twilio's
/// answer to the ending (its timeout with retries) and then some.
pub const LEG_END_CLAIM: std::time::Duration = std::time::Duration::from_secs(30);

/// A caller counts as waiting this long after their wait loop last asked:
/// the loop asks every 15 to 20 s, and once a caller is answered (or hangs
/// up) it stops, so nothing needs deleting.
pub const QUEUE_SEEN_WITHIN: time::Duration = time::Duration::seconds(30);

/// A caller's place in their team's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace {
    pub call: CallSid,
    /// When they started waiting: the queue's order.
    pub since: OffsetDateTime,
    /// When their wait loop last asked.
    pub seen: OffsetDateTime,
    /// Their maximum wait: the entry expires a while after.
    pub until: OffsetDateTime,
}

/// A session the open-sessions index says is due for a check, as the index
/// holds it (possibly a moment old: [`CallStore::claim_check`] compares it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSession {
    pub session: CallSession,
    /// Epoch seconds the check was due at, as the index read it.
    pub check_at: i64,
}

impl DueSession {
    /// When the session is due again once claimed until `lease_until`: its
    /// own next check, but not before the lease ends (epoch seconds).
    pub fn due_again(&self, now: OffsetDateTime, lease_until: OffsetDateTime) -> i64 {
        let lease = lease_until.unix_timestamp();
        self.session
            .next_check(now)
            .map_or(lease, |at| at.unix_timestamp().max(lease))
    }
}

/// Where a page of history ends: the sort key of its oldest entry, read
/// back from a request, so checked to be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor(String);

impl HistoryCursor {
    /// A cursor the API handed out: `EVENT#`, 20 digits, `#`, 8 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(item::EVENT_PREFIX)?;
        let (nanos, suffix) = rest.split_once('#')?;
        let valid = nanos.len() == 20
            && nanos.bytes().all(|b| b.is_ascii_digit())
            && suffix.len() == 8
            && suffix.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page of a call's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Oldest first.
    pub events: Vec<HistoryEvent>,
    /// Set when earlier entries exist: ask again with it as `before`.
    pub earlier: Option<HistoryCursor>,
}

/// Applies `command` as [`CallStore::update`] does, and returns what the
/// command answered on its last attempt (a store re-applies it after a
/// concurrent write; the last attempt is the one written) with the
/// session. None if it never ran.
pub async fn update_returning<S, T>(
    store: &S,
    id: &CallSid,
    command: &(dyn Fn(&mut CallSession) -> Result<T, DomainError> + Send + Sync),
) -> Result<(Option<T>, CallSession), StoreError>
where
    S: CallStore + ?Sized,
    T: Send,
{
    let answer = Mutex::new(None);
    let session = store
        .update(id, &|session: &mut CallSession| {
            let answered = command(session)?;
            *answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(answered);
            Ok(())
        })
        .await?;
    Ok((
        answer.into_inner().unwrap_or_else(PoisonError::into_inner),
        session,
    ))
}

/// A domain command, applied to the current session by [`CallStore::update`].
pub type Command<'a> = dyn Fn(&mut CallSession) -> Result<(), DomainError> + Send + Sync + 'a;

#[async_trait]
pub trait CallStore: Send + Sync {
    /// Stores a new session; fails if one with that id exists.
    async fn create_session(&self, session: &CallSession) -> Result<(), StoreError>;

    /// The session as last written: exactly one strongly consistent read.
    async fn get_session(&self, id: &CallSid) -> Result<Option<CallSession>, StoreError>;

    /// Reads the session, applies `command` and writes it back on condition
    /// that nobody wrote in between (re-reading and re-applying if someone
    /// did). A command that changes nothing writes nothing.
    async fn update(&self, id: &CallSid, command: &Command<'_>) -> Result<CallSession, StoreError>;

    /// Applies what a Twilio callback reported, if it moves the call forward.
    /// Returns the session as it now is (changed or not; none when the call
    /// is unknown). The domain decides whether the callback moves the call
    /// forward; the versioned write of [`CallStore::update`] makes that
    /// decision atomic.
    async fn observe(
        &self,
        id: &CallSid,
        observation: Observation,
    ) -> Result<(Observed, Option<CallSession>), StoreError> {
        let result = update_returning(self, id, &|session: &mut CallSession| {
            Ok(session.observe(observation.clone()))
        })
        .await;
        match result {
            Ok((Some(Observed::Applied), session)) => Ok((Observed::Applied, Some(session))),
            // Already applied (a duplicate, or Twilio's retry of a callback
            // whose first attempt wrote and then timed out): the session as
            // it is, so its caller can still carry out what it needs.
            Ok((_, session)) => Ok((Observed::Ignored, Some(session))),
            // A callback about a call this table never held.
            Err(StoreError::NotFound) => Ok((Observed::Ignored, None)),
            Err(error) => Err(error),
        }
    }

    /// Takes one from `who`'s allowance for the minute that starts at
    /// `minute` (Unix seconds): false once `limit` were taken in it. One
    /// conditional update of a small item that expires after the minute, so
    /// of concurrent requests exactly `limit` win.
    async fn take_allowance(&self, who: &str, minute: i64, limit: u32) -> Result<bool, StoreError>;

    /// Claims the ending of `leg` of `call` for this handler: of handlers
    /// that derive the same [`crate::domain::FollowUp::EndLeg`] (each
    /// callback before the leg's own end does), one asks Twilio; the others
    /// leave it. A claim older than [`LEG_END_CLAIM`] may be taken again
    /// (its holder may have died before asking), and a failed ending gives
    /// its claim back ([`CallStore::release_leg_end`]). An item of its own
    /// beside the session, so claiming never conflicts with a session write.
    async fn claim_leg_end(
        &self,
        call: &CallSid,
        leg: &CallSid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives back a claim whose ending failed: the next handler or the
    /// reconciler tries at once.
    async fn release_leg_end(&self, call: &CallSid, leg: &CallSid) -> Result<(), StoreError>;

    /// A caller is still waiting for `team` (their wait loop asked again):
    /// their place in the queue, kept by when they started waiting.
    async fn still_waiting(&self, team: &TeamName, place: &QueuePlace) -> Result<(), StoreError>;

    /// How many of `team`'s callers started waiting before `place` and were
    /// still waiting within [`QUEUE_SEEN_WITHIN`] of `now`.
    async fn callers_ahead(
        &self,
        team: &TeamName,
        place: &QueuePlace,
        now: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Adds an entry to the call's history (never overwrites one).
    async fn append_event(&self, id: &CallSid, event: &HistoryEvent) -> Result<(), StoreError>;

    /// The call's whole history, oldest first, however long: for tests
    /// and tools. A request reads [`CallStore::history_page`].
    async fn list_events(&self, id: &CallSid) -> Result<Vec<HistoryEvent>, StoreError>;

    /// At most `limit` entries of the call's history, oldest first: the
    /// newest ones, or those written before `before`. One Query page, so a
    /// request's cost does not grow with the history.
    async fn history_page(
        &self,
        id: &CallSid,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError>;

    /// Open sessions whose next check is due at `now`, the longest overdue
    /// first, at most `limit`: a Query on the sparse open-sessions index,
    /// whose cost grows with the open calls, not the table.
    async fn due_sessions(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError>;

    /// Claims a due session for one reconciler run until `lease_until`. Of
    /// concurrent claims of one session exactly one wins (`true`); a claim
    /// also fails when the session changed since the index read it, or
    /// another run's lease has not expired. The claim also schedules the
    /// next check (the session's own [`CallSession::next_check`], not before
    /// the lease ends), so a check that changes nothing writes nothing more.
    async fn claim_check(
        &self,
        due: &DueSession,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
