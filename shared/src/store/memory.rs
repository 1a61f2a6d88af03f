//! The call store in memory: the same contract as the DynamoDB adapter
//! (versioned writes, the open-sessions index, claims, allowances, history
//! pages), for fast tests of the use cases and for running without a
//! database. One process only, nothing kept: DynamoDB's behaviour itself
//! is tested against dynalite.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::directory::{CheckIn, Directory};
use super::item::event_sort_key;
use super::{CallStore, Command, DueSession, HistoryCursor, HistoryPage, QueuePlace, StoreError};
use crate::domain::{AgentId, AgentProfile, CallSession, DirectoryAgent, HistoryEvent, TeamName};
use crate::ids::CallSid;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<CallSid, Stored>,
    /// Each call's history by sort key (as the table's `EVENT#...`).
    events: HashMap<CallSid, Vec<(String, HistoryEvent)>>,
    allowances: HashMap<(String, i64), u32>,
    agents: HashMap<AgentId, DirectoryAgent>,
    /// Claims to end a leg, by (call, leg): when taken (0: given back).
    leg_ends: HashMap<(CallSid, CallSid), i64>,
    /// Each team's queue: sort key to when the caller was last seen.
    queues: HashMap<TeamName, std::collections::BTreeMap<String, OffsetDateTime>>,
}

struct Stored {
    session: CallSession,
    /// When the reconciler must look next; none once settled (out of the
    /// open-sessions index).
    check_at: Option<i64>,
    lease: Option<i64>,
}

impl Stored {
    fn new(session: CallSession, lease: Option<i64>) -> Self {
        let check_at = session
            .next_check(OffsetDateTime::now_utc())
            .map(OffsetDateTime::unix_timestamp);
        Self {
            session,
            check_at,
            lease,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CallStore for MemoryStore {
    async fn create_session(&self, session: &CallSession) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::AlreadyExists);
        }
        let stored = Stored::new(session.clone(), None);
        state.sessions.insert(session.id.clone(), stored);
        Ok(())
    }

    async fn get_session(&self, id: &CallSid) -> Result<Option<CallSession>, StoreError> {
        Ok(self.state().sessions.get(id).map(|s| s.session.clone()))
    }

    async fn update(&self, id: &CallSid, command: &Command<'_>) -> Result<CallSession, StoreError> {
        // The lock makes read, command and write one step, as the
        // conditional write does in DynamoDB.
        let mut state = self.state();
        let stored = state.sessions.get_mut(id).ok_or(StoreError::NotFound)?;
        let current = stored.session.clone();
        let mut next = current.clone();
        command(&mut next)?;
        if next == current {
            return Ok(current);
        }
        next.version = current.version + 1;
        *stored = Stored::new(next.clone(), stored.lease);
        Ok(next)
    }

    async fn claim_leg_end(
        &self,
        call: &CallSid,
        leg: &CallSid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let stale = now.unix_timestamp() - super::LEG_END_CLAIM.as_secs() as i64;
        let claim = state
            .leg_ends
            .entry((call.clone(), leg.clone()))
            .or_insert(0);
        if *claim > stale {
            return Ok(false);
        }
        *claim = now.unix_timestamp();
        Ok(true)
    }

    async fn release_leg_end(&self, call: &CallSid, leg: &CallSid) -> Result<(), StoreError> {
        self.state().leg_ends.remove(&(call.clone(), leg.clone()));
        Ok(())
    }

    async fn still_waiting(&self, team: &TeamName, place: &QueuePlace) -> Result<(), StoreError> {
        let key = super::item::wait_sort_key(place.since, &place.call);
        self.state()
            .queues
            .entry(team.clone())
            .or_default()
            .insert(key, place.seen);
        Ok(())
    }

    async fn callers_ahead(
        &self,
        team: &TeamName,
        place: &QueuePlace,
        now: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let mine = super::item::wait_sort_key(place.since, &place.call);
        let recent = now - super::QUEUE_SEEN_WITHIN;
        let state = self.state();
        let ahead = state.queues.get(team).map_or(0, |queue| {
            queue
                .range(..mine)
                .filter(|(_, seen)| **seen >= recent)
                .count()
        });
        Ok(ahead as u32)
    }

    async fn take_allowance(&self, who: &str, minute: i64, limit: u32) -> Result<bool, StoreError> {
        let mut state = self.state();
        let taken = state
            .allowances
            .entry((who.to_owned(), minute))
            .or_default();
        if *taken >= limit {
            return Ok(false);
        }
        *taken += 1;
        Ok(true)
    }

    async fn append_event(&self, id: &CallSid, event: &HistoryEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        let history = state.events.entry(id.clone()).or_default();
        history.push((event_sort_key(event.at), event.clone()));
        history.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(())
    }

    async fn list_events(&self, id: &CallSid) -> Result<Vec<HistoryEvent>, StoreError> {
        let state = self.state();
        let history = state.events.get(id).map(Vec::as_slice).unwrap_or_default();
        Ok(history.iter().map(|(_, event)| event.clone()).collect())
    }

    async fn history_page(
        &self,
        id: &CallSid,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        let state = self.state();
        let history = state.events.get(id).map(Vec::as_slice).unwrap_or_default();
        let older: Vec<&(String, HistoryEvent)> = history
            .iter()
            .filter(|(key, _)| before.is_none_or(|cursor| key.as_str() < cursor.as_str()))
            .collect();
        let start = older.len().saturating_sub(limit);
        let page = &older[start..];
        let earlier = (start > 0)
            .then(|| page.first().and_then(|(key, _)| HistoryCursor::parse(key)))
            .flatten();
        Ok(HistoryPage {
            events: page.iter().map(|(_, event)| event.clone()).collect(),
            earlier,
        })
    }

    async fn due_sessions(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        let state = self.state();
        let mut due: Vec<DueSession> = state
            .sessions
            .values()
            .filter_map(|stored| {
                let check_at = stored.check_at.filter(|at| *at <= now.unix_timestamp())?;
                Some(DueSession {
                    session: stored.session.clone(),
                    check_at,
                })
            })
            .collect();
        due.sort_by_key(|d| d.check_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_check(
        &self,
        due: &DueSession,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(stored) = state.sessions.get_mut(&due.session.id) else {
            return Ok(false);
        };
        let unchanged =
            stored.session.version == due.session.version && stored.check_at == Some(due.check_at);
        let free = stored
            .lease
            .is_none_or(|lease| lease <= now.unix_timestamp());
        if !(unchanged && free) {
            return Ok(false);
        }
        stored.check_at = Some(due.due_again(now, lease_until));
        stored.lease = Some(lease_until.unix_timestamp());
        Ok(true)
    }
}

#[async_trait]
impl Directory for MemoryStore {
    async fn check_in(
        &self,
        profile: &AgentProfile,
        check_in: CheckIn,
        now: OffsetDateTime,
    ) -> Result<DirectoryAgent, StoreError> {
        let mut state = self.state();
        let existing = state.agents.get(&profile.id).cloned();
        let version = existing.as_ref().map_or(0, |a| a.version);
        let mut agent = DirectoryAgent::checked_in(existing, profile.clone(), check_in, now);
        agent.version = version + 1;
        state.agents.insert(profile.id.clone(), agent.clone());
        Ok(agent)
    }

    async fn agents(&self) -> Result<Vec<DirectoryAgent>, StoreError> {
        let mut agents: Vec<DirectoryAgent> = self.state().agents.values().cloned().collect();
        agents.sort_by(|a, b| a.profile.id.cmp(&b.profile.id));
        Ok(agents)
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<DirectoryAgent>, StoreError> {
        Ok(self.state().agents.get(id).cloned())
    }

    async fn write_if_unchanged(&self, agent: &DirectoryAgent) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.agents.get_mut(&agent.profile.id) {
            Some(stored) if stored.version == agent.version => {
                *stored = DirectoryAgent {
                    version: agent.version + 1,
                    ..agent.clone()
                };
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{
        LegObservation, LegStatus, Observation, Observed, TransferDecision, TransferKind,
    };
    use crate::ids::PhoneNumber;
    use crate::usecases::transfer::record_transfer;

    const LEG1: &str = "CA00000000000000000000000000000001";

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn leg(sid: &str, sequence: u32) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(sid).unwrap(),
            status: LegStatus::InProgress,
            sequence: Some(sequence),
            at: OffsetDateTime::now_utc(),
        }
    }

    async fn connected(store: &MemoryStore) -> CallSid {
        let id = CallSid::parse(LEG1).unwrap();
        let session = CallSession::start(
            id.clone(),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::now_utc(),
        );
        store.create_session(&session).await.unwrap();
        store
            .observe(&id, Observation::AgentLeg(leg(LEG1, 1)))
            .await
            .unwrap();
        let customer = Observation::CustomerLeg(leg("CA00000000000000000000000000000002", 1));
        let (observed, _) = store.observe(&id, customer.clone()).await.unwrap();
        assert_eq!(observed, Observed::Applied);
        let (again, session) = store.observe(&id, customer).await.unwrap();
        assert_eq!(again, Observed::Ignored, "a duplicate callback");
        assert_eq!(session.unwrap().version, 2, "and nothing written for it");
        id
    }

    #[tokio::test]
    async fn of_concurrent_transfers_exactly_one_is_recorded() {
        let store = Arc::new(MemoryStore::new());
        let id = connected(&store).await;
        let attempts = (0..8).map(|i| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let target = phone(&format!("+1555010010{i}"));
                let now = OffsetDateTime::now_utc();
                record_transfer(
                    store.as_ref(),
                    &id,
                    target,
                    TransferKind::Warm,
                    None,
                    now,
                    &|_| Ok(()),
                )
                .await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let won = results
            .iter()
            .filter(|r| matches!(r, Ok(Ok((TransferDecision::New, _)))))
            .count();
        assert_eq!(won, 1, "{results:?}");
        let refused = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(StoreError::Rejected(_)))))
            .count();
        assert_eq!(refused, 7);
    }

    #[tokio::test]
    async fn history_reads_page_by_page_oldest_first() {
        let store = MemoryStore::new();
        let id = CallSid::parse(LEG1).unwrap();
        let start = OffsetDateTime::now_utc();
        for i in 0..5 {
            let event = HistoryEvent::product(start + time::Duration::seconds(i), "step", None);
            store.append_event(&id, &event).await.unwrap();
        }
        let newest = store.history_page(&id, None, 2).await.unwrap();
        assert_eq!(newest.events.len(), 2);
        assert_eq!(newest.events[0].at, start + time::Duration::seconds(3));
        let cursor = newest.earlier.expect("older entries");
        let older = store.history_page(&id, Some(&cursor), 10).await.unwrap();
        assert_eq!(older.events.len(), 3);
        assert_eq!(older.events[2].at, start + time::Duration::seconds(2));
        assert_eq!(older.earlier, None);
        assert_eq!(store.list_events(&id).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_due_session_is_claimed_once_and_an_allowance_runs_out() {
        let store = MemoryStore::new();
        let id = connected(&store).await;
        let later = OffsetDateTime::now_utc() + time::Duration::days(1);
        let due = store.due_sessions(later, 10).await.unwrap();
        assert_eq!(due.len(), 1, "an open call is due once its check passes");
        let lease = later + time::Duration::seconds(10);
        assert!(store.claim_check(&due[0], later, lease).await.unwrap());
        assert!(!store.claim_check(&due[0], later, lease).await.unwrap());
        let minute = later.unix_timestamp();
        assert!(store.take_allowance("alice", minute, 2).await.unwrap());
        assert!(store.take_allowance("alice", minute, 2).await.unwrap());
        assert!(!store.take_allowance("alice", minute, 2).await.unwrap());
        assert!(store.take_allowance("bob", minute, 2).await.unwrap());
        assert_eq!(store.get_session(&id).await.unwrap().unwrap().version, 2);
    }
}
