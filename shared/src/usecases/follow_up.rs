//! Carries out what the domain says must follow a change
//! ([`CallSession::follow_ups`]): legs nobody needs are ended, the second
//! agent becomes the room's anchor once the first agent is gone, and a
//! customer found alone is sent on to the fallback. Every request here is
//! idempotent on Twilio's side (hang up, set a flag, end a room), so two
//! handlers deriving the same follow-up do no harm, and a later callback
//! tries again what an earlier one could not finish.

use time::OffsetDateTime;

use super::{Services, history};
use crate::domain::{CallSession, FollowUp, HistoryEvent, RoomParticipant};
use crate::twilio::{
    ConferenceStatus, HttpMethod, ListConferences, TwilioError, UpdateParticipant,
};

#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    #[error("the room is not live")]
    NoRoom,
    #[error(transparent)]
    Twilio(#[from] TwilioError),
}

impl FollowUpError {
    /// Twilio refused: the participant or room is not there (any more).
    pub fn is_refusal(&self) -> bool {
        match self {
            FollowUpError::NoRoom => true,
            FollowUpError::Twilio(error) => !error.is_uncertain(),
        }
    }
}

/// Everything the session needs now, concurrently.
pub async fn carry_out(services: &Services, session: &CallSession) {
    let work = session
        .follow_ups()
        .into_iter()
        .map(|follow_up| carry_out_one(services, session, follow_up));
    futures::future::join_all(work).await;
}

async fn carry_out_one(services: &Services, session: &CallSession, follow_up: FollowUp) {
    let call = &session.id;
    let result = match &follow_up {
        FollowUp::EndLeg(leg) => {
            // Every callback until the leg's own end derives this again:
            // one handler asks Twilio, not each of them.
            let now = OffsetDateTime::now_utc();
            match services.store.claim_leg_end(call, leg, now).await {
                Ok(false) => {
                    tracing::debug!(%call, %leg, "another handler is ending this leg");
                    return;
                }
                Ok(true) => {}
                // Unsure: a second request is harmless, a leg left ringing is not.
                Err(error) => {
                    tracing::warn!(%error, %call, %leg, "leg's end not claimed; ending it anyway")
                }
            }
            tracing::info!(%call, %leg, "ending a leg nobody needs any more");
            // Answered: a hang-up ends it (twilio-rules 4.4). Otherwise it
            // may be ringing or just answered: cancel, then hang up.
            let ended = if session.leg_answered(leg) {
                services.twilio.hang_up_call(leg).await.map(drop)
            } else {
                services.twilio.end_call(leg).await
            };
            if ended.is_err() {
                if let Err(error) = services.store.release_leg_end(call, leg).await {
                    tracing::warn!(%error, %call, %leg, "claim of a failed ending not given back; it lapses");
                }
            }
            ended.map_err(FollowUpError::from)
        }
        FollowUp::AnchorRoomOnTarget { attempt } => {
            tracing::info!(%call, attempt, "the second agent now ends the room on leaving");
            anchor_room_on(services, session, *attempt, true).await
        }
        FollowUp::LiftAnchor { attempt } => {
            tracing::info!(%call, attempt, "the agent transferring on no longer ends the room");
            anchor_room_on(services, session, *attempt, false).await
        }
        FollowUp::ReleaseCustomer => {
            tracing::warn!(%call, "customer alone in the room; ending it so they reach the fallback");
            release_customer(services, session).await
        }
        FollowUp::ResumeCustomer => {
            tracing::info!(%call, "the consult is over; taking the customer off hold");
            hold_customer(services, session, false, None).await
        }
    };
    match result {
        Ok(()) => record_done(services, session, &follow_up).await,
        Err(error) => tracing::warn!(%error, %call, ?follow_up, "follow-up not carried out"),
    }
}

async fn record_done(services: &Services, session: &CallSession, follow_up: &FollowUp) {
    let Some(kind) = follow_up.done_text() else {
        return;
    };
    let done = |s: &mut CallSession| {
        s.follow_up_done(follow_up);
        Ok(())
    };
    let event = HistoryEvent::product(OffsetDateTime::now_utc(), kind, None);
    let (recorded, ()) = futures::join!(
        services.store.update(&session.id, &done),
        history::record(services.store.as_ref(), &session.id, &event),
    );
    if let Err(error) = recorded {
        tracing::warn!(%error, call = %session.id, kind, "follow-up done but not recorded");
    }
}

/// The live room's `CF...` SID: remembered from the participant create, or
/// looked up by the room's name.
pub async fn room_sid(services: &Services, session: &CallSession) -> Result<String, FollowUpError> {
    if let Some(sid) = &session.room_sid {
        return Ok(sid.clone());
    }
    live_rooms(services, session)
        .await?
        .into_iter()
        .next()
        .ok_or(FollowUpError::NoRoom)
}

/// The `CF...` SIDs of the conferences under the call's room name that
/// have not ended. Usually one; but a conference that ended before the
/// customer arrived (agent two turned it down first) leaves the name free,
/// and the customer's redirect then opens a new one.
async fn live_rooms(
    services: &Services,
    session: &CallSession,
) -> Result<Vec<String>, FollowUpError> {
    let filter = ListConferences {
        friendly_name: Some(session.id.room().as_str().to_owned()),
        status: None,
        page_size: Some(20),
    };
    let rooms = services.twilio.list_conferences(&filter).await?;
    Ok(rooms
        .into_iter()
        .filter(|room| room.status != Some(ConferenceStatus::Completed))
        .map(|room| room.sid)
        .collect())
}

/// Whether the agent who came in with `attempt` ends the room on leaving:
/// the agent the call was handed to does, so the customer follows them out
/// (to the fallback) rather than stay alone; an agent transferring it on
/// does not, so their leaving leaves the customer with the next agent.
pub async fn anchor_room_on(
    services: &Services,
    session: &CallSession,
    attempt: u32,
    anchors: bool,
) -> Result<(), FollowUpError> {
    let room = room_sid(services, session).await?;
    let label = RoomParticipant::SecondAgent { attempt }.label();
    let update = UpdateParticipant {
        end_conference_on_exit: Some(anchors),
        ..UpdateParticipant::default()
    };
    services
        .twilio
        .update_participant(&room, &label, &update)
        .await?;
    Ok(())
}

/// Puts the customer's participant on hold (hearing `hold_url`) or takes
/// them off it.
pub async fn hold_customer(
    services: &Services,
    session: &CallSession,
    held: bool,
    hold_url: Option<String>,
) -> Result<(), FollowUpError> {
    let room = room_sid(services, session).await?;
    let update = UpdateParticipant {
        hold: Some(held),
        hold_method: hold_url.as_ref().map(|_| HttpMethod::Post),
        hold_url,
        ..UpdateParticipant::default()
    };
    services
        .twilio
        .update_participant(&room, &RoomParticipant::Customer.label(), &update)
        .await?;
    Ok(())
}

/// Ends the room: the customer's TwiML goes on to the fallback.
/// Looked up by name, never by the SID remembered from the participant
/// create: that room may have ended before the customer came in, and
/// ending it again would leave the customer alone in the new one. With no
/// live room yet (the customer still on the way) nothing is done; the
/// customer's join callback, or the reconciler, tries again.
async fn release_customer(services: &Services, session: &CallSession) -> Result<(), FollowUpError> {
    let rooms = live_rooms(services, session).await?;
    if rooms.is_empty() {
        return Err(FollowUpError::NoRoom);
    }
    for room in &rooms {
        services.twilio.end_conference(room).await?;
    }
    Ok(())
}
