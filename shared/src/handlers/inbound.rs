//! Customers calling in (see `domain::inbound`): the voice webhook of the
//! centre's numbers, and the waiting caller's wait loop, which tells them
//! their place in the queue and offers the call to the team's next
//! available member whenever none is ringing.

use time::OffsetDateTime;

use super::app::App;
use super::hook::Webhook;
use super::input::may_dial;
use super::routing::{member_of, ring_reserved};
use super::webhook_urls::{RoomRole, WebhookUrls};
use super::webhooks::conference_for;
use crate::domain::{
    CallSession, DomainError, HistoryEvent, IncomingCall, TeamRoute, TransferKind,
};
use crate::ids::{CallSid, PhoneNumber};
use crate::store::{QueuePlace, StoreError, update_returning};
use crate::twiml::{HttpMethod, Pause, Play, Redirect, Response as TwiML, Say};
use crate::usecases::{follow_up, history, routing};

/// What a caller hears when the number they dialled takes no calls.
const NOT_TAKING_CALLS: &str = "Sorry, this number does not take calls. Goodbye.";
/// Silence between two position messages while waiting.
const QUEUE_PAUSE_SECS: u32 = 15;

/// A call to one of the centre's numbers: the caller is greeted and sent
/// into the call's room to wait (not starting it, hearing the wait loop);
/// the wait loop's first request offers the call. The session is written
/// first, so that request finds it; Twilio's retry of this webhook finds
/// the session there and answers the same.
pub(crate) async fn inbound_call(app: &App, hook: &Webhook<'_>) -> String {
    let form = hook.form();
    let sid = form.get("CallSid").and_then(|v| CallSid::parse(v).ok());
    let centre = form.get("To").and_then(|v| PhoneNumber::parse(v).ok());
    let (Some(sid), Some(centre)) = (sid, centre) else {
        tracing::warn!("inbound call without a valid CallSid/To");
        return TwiML::new()
            .say(Say::new(NOT_TAKING_CALLS))
            .hangup()
            .to_xml();
    };
    let Some(team) = app.config.inbound.numbers.get(&centre).cloned() else {
        tracing::warn!(number = %centre, "a call to a number with no team (INBOUND_NUMBERS)");
        return TwiML::new()
            .say(Say::new(NOT_TAKING_CALLS))
            .hangup()
            .to_xml();
    };
    // A withheld number ("anonymous") cannot be shown or dialled back: the
    // centre's number stands in for it.
    let caller = form.get("From").and_then(|v| PhoneNumber::parse(v).ok());
    let now = OffsetDateTime::now_utc();
    let call = IncomingCall {
        call_sid: sid.clone(),
        caller: caller.clone().unwrap_or_else(|| centre.clone()),
        centre,
        team: team.clone(),
        call_token: caller
            .and(form.get("CallToken"))
            .map(|token| (*token).to_owned()),
        max_wait: time::Duration::try_from(app.config.inbound.max_wait)
            .unwrap_or(time::Duration::minutes(5)),
    };
    let session = CallSession::start_inbound(call, now);
    let store = app.services.store.as_ref();
    let created = match store.create_session(&session).await {
        Ok(()) | Err(StoreError::AlreadyExists) => true,
        Err(error) => {
            tracing::error!(%error, call = %sid, "inbound call not stored");
            false
        }
    };
    if !created {
        // Without a session nobody can be offered the call: the caller is
        // told rather than left waiting for nothing.
        return TwiML::new()
            .redirect(Redirect::new(hook.urls.inbound_fallback()).method(HttpMethod::Post))
            .to_xml();
    }
    let event = HistoryEvent::twilio(
        now,
        format!("call came in for team {team}"),
        Some(session.customer_number.masked()),
    );
    history::record(store, &sid, &event).await;
    tracing::info!(call = %sid, caller = %session.customer_number, %team, "caller waiting for an agent");
    waiting_room_twiml(app, &hook.urls, &sid)
}

/// The caller's document: the greeting, then the room, waiting; should the
/// room end without them hanging up, the inbound fallback.
pub fn waiting_room_twiml(app: &App, urls: &WebhookUrls, sid: &CallSid) -> String {
    let conference = conference_for(
        app,
        urls,
        &sid.room(),
        RoomRole::Customer,
        Some(urls.queue(sid)),
    );
    TwiML::new()
        .say(Say::new(app.config.inbound.greeting.as_str()))
        .dial(crate::twiml::Dial::new().conference(conference))
        .redirect(Redirect::new(urls.inbound_fallback()).method(HttpMethod::Post))
        .to_xml()
}

/// The waiting caller's wait loop (`waitUrl`): keeps their place in the
/// queue, offers the call when no member rings for it, ends the wait at
/// its maximum, and answers their place between pauses, then itself again.
pub(crate) async fn queue(app: &App, hook: &Webhook<'_>) -> String {
    let sid = hook.query("session").and_then(|v| CallSid::parse(&v).ok());
    let session = match &sid {
        Some(sid) => app.services.store.get_session(sid).await,
        None => Ok(None),
    };
    let session = match session {
        Ok(Some(session)) if session.queued() => session,
        Ok(_) => {
            // Answered, gone, or unknown: the room is about to start or end.
            return TwiML::new().pause(Pause::new().length(2)).to_xml();
        }
        Err(error) => {
            tracing::warn!(%error, "waiting caller's session unreadable; asking again later");
            return wait_again(app, &hook.urls, None, sid.as_ref());
        }
    };
    let now = OffsetDateTime::now_utc();
    if session.wait_due_to_end(now) {
        end_wait(app, &session, now).await;
        return TwiML::new().pause(Pause::new().length(5)).to_xml();
    }
    let Some(inbound) = session.inbound.clone() else {
        return wait_again(app, &hook.urls, None, Some(&session.id));
    };
    let place = QueuePlace {
        call: session.id.clone(),
        since: inbound.since,
        seen: now,
        until: inbound.until,
    };
    let store = app.services.store.as_ref();
    let (kept, ahead) = futures::join!(
        store.still_waiting(&inbound.team, &place),
        store.callers_ahead(&inbound.team, &place, now),
    );
    if let Err(error) = kept {
        tracing::warn!(%error, call = %session.id, "caller's place in the queue not kept");
    }
    let ahead = ahead.unwrap_or_else(|error| {
        tracing::warn!(%error, call = %session.id, "callers ahead not counted");
        0
    });
    if session.offer_due() {
        offer(app, &hook.urls, session.clone(), ahead as usize, now).await;
    }
    wait_again(app, &hook.urls, Some(ahead), Some(&session.id))
}

/// What a waiting caller hears until the next turn of the loop: their
/// place (when known), then the hold music or a pause.
fn wait_again(app: &App, urls: &WebhookUrls, ahead: Option<u32>, sid: Option<&CallSid>) -> String {
    let place = match ahead {
        Some(0) => "You are next in line.".to_owned(),
        Some(ahead) => format!("There are {ahead} callers ahead of you."),
        None => "Please stay on the line.".to_owned(),
    };
    let twiml = TwiML::new().say(Say::new(place));
    let twiml = match &app.config.hold_music_url {
        // Once through: the loop asks again when the track ends.
        Some(music) => twiml.play(Play::new(music.as_str())),
        None => twiml.pause(Pause::new().length(QUEUE_PAUSE_SECS)),
    };
    match sid {
        Some(sid) => twiml
            .redirect(Redirect::new(urls.queue(sid)).method(HttpMethod::Post))
            .to_xml(),
        None => twiml.to_xml(),
    }
}

/// Offers the call to the team's longest idle available member, leaving
/// the first `ahead` available members to callers who waited longer. Of
/// two wait loops (a slow one and the next), only the one whose write
/// records the offer dials.
async fn offer(
    app: &App,
    urls: &WebhookUrls,
    session: CallSession,
    ahead: usize,
    now: OffsetDateTime,
) {
    let sid = session.id.clone();
    let Some(inbound) = session.inbound.as_ref() else {
        return;
    };
    let reserved =
        routing::reserve_for_caller(&app.services, &inbound.team, &[], ahead, &sid, now).await;
    let agent = match reserved {
        Ok(Some(agent)) => agent,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, call = %sid, "no member reserved for a waiting caller");
            return;
        }
    };
    let member = member_of(&agent);
    let Some(number) = agent
        .phone()
        .cloned()
        .filter(|n| may_dial(app, "agent", n).is_ok())
    else {
        routing::release(&app.services, &member.id, &sid).await;
        return;
    };
    let route_until = (now + app.config.team_max_wait).min(inbound.until);
    let route = TeamRoute::new(
        inbound.team.clone(),
        app.config.team_max_members,
        route_until,
    );
    let record = |s: &mut CallSession| {
        if !s.offer_due() {
            return Err(DomainError::NotQueued);
        }
        s.request_transfer(number.clone(), TransferKind::Cold, None, now)?;
        s.ring_member(member.clone(), Some(route.clone()));
        Ok(())
    };
    let store = app.services.store.as_ref();
    let session = match update_returning(store, &sid, &record).await {
        Ok((Some(()), session)) => session,
        Ok((None, _)) | Err(_) => {
            routing::release(&app.services, &member.id, &sid).await;
            return;
        }
    };
    let event = HistoryEvent::product(
        now,
        format!("offered to {} (team {})", member.name, inbound.team),
        None,
    );
    history::record(store, &sid, &event).await;
    ring_reserved(app, urls, session, &member).await;
}

/// The caller's maximum wait is over: recorded once, then the room ended
/// (when no member rings any more) so the caller reaches the fallback.
async fn end_wait(app: &App, session: &CallSession, now: OffsetDateTime) {
    let store = app.services.store.as_ref();
    let over = |s: &mut CallSession| s.end_wait(now).map(|_| ());
    match store.update(&session.id, &over).await {
        Ok(session) => {
            let event = HistoryEvent::product(now, "maximum wait reached", None);
            history::record(store, &session.id, &event).await;
            follow_up::carry_out(&app.services, &session).await;
        }
        Err(error) => tracing::warn!(%error, call = %session.id, "end of the wait not recorded"),
    }
}
