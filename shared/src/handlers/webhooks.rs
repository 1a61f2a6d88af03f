//! Twilio's webhooks. Each answers valid TwiML whatever happens: Twilio plays
//! an "application error" to the caller otherwise. The signature has been
//! checked by the time these run.

use std::collections::HashMap;

use lambda_http::Request;
use time::OffsetDateTime;

use super::app::App;
use super::hook::{NotRecorded, Webhook, empty};
use super::webhook_urls::{CallbackKind, HoldPurpose, RoomRole, WebhookUrls};
use super::{recordings, request, routing};
use crate::config::CustomerFallback;
use crate::domain::{
    ConferenceEvent, HistoryEvent, LegObservation, LegStatus, Observation, Observed,
    RoomParticipant,
};
use crate::ids::{CallSid, PhoneNumber, RoomName};
use crate::twilio::DialCallStatus;
use crate::twiml::{
    Beep, Conference, ConferenceEventKind, Dial, HttpMethod, Number, NumberEvent, Pause, Play,
    Redirect, Response as TwiML, Say,
};
use crate::usecases::{follow_up, history};

/// What the caller hears when a webhook cannot do its job.
const APOLOGY: &str = "Sorry, this call cannot be connected. Goodbye.";

/// What a customer waiting for an agent hears between pauses.
const PLEASE_WAIT: &str = "Please hold while we connect you to an agent.";
const WAIT_PAUSE_SECS: u32 = 15;
/// Silence on hold without music, asked for again when it runs out.
const HOLD_SILENCE_SECS: u32 = 600;

/// What a customer hears when no agent is left for them.
const NO_AGENT_LEFT: &str = "Sorry, no agent is available to continue this call. Goodbye.";
/// What a caller hears when nobody answered within their maximum wait.
const NOBODY_ANSWERED: &str = "Sorry, all our agents are busy. Please call again later. Goodbye.";

fn apology() -> String {
    TwiML::new().say(Say::new(APOLOGY)).hangup().to_xml()
}

/// Leg 1 answered: dial the customer. Stateless: the numbers travel in the
/// query string of the URL the start-call handler gave Twilio.
pub(crate) async fn dial_customer(app: &App, hook: &Webhook<'_>) -> String {
    let to = hook.query("to").and_then(|v| PhoneNumber::parse(&v).ok());
    let caller_id = hook
        .query("callerId")
        .and_then(|v| PhoneNumber::parse(&v).ok());
    let (Some(to), Some(caller_id)) = (to, caller_id) else {
        tracing::warn!("dial-customer without valid to/callerId");
        return apology();
    };
    tracing::info!(customer = %to, "dialling the customer");
    // Leg 1's SID names the session its recording belongs to.
    let session = hook
        .form()
        .get("CallSid")
        .and_then(|v| CallSid::parse(v).ok());
    let recorded = session.as_ref().filter(|_| app.config.recording);
    dial_customer_twiml(&hook.urls, &to, &caller_id, recorded)
}

/// `recorded`: the session whose bridge with the customer is recorded, if
/// recording is on.
pub fn dial_customer_twiml(
    urls: &WebhookUrls,
    to: &PhoneNumber,
    caller_id: &PhoneNumber,
    recorded: Option<&CallSid>,
) -> String {
    let dial = Dial::new()
        .action(urls.agent_dial_ended())
        .method(HttpMethod::Post)
        .caller_id(caller_id.as_str())
        .answer_on_bridge(true);
    let dial = match recorded {
        Some(session) => recordings::record_bridge(dial, urls, session),
        None => dial,
    };
    TwiML::new()
        .dial(
            dial.number(
                Number::new(to.as_str())
                    .status_callback(urls.customer_leg_events())
                    .status_callback_events(NumberEvent::EVERY)
                    .status_callback_method(HttpMethod::Post),
            ),
        )
        .to_xml()
}

/// A `<Dial><Conference>` into the call's room. The customer's document
/// goes on after the `<Dial>`: whenever the room ends without the customer
/// hanging up (the last agent left, or the product ended a room the
/// customer was alone in), Twilio runs the next verb, which takes the
/// customer to the fallback instead of silence or a dropped call.
pub fn room_twiml(
    app: &App,
    urls: &WebhookUrls,
    room: &RoomName,
    role: RoomRole,
    waiting: bool,
) -> String {
    let wait_url = waiting.then(|| urls.hold_audio(HoldPurpose::Wait));
    let twiml =
        TwiML::new().dial(Dial::new().conference(conference_for(app, urls, room, role, wait_url)));
    match role {
        RoomRole::Customer => twiml
            .redirect(Redirect::new(urls.fallback(RoomRole::Customer)).method(HttpMethod::Post))
            .to_xml(),
        RoomRole::FirstAgent => twiml.to_xml(),
    }
}

/// The `<Conference>` of someone joining the call's room. `wait_url`: a
/// customer waiting for an agent, who does not start the room and hears
/// that TwiML until the agent comes.
pub(super) fn conference_for(
    app: &App,
    urls: &WebhookUrls,
    room: &RoomName,
    role: RoomRole,
    wait_url: Option<String>,
) -> Conference {
    let conference = Conference::new(room.as_str())
        .beep(Beep::False)
        .start_conference_on_enter(wait_url.is_none())
        .end_conference_on_exit(role == RoomRole::Customer)
        .participant_label(role.as_str())
        .status_callback(urls.conference_events())
        .status_callback_events(ConferenceEventKind::LIFECYCLE)
        .status_callback_method(HttpMethod::Post);
    let conference = if app.config.recording {
        recordings::record_room(conference, urls, room)
    } else {
        conference
    };
    // Without a waitUrl Twilio plays its own music; "" is silence. A static
    // file is fetched with GET so Twilio caches it.
    match (&app.config.hold_music_url, wait_url) {
        (_, Some(wait_url)) => conference.wait_url(wait_url).wait_method(HttpMethod::Post),
        (Some(music), None) => conference
            .wait_url(music.as_str())
            .wait_method(HttpMethod::Get),
        (None, None) => conference.wait_url(""),
    }
}

/// Where a call goes when nothing else is left for it: Twilio's
/// `FallbackUrl` after a failing webhook, and the customer's next verb
/// after their room ended. Stateless, so it answers even when DynamoDB
/// does not.
pub(crate) async fn fallback(app: &App, hook: &Webhook<'_>) -> String {
    if let Some(code) = hook.form().get("ErrorCode") {
        tracing::warn!(
            error_code = code,
            "Twilio fell back after a failing webhook"
        );
    }
    let role = hook.query("role").as_deref().and_then(RoomRole::parse);
    if role != Some(RoomRole::Customer) {
        return apology();
    }
    let (fallback, goodbye) = if hook.query("for").as_deref() == Some("inbound") {
        (&app.config.inbound.fallback, NOBODY_ANSWERED)
    } else {
        (&app.config.customer_fallback, NO_AGENT_LEFT)
    };
    match fallback {
        CustomerFallback::Goodbye => TwiML::new().say(Say::new(goodbye)).hangup().to_xml(),
        CustomerFallback::Number(number) => TwiML::new()
            .dial(
                Dial::new()
                    .caller_id(app.config.default_caller_id.as_str())
                    .number(Number::new(number.as_str())),
            )
            .say(Say::new(goodbye))
            .hangup()
            .to_xml(),
        CustomerFallback::Twiml(url) => TwiML::new()
            .redirect(Redirect::new(url.as_str()).method(HttpMethod::Post))
            .to_xml(),
    }
}

/// The redirected customer leg asks where to go: the room named in the URL.
pub(crate) async fn conference(app: &App, hook: &Webhook<'_>) -> String {
    let room = hook.query("room").and_then(|v| RoomName::parse(&v).ok());
    let role = hook.query("role").as_deref().and_then(RoomRole::parse);
    let waiting = hook.query("wait").as_deref() == Some("true");
    let (Some(room), Some(role)) = (room, role) else {
        tracing::warn!("conference TwiML without a valid room/role");
        return apology();
    };
    room_twiml(app, &hook.urls, &room, role, waiting)
}

/// What a held customer (`HoldUrl`) or a customer waiting for an agent
/// (`waitUrl`) hears: the configured music, looped; otherwise silence on
/// hold, and a short message between pauses while waiting. Stateless.
pub(crate) async fn hold_audio(app: &App, hook: &Webhook<'_>) -> String {
    let purpose = hook
        .query("for")
        .as_deref()
        .and_then(HoldPurpose::parse)
        .unwrap_or(HoldPurpose::Hold);
    let again = Redirect::new(hook.urls.hold_audio(purpose)).method(HttpMethod::Post);
    match (&app.config.hold_music_url, purpose) {
        (Some(music), _) => TwiML::new()
            .play(Play::new(music.as_str()).loop_count(0))
            .to_xml(),
        (None, HoldPurpose::Hold) => TwiML::new()
            .pause(Pause::new().length(HOLD_SILENCE_SECS))
            .redirect(again)
            .to_xml(),
        (None, HoldPurpose::Wait) => TwiML::new()
            .say(Say::new(PLEASE_WAIT))
            .pause(Pause::new().length(WAIT_PAUSE_SECS))
            .redirect(again)
            .to_xml(),
    }
}

/// Leg 1's `<Dial>` ended. With a transfer under way the customer was just
/// redirected into the room and the first agent follows; otherwise the call
/// is over. One consistent read decides.
pub(crate) async fn agent_dial_ended(app: &App, hook: &Webhook<'_>) -> String {
    let form = hook.form();
    let Some(sid) = form.get("CallSid").and_then(|v| CallSid::parse(v).ok()) else {
        return TwiML::new().hangup().to_xml();
    };
    let dial_status = form.get("DialCallStatus").copied().unwrap_or("");
    let now = OffsetDateTime::now_utc();
    let session = app.services.store.get_session(&sid);
    let ended = HistoryEvent::twilio(
        now,
        format!("first agent's dial ended ({dial_status})"),
        None,
    );
    let logged = history::record(app.services.store.as_ref(), &sid, &ended);
    let (session, ()) = futures::join!(session, logged);
    let join_room = match session {
        Ok(Some(session)) => session.first_agent_should_join_room(),
        Ok(None) => false,
        // Unsure whether the customer was just moved: joining the room costs
        // the agent a moment of silence, hanging up could strand the customer.
        Err(error) => {
            tracing::error!(%error, call = %sid, "store unreadable; joining the room to be safe");
            DialCallStatus::parse(dial_status) == Some(DialCallStatus::Completed)
        }
    };
    if join_room {
        tracing::info!(call = %sid, "first agent follows the customer into the room");
        room_twiml(app, &hook.urls, &sid.room(), RoomRole::FirstAgent, false)
    } else {
        TwiML::new().hangup().to_xml()
    }
}

/// Status callbacks of every leg and of the conference, and recording
/// callbacks (see [`recordings`]). A callback that moves the call forward is followed by whatever it makes necessary
/// (see [`CallSession::follow_ups`]).
pub(crate) async fn status_callback(app: &App, hook: &Webhook<'_>) -> Result<String, NotRecorded> {
    let leg = request::path_param(hook.request, "leg").unwrap_or_default();
    let Some(kind) = CallbackKind::parse(&leg) else {
        tracing::warn!(leg, "status callback of no kind we ask for; ignored");
        return Ok(empty());
    };
    if kind == CallbackKind::Recording {
        return recordings::recorded(app, hook).await;
    }
    let form = hook.form();
    let Some((session_sid, observation)) = observation(kind, hook.request, &form) else {
        tracing::warn!(leg, "status callback not understood; ignored");
        return Ok(empty());
    };
    let now = OffsetDateTime::now_utc();
    let event = HistoryEvent::twilio(now, observation.describe(), None);
    let observed = app.services.store.observe(&session_sid, observation).await;
    match observed {
        // The history names what moved the call; a callback that changed
        // nothing (a duplicate, a retry, news already overtaken) is not
        // written at all.
        Ok((Observed::Applied, Some(session))) => {
            let carried_out = async {
                follow_up::carry_out(&app.services, &session).await;
                routing::ring_next_member(app, &hook.urls, session).await;
            };
            let logged = history::record(app.services.store.as_ref(), &session_sid, &event);
            futures::join!(carried_out, logged);
        }
        // Nothing new, but what the session needs may still be undone: the
        // invocation that wrote this callback may have timed out before its
        // follow-ups (or before a team's next member was rung), and Twilio
        // retries it. Follow-ups are idempotent; the next member is rung by
        // the one write that moves the call on.
        Ok((Observed::Ignored, Some(session)))
            if !session.follow_ups().is_empty() || session.next_member_due().is_some() =>
        {
            tracing::info!(call = %session_sid, "callback already applied; carrying out what is outstanding");
            follow_up::carry_out(&app.services, &session).await;
            routing::ring_next_member(app, &hook.urls, session).await;
        }
        Ok(_) => tracing::debug!(call = %session_sid, "status callback changed nothing"),
        Err(error) => {
            tracing::error!(%error, call = %session_sid, "status callback not recorded; asking Twilio to retry");
            return Err(NotRecorded);
        }
    }
    Ok(empty())
}

/// Reads a status callback into the session it belongs to and an observation.
fn observation(
    kind: CallbackKind,
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
    match kind {
        CallbackKind::AgentLeg => {
            let obs = leg_observation()?;
            Some((obs.call_sid.clone(), Observation::AgentLeg(obs)))
        }
        CallbackKind::CustomerLeg => {
            let session = CallSid::parse(form.get("ParentCallSid")?).ok()?;
            Some((session, Observation::CustomerLeg(leg_observation()?)))
        }
        CallbackKind::Participant => {
            let session = CallSid::parse(&request::query_param(req, "session")?).ok()?;
            let attempt = request::query_param(req, "attempt")?.parse().ok()?;
            Some((
                session,
                Observation::TargetLeg {
                    attempt,
                    observation: leg_observation()?,
                },
            ))
        }
        CallbackKind::SupervisorLeg => {
            let session = CallSid::parse(&request::query_param(req, "session")?).ok()?;
            let visit = request::query_param(req, "visit")?.parse().ok()?;
            Some((
                session,
                Observation::SupervisorLeg {
                    visit,
                    observation: leg_observation()?,
                },
            ))
        }
        CallbackKind::PartyLeg => {
            let session = CallSid::parse(&request::query_param(req, "session")?).ok()?;
            let visit = request::query_param(req, "visit")?.parse().ok()?;
            Some((
                session,
                Observation::PartyLeg {
                    visit,
                    observation: leg_observation()?,
                },
            ))
        }
        CallbackKind::Conference => {
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
                    conference: form.get("ConferenceSid").map(|sid| (*sid).to_owned()),
                    at,
                },
            ))
        }
        // A caller's own call: the session is the call.
        CallbackKind::Caller => {
            let obs = leg_observation()?;
            Some((obs.call_sid.clone(), Observation::CustomerLeg(obs)))
        }
        // Handled before: recordings have their own reader.
        CallbackKind::Recording => None,
    }
}
