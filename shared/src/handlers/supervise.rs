//! `POST /calls/{callSid}/supervisor`: a supervisor listens to a call,
//! whispers to its agent, barges in, or leaves. Joining rings the
//! supervisor's own phone (their sign-in's first number) into the call's
//! room; a call still on its plain bridge is first moved into the room as a
//! transfer moves it (recorded first, so the agent's `<Dial action>` finds
//! it and follows the customer in). A mode switch updates the supervisor's
//! participant and never dials again; leaving hangs up their phone.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::app::App;
use super::front_end::{customer_reached_room, take_allowance};
use super::input::{call_sid, json_body, required};
use super::placement::{RingInto, record_not_joined, ring_into_room, take_out};
use super::webhook_urls::{RoomRole, WebhookUrls};
use crate::domain::{
    AccessDenied, Action, Actor, CallSession, DomainError, HistoryEvent, LegObservation, LegStatus,
    Observation, RoomParticipant, SupervisionChange, SupervisorMode,
};
use crate::ids::CallSid;
use crate::twilio::{ConferenceRef, CreateParticipant, TwilioError, UpdateParticipant};
use crate::usecases::view::CallView;
use crate::usecases::{follow_up, history};
use crate::web::ApiError;
use crate::web::responses::json;

/// How long the supervisor's phone rings before the join is given up.
const SUPERVISOR_RING_SECS: u32 = 30;

/// Twilio: the participant to be coached is on hold (error 16027).
const COACHED_ON_HOLD: u32 = 16027;
/// Twilio: the participant to be coached is not in the conference (16028).
const COACHED_ABSENT: u32 = 16028;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuperviseBody {
    /// `listen`, `whisper`, `barge` or `leave`.
    mode: Option<String>,
}

pub async fn supervise_call(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let body: SuperviseBody = json_body(req)?;
    let mode = required("mode", &body.mode)?;
    let current = app.stored_call(&sid).await?;
    actor.may(Action::Supervise, &current)?;
    if mode == "leave" {
        return leave(app, actor, &sid).await;
    }
    let mode = SupervisorMode::parse(mode)
        .ok_or_else(|| ApiError::bad_request("mode", "must be listen, whisper, barge or leave"))?;
    let number = actor
        .numbers
        .first()
        .cloned()
        .ok_or(AccessDenied::NoNumber)?;
    let now = OffsetDateTime::now_utc();
    // Refused here before anything is asked of Twilio.
    let change = current
        .clone()
        .supervise(&actor.id, number.clone(), mode, now)?;
    let urls = app.urls(req)?;
    match change {
        SupervisionChange::Unchanged => Ok(json(
            StatusCode::OK,
            &CallView::new(&current, actor, Vec::new()),
        )),
        SupervisionChange::Switch { from } => switch(app, actor, &current, from, mode).await,
        SupervisionChange::Join => {
            take_allowance(app, actor).await?;
            // Recorded before Twilio hears of it, as a transfer is. Only
            // as a join: should another request of theirs have joined
            // meanwhile, this one is refused rather than recorded as a
            // switch Twilio never heard of.
            let record = |s: &mut CallSession| {
                actor.may(Action::Supervise, s)?;
                match s.supervise(&actor.id, number.clone(), mode, now)? {
                    SupervisionChange::Join => Ok(()),
                    _ => Err(DomainError::SupervisorRinging),
                }
            };
            let session = app.services.store.update(&sid, &record).await?;
            join(app, actor, &urls, session, mode).await
        }
    }
}

/// Rings the supervisor into the room, moving the customer there first if
/// they are still on the bridge.
async fn join(
    app: &App,
    actor: &Actor,
    urls: &WebhookUrls,
    session: CallSession,
    mode: SupervisorMode,
) -> Result<Response<Body>, ApiError> {
    let sid = session.id.clone();
    let Some(supervision) = session.supervision.clone() else {
        return Err(ApiError::Unavailable("supervision not recorded".into()));
    };
    let visit = supervision.visit;
    let event = HistoryEvent::api(
        actor,
        OffsetDateTime::now_utc(),
        format!("supervisor joins to {}", mode.as_str()),
        None,
    );
    history::record(app.services.store.as_ref(), &sid, &event).await;
    let moved = |s: &mut CallSession| {
        s.customer_moved_for(visit);
        Ok(())
    };
    let Some(session) = move_into_room(app, urls, session, &moved).await? else {
        failed(app, actor, &sid, visit, "the customer could not be moved").await;
        return Err(ApiError::Upstream(
            "Twilio could not move the call into its room for the supervisor".into(),
        ));
    };
    let participant = supervisor_participant(app, urls, &session, mode);
    let room = ConferenceRef::FriendlyName(sid.room());
    let rang = app
        .services
        .twilio
        .create_participant(&room, &participant)
        .await;
    match rang {
        Ok(joined) => {
            // Their call is known from now on, even if every one of its
            // callbacks is lost: the reconciler can look it up.
            let dialled = CallSid::parse(&joined.call_sid)
                .ok()
                .map(|call_sid| LegObservation {
                    call_sid,
                    status: LegStatus::Queued,
                    sequence: None,
                    at: OffsetDateTime::now_utc(),
                });
            let record = |s: &mut CallSession| {
                if let Some(room_sid) = &joined.conference_sid {
                    s.room_named(room_sid);
                }
                if let Some(observation) = &dialled {
                    s.observe(Observation::SupervisorLeg {
                        visit,
                        observation: observation.clone(),
                    });
                }
                Ok(())
            };
            let session = app.services.store.update(&sid, &record).await?;
            tracing::info!(call = %sid, visit, "supervisor ringing into the room");
            Ok(json(
                StatusCode::ACCEPTED,
                &CallView::new(&session, actor, Vec::new()),
            ))
        }
        Err(error) => {
            // A create that may have dialled is never sent again; should it
            // have, the supervisor's leg is unknown and nothing follows it.
            tracing::warn!(%error, call = %sid, visit, "supervisor not rung");
            failed(app, actor, &sid, visit, "the supervisor could not be rung").await;
            Err(coaching_refused(&error).unwrap_or_else(|| {
                ApiError::Upstream(format!("Twilio could not ring the supervisor: {error}"))
            }))
        }
    }
}

/// Moves the customer from the plain bridge into the call's room, as a
/// transfer does (the request that wants it recorded first, so leg 1's
/// `<Dial action>` finds it and the agent follows): the redirect is sent
/// once, and an uncertain answer is looked up, never sent again. `moved`
/// records the move. None when the customer is still on the bridge; the
/// session as it is when they were in the room already.
pub(super) async fn move_into_room(
    app: &App,
    urls: &WebhookUrls,
    session: CallSession,
    moved: &(dyn Fn(&mut CallSession) -> Result<(), DomainError> + Send + Sync),
) -> Result<Option<CallSession>, ApiError> {
    let Some(customer) = session.customer_to_move_into_room().cloned() else {
        return Ok(Some(session));
    };
    let sid = session.id.clone();
    let room = urls.conference(&sid.room(), RoomRole::Customer);
    let reached = match app.services.twilio.redirect_call(&customer, &room).await {
        Ok(_) => true,
        Err(error) if error.is_uncertain() => {
            tracing::warn!(%error, call = %sid, "redirect outcome unknown; looking the customer up");
            customer_reached_room(app, &session, None).await
        }
        Err(error) => {
            tracing::warn!(%error, call = %sid, "customer not moved into the room");
            false
        }
    };
    if !reached {
        return Ok(None);
    }
    Ok(Some(app.services.store.update(&sid, moved).await?))
}

/// The participant create that rings the supervisor: never starting or
/// ending the room, no early media (nobody hears their phone ring), muted
/// to listen, coaching the agent to whisper.
fn supervisor_participant(
    app: &App,
    urls: &WebhookUrls,
    session: &CallSession,
    mode: SupervisorMode,
) -> CreateParticipant {
    let supervision = session.supervision.as_ref();
    let visit = supervision.map_or(1, |s| s.visit);
    let number = supervision.map_or_else(|| session.caller_id.clone(), |s| s.number.clone());
    let ring = RingInto {
        label: RoomParticipant::Supervisor { visit }.label(),
        from: session.caller_id.clone(),
        to: number,
        timeout_secs: SUPERVISOR_RING_SECS,
        status_callback: urls.supervisor_events(&session.id, visit),
    };
    CreateParticipant {
        early_media: Some(false),
        start_conference_on_enter: Some(false),
        // A supervisor hanging up never ends the room.
        end_conference_on_exit: Some(false),
        muted: Some(mode.muted()),
        coaching: Some(mode.coaching()),
        call_sid_to_coach: mode
            .coaching()
            .then(|| session.current_agent_call().cloned())
            .flatten(),
        ..ring_into_room(app, urls, &session.id.room(), ring)
    }
}

/// The fields that put a supervisor's participant in `mode`.
fn mode_update(session: &CallSession, mode: SupervisorMode) -> UpdateParticipant {
    UpdateParticipant {
        muted: Some(mode.muted()),
        coaching: Some(mode.coaching()),
        call_sid_to_coach: mode
            .coaching()
            .then(|| session.current_agent_call().cloned())
            .flatten(),
        ..UpdateParticipant::default()
    }
}

/// Same supervisor, another mode: one participant update, then recorded.
async fn switch(
    app: &App,
    actor: &Actor,
    current: &CallSession,
    from: SupervisorMode,
    mode: SupervisorMode,
) -> Result<Response<Body>, ApiError> {
    let sid = &current.id;
    let visit = current.supervision.as_ref().map_or(1, |s| s.visit);
    let label = RoomParticipant::Supervisor { visit }.label();
    let room = follow_up::room_sid(&app.services, current)
        .await
        .map_err(|error| {
            ApiError::from_follow_up(error, ("the call's room is gone", "ended"), "find the room")
        })?;
    let update = mode_update(current, mode);
    if let Err(error) = app
        .services
        .twilio
        .update_participant(&room, &label, &update)
        .await
    {
        tracing::warn!(%error, call = %sid, "supervisor's mode not changed");
        return Err(coaching_refused(&error).unwrap_or_else(|| {
            if error.is_uncertain() {
                ApiError::Upstream(format!("Twilio could not change the mode: {error}"))
            } else {
                ApiError::Conflict {
                    message: "the supervisor is not in the room (yet)".into(),
                    state: "supervisor-not-joined".into(),
                }
            }
        }));
    }
    let now = OffsetDateTime::now_utc();
    let number = current
        .supervision
        .as_ref()
        .map(|s| s.number.clone())
        .unwrap_or_else(|| current.caller_id.clone());
    let record = |s: &mut CallSession| {
        s.supervise(&actor.id, number.clone(), mode, now)
            .map(|_| ())
    };
    let recorded = app.services.store.update(sid, &record);
    let what = format!(
        "supervisor switches from {} to {}",
        from.as_str(),
        mode.as_str()
    );
    let event = HistoryEvent::api(actor, now, what, None);
    let logged = history::record(app.services.store.as_ref(), sid, &event);
    let (recorded, ()) = futures::join!(recorded, logged);
    let session = recorded?;
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}

/// The supervisor leaves: recorded, then their phone hung up (a follow-up:
/// idempotent, and the reconciler's to finish if this one is cut short).
async fn leave(app: &App, actor: &Actor, sid: &CallSid) -> Result<Response<Body>, ApiError> {
    let stop = |s: &mut CallSession| {
        actor.may(Action::Supervise, s)?;
        Ok(s.stop_supervising())
    };
    take_out(app, actor, sid, &stop, "supervisor leaves").await
}

/// Nobody joins after all: recorded, with why.
async fn failed(app: &App, actor: &Actor, sid: &CallSid, visit: u32, why: &str) {
    let record = |s: &mut CallSession| {
        s.supervision_failed(visit);
        Ok(())
    };
    record_not_joined(app, actor, sid, &record, "supervisor could not join", why).await;
}

/// Twilio's refusals of a coach, as the API answers them: 409, saying why.
/// The product coaches only the agent, who is never held, so 16027 comes
/// only from a race (the agent held meanwhile, or gone).
fn coaching_refused(error: &TwilioError) -> Option<ApiError> {
    let TwilioError::Api {
        code: Some(code), ..
    } = error
    else {
        return None;
    };
    let (message, state) = match *code {
        COACHED_ON_HOLD => (
            "the agent is on hold, so cannot be whispered to",
            "agent-held",
        ),
        COACHED_ABSENT => (
            "the agent is not in the call's room, so cannot be whispered to",
            "agent-not-in-room",
        ),
        _ => return None,
    };
    Some(ApiError::Conflict {
        message: message.into(),
        state: state.into(),
    })
}
