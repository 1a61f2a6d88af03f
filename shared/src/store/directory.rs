//! The directory of agents, in the calls table: one item per agent,
//! `DIRECTORY` / `AGENT#<subject>`, so one Query lists them all (a contact
//! centre's few hundred agents fit one page). Written by the agent's own
//! heartbeat and by reservations, each conditional on the version read, so
//! of two transfers reserving one agent exactly one wins. An entry expires
//! (TTL) a while after its last heartbeat: someone who left the centre
//! drops out on their own.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::StoreError;
use super::dynamo::{DynamoStore, Failure, classify, query_partition};
use super::item::{Item, get_bool, get_n, get_s, n, s, time, time_text};
use crate::domain::{AgentId, AgentProfile, DirectoryAgent, TeamName};
use crate::ids::{CallSid, PhoneNumber};

pub const DIRECTORY_PK: &str = "DIRECTORY";
pub const AGENT_PREFIX: &str = "AGENT#";

/// An agent not seen for this long leaves the directory (TTL).
pub const DIRECTORY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How many times a heartbeat re-reads after another write came first.
const MAX_ATTEMPTS: usize = 4;

/// What an agent's console says in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckIn {
    Available,
    Away,
    /// Signed out: offline at once, not after the heartbeats stop.
    SignedOut,
}

#[async_trait]
pub trait Directory: Send + Sync {
    /// Records a heartbeat: the entry is made at first sign-in, and the
    /// profile refreshed from the sign-in every time.
    async fn check_in(
        &self,
        profile: &AgentProfile,
        check_in: CheckIn,
        now: OffsetDateTime,
    ) -> Result<DirectoryAgent, StoreError>;

    /// Every agent, as last written (one strongly consistent Query).
    async fn agents(&self) -> Result<Vec<DirectoryAgent>, StoreError>;

    async fn agent(&self, id: &AgentId) -> Result<Option<DirectoryAgent>, StoreError>;

    /// Writes `agent` as changed (a reservation, a call placed) on
    /// condition that its entry is still at `agent.version`: false when
    /// another write came first.
    async fn write_if_unchanged(&self, agent: &DirectoryAgent) -> Result<bool, StoreError>;
}

impl DirectoryAgent {
    /// The entry after a heartbeat.
    pub fn checked_in(
        existing: Option<DirectoryAgent>,
        profile: AgentProfile,
        check_in: CheckIn,
        now: OffsetDateTime,
    ) -> DirectoryAgent {
        let mut agent = existing.unwrap_or_else(|| DirectoryAgent::signed_in(profile.clone(), now));
        let was_free = agent.free_to_take_calls(now);
        agent.profile = profile;
        match check_in {
            CheckIn::Available => {
                agent.away = false;
                agent.seen_at = Some(now);
            }
            CheckIn::Away => {
                agent.away = true;
                agent.seen_at = Some(now);
            }
            CheckIn::SignedOut => agent.seen_at = None,
        }
        if agent.free_to_take_calls(now) && !was_free {
            agent.available_since = now;
        }
        agent
    }

    fn free_to_take_calls(&self, now: OffsetDateTime) -> bool {
        !self.away
            && self
                .seen_at
                .is_some_and(|seen| now - seen < crate::domain::OFFLINE_AFTER)
    }
}

fn agent_sk(id: &AgentId) -> String {
    format!("{AGENT_PREFIX}{}", id.as_str())
}

fn key(id: &AgentId) -> Item {
    Item::from([
        ("pk".to_owned(), s(DIRECTORY_PK)),
        ("sk".to_owned(), s(agent_sk(id))),
    ])
}

fn agent_item(agent: &DirectoryAgent, version: u64) -> Item {
    let p = &agent.profile;
    let list = |values: Vec<&str>| AttributeValue::L(values.into_iter().map(s).collect());
    let mut item = key(&p.id);
    let last_seen = agent.seen_at.unwrap_or(agent.available_since);
    let expires_at = last_seen.unix_timestamp() + DIRECTORY_TTL.as_secs() as i64;
    item.extend([
        ("name".to_owned(), s(&p.name)),
        (
            "numbers".to_owned(),
            list(p.numbers.iter().map(PhoneNumber::as_str).collect()),
        ),
        (
            "teams".to_owned(),
            list(p.teams.iter().map(TeamName::as_str).collect()),
        ),
        ("away".to_owned(), AttributeValue::Bool(agent.away)),
        (
            "available_since".to_owned(),
            s(time_text(agent.available_since)),
        ),
        ("version".to_owned(), n(version)),
        ("expires_at".to_owned(), n(expires_at)),
    ]);
    if let Some(seen) = agent.seen_at {
        item.insert("seen_at".into(), s(time_text(seen)));
    }
    if let Some(call) = &agent.call {
        item.insert("call".into(), s(call.as_str()));
    }
    if let Some(until) = agent.reserved_until {
        item.insert("reserved_until".into(), s(time_text(until)));
    }
    item
}

pub fn agent_from_item(item: &Item) -> Result<DirectoryAgent, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("directory entry: {what}"));
    let optional_time = |name: &str| item.get(name).map(|_| time(item, name)).transpose();
    let list = |name: &str| -> Vec<&str> {
        item.get(name)
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_s().ok().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = get_s(item, "sk")
        .and_then(|sk| sk.strip_prefix(AGENT_PREFIX))
        .and_then(|id| AgentId::parse(id).ok())
        .ok_or_else(|| corrupt("sk"))?;
    Ok(DirectoryAgent {
        profile: AgentProfile {
            id,
            name: get_s(item, "name").unwrap_or_default().to_owned(),
            // A malformed value is dropped rather than the agent.
            numbers: list("numbers")
                .into_iter()
                .filter_map(|n| PhoneNumber::parse(n).ok())
                .collect(),
            teams: list("teams")
                .into_iter()
                .filter_map(|t| TeamName::parse(t).ok())
                .collect(),
        },
        away: get_bool(item, "away"),
        seen_at: optional_time("seen_at")?,
        available_since: time(item, "available_since")?,
        call: get_s(item, "call").and_then(|c| CallSid::parse(c).ok()),
        reserved_until: optional_time("reserved_until")?,
        version: get_n(item, "version").ok_or_else(|| corrupt("version"))?,
    })
}

impl DynamoStore {
    /// Writes `agent` at the next version, on condition that the stored
    /// entry is still the one read (or, for a new one, that none exists).
    async fn put_agent(&self, agent: &DirectoryAgent, new: bool) -> Result<bool, StoreError> {
        let next = if new { 1 } else { agent.version + 1 };
        let mut request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(agent_item(agent, next)));
        request = if new {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :version")
                .expression_attribute_values(":version", n(agent.version))
        };
        match request.send().await.map_err(classify) {
            Ok(_) => Ok(true),
            Err(Failure::ConditionFailed) => Ok(false),
            Err(Failure::Store(error)) => Err(error),
        }
    }
}

#[async_trait]
impl Directory for DynamoStore {
    async fn check_in(
        &self,
        profile: &AgentProfile,
        check_in: CheckIn,
        now: OffsetDateTime,
    ) -> Result<DirectoryAgent, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let existing = self.agent(&profile.id).await?;
            let new = existing.is_none();
            let mut agent = DirectoryAgent::checked_in(existing, profile.clone(), check_in, now);
            if self.put_agent(&agent, new).await? {
                agent.version = if new { 1 } else { agent.version + 1 };
                return Ok(agent);
            }
        }
        Err(StoreError::Conflict)
    }

    async fn agents(&self) -> Result<Vec<DirectoryAgent>, StoreError> {
        query_partition(self.client(), self.table(), DIRECTORY_PK, AGENT_PREFIX)
            .await?
            .iter()
            .map(agent_from_item)
            .collect()
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<DirectoryAgent>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(e).into_store_error())?;
        output.item().map(agent_from_item).transpose()
    }

    async fn write_if_unchanged(&self, agent: &DirectoryAgent) -> Result<bool, StoreError> {
        self.put_agent(agent, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> AgentProfile {
        AgentProfile {
            id: AgentId::parse("local-bob").unwrap(),
            name: "Bob".into(),
            numbers: vec![PhoneNumber::parse("+15550100003").unwrap()],
            teams: vec![TeamName::parse("billing").unwrap()],
        }
    }

    #[test]
    fn an_entry_round_trips_through_its_item() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut agent = DirectoryAgent::checked_in(None, profile(), CheckIn::Away, now);
        agent.reserve(
            &CallSid::parse("CA00000000000000000000000000000001").unwrap(),
            now,
        );
        let item = agent_item(&agent, 7);
        let read = agent_from_item(&item).unwrap();
        assert_eq!(
            read,
            DirectoryAgent {
                version: 7,
                ..agent
            }
        );
    }

    #[test]
    fn coming_back_from_away_restarts_the_idle_clock_and_a_beat_does_not() {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap();
        let agent = DirectoryAgent::checked_in(None, profile(), CheckIn::Available, at(0));
        assert_eq!(agent.available_since, at(0));
        let beat = DirectoryAgent::checked_in(Some(agent), profile(), CheckIn::Available, at(60));
        assert_eq!(beat.available_since, at(0));
        let away = DirectoryAgent::checked_in(Some(beat), profile(), CheckIn::Away, at(90));
        let back = DirectoryAgent::checked_in(Some(away), profile(), CheckIn::Available, at(120));
        assert_eq!(back.available_since, at(120));
    }
}
