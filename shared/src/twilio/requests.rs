//! Each operation as a plain request description: method, path, query and
//! form fields. The client sends them; the contract test checks them against
//! Twilio's OpenAPI file without any network.

use http::Method;

use super::types::*;
use crate::ids::CallSid;

/// Whether a request may be sent again after it may have reached Twilio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads, deletes and updates to a fixed state: repeating changes nothing.
    Safe,
    /// Dials someone: sent twice, it rings twice. Only retried when the
    /// connection failed before the request left.
    Once,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: Method,
    /// From `/2010-04-01/...`, path segments percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub repeat: Repeat,
}

/// Form fields in order, skipping options left unset.
#[derive(Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn text(mut self, name: &str, value: Option<impl AsRef<str>>) -> Self {
        if let Some(value) = value {
            self.0.push((name.to_owned(), value.as_ref().to_owned()));
        }
        self
    }

    fn flag(self, name: &str, value: Option<bool>) -> Self {
        self.text(name, value.map(|v| if v { "true" } else { "false" }))
    }

    fn number(self, name: &str, value: Option<u32>) -> Self {
        self.text(name, value.map(|v| v.to_string()))
    }

    /// Multi-valued fields repeat the key, as Twilio expects.
    fn each<T: Copy>(mut self, name: &str, values: &[T], text: fn(T) -> &'static str) -> Self {
        for value in values {
            self.0.push((name.to_owned(), text(*value).to_owned()));
        }
        self
    }
}

fn segment(value: &str) -> String {
    // Path segments: everything but unreserved characters is escaped.
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn account_path(account_sid: &str, rest: &str) -> String {
    format!("/2010-04-01/Accounts/{}/{rest}", segment(account_sid))
}

fn spec(method: Method, path: String, form: Form, repeat: Repeat) -> RequestSpec {
    RequestSpec {
        method,
        path,
        query: Vec::new(),
        form: form.0,
        repeat,
    }
}

pub fn create_call(account_sid: &str, call: &CreateCall) -> RequestSpec {
    let form = Form::default()
        .text("To", Some(call.to.as_str()))
        .text("From", Some(call.from.as_str()))
        .text("Url", Some(&call.url))
        .text("Method", call.method.map(HttpMethod::as_str))
        .text("StatusCallback", call.status_callback.as_ref())
        .each(
            "StatusCallbackEvent",
            &call.status_callback_event,
            CallStatusEvent::as_str,
        )
        .text(
            "StatusCallbackMethod",
            call.status_callback_method.map(HttpMethod::as_str),
        )
        .number("Timeout", call.timeout)
        .number("TimeLimit", call.time_limit)
        .flag("Record", call.record)
        .text(
            "MachineDetection",
            call.machine_detection.map(MachineDetection::as_str),
        )
        .text("CallerId", call.caller_id.as_ref())
        .text("FallbackUrl", call.fallback_url.as_ref())
        .text("FallbackMethod", call.fallback_url.as_ref().map(|_| "POST"));
    spec(
        Method::POST,
        account_path(account_sid, "Calls.json"),
        form,
        Repeat::Once,
    )
}

pub fn update_call(account_sid: &str, sid: &CallSid, update: &UpdateCall) -> RequestSpec {
    let form = Form::default()
        .text("Url", update.url.as_ref())
        .text("Method", update.method.map(HttpMethod::as_str))
        .text("Status", update.status.map(UpdateCallStatus::as_str))
        .text("Twiml", update.twiml.as_ref())
        .text("StatusCallback", update.status_callback.as_ref())
        .text(
            "StatusCallbackMethod",
            update.status_callback_method.map(HttpMethod::as_str),
        )
        .number("TimeLimit", update.time_limit)
        .text("FallbackUrl", update.fallback_url.as_ref())
        .text(
            "FallbackMethod",
            update.fallback_url.as_ref().map(|_| "POST"),
        );
    let path = account_path(
        account_sid,
        &format!("Calls/{}.json", segment(sid.as_str())),
    );
    // Hanging up twice changes nothing; moving a call twice pulls it out of
    // wherever the first move put it.
    let repeat = if update.moves_the_call() {
        Repeat::Once
    } else {
        Repeat::Safe
    };
    spec(Method::POST, path, form, repeat)
}

pub fn fetch_call(account_sid: &str, sid: &CallSid) -> RequestSpec {
    let path = account_path(
        account_sid,
        &format!("Calls/{}.json", segment(sid.as_str())),
    );
    spec(Method::GET, path, Form::default(), Repeat::Safe)
}

pub fn list_calls(account_sid: &str, filter: &ListCalls) -> RequestSpec {
    let query = Form::default()
        .text(
            "ParentCallSid",
            filter.parent_call_sid.as_ref().map(CallSid::as_str),
        )
        .text("Status", filter.status.map(CallStatus::as_str))
        .text("To", filter.to.as_ref().map(|n| n.as_str()))
        .text("From", filter.from.as_ref().map(|n| n.as_str()))
        .number("PageSize", filter.page_size);
    RequestSpec {
        query: query.0,
        ..spec(
            Method::GET,
            account_path(account_sid, "Calls.json"),
            Form::default(),
            Repeat::Safe,
        )
    }
}

pub fn create_participant(
    account_sid: &str,
    conference: &ConferenceRef,
    participant: &CreateParticipant,
) -> RequestSpec {
    let form = Form::default()
        .text("From", Some(participant.from.as_str()))
        .text("To", Some(participant.to.as_str()))
        .text("Label", participant.label.as_ref())
        .flag("EarlyMedia", participant.early_media)
        .text("Beep", participant.beep.map(ParticipantBeep::as_str))
        .flag(
            "StartConferenceOnEnter",
            participant.start_conference_on_enter,
        )
        .flag("EndConferenceOnExit", participant.end_conference_on_exit)
        .number("Timeout", participant.timeout)
        .text("StatusCallback", participant.status_callback.as_ref())
        .each(
            "StatusCallbackEvent",
            &participant.status_callback_event,
            CallStatusEvent::as_str,
        )
        .text(
            "StatusCallbackMethod",
            participant.status_callback_method.map(HttpMethod::as_str),
        )
        .text(
            "ConferenceStatusCallback",
            participant.conference_status_callback.as_ref(),
        )
        .each(
            "ConferenceStatusCallbackEvent",
            &participant.conference_status_callback_event,
            ConferenceCallbackEvent::as_str,
        )
        .text(
            "ConferenceStatusCallbackMethod",
            participant
                .conference_status_callback_method
                .map(HttpMethod::as_str),
        )
        .text(
            "ConferenceRecord",
            participant.conference_record.map(ConferenceRecord::as_str),
        )
        .text(
            "ConferenceRecordingStatusCallback",
            participant.conference_recording_status_callback.as_ref(),
        )
        .each(
            "ConferenceRecordingStatusCallbackEvent",
            &participant.conference_recording_status_callback_event,
            ConferenceRecordingEvent::as_str,
        )
        .text(
            "ConferenceRecordingStatusCallbackMethod",
            participant
                .conference_recording_status_callback_method
                .map(HttpMethod::as_str),
        )
        .text("WaitUrl", participant.wait_url.as_ref())
        .text(
            "WaitMethod",
            participant.wait_method.map(HttpMethod::as_str),
        )
        .flag("Muted", participant.muted)
        .flag("Coaching", participant.coaching)
        .text(
            "CallSidToCoach",
            participant.call_sid_to_coach.as_ref().map(CallSid::as_str),
        )
        .flag("Record", participant.record)
        .number("TimeLimit", participant.time_limit)
        .text("CallerId", participant.caller_id.as_ref())
        .text("CallToken", participant.call_token.as_ref());
    let path = account_path(
        account_sid,
        &format!(
            "Conferences/{}/Participants.json",
            segment(conference.as_str())
        ),
    );
    spec(Method::POST, path, form, Repeat::Once)
}

fn participant_path(account_sid: &str, conference_sid: &str, participant: &str) -> String {
    account_path(
        account_sid,
        &format!(
            "Conferences/{}/Participants/{}.json",
            segment(conference_sid),
            segment(participant)
        ),
    )
}

/// `participant` is the participant's call SID or its label.
pub fn update_participant(
    account_sid: &str,
    conference_sid: &str,
    participant: &str,
    update: &UpdateParticipant,
) -> RequestSpec {
    let form = Form::default()
        .flag("Hold", update.hold)
        .text("HoldUrl", update.hold_url.as_ref())
        .text("HoldMethod", update.hold_method.map(HttpMethod::as_str))
        .flag("Muted", update.muted)
        .text("AnnounceUrl", update.announce_url.as_ref())
        .text(
            "AnnounceMethod",
            update.announce_method.map(HttpMethod::as_str),
        )
        .flag("EndConferenceOnExit", update.end_conference_on_exit)
        .flag("BeepOnExit", update.beep_on_exit)
        .flag("Coaching", update.coaching)
        .text(
            "CallSidToCoach",
            update.call_sid_to_coach.as_ref().map(CallSid::as_str),
        );
    let path = participant_path(account_sid, conference_sid, participant);
    // Every field sets a state (muted, coaching whom...): sent twice, the
    // participant ends up the same. A mode switch never dials.
    spec(Method::POST, path, form, Repeat::Safe)
}

pub fn fetch_participant(
    account_sid: &str,
    conference_sid: &str,
    participant: &str,
) -> RequestSpec {
    let path = participant_path(account_sid, conference_sid, participant);
    spec(Method::GET, path, Form::default(), Repeat::Safe)
}

/// Ends a conference (`Status=completed`): everyone in it drops out, and
/// each TwiML participant carries on with its next verb. Ending an ended
/// room changes nothing.
pub fn end_conference(account_sid: &str, conference_sid: &str) -> RequestSpec {
    let path = account_path(
        account_sid,
        &format!("Conferences/{}.json", segment(conference_sid)),
    );
    // A conference is ended by setting its status (Twilio's only value here).
    let form = Form::default().text("Status", Some(ConferenceStatus::Completed.as_str()));
    spec(Method::POST, path, form, Repeat::Safe)
}

pub fn list_conferences(account_sid: &str, filter: &ListConferences) -> RequestSpec {
    let query = Form::default()
        .text("FriendlyName", filter.friendly_name.as_ref())
        .text("Status", filter.status.map(ConferenceStatus::as_str))
        .number("PageSize", filter.page_size);
    RequestSpec {
        query: query.0,
        ..spec(
            Method::GET,
            account_path(account_sid, "Conferences.json"),
            Form::default(),
            Repeat::Safe,
        )
    }
}

/// The participants of a conference (those connected, and those still
/// being dialled or ringing). A participant who left is no longer listed.
pub fn list_participants(
    account_sid: &str,
    conference_sid: &str,
    page_size: Option<u32>,
) -> RequestSpec {
    let query = Form::default().number("PageSize", page_size);
    RequestSpec {
        query: query.0,
        ..spec(
            Method::GET,
            account_path(
                account_sid,
                &format!("Conferences/{}/Participants.json", segment(conference_sid)),
            ),
            Form::default(),
            Repeat::Safe,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PhoneNumber;

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    fn field<'a>(spec: &'a RequestSpec, name: &str) -> Option<&'a str> {
        spec.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_coach_is_dialled_once_and_a_mode_switch_is_a_safe_update() {
        let agent = CallSid::parse("CA00000000000000000000000000000001").unwrap();
        let join = create_participant(
            "AC00000000000000000000000000000000",
            &ConferenceRef::Sid("CF00000000000000000000000000000001".into()),
            &CreateParticipant {
                muted: Some(false),
                coaching: Some(true),
                call_sid_to_coach: Some(agent.clone()),
                ..CreateParticipant::new(phone("+15005550006"), phone("+15550100009"))
            },
        );
        assert_eq!(join.repeat, Repeat::Once, "it dials");
        assert_eq!(field(&join, "Coaching"), Some("true"));
        assert_eq!(field(&join, "CallSidToCoach"), Some(agent.as_str()));
        assert_eq!(field(&join, "Muted"), Some("false"));
        let switch = update_participant(
            "AC00000000000000000000000000000000",
            "CF00000000000000000000000000000001",
            "supervisor-1",
            &UpdateParticipant {
                muted: Some(true),
                coaching: Some(false),
                ..UpdateParticipant::default()
            },
        );
        assert_eq!(switch.repeat, Repeat::Safe, "it sets a state");
        assert_eq!(
            switch.form,
            [
                ("Muted".to_owned(), "true".to_owned()),
                ("Coaching".to_owned(), "false".to_owned())
            ]
        );
        assert!(switch.path.ends_with("/Participants/supervisor-1.json"));
    }
}
