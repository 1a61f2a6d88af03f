//! Typed requests and responses of the operations the product uses. Field
//! names follow Twilio's (the contract test checks them against the
//! OpenAPI file); optional fields left `None` are not sent.

use serde::Deserialize;

use crate::ids::{CallSid, PhoneNumber, RoomName};
/// The room's events, named alike in TwiML and in a participant create.
pub use crate::twiml::ConferenceEventKind as ConferenceCallbackEvent;

wire_enum!(HttpMethod { Get => "GET", Post => "POST" });
wire_enum!(
    /// `ConferenceRecord` of a participant create: whether the room it
    /// joins is recorded.
    ConferenceRecord {
        True => "true",
        False => "false",
        RecordFromStart => "record-from-start",
        DoNotRecord => "do-not-record",
    }
);
wire_enum!(
    /// `ConferenceRecordingStatusCallbackEvent` values.
    ConferenceRecordingEvent {
        InProgress => "in-progress",
        Completed => "completed",
        Failed => "failed",
        Absent => "absent",
    }
);
wire_enum!(
    /// `StatusCallbackEvent` of calls and participants.
    CallStatusEvent {
        Initiated => "initiated",
        Ringing => "ringing",
        Answered => "answered",
        Completed => "completed",
    }
);
wire_enum!(
    /// `DialCallStatus` of a `<Dial action>` callback: how the dialled
    /// call ended.
    DialCallStatus {
        Completed => "completed",
        Answered => "answered",
        Busy => "busy",
        NoAnswer => "no-answer",
        Failed => "failed",
        Canceled => "canceled",
    }
);
wire_enum!(
    /// `Status` of a call update: end a call in progress, or one still ringing.
    UpdateCallStatus { Completed => "completed", Canceled => "canceled" }
);
wire_enum!(
    /// `Status` filter of the call list.
    CallStatus {
        Queued => "queued",
        Ringing => "ringing",
        InProgress => "in-progress",
        Completed => "completed",
        Busy => "busy",
        Failed => "failed",
        NoAnswer => "no-answer",
        Canceled => "canceled",
    }
);
wire_enum!(ConferenceStatus { Init => "init", InProgress => "in-progress", Completed => "completed" });
wire_enum!(
    /// `Status` of a conference participant as Twilio reports it.
    ParticipantStatus {
        Queued => "queued",
        Connecting => "connecting",
        Ringing => "ringing",
        Connected => "connected",
        Complete => "complete",
        Failed => "failed",
    }
);

/// A status in a Twilio answer, typed. A value this product does not know
/// (Twilio adds some over time) reads as none: the answer still serves,
/// and code that needs the status treats it as unknown.
fn known_status<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: crate::WireText,
{
    let text: Option<String> = Option::deserialize(deserializer)?;
    Ok(text.as_deref().and_then(T::from_wire))
}
wire_enum!(
    /// `Beep` of a participant.
    ParticipantBeep { True => "true", False => "false", OnEnter => "onEnter", OnExit => "onExit" }
);
wire_enum!(MachineDetection { Enable => "Enable", DetectMessageEnd => "DetectMessageEnd" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    /// TwiML to run when the call answers.
    pub url: String,
    pub method: Option<HttpMethod>,
    pub status_callback: Option<String>,
    pub status_callback_event: Vec<CallStatusEvent>,
    pub status_callback_method: Option<HttpMethod>,
    /// Seconds to let the phone ring.
    pub timeout: Option<u32>,
    pub time_limit: Option<u32>,
    pub record: Option<bool>,
    pub machine_detection: Option<MachineDetection>,
    pub caller_id: Option<String>,
    /// TwiML Twilio asks for when `url` fails, instead of its recorded error.
    pub fallback_url: Option<String>,
}

impl CreateCall {
    pub fn new(to: PhoneNumber, from: PhoneNumber, url: impl Into<String>) -> Self {
        Self {
            to,
            from,
            url: url.into(),
            method: Some(HttpMethod::Post),
            status_callback: None,
            status_callback_event: Vec::new(),
            status_callback_method: None,
            timeout: None,
            time_limit: None,
            record: None,
            machine_detection: None,
            caller_id: None,
            fallback_url: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateCall {
    /// Redirect: new TwiML for the live call.
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    pub status: Option<UpdateCallStatus>,
    pub twiml: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<HttpMethod>,
    pub time_limit: Option<u32>,
    pub fallback_url: Option<String>,
}

impl UpdateCall {
    /// A new `Url` or `Twiml` takes the call out of whatever it is doing
    /// (a bridge, a conference): done twice, it moves the call twice.
    pub fn moves_the_call(&self) -> bool {
        self.url.is_some() || self.twiml.is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCalls {
    pub parent_call_sid: Option<CallSid>,
    pub status: Option<CallStatus>,
    pub to: Option<PhoneNumber>,
    pub from: Option<PhoneNumber>,
    pub page_size: Option<u32>,
}

/// A conference in a participant path: by friendly name (creates the room
/// on first use) or by its `CF...` SID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConferenceRef {
    FriendlyName(RoomName),
    Sid(String),
}

impl ConferenceRef {
    pub fn as_str(&self) -> &str {
        match self {
            ConferenceRef::FriendlyName(room) => room.as_str(),
            ConferenceRef::Sid(sid) => sid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateParticipant {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub label: Option<String>,
    /// Lets the room hear the ringing (Twilio's default is true).
    pub early_media: Option<bool>,
    pub beep: Option<ParticipantBeep>,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    /// Seconds to ring (5 to 600).
    pub timeout: Option<u32>,
    pub status_callback: Option<String>,
    pub status_callback_event: Vec<CallStatusEvent>,
    pub status_callback_method: Option<HttpMethod>,
    /// Twilio takes the room's callback from the first participant, REST or
    /// TwiML: a participant that may create the room must carry it.
    pub conference_status_callback: Option<String>,
    pub conference_status_callback_event: Vec<ConferenceCallbackEvent>,
    pub conference_status_callback_method: Option<HttpMethod>,
    /// Like the room's callback, its recording comes from the first
    /// participant (twilio-rules 1.13, U10).
    pub conference_record: Option<ConferenceRecord>,
    pub conference_recording_status_callback: Option<String>,
    pub conference_recording_status_callback_event: Vec<ConferenceRecordingEvent>,
    pub conference_recording_status_callback_method: Option<HttpMethod>,
    pub wait_url: Option<String>,
    pub wait_method: Option<HttpMethod>,
    pub muted: Option<bool>,
    /// Heard by `call_sid_to_coach` alone (Twilio's coaching, a whisper).
    pub coaching: Option<bool>,
    /// Must be in the room and not on hold (Twilio errors 16028, 16027).
    pub call_sid_to_coach: Option<CallSid>,
    pub record: Option<bool>,
    pub time_limit: Option<u32>,
    pub caller_id: Option<String>,
    /// An inbound call's token: with it `From` may be that call's caller
    /// (Twilio's changelog, 2023-10-25, "CallToken support for
    /// Conference/Participants API"); without it, `From` must be a number
    /// of the account or a verified caller ID (error 21210).
    pub call_token: Option<String>,
}

impl CreateParticipant {
    pub fn new(from: PhoneNumber, to: PhoneNumber) -> Self {
        Self {
            from,
            to,
            label: None,
            early_media: None,
            beep: None,
            start_conference_on_enter: None,
            end_conference_on_exit: None,
            timeout: None,
            status_callback: None,
            status_callback_event: Vec::new(),
            status_callback_method: None,
            conference_status_callback: None,
            conference_status_callback_event: Vec::new(),
            conference_status_callback_method: None,
            conference_record: None,
            conference_recording_status_callback: None,
            conference_recording_status_callback_event: Vec::new(),
            conference_recording_status_callback_method: None,
            wait_url: None,
            wait_method: None,
            muted: None,
            coaching: None,
            call_sid_to_coach: None,
            record: None,
            time_limit: None,
            caller_id: None,
            call_token: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateParticipant {
    pub hold: Option<bool>,
    pub hold_url: Option<String>,
    pub hold_method: Option<HttpMethod>,
    pub muted: Option<bool>,
    pub announce_url: Option<String>,
    pub announce_method: Option<HttpMethod>,
    pub end_conference_on_exit: Option<bool>,
    pub beep_on_exit: Option<bool>,
    /// Heard by `call_sid_to_coach` alone, or (false) by everyone again.
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<CallSid>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListConferences {
    pub friendly_name: Option<String>,
    pub status: Option<ConferenceStatus>,
    pub page_size: Option<u32>,
}

/// A call resource (the fields the product reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Call {
    pub sid: String,
    pub parent_call_sid: Option<String>,
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "known_status")]
    pub status: Option<CallStatus>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub direction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallPage {
    pub calls: Vec<Call>,
    pub next_page_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Participant {
    pub call_sid: String,
    pub conference_sid: Option<String>,
    pub label: Option<String>,
    #[serde(default, deserialize_with = "known_status")]
    pub status: Option<ParticipantStatus>,
    pub hold: Option<bool>,
    pub muted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParticipantPage {
    pub participants: Vec<Participant>,
    pub next_page_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Conference {
    pub sid: String,
    pub friendly_name: Option<String>,
    #[serde(default, deserialize_with = "known_status")]
    pub status: Option<ConferenceStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConferencePage {
    pub conferences: Vec<Conference>,
    pub next_page_uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_typed_and_an_unknown_one_as_none() {
        let call: Call =
            serde_json::from_str(r#"{"sid": "CA1", "status": "in-progress"}"#).unwrap();
        assert_eq!(call.status, Some(CallStatus::InProgress));
        let participant: Participant =
            serde_json::from_str(r#"{"call_sid": "CA1", "status": "connected"}"#).unwrap();
        assert_eq!(participant.status, Some(ParticipantStatus::Connected));
        let room: Conference = serde_json::from_str(
            r#"{"sid": "CF1", "friendly_name": "wt-x", "status": "completed"}"#,
        )
        .unwrap();
        assert_eq!(room.status, Some(ConferenceStatus::Completed));
        // A status Twilio adds later does not fail the answer.
        let later: Participant =
            serde_json::from_str(r#"{"call_sid": "CA1", "status": "whispering"}"#).unwrap();
        assert_eq!(later.status, None);
        let absent: Call = serde_json::from_str(r#"{"sid": "CA1", "status": null}"#).unwrap();
        assert_eq!(absent.status, None);
        let missing: Conference = serde_json::from_str(r#"{"sid": "CF1"}"#).unwrap();
        assert_eq!(missing.status, None);
    }
}
