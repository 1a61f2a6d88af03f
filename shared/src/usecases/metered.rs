//! What every committed change of a call achieved, counted once whoever
//! made it (`metrics::session_changed`): the call store, wrapped. Counted
//! here, where a use case's change is known to have been written, rather
//! than inside an adapter's commit, so each store keeps to storing.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{CallSession, HistoryEvent, TeamName};
use crate::ids::CallSid;
use crate::metrics;
use crate::store::{
    CallStore, Command, DueSession, HistoryCursor, HistoryPage, QueuePlace, StoreError,
    update_returning,
};

pub struct Metered(Arc<dyn CallStore>);

impl Metered {
    pub fn new(store: Arc<dyn CallStore>) -> Self {
        Self(store)
    }
}

#[async_trait]
impl CallStore for Metered {
    async fn create_session(&self, session: &CallSession) -> Result<(), StoreError> {
        self.0.create_session(session).await
    }

    async fn get_session(&self, id: &CallSid) -> Result<Option<CallSession>, StoreError> {
        self.0.get_session(id).await
    }

    /// The change the command made on its last attempt is what was
    /// written (a store re-applies it after a concurrent write, and one
    /// whose answer was lost is its own earlier attempt). Counted from that
    /// attempt, not from the session the store answers with, which may
    /// carry another writer's change on top (counted by that writer).
    async fn update(&self, id: &CallSid, command: &Command<'_>) -> Result<CallSession, StoreError> {
        let (change, session) = update_returning(self.0.as_ref(), id, &|session| {
            let before = session.clone();
            command(session)?;
            Ok((before, session.clone()))
        })
        .await?;
        if let Some((before, after)) = change.filter(|(before, after)| before != after) {
            metrics::session_changed(&before, &after);
        }
        Ok(session)
    }

    async fn take_allowance(&self, who: &str, minute: i64, limit: u32) -> Result<bool, StoreError> {
        self.0.take_allowance(who, minute, limit).await
    }

    async fn claim_leg_end(
        &self,
        call: &CallSid,
        leg: &CallSid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.0.claim_leg_end(call, leg, now).await
    }

    async fn release_leg_end(&self, call: &CallSid, leg: &CallSid) -> Result<(), StoreError> {
        self.0.release_leg_end(call, leg).await
    }

    async fn still_waiting(&self, team: &TeamName, place: &QueuePlace) -> Result<(), StoreError> {
        self.0.still_waiting(team, place).await
    }

    async fn callers_ahead(
        &self,
        team: &TeamName,
        place: &QueuePlace,
        now: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        self.0.callers_ahead(team, place, now).await
    }

    async fn append_event(&self, id: &CallSid, event: &HistoryEvent) -> Result<(), StoreError> {
        self.0.append_event(id, event).await
    }

    async fn list_events(&self, id: &CallSid) -> Result<Vec<HistoryEvent>, StoreError> {
        self.0.list_events(id).await
    }

    async fn history_page(
        &self,
        id: &CallSid,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        self.0.history_page(id, before, limit).await
    }

    async fn due_sessions(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        self.0.due_sessions(now, limit).await
    }

    async fn claim_check(
        &self,
        due: &DueSession,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.0.claim_check(due, now, lease_until).await
    }
}
