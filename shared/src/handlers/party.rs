//! `POST /calls/{callSid}/party`: the call's agent adds an outside party
//! (`{"number"}`: an interpreter, a specialist; allowed by the dial policy)
//! to the call without leaving it, or drops them (`{"drop": true}`). A call
//! still on its plain bridge is first moved into the room, as for a
//! supervisor. The party never counts as an agent (see
//! `domain/outside_party.rs`).

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::app::App;
use super::front_end::take_allowance;
use super::input::{call_sid, json_body, may_dial, phone};
use super::placement::{RingInto, record_not_joined, ring_into_room, take_out};
use super::supervise::move_into_room;
use super::webhook_urls::WebhookUrls;
use crate::domain::{
    Action, Actor, CallSession, DomainError, HistoryEvent, LegObservation, LegStatus, Observation,
    RoomParticipant,
};
use crate::ids::CallSid;
use crate::twilio::{ConferenceRef, CreateParticipant};
use crate::usecases::history;
use crate::usecases::view::CallView;
use crate::web::ApiError;
use crate::web::responses::json;

/// How long the party's phone rings before they are given up.
const PARTY_RING_SECS: u32 = 30;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PartyBody {
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    drop: Option<bool>,
}

pub async fn outside_party(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let body: PartyBody = json_body(req)?;
    match (&body.number, body.drop) {
        (None, Some(true)) => drop(app, actor, &sid).await,
        (Some(raw), None) => {
            let number = phone("number", raw)?;
            may_dial(app, "number", &number)?;
            add(app, req, actor, &sid, number).await
        }
        _ => Err(ApiError::bad_request(
            "body",
            "give a number to add, or drop: true",
        )),
    }
}

async fn add(
    app: &App,
    req: &Request,
    actor: &Actor,
    sid: &CallSid,
    number: crate::ids::PhoneNumber,
) -> Result<Response<Body>, ApiError> {
    let urls = app.urls(req)?;
    // Refused here before anything is dialled or moved.
    let current = app.stored_call(sid).await?;
    actor.may(Action::Party, &current)?;
    let now = OffsetDateTime::now_utc();
    current
        .clone()
        .add_party(&actor.id, number.clone(), now)
        .map_err(|refusal| match refusal {
            DomainError::TargetOnTheCall => ApiError::bad_request("number", refusal.to_string()),
            other => other.into(),
        })?;
    take_allowance(app, actor).await?;
    // Recorded before Twilio hears of it, as a transfer is.
    let record = |s: &mut CallSession| {
        actor.may(Action::Party, s)?;
        s.add_party(&actor.id, number.clone(), now)
    };
    let session = app.services.store.update(sid, &record).await?;
    let visit = session.party.as_ref().map_or(1, |p| p.visit);
    let event = HistoryEvent::api(actor, now, "outside party added", None);
    history::record(app.services.store.as_ref(), sid, &event).await;
    let moved = |s: &mut CallSession| {
        s.customer_moved_for_party(visit);
        Ok(())
    };
    let Some(session) = move_into_room(app, &urls, session, &moved).await? else {
        failed(app, actor, sid, visit, "the customer could not be moved").await;
        return Err(ApiError::Upstream(
            "Twilio could not move the call into its room for the outside party".into(),
        ));
    };
    let participant = party_participant(app, &urls, &session, visit);
    let room = ConferenceRef::FriendlyName(sid.room());
    match app
        .services
        .twilio
        .create_participant(&room, &participant)
        .await
    {
        Ok(joined) => {
            // Their call is known from now on, even if its callbacks are lost.
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
                    s.observe(Observation::PartyLeg {
                        visit,
                        observation: observation.clone(),
                    });
                }
                Ok(())
            };
            let session = app.services.store.update(sid, &record).await?;
            tracing::info!(call = %sid, visit, "outside party ringing into the room");
            Ok(json(
                StatusCode::ACCEPTED,
                &CallView::new(&session, actor, Vec::new()),
            ))
        }
        Err(error) => {
            // A create that may have dialled is never sent again.
            tracing::warn!(%error, call = %sid, visit, "outside party not rung");
            failed(
                app,
                actor,
                sid,
                visit,
                "the outside party could not be rung",
            )
            .await;
            Err(ApiError::Upstream(format!(
                "Twilio could not ring the outside party: {error}"
            )))
        }
    }
}

/// The participant create that rings the party: the room hears it ring
/// (early media), and their leaving never ends the room.
fn party_participant(
    app: &App,
    urls: &WebhookUrls,
    session: &CallSession,
    visit: u32,
) -> CreateParticipant {
    let number = session
        .party
        .as_ref()
        .map_or_else(|| session.caller_id.clone(), |p| p.number.clone());
    let ring = RingInto {
        label: RoomParticipant::Party { visit }.label(),
        from: session.caller_id.clone(),
        to: number,
        timeout_secs: PARTY_RING_SECS,
        status_callback: urls.party_events(&session.id, visit),
    };
    CreateParticipant {
        early_media: Some(true),
        start_conference_on_enter: Some(true),
        end_conference_on_exit: Some(false),
        ..ring_into_room(app, urls, &session.id.room(), ring)
    }
}

/// The agent drops the party: recorded, then their phone hung up (a
/// follow-up: idempotent, and the reconciler's to finish if cut short).
async fn drop(app: &App, actor: &Actor, sid: &CallSid) -> Result<Response<Body>, ApiError> {
    let stop = |s: &mut CallSession| {
        actor.may(Action::Party, s)?;
        Ok(s.drop_party())
    };
    take_out(app, actor, sid, &stop, "outside party dropped").await
}

/// Nobody joins after all: recorded, with why.
async fn failed(app: &App, actor: &Actor, sid: &CallSid, visit: u32, why: &str) {
    let record = |s: &mut CallSession| {
        s.party_failed(visit);
        Ok(())
    };
    record_not_joined(
        app,
        actor,
        sid,
        &record,
        "outside party could not join",
        why,
    )
    .await;
}
