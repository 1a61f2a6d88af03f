//! Recording (`RECORDING=on`): what is asked of Twilio, and the recording
//! status callbacks (`/events/recording`), whose report goes into the
//! call's history, where `GET /calls/{callSid}` lists the recordings from.
//!
//! The customer's conversation is recorded from the first bridge to the
//! end: the `<Dial>` bridge with agent one, then the room, which lives
//! across every transfer of the call.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::app::App;
use super::hook::{NotRecorded, Webhook, empty};
use super::request;
use super::webhook_urls::WebhookUrls;
use crate::domain::{HistoryEvent, Recording, RecordingSource, RecordingStatus};
use crate::ids::{CallSid, RoomName};
use crate::twilio::{ConferenceRecordingEvent, CreateParticipant, HttpMethod as RestMethod};
use crate::twiml::{Conference, ConferenceRecord, Dial, DialRecord, HttpMethod, RecordingEvent};

/// Agent one's bridge with the customer, from answer (the conversation,
/// not the ringing), one channel each: agent one on channel 1
/// (twilio-rules 7.5). It ends when the customer moves to the room.
pub(crate) fn record_bridge(dial: Dial, urls: &WebhookUrls, session: &CallSid) -> Dial {
    dial.record(DialRecord::RecordFromAnswerDual)
        .recording_status_callback(urls.recording_events(session))
        .recording_status_callback_method(HttpMethod::Post)
        .recording_status_callback_event([RecordingEvent::Completed])
}

/// The room, from its start to its end (twilio-rules 7.1, 7.2). Every
/// participant asks for it, since Twilio takes a room's settings from
/// whoever comes first (twilio-rules 1.13, U10).
pub(crate) fn record_room(
    conference: Conference,
    urls: &WebhookUrls,
    room: &RoomName,
) -> Conference {
    conference
        .record(ConferenceRecord::RecordFromStart)
        .recording_status_callback(urls.recording_events(&room.session()))
        .recording_status_callback_method(HttpMethod::Post)
        .recording_status_callback_event([RecordingEvent::Completed])
}

/// [`record_room`] for a participant added with the REST API, which may be
/// the room's first (twilio-rules 7.4); unchanged when recording is off.
pub(crate) fn record_room_rest(
    app: &App,
    urls: &WebhookUrls,
    room: &RoomName,
    participant: CreateParticipant,
) -> CreateParticipant {
    if !app.config.recording {
        return participant;
    }
    CreateParticipant {
        conference_record: Some(crate::twilio::ConferenceRecord::RecordFromStart),
        conference_recording_status_callback: Some(urls.recording_events(&room.session())),
        conference_recording_status_callback_event: vec![ConferenceRecordingEvent::Completed],
        conference_recording_status_callback_method: Some(RestMethod::Post),
        ..participant
    }
}

/// Stores what a recording callback reports. Unlike other history entries
/// this one must not be lost (it is the only trace of the recording here),
/// so a failed write asks Twilio to send it again.
pub(crate) async fn recorded(app: &App, hook: &Webhook<'_>) -> Result<String, NotRecorded> {
    let session =
        request::query_param(hook.request, "session").and_then(|v| CallSid::parse(&v).ok());
    let recording = recording(&request::form_map(&hook.params));
    let (Some(session), Some(recording)) = (session, recording) else {
        tracing::warn!("recording callback not understood; ignored");
        return Ok(empty());
    };
    tracing::info!(
        call = %session,
        recording = recording.sid,
        source = recording.source.as_str(),
        status = recording.status.as_str(),
        duration_secs = recording.duration_secs,
        "recording reported"
    );
    let entry = HistoryEvent::recorded(OffsetDateTime::now_utc(), recording);
    match app.services.store.append_event(&session, &entry).await {
        Ok(()) => Ok(empty()),
        Err(error) => {
            tracing::error!(%error, call = %session, "recording not recorded; asking Twilio to retry");
            Err(NotRecorded)
        }
    }
}

/// A recording from the callback's fields (Twilio's names).
fn recording(form: &HashMap<&str, &str>) -> Option<Recording> {
    Recording::new(
        form.get("RecordingSid")?,
        RecordingSource::from_twilio(form.get("RecordingSource")?)?,
        RecordingStatus::parse(form.get("RecordingStatus")?)?,
        form.get("RecordingDuration").and_then(|d| d.parse().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::webhooks::dial_customer_twiml;
    use crate::ids::PhoneNumber;
    use crate::twiml::Response;

    const BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
    const SESSION: &str = "CA0123456789abcdef0123456789abcdef";

    fn urls() -> WebhookUrls {
        WebhookUrls::from_base(BASE)
    }

    /// As twilio-python renders it: the recording attributes sorted in
    /// among the others.
    #[test]
    fn the_bridge_is_recorded_from_answer_in_two_channels() {
        let session = CallSid::parse(SESSION).unwrap();
        let to = PhoneNumber::parse("+14155550100").unwrap();
        let caller = PhoneNumber::parse("+15005550006").unwrap();
        assert_eq!(
            dial_customer_twiml(&urls(), &to, &caller, Some(&session)),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial \
                 action=\"{BASE}/twiml/agent-dial-ended\" answerOnBridge=\"true\" \
                 callerId=\"+15005550006\" method=\"POST\" record=\"record-from-answer-dual\" \
                 recordingStatusCallback=\"{BASE}/events/recording?session={SESSION}#rc=3&amp;rp=ct,rt,5xx\" \
                 recordingStatusCallbackEvent=\"completed\" recordingStatusCallbackMethod=\"POST\">\
                 <Number statusCallback=\"{BASE}/events/customer-leg#rc=3&amp;rp=ct,rt,5xx\" \
                 statusCallbackEvent=\"initiated ringing answered completed\" \
                 statusCallbackMethod=\"POST\">+14155550100</Number></Dial></Response>"
            )
        );
        // Off: not a word about recording.
        assert!(!dial_customer_twiml(&urls(), &to, &caller, None).contains("record"));
    }

    #[test]
    fn the_room_is_recorded_from_its_start() {
        let room = CallSid::parse(SESSION).unwrap().room();
        let xml = Response::new()
            .dial(Dial::new().conference(record_room(
                Conference::new(room.as_str()),
                &urls(),
                &room,
            )))
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial><Conference \
                 record=\"record-from-start\" \
                 recordingStatusCallback=\"{BASE}/events/recording?session={SESSION}#rc=3&amp;rp=ct,rt,5xx\" \
                 recordingStatusCallbackEvent=\"completed\" recordingStatusCallbackMethod=\"POST\">\
                 wt-{SESSION}</Conference></Dial></Response>"
            )
        );
    }

    #[test]
    fn reads_twilios_fields() {
        let mut form: HashMap<&str, &str> = [
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
            ("RecordingSource", "Conference"),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", "42"),
            ("ConferenceSid", "CF0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .collect();
        let read = recording(&form).unwrap();
        assert_eq!(read.source, RecordingSource::Room);
        assert_eq!(read.status, RecordingStatus::Completed);
        assert_eq!(read.duration_secs, Some(42));
        form.insert("RecordingSource", "DialVerb");
        form.remove("RecordingDuration");
        let read = recording(&form).unwrap();
        assert_eq!(read.source, RecordingSource::Bridge);
        assert_eq!(read.duration_secs, None);
        form.insert("RecordingSource", "RecordVerb");
        assert_eq!(recording(&form), None, "not a recording this product makes");
    }
}
