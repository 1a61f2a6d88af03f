//! Who takes a transfer: the directory with everyone's presence, derived
//! from the calls their entries point at, and the reservation of a
//! colleague or of a team's first available member. A reservation is a
//! conditional write of the agent's entry on the version read, so two
//! transfers never hold the same agent; an agent on a call is never
//! offered another, because their call says so.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::Services;
use crate::domain::{
    AgentId, AgentPresence, Availability, CallSession, DirectoryAgent, TeamName, first_available,
};
use crate::ids::{CallSid, PhoneNumber};
use crate::store::{CallStore, Directory, StoreError};

/// Rounds of reading the team and trying its members before a transfer
/// gives up on finding one: each round is lost only to another transfer's
/// reservation or a heartbeat, which a fresh read takes into account.
const ROUNDS: usize = 4;

/// An agent with their presence now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub agent: DirectoryAgent,
    pub presence: AgentPresence,
}

/// The whole directory with everyone's presence: one Query, then one read
/// of each call an entry points at (many agents point at none).
pub async fn directory(
    services: &Services,
    now: OffsetDateTime,
) -> Result<Vec<Listed>, StoreError> {
    listed(services.directory.as_ref(), services.store.as_ref(), now).await
}

/// [`directory`], from the two ports alone (the stream publisher has no
/// Twilio client).
pub async fn listed(
    directory: &dyn Directory,
    store: &dyn CallStore,
    now: OffsetDateTime,
) -> Result<Vec<Listed>, StoreError> {
    let agents = directory.agents().await?;
    presence_of(store, agents, now).await
}

async fn with_presence(
    services: &Services,
    agents: Vec<DirectoryAgent>,
    now: OffsetDateTime,
) -> Result<Vec<Listed>, StoreError> {
    presence_of(services.store.as_ref(), agents, now).await
}

async fn presence_of(
    store: &dyn CallStore,
    agents: Vec<DirectoryAgent>,
    now: OffsetDateTime,
) -> Result<Vec<Listed>, StoreError> {
    let mut calls: Vec<CallSid> = agents.iter().filter_map(|a| a.call.clone()).collect();
    calls.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    calls.dedup();
    let read = futures::future::join_all(calls.iter().map(|sid| store.get_session(sid))).await;
    let mut sessions: HashMap<CallSid, CallSession> = HashMap::new();
    for (sid, session) in calls.iter().cloned().zip(read) {
        if let Some(session) = session? {
            sessions.insert(sid, session);
        }
    }
    Ok(agents
        .into_iter()
        .map(|agent| {
            let call = agent.call.as_ref().and_then(|sid| sessions.get(sid));
            let presence = agent.presence(call, now);
            Listed { agent, presence }
        })
        .collect())
}

/// Why a colleague could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReserved {
    /// No such agent in the directory.
    Unknown,
    /// Busy, away or offline (or another transfer got them first).
    Unavailable(Availability),
}

/// Reserves the colleague `id` for `call`, if available now.
pub async fn reserve_colleague(
    services: &Services,
    id: &AgentId,
    call: &CallSid,
    now: OffsetDateTime,
) -> Result<Result<DirectoryAgent, NotReserved>, StoreError> {
    let Some(agent) = services.directory.agent(id).await? else {
        return Ok(Err(NotReserved::Unknown));
    };
    let listed = with_presence(services, vec![agent], now).await?;
    let Some(Listed { agent, presence }) = listed.into_iter().next() else {
        return Ok(Err(NotReserved::Unknown));
    };
    if first_available([(&agent, presence.clone())], &[]).is_empty() {
        return Ok(Err(NotReserved::Unavailable(presence.availability)));
    }
    reserve(services, agent, call, now)
        .await
        .map(|won| won.ok_or(NotReserved::Unavailable(Availability::Busy)))
}

/// Reserves the longest idle available member of `team` who is not in
/// `passed`, for `call`: none when nobody is left. Losing a member to
/// another transfer moves on to the next one, and then reads again, so a
/// member who is still available is never skipped.
pub async fn reserve_from_team(
    services: &Services,
    team: &TeamName,
    passed: &[AgentId],
    call: &CallSid,
    now: OffsetDateTime,
) -> Result<Option<DirectoryAgent>, StoreError> {
    reserve_for_caller(services, team, passed, 0, call, now).await
}

/// [`reserve_from_team`] for a caller with `ahead` callers waiting longer
/// for the same team: they come first, so this caller gets a member only
/// while more members than that are available.
pub async fn reserve_for_caller(
    services: &Services,
    team: &TeamName,
    passed: &[AgentId],
    ahead: usize,
    call: &CallSid,
    now: OffsetDateTime,
) -> Result<Option<DirectoryAgent>, StoreError> {
    for _ in 0..ROUNDS {
        let members: Vec<DirectoryAgent> = services
            .directory
            .agents()
            .await?
            .into_iter()
            .filter(|agent| agent.in_team(team))
            .collect();
        let listed = with_presence(services, members, now).await?;
        let order = first_available(
            listed.iter().map(|l| (&l.agent, l.presence.clone())),
            passed,
        );
        if order.len() <= ahead {
            return Ok(None);
        }
        for candidate in order {
            if let Some(reserved) = reserve(services, candidate.clone(), call, now).await? {
                return Ok(Some(reserved));
            }
        }
    }
    Ok(None)
}

/// One conditional write: the entry as read, now held for `call`.
async fn reserve(
    services: &Services,
    mut agent: DirectoryAgent,
    call: &CallSid,
    now: OffsetDateTime,
) -> Result<Option<DirectoryAgent>, StoreError> {
    agent.reserve(call, now);
    if services.directory.write_if_unchanged(&agent).await? {
        agent.version += 1;
        Ok(Some(agent))
    } else {
        Ok(None)
    }
}

/// A transfer to a number that is a colleague's: they ring whatever their
/// presence says (a number is dialled as asked), and are busy from now on
/// like any member a transfer rings. None when no agent has the number.
pub async fn ringing_by_number(
    services: &Services,
    number: &PhoneNumber,
    call: &CallSid,
    now: OffsetDateTime,
) -> Option<DirectoryAgent> {
    let agents = match services.directory.agents().await {
        Ok(agents) => agents,
        Err(error) => {
            tracing::warn!(%error, call = %call, "directory unreadable; the number rings as a number");
            return None;
        }
    };
    let agent = agents
        .into_iter()
        .find(|a| a.profile.numbers.first() == Some(number))?;
    let id = agent.profile.id.clone();
    rewrite(
        services,
        &id,
        call,
        "ringing colleague not noted in the directory",
        |a| {
            a.reserve(call, now);
            true
        },
    )
    .await;
    Some(agent)
}

/// Lets go of a reservation for `call` that will not ring (the transfer
/// was refused or failed). Best effort: it lapses by itself soon after.
pub async fn release(services: &Services, id: &AgentId, call: &CallSid) {
    rewrite(
        services,
        id,
        call,
        "reservation not released; it lapses by itself",
        |agent| {
            let held_for_call = agent.call.as_ref() == Some(call) && agent.reserved_until.is_some();
            agent.reserved_until = None;
            held_for_call
        },
    )
    .await;
}

/// The agent `id` placed `call`: their entry points at it, so they are
/// busy while it has them on the line. Best effort, like a heartbeat.
pub async fn placed_call(services: &Services, id: &AgentId, call: &CallSid) {
    rewrite(
        services,
        id,
        call,
        "call not noted in the directory",
        |agent| {
            agent.call = Some(call.clone());
            true
        },
    )
    .await;
}

/// Applies `change` to the agent's entry and writes it back on its
/// version, reading again after another write came first; `change` says
/// whether there is anything to write. Best effort: a failure is logged
/// with `failed`.
async fn rewrite(
    services: &Services,
    id: &AgentId,
    call: &CallSid,
    failed: &str,
    change: impl Fn(&mut DirectoryAgent) -> bool,
) {
    for _ in 0..3 {
        let Ok(Some(mut agent)) = services.directory.agent(id).await else {
            return;
        };
        if !change(&mut agent) {
            return;
        }
        match services.directory.write_if_unchanged(&agent).await {
            Ok(false) => continue,
            Ok(true) => return,
            Err(error) => {
                tracing::warn!(%error, call = %call, "{failed}");
                return;
            }
        }
    }
}
