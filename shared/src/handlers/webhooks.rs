//! Twilio's webhooks. Each answers valid TwiML whatever happens: Twilio plays
//! an "application error" to the caller otherwise. The signature has been
//! checked by the time these run.

use std::collections::HashMap;

use lambda_http::Request;
use time::OffsetDateTime;

use super::app::App;
use super::callbacks::{Callbacks, RoomRole};
use super::http as web;
use crate::domain::{
    CallSession, ConferenceEvent, HistoryEvent, LegObservation, LegStatus, Observation, Observed,
    RoomParticipant,
};
use crate::ids::{CallSid, PhoneNumber, RoomName};
use crate::twiml::{
    Beep, Conference, ConferenceEventKind, Dial, HttpMethod, Number, NumberEvent,
    Response as TwiML, Say,
};

/// What the caller hears when a webhook cannot do its job.
const APOLOGY: &str = "Sorry, this call cannot be connected. Goodbye.";

pub fn empty() -> String {
    TwiML::new().to_xml()
}

fn apology() -> String {
    TwiML::new().say(Say::new(APOLOGY)).hangup().to_xml()
}

/// Leg 1 answered: dial the customer. Stateless: the numbers travel in the
/// query string of the URL the start-call handler gave Twilio.
pub fn dial_customer(
    _app: &App,
    req: &Request,
    _params: &[(String, String)],
    callbacks: &Callbacks,
) -> String {
    let to = web::query_param(req, "to").and_then(|v| PhoneNumber::parse(&v).ok());
    let caller_id = web::query_param(req, "callerId").and_then(|v| PhoneNumber::parse(&v).ok());
    let (Some(to), Some(caller_id)) = (to, caller_id) else {
        tracing::warn!("dial-customer without valid to/callerId");
        return apology();
    };
    tracing::info!(customer = %to, "dialling the customer");
    dial_customer_twiml(callbacks, &to, &caller_id)
}

pub fn dial_customer_twiml(
    callbacks: &Callbacks,
    to: &PhoneNumber,
    caller_id: &PhoneNumber,
) -> String {
    TwiML::new()
        .dial(
            Dial::new()
                .action(callbacks.agent_dial_ended())
                .method(HttpMethod::Post)
                .caller_id(caller_id.as_str())
                .answer_on_bridge(true)
                .number(
                    Number::new(to.as_str())
                        .status_callback(callbacks.customer_leg_events())
                        .status_callback_events(NumberEvent::EVERY)
                        .status_callback_method(HttpMethod::Post),
                ),
        )
        .to_xml()
}

/// A `<Dial><Conference>` into the call's room.
pub fn room_twiml(app: &App, callbacks: &Callbacks, room: &RoomName, role: RoomRole) -> String {
    let mut conference = Conference::new(room.as_str())
        .beep(Beep::False)
        .start_conference_on_enter(true)
        .end_conference_on_exit(role == RoomRole::Customer)
        .participant_label(role.as_str())
        .status_callback(callbacks.conference_events())
        .status_callback_events(ConferenceEventKind::LIFECYCLE)
        .status_callback_method(HttpMethod::Post);
    if let Some(music) = &app.config.hold_music_url {
        conference = conference
            .wait_url(music.as_str())
            .wait_method(HttpMethod::Post);
    }
    TwiML::new()
        .dial(Dial::new().conference(conference))
        .to_xml()
}

/// The redirected customer leg asks where to go: the room named in the URL.
pub fn conference(
    app: &App,
    req: &Request,
    _params: &[(String, String)],
    callbacks: &Callbacks,
) -> String {
    let room = web::query_param(req, "room").and_then(|v| RoomName::parse(&v).ok());
    let role = web::query_param(req, "role")
        .as_deref()
        .and_then(RoomRole::parse);
    let (Some(room), Some(role)) = (room, role) else {
        tracing::warn!("conference TwiML without a valid room/role");
        return apology();
    };
    room_twiml(app, callbacks, &room, role)
}

/// Leg 1's `<Dial>` ended. With a transfer under way the customer was just
/// redirected into the room and the first agent follows; otherwise the call
/// is over. One consistent read decides.
pub async fn agent_dial_ended(
    app: &App,
    params: &[(String, String)],
    callbacks: &Callbacks,
) -> String {
    let form = web::form_map(params);
    let Some(sid) = form.get("CallSid").and_then(|v| CallSid::parse(v).ok()) else {
        return TwiML::new().hangup().to_xml();
    };
    let dial_status = form.get("DialCallStatus").copied().unwrap_or("");
    let now = OffsetDateTime::now_utc();
    let session = app.store.get_session(&sid);
    let ended = HistoryEvent::twilio(
        now,
        format!("first agent's dial ended ({dial_status})"),
        None,
    );
    let logged = app.store.append_event(&sid, &ended);
    let (session, _) = futures::join!(session, logged);
    let join_room = match session {
        Ok(Some(session)) => session.first_agent_should_join_room(),
        Ok(None) => false,
        // Unsure whether the customer was just moved: joining the room costs
        // the agent a moment of silence, hanging up could strand the customer.
        Err(error) => {
            tracing::error!(%error, call = %sid, "store unreadable; joining the room to be safe");
            dial_status == "completed"
        }
    };
    if join_room {
        tracing::info!(call = %sid, "first agent follows the customer into the room");
        room_twiml(app, callbacks, &sid.room(), RoomRole::FirstAgent)
    } else {
        TwiML::new().hangup().to_xml()
    }
}

/// Status callbacks of every leg and of the conference.
pub async fn status_callback(
    app: &App,
    req: &Request,
    params: &[(String, String)],
    _callbacks: &Callbacks,
) -> String {
    let form = web::form_map(params);
    let leg = web::path_param(req, "leg").unwrap_or_default();
    let Some((session_sid, observation)) = observation(&leg, req, &form) else {
        tracing::warn!(leg, "status callback not understood; ignored");
        return empty();
    };
    let now = OffsetDateTime::now_utc();
    let event = HistoryEvent::twilio(now, observation.describe(), None);
    let (observed, _) = futures::join!(
        app.store.observe(&session_sid, observation),
        app.store.append_event(&session_sid, &event),
    );
    match observed {
        Ok((Observed::Applied, Some(session))) => follow_up(app, &session).await,
        Ok(_) => tracing::debug!(call = %session_sid, "status callback changed nothing"),
        Err(error) => tracing::warn!(%error, call = %session_sid, "status callback not applied"),
    }
    empty()
}

/// Reads a status callback into the session it belongs to and an observation.
fn observation(
    leg: &str,
    req: &Request,
    form: &HashMap<&str, &str>,
) -> Option<(CallSid, Observation)> {
    let at = form
        .get("Timestamp")
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let sequence = form
        .get("SequenceNumber")
        .and_then(|s| s.parse::<u32>().ok());
    let leg_observation = || -> Option<LegObservation> {
        Some(LegObservation {
            call_sid: CallSid::parse(form.get("CallSid")?).ok()?,
            status: LegStatus::parse(form.get("CallStatus")?)?,
            sequence,
            at,
        })
    };
    match leg {
        "agent-leg" => {
            let obs = leg_observation()?;
            Some((obs.call_sid.clone(), Observation::AgentLeg(obs)))
        }
        "customer-leg" => {
            let session = CallSid::parse(form.get("ParentCallSid")?).ok()?;
            Some((session, Observation::CustomerLeg(leg_observation()?)))
        }
        "participant" => {
            let session = CallSid::parse(&web::query_param(req, "session")?).ok()?;
            let attempt = web::query_param(req, "attempt")?.parse().ok()?;
            Some((
                session,
                Observation::TargetLeg {
                    attempt,
                    observation: leg_observation()?,
                },
            ))
        }
        "conference" => {
            let room = RoomName::parse(form.get("FriendlyName")?).ok()?;
            let event = ConferenceEvent::parse(form.get("StatusCallbackEvent")?)?;
            let participant = form
                .get("ParticipantLabel")
                .and_then(|label| RoomParticipant::from_label(label));
            // Only this room's callbacks are ours.
            Some((
                room.session(),
                Observation::Conference {
                    event,
                    participant,
                    sequence,
                    at,
                },
            ))
        }
        _ => None,
    }
}

/// Legs that must end after what was just observed: a second agent ringing
/// for a transfer that was cancelled, failed or lost its customer; a first
/// agent left in a room the customer already hung up on.
async fn follow_up(app: &App, session: &CallSession) {
    let legs = session.legs_to_end();
    let ended = legs.iter().map(|leg| async move {
        tracing::info!(call = %session.id, leg = %leg, "ending a leg nobody needs any more");
        if let Err(error) = app.twilio.end_call(leg).await {
            tracing::warn!(%error, leg = %leg, "could not end leg");
        }
    });
    futures::future::join_all(ended).await;
}
