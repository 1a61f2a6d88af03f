//! The directory's two endpoints: `GET /directory` (colleagues and teams
//! with their presence, for the console's "Transfer to" picker) and
//! `POST /presence` (the console's heartbeat and the agent's availability
//! switch). Every signed-in agent sees names, teams and presence; phone
//! numbers only a supervisor sees.

use std::collections::BTreeMap;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::app::App;
use super::input::json_body;
use crate::auth;
use crate::domain::{Actor, AgentProfile, Availability, CallSession, DirectoryAgent};
use crate::ids::PhoneNumber;
use crate::store::CheckIn;
use crate::usecases::routing::{self, Listed};
use crate::web::ApiError;
use crate::web::responses::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    /// `available`, `away`, or `offline` (signing out).
    status: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentView<'a> {
    id: &'a str,
    name: &'a str,
    teams: Vec<&'a str>,
    availability: Availability,
    /// Since when an available agent has been idle (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_since: Option<String>,
    /// Supervisors only: numbers identify people.
    #[serde(skip_serializing_if = "Option::is_none")]
    numbers: Option<Vec<&'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TeamView<'a> {
    name: &'a str,
    members: usize,
    available: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryView<'a> {
    /// The signed-in agent's own id, so the console leaves them out.
    me: Option<&'a str>,
    agents: Vec<AgentView<'a>>,
    teams: Vec<TeamView<'a>>,
}

fn agent_view<'a>(listed: &'a Listed, actor: &Actor) -> AgentView<'a> {
    let profile = &listed.agent.profile;
    let availability = listed.presence.availability;
    AgentView {
        id: profile.id.as_str(),
        name: &profile.name,
        teams: profile.teams.iter().map(|t| t.as_str()).collect(),
        availability,
        idle_since: (availability == Availability::Available)
            .then(|| listed.presence.idle_since.format(&Rfc3339).ok())
            .flatten(),
        numbers: actor
            .supervisor
            .then(|| profile.numbers.iter().map(PhoneNumber::as_str).collect()),
    }
}

/// Who signed in, as the directory keeps them (from the verified claims).
pub(super) fn profile(app: &App, req: &Request, actor: &Actor) -> Result<AgentProfile, ApiError> {
    let claims = auth::claims(req).map_err(|_| ApiError::Unauthorized)?;
    app.config
        .agents
        .profile(&claims, actor)
        .map_err(|_| ApiError::Unauthorized)
}

pub async fn get_directory(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let me = profile(app, req, actor).ok();
    let now = OffsetDateTime::now_utc();
    let mut listed = routing::directory(&app.services, now).await?;
    listed.sort_by(|a, b| a.agent.profile.name.cmp(&b.agent.profile.name));
    let mut teams: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for entry in &listed {
        let available = entry.presence.availability == Availability::Available;
        for team in &entry.agent.profile.teams {
            let counts = teams.entry(team.as_str()).or_default();
            counts.0 += 1;
            counts.1 += usize::from(available);
        }
    }
    let view = DirectoryView {
        me: me.as_ref().map(|p| p.id.as_str()),
        agents: listed.iter().map(|l| agent_view(l, actor)).collect(),
        teams: teams
            .into_iter()
            .map(|(name, (members, available))| TeamView {
                name,
                members,
                available,
            })
            .collect(),
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn set_presence(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let body: PresenceBody = json_body(req)?;
    let check_in = match body.status.as_deref() {
        Some("available") => CheckIn::Available,
        Some("away") => CheckIn::Away,
        Some("offline") => CheckIn::SignedOut,
        _ => {
            return Err(ApiError::bad_request(
                "status",
                "must be available, away or offline",
            ));
        }
    };
    let profile = profile(app, req, actor)?;
    let now = OffsetDateTime::now_utc();
    let agent = app
        .services
        .directory
        .check_in(&profile, check_in, now)
        .await?;
    let call = match &agent.call {
        Some(sid) => app.services.store.get_session(sid).await?,
        None => None,
    };
    if check_in != CheckIn::Available {
        call_off_ring(app, &agent, call.as_ref()).await;
    }
    let listed = Listed {
        presence: agent.presence(call.as_ref(), now),
        agent,
    };
    Ok(json(StatusCode::OK, &agent_view(&listed, actor)))
}

/// An agent who steps away or signs out while a transfer rings them is
/// called off, so the team's next member is rung at once rather than when
/// the ring times out. Someone already talking stays on their call.
async fn call_off_ring(app: &App, agent: &DirectoryAgent, call: Option<&CallSession>) {
    let Some(transfer) = call.and_then(|c| c.transfer.as_ref()) else {
        return;
    };
    let theirs = transfer
        .member
        .as_ref()
        .is_some_and(|m| m.id == agent.profile.id);
    let ringing = transfer.target_live() && !transfer.target_talking();
    let Some(leg) = transfer.target_leg.as_ref().filter(|_| theirs && ringing) else {
        return;
    };
    match app.services.twilio.end_call(&leg.call_sid).await {
        Ok(()) => tracing::info!(call = %leg.call_sid, "ring of an agent who left called off"),
        Err(error) => {
            tracing::warn!(%error, call = %leg.call_sid, "ring of an agent who left not called off")
        }
    }
}
