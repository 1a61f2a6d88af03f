//! The directory's two endpoints: `GET /directory` (colleagues and teams
//! with their presence, for the console's "Transfer to" picker) and
//! `POST /presence` (the console's heartbeat and the agent's availability
//! switch). Every signed-in agent sees names, teams and presence; phone
//! numbers only a supervisor sees.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::app::App;
use super::input::json_body;
use crate::auth;
use crate::domain::{Actor, AgentProfile, CallSession, DirectoryAgent};
use crate::store::CheckIn;
use crate::usecases::routing::{self, Listed};
use crate::usecases::view::{AgentView, DirectoryView, IncomingView};
use crate::web::ApiError;
use crate::web::responses::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    /// `available`, `away`, or `offline` (signing out).
    status: Option<String>,
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
    let listed = routing::directory(&app.services, now).await?;
    let view = DirectoryView::new(&listed, me.as_ref().map(|p| &p.id), actor.supervisor);
    // A caller's call ringing the reader: the console shows who is calling.
    let ringing = me.as_ref().and_then(|me| {
        listed
            .iter()
            .find(|l| l.agent.profile.id == me.id)
            .and_then(|l| l.agent.call.clone())
    });
    let incoming = match ringing {
        Some(call) => app
            .services
            .store
            .get_session(&call)
            .await
            .ok()
            .flatten()
            .and_then(|session| IncomingView::of(&session, &actor.numbers)),
        None => None,
    };
    Ok(json(StatusCode::OK, &view.with_incoming(incoming)))
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
    Ok(json(
        StatusCode::OK,
        &AgentView::new(&listed, actor.supervisor),
    ))
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
