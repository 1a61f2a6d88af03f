//! Ringing the agent a transfer goes to, and recording what Twilio did:
//! shared by a transfer's request and by a team transfer moving on to its
//! next member.

use http::StatusCode;
use lambda_http::{Body, Response};
use time::OffsetDateTime;

use super::app::App;
use super::recordings;
use super::webhook_urls::WebhookUrls;
use crate::domain::{
    Actor, CallSession, DomainError, FollowUp, HistoryEvent, LegObservation, LegStatus,
    Observation, RoomParticipant, TransferPlan,
};
use crate::ids::{CallSid, PhoneNumber, RoomName};
use crate::store::{Command, update_returning};
use crate::twilio::{
    CallStatusEvent, ConferenceCallbackEvent, ConferenceRef, ConferenceStatus, CreateParticipant,
    HttpMethod, ListConferences, Participant, ParticipantBeep, TwilioError,
};
use crate::usecases::view::CallView;
use crate::usecases::{follow_up, history};
use crate::web::ApiError;
use crate::web::responses::json;

/// What every participant the product rings into a call's room carries:
/// its label, no beep, its own status callback (every event), the room's
/// callback (this participant may reach the room first, and Twilio takes
/// the room's callback from whoever comes first), the wait music (heard
/// only if they join before anyone else; the REST field must be a URL, ""
/// for silence is TwiML-only), and the room's recording. The caller sets
/// what differs: early media, who starts or ends the room, muting.
pub(super) fn ring_into_room(
    app: &App,
    urls: &WebhookUrls,
    room: &RoomName,
    ring: RingInto,
) -> CreateParticipant {
    let participant = CreateParticipant {
        label: Some(ring.label),
        beep: Some(ParticipantBeep::False),
        timeout: Some(ring.timeout_secs),
        status_callback: Some(ring.status_callback),
        status_callback_event: CallStatusEvent::ALL.to_vec(),
        status_callback_method: Some(HttpMethod::Post),
        conference_status_callback: Some(urls.conference_events()),
        conference_status_callback_event: ConferenceCallbackEvent::LIFECYCLE.to_vec(),
        conference_status_callback_method: Some(HttpMethod::Post),
        wait_url: app.config.hold_music_url.as_ref().map(ToString::to_string),
        wait_method: app.config.hold_music_url.as_ref().map(|_| HttpMethod::Get),
        ..CreateParticipant::new(ring.from, ring.to)
    };
    recordings::record_room_rest(app, urls, room, participant)
}

/// Who [`ring_into_room`] rings, from which number, for how long, and where
/// their call's status goes.
pub(super) struct RingInto {
    pub(super) label: String,
    pub(super) from: PhoneNumber,
    pub(super) to: PhoneNumber,
    pub(super) timeout_secs: u32,
    pub(super) status_callback: String,
}

/// The participant create that rings the transfer's agent into the room.
pub(super) fn second_agent(
    app: &App,
    urls: &WebhookUrls,
    sid: &CallSid,
    plan: &TransferPlan,
) -> CreateParticipant {
    // The agent sees who is calling, where Twilio lets them.
    let from = plan
        .shown_caller
        .as_ref()
        .map_or_else(|| plan.caller_id.clone(), |c| c.number.clone());
    let ring = RingInto {
        label: RoomParticipant::SecondAgent {
            attempt: plan.attempt,
        }
        .label(),
        from,
        to: plan.target.clone(),
        timeout_secs: app.config.transfer_ring_timeout_secs,
        status_callback: urls.participant_events(sid, plan.attempt),
    };
    CreateParticipant {
        // The first agent hears the second agent's phone ring.
        early_media: Some(true),
        start_conference_on_enter: Some(true),
        end_conference_on_exit: Some(plan.target_anchors_room),
        call_token: plan.shown_caller.as_ref().map(|c| c.call_token.clone()),
        ..ring_into_room(app, urls, &plan.room, ring)
    }
}

/// Looks for the participant a create whose outcome is unknown may have
/// made (by its label, in the room's live conferences), a few times while
/// it settles.
async fn rang_after_all(app: &App, plan: &TransferPlan) -> Option<Participant> {
    let label = RoomParticipant::SecondAgent {
        attempt: plan.attempt,
    }
    .label();
    let filter = ListConferences {
        friendly_name: Some(plan.room.as_str().to_owned()),
        status: None,
        page_size: Some(20),
    };
    for _ in 0..RING_LOOKUPS {
        tokio::time::sleep(RING_LOOKUP_PAUSE).await;
        let Ok(rooms) = app.services.twilio.list_conferences(&filter).await else {
            continue;
        };
        for room in rooms
            .iter()
            .filter(|r| r.status != Some(ConferenceStatus::Completed))
        {
            if let Ok(participant) = app
                .services
                .twilio
                .fetch_participant(&room.sid, &label)
                .await
            {
                return Some(participant);
            }
        }
    }
    None
}

const RING_LOOKUPS: usize = 4;
const RING_LOOKUP_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// Twilio's answer to a `From` it will not show: "'From' phone number not
/// verified" (error 21210), which is what a caller's own number without a
/// valid `CallToken` gets.
const CALLER_ID_REFUSED: u32 = 21210;

/// Rings the transfer's agent into the room. When Twilio refuses to show
/// the caller's own number (an expired or refused token: a definite 4xx,
/// so nobody was dialled), it rings again from the call's caller ID, the
/// centre's number. A request whose outcome is unknown (a timeout, a 5xx)
/// is never sent again: the agent may be ringing already.
pub(super) async fn ring_agent(
    app: &App,
    urls: &WebhookUrls,
    sid: &CallSid,
    plan: &TransferPlan,
) -> Result<Participant, TwilioError> {
    let room = ConferenceRef::FriendlyName(plan.room.clone());
    let participant = second_agent(app, urls, sid, plan);
    let rang = app
        .services
        .twilio
        .create_participant(&room, &participant)
        .await;
    match rang {
        // It may have rung after all: look, never dial again.
        Err(error) if error.is_uncertain() => match rang_after_all(app, plan).await {
            Some(participant) => Ok(participant),
            None => Err(error),
        },
        Err(TwilioError::Api {
            code: Some(CALLER_ID_REFUSED),
            ..
        }) if participant.call_token.is_some() => {
            tracing::warn!(call = %sid, "caller's number refused as caller ID; ringing from the centre's number");
            let plain = CreateParticipant {
                from: plan.caller_id.clone(),
                call_token: None,
                ..participant
            };
            app.services.twilio.create_participant(&room, &plain).await
        }
        other => other,
    }
}

/// The transfer is under way: the room's SID, agent two's call (known from
/// now on even if every one of its callbacks is lost: the reconciler looks
/// it up by this SID) and the customer's move are recorded at once, so who
/// is in the room does not hang on one conference callback that Twilio
/// never sends twice.
pub(super) async fn record_placement(
    app: &App,
    session: CallSession,
    placement: Placement,
    rang: &Result<Participant, TwilioError>,
) -> CallSession {
    let Placement {
        attempt,
        room_sid,
        lifted,
        waiting,
    } = placement;
    let dialled = rang
        .as_ref()
        .ok()
        .and_then(|p| CallSid::parse(&p.call_sid).ok())
        .map(|call_sid| LegObservation {
            call_sid,
            status: LegStatus::Queued,
            sequence: None,
            at: OffsetDateTime::now_utc(),
        });
    let placed = |s: &mut CallSession| {
        if let Some(room_sid) = &room_sid {
            s.room_named(room_sid);
        }
        if let Some(lifted) = &lifted {
            s.follow_up_done(lifted);
        }
        if waiting {
            s.waiting_on_hold(attempt)?;
        }
        if let Some(observation) = &dialled {
            s.observe(Observation::TargetLeg {
                attempt,
                observation: observation.clone(),
            });
        }
        s.customer_redirected(attempt)
    };
    match app.services.store.update(&session.id, &placed).await {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(%error, call = %session.id, "customer's move not recorded");
            session
        }
    }
}

/// What a transfer's round trip to Twilio did, to be recorded.
pub(super) struct Placement {
    pub(super) attempt: u32,
    /// The room's SID, from the participant create.
    pub(super) room_sid: Option<String>,
    /// The owner handing on no longer ends the room.
    pub(super) lifted: Option<FollowUp>,
    /// A blind transfer from the room put the customer on hold, with music.
    pub(super) waiting: bool,
}

/// Records the failed attempt, then carries out what it makes necessary:
/// whatever made it fail may have left someone alone.
pub(super) async fn record_failure(
    app: &App,
    actor: Option<&Actor>,
    sid: &CallSid,
    attempt: u32,
    reason: &str,
    moved: bool,
) {
    let fail = |s: &mut CallSession| s.fail_transfer(attempt, reason.to_owned(), moved);
    let recorded = app.services.store.update(sid, &fail);
    let (now, what, detail) = (
        OffsetDateTime::now_utc(),
        "transfer failed",
        Some(reason.to_owned()),
    );
    let failed = match actor {
        Some(actor) => HistoryEvent::api(actor, now, what, detail),
        None => HistoryEvent::product(now, what, detail),
    };
    let logged = history::record(app.services.store.as_ref(), sid, &failed);
    let (recorded, ()) = futures::join!(recorded, logged);
    match recorded {
        Ok(session) => follow_up::carry_out(&app.services, &session).await,
        Err(error) => tracing::error!(%error, call = %sid, "transfer failure not recorded"),
    }
}

/// Someone the actor had rung into the room (a supervisor, an outside
/// party) did not join after all: `record` notes it on the session, and
/// the history says `what`, with `why`.
pub(super) async fn record_not_joined(
    app: &App,
    actor: &Actor,
    sid: &CallSid,
    record: &Command<'_>,
    what: &'static str,
    why: &str,
) {
    if let Err(error) = app.services.store.update(sid, record).await {
        tracing::warn!(%error, call = %sid, what, "not recorded");
    }
    let event = HistoryEvent::api(actor, OffsetDateTime::now_utc(), what, Some(why.to_owned()));
    history::record(app.services.store.as_ref(), sid, &event).await;
}

/// Takes someone out of the call at the actor's word: `stop` records it on
/// the session (true when that changed anything, then the history says
/// `what`), and the follow-ups hang their phone up (idempotent, and the
/// reconciler's to finish if this is cut short). Answers the call as the
/// actor sees it.
pub(super) async fn take_out(
    app: &App,
    actor: &Actor,
    sid: &CallSid,
    stop: &(dyn Fn(&mut CallSession) -> Result<bool, DomainError> + Send + Sync),
    what: &'static str,
) -> Result<Response<Body>, ApiError> {
    let store = app.services.store.as_ref();
    let (stopped, session) = update_returning(store, sid, stop).await?;
    if stopped == Some(true) {
        let event = HistoryEvent::api(actor, OffsetDateTime::now_utc(), what, None);
        history::record(store, sid, &event).await;
    }
    follow_up::carry_out(&app.services, &session).await;
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}
