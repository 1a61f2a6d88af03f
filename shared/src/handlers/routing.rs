//! Transfers to a colleague or a team: the member is reserved before the
//! transfer is recorded, released when it will not ring, and a team's next
//! member rung when one is passed over (from the status callback that says
//! so, [`ring_next_member`]).

use time::OffsetDateTime;

use super::app::App;
use super::input::may_dial;
use super::placement::{self, Placement, record_failure, record_placement};
use super::webhook_urls::WebhookUrls;
use crate::domain::{
    Action, Actor, AgentId, CallSession, DirectoryAgent, DomainError, HistoryEvent, Member,
    TeamName, TeamRoute,
};
use crate::ids::CallSid;
use crate::store::update_returning;
use crate::usecases::routing::{self, NotReserved};
use crate::usecases::transfer::Callee;
use crate::usecases::{follow_up, history};
use crate::web::ApiError;

/// Reads the call first: nobody is held for a call the actor may not
/// transfer, and a request repeated with its idempotency key holds nobody
/// again (`None`: answer with the call as it is).
async fn transferable(
    app: &App,
    actor: &Actor,
    sid: &CallSid,
    key: Option<&str>,
) -> Result<Option<CallSession>, ApiError> {
    let session = app.stored_call(sid).await?;
    actor.may(Action::Transfer, &session)?;
    let replay = key.is_some()
        && session
            .transfer
            .as_ref()
            .is_some_and(|t| t.idempotency_key.as_deref() == key);
    Ok((!replay).then_some(session))
}

pub(super) fn member_of(agent: &DirectoryAgent) -> Member {
    Member {
        id: agent.profile.id.clone(),
        name: agent.profile.name.clone(),
    }
}

/// The colleague `id`, reserved for this call.
pub(super) async fn colleague(
    app: &App,
    actor: &Actor,
    sid: &CallSid,
    id: &AgentId,
    key: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Callee>, ApiError> {
    if transferable(app, actor, sid, key).await?.is_none() {
        return Ok(None);
    }
    let agent = match routing::reserve_colleague(&app.services, id, sid, now).await? {
        Ok(agent) => agent,
        Err(NotReserved::Unknown) => {
            return Err(ApiError::NotFound(format!(
                "no agent {} in the directory",
                id.as_str()
            )));
        }
        Err(NotReserved::Unavailable(availability)) => {
            return Err(ApiError::Conflict {
                message: "that colleague cannot take a call now".into(),
                state: availability.as_str().into(),
            });
        }
    };
    callee(app, &agent, None, sid).await.map(Some)
}

/// The team's longest idle available member, reserved for this call.
pub(super) async fn team_member(
    app: &App,
    actor: &Actor,
    sid: &CallSid,
    team: &TeamName,
    key: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Callee>, ApiError> {
    if transferable(app, actor, sid, key).await?.is_none() {
        return Ok(None);
    }
    let Some(agent) = routing::reserve_from_team(&app.services, team, &[], sid, now).await? else {
        return Err(ApiError::Conflict {
            message: format!("nobody in team {team} is available"),
            state: "nobody-available".into(),
        });
    };
    let route = TeamRoute::new(
        team.clone(),
        app.config.team_max_members,
        now + app.config.team_max_wait,
    );
    callee(app, &agent, Some(route), sid).await.map(Some)
}

/// What the transfer rings for a reserved agent; their reservation let go
/// if their number may not be dialled.
async fn callee(
    app: &App,
    agent: &DirectoryAgent,
    route: Option<TeamRoute>,
    sid: &CallSid,
) -> Result<Callee, ApiError> {
    let member = member_of(agent);
    let allowed = match agent.phone() {
        Some(number) => may_dial(app, "agent", number).map(|()| number.clone()),
        None => Err(ApiError::bad_request("agent", "has no phone number")),
    };
    match allowed {
        Ok(number) => Ok(Callee {
            number,
            member: Some(member),
            route,
        }),
        Err(error) => {
            routing::release(&app.services, &member.id, sid).await;
            Err(error)
        }
    }
}

/// A number, named as the colleague whose phone it is when the directory
/// has one (they are busy while it rings).
pub(super) async fn number(
    app: &App,
    number: crate::ids::PhoneNumber,
    sid: &CallSid,
    now: OffsetDateTime,
) -> Callee {
    let agent = routing::ringing_by_number(&app.services, &number, sid, now).await;
    Callee {
        member: agent.as_ref().map(member_of),
        ..Callee::number(number)
    }
}

/// Lets go of the member a transfer reserved, when it will not ring them.
pub(super) async fn release(app: &App, callee: &Callee, sid: &CallSid) {
    if let Some(member) = &callee.member {
        routing::release(&app.services, &member.id, sid).await;
    }
}

/// How the history names a transfer's destination: the member's name (and
/// team), or the number masked.
pub(super) fn describe(callee: &Callee) -> String {
    match (&callee.member, &callee.route) {
        (Some(member), Some(route)) => format!("{} (team {})", member.name, route.team),
        (Some(member), None) => member.name.clone(),
        (None, _) => callee.number.masked(),
    }
}

/// A team transfer's member was passed over (busy, no answer, declined,
/// called off): reserve the next one and ring them, or, with nobody left,
/// end the route so the transfer ends as a failed one does. Of handlers
/// that see the same callback, only the one whose write moves the call on
/// to the next attempt dials.
pub(super) async fn ring_next_member(app: &App, urls: &WebhookUrls, session: CallSession) {
    let Some(after) = session.next_member_due() else {
        return;
    };
    let Some((route, passed)) = session.transfer.as_ref().and_then(|t| {
        let route = t.route.clone()?;
        let mut passed = route.passed_ids();
        passed.extend(t.member.as_ref().map(|m| m.id.clone()));
        Some((route, passed))
    }) else {
        return;
    };
    let sid = session.id.clone();
    let now = OffsetDateTime::now_utc();
    let reserved = if now < route.until {
        routing::reserve_from_team(&app.services, &route.team, &passed, &sid, now).await
    } else {
        Ok(None)
    };
    let agent = match reserved {
        Ok(Some(agent)) => agent,
        Ok(None) => return route_over(app, &sid, after, &route.team).await,
        Err(error) => {
            // The reconciler ends the route if this keeps failing.
            tracing::warn!(%error, call = %sid, "team's next member not found");
            return;
        }
    };
    let member = member_of(&agent);
    let Some(number) = agent.phone().cloned() else {
        routing::release(&app.services, &member.id, &sid).await;
        return;
    };
    let next = |s: &mut CallSession| s.ring_next_member(after, member.clone(), number.clone(), now);
    let store = app.services.store.as_ref();
    let session = match update_returning(store, &sid, &next).await {
        Ok((Some(()), session)) => session,
        Ok((None, _)) | Err(_) => {
            // Another handler moved on first, or the call changed.
            routing::release(&app.services, &member.id, &sid).await;
            return;
        }
    };
    let passed_text = session
        .transfer
        .as_ref()
        .and_then(|t| t.route.as_ref())
        .and_then(|r| r.passed.last())
        .map(|p| format!("{} passed over ({})", p.member.name, p.why.as_str()))
        .unwrap_or_default();
    let event = HistoryEvent::product(
        now,
        format!("ringing {} (team {})", member.name, route.team),
        Some(passed_text),
    );
    history::record(store, &sid, &event).await;
    ring_reserved(app, urls, session, &member).await;
}

/// Rings the member the session's current attempt names, reserved for it,
/// and records what Twilio did; their reservation let go if Twilio refused.
pub(super) async fn ring_reserved(
    app: &App,
    urls: &WebhookUrls,
    session: CallSession,
    member: &Member,
) {
    let sid = session.id.clone();
    let Some(plan) = session.transfer_plan() else {
        return;
    };
    let rang = placement::ring_agent(app, urls, &sid, &plan).await;
    match &rang {
        Ok(participant) => {
            let placement = Placement {
                attempt: plan.attempt,
                room_sid: participant.conference_sid.clone(),
                lifted: None,
                waiting: false,
            };
            record_placement(app, session, placement, &rang).await;
        }
        Err(error) => {
            routing::release(&app.services, &member.id, &sid).await;
            let reason = format!("second agent could not be called: {error}");
            tracing::warn!(call = %sid, attempt = plan.attempt, %reason, "member not rung");
            record_failure(app, None, &sid, plan.attempt, &reason, true).await;
        }
    }
}

/// Nobody is left to ring: the route ends, and with it the transfer, as a
/// failed one (the agent handing over keeps the customer; after a blind
/// transfer the customer goes to the fallback).
async fn route_over(app: &App, sid: &CallSid, after: u32, team: &TeamName) {
    let store = app.services.store.as_ref();
    let over = |s: &mut CallSession| s.route_exhausted(after);
    match store.update(sid, &over).await {
        Ok(session) => {
            let event = HistoryEvent::product(
                OffsetDateTime::now_utc(),
                format!("nobody left to ring in team {team}"),
                None,
            );
            history::record(store, sid, &event).await;
            follow_up::carry_out(&app.services, &session).await;
        }
        Err(crate::store::StoreError::Rejected(DomainError::NoTransfer)) => {}
        Err(error) => tracing::warn!(%error, call = %sid, "team's route not ended"),
    }
}
