//! Every request the client builds, with every option set, checked against
//! Twilio's own OpenAPI description; and the response fixtures the tests use
//! checked against its response schemas.

use warm_transfer_core::ids::{CallSid, PhoneNumber, RoomName};
use warm_transfer_core::twilio::requests::{self, RequestSpec};
use warm_transfer_core::twilio::*;
use warm_transfer_dev::contract::OpenApi;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const URL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/events/participant?attempt=1&session=CA00000000000000000000000000000001";

fn sid(s: &str) -> CallSid {
    CallSid::parse(s).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

/// Every operation with every option the client knows set.
fn every_request() -> Vec<(&'static str, RequestSpec)> {
    let call = sid("CA00000000000000000000000000000002");
    let room = ConferenceRef::FriendlyName(
        RoomName::parse("wt-CA00000000000000000000000000000001").unwrap(),
    );
    let mut out = vec![
        (
            "create call",
            requests::create_call(
                ACCOUNT,
                &CreateCall {
                    method: Some(HttpMethod::Post),
                    status_callback: Some(URL.into()),
                    status_callback_event: CallStatusEvent::ALL.to_vec(),
                    status_callback_method: Some(HttpMethod::Post),
                    timeout: Some(30),
                    time_limit: Some(14400),
                    record: Some(false),
                    machine_detection: Some(MachineDetection::Enable),
                    caller_id: Some("+15005550006".into()),
                    fallback_url: Some(URL.into()),
                    ..CreateCall::new(phone("+15550100001"), phone("+15005550006"), URL)
                },
            ),
        ),
        ("fetch call", requests::fetch_call(ACCOUNT, &call)),
        (
            "list calls",
            requests::list_calls(
                ACCOUNT,
                &ListCalls {
                    parent_call_sid: Some(call.clone()),
                    status: Some(CallStatus::InProgress),
                    to: Some(phone("+15550100002")),
                    from: Some(phone("+15005550006")),
                    page_size: Some(20),
                },
            ),
        ),
        (
            "create participant by name",
            requests::create_participant(
                ACCOUNT,
                &room,
                &CreateParticipant {
                    label: Some("second-agent-1".into()),
                    early_media: Some(true),
                    beep: Some(ParticipantBeep::OnEnter),
                    start_conference_on_enter: Some(true),
                    end_conference_on_exit: Some(false),
                    timeout: Some(30),
                    status_callback: Some(URL.into()),
                    status_callback_event: CallStatusEvent::ALL.to_vec(),
                    status_callback_method: Some(HttpMethod::Post),
                    conference_status_callback: Some(URL.into()),
                    conference_status_callback_event: ConferenceCallbackEvent::ALL.to_vec(),
                    conference_status_callback_method: Some(HttpMethod::Post),
                    conference_record: Some(ConferenceRecord::RecordFromStart),
                    conference_recording_status_callback: Some(URL.into()),
                    conference_recording_status_callback_event: ConferenceRecordingEvent::ALL
                        .to_vec(),
                    conference_recording_status_callback_method: Some(HttpMethod::Post),
                    wait_url: Some(
                        "https://twimlets.com/holdmusic?Bucket=com.twilio.music.classical".into(),
                    ),
                    wait_method: Some(HttpMethod::Get),
                    muted: Some(false),
                    coaching: Some(true),
                    call_sid_to_coach: Some(call.clone()),
                    record: Some(false),
                    time_limit: Some(3600),
                    caller_id: Some("+15005550006".into()),
                    call_token: Some("%7B%22parentCallInfoToken%22%3A%22eyJ%22%7D".into()),
                    ..CreateParticipant::new(phone("+15005550006"), phone("+15550100003"))
                },
            ),
        ),
        (
            "create participant by sid",
            requests::create_participant(
                ACCOUNT,
                &ConferenceRef::Sid("CF00000000000000000000000000000001".into()),
                &CreateParticipant::new(phone("+15005550006"), phone("+15550100003")),
            ),
        ),
        (
            "update participant",
            requests::update_participant(
                ACCOUNT,
                "CF00000000000000000000000000000001",
                "second-agent-1",
                &UpdateParticipant {
                    hold: Some(true),
                    hold_url: Some(URL.into()),
                    hold_method: Some(HttpMethod::Get),
                    muted: Some(true),
                    announce_url: Some(URL.into()),
                    announce_method: Some(HttpMethod::Post),
                    end_conference_on_exit: Some(true),
                    beep_on_exit: Some(false),
                    coaching: Some(true),
                    call_sid_to_coach: Some(call.clone()),
                },
            ),
        ),
        (
            "fetch participant",
            requests::fetch_participant(ACCOUNT, "CF00000000000000000000000000000001", "customer"),
        ),
        (
            "list participants",
            requests::list_participants(ACCOUNT, "CF00000000000000000000000000000001", Some(50)),
        ),
        (
            "end conference",
            requests::end_conference(ACCOUNT, "CF00000000000000000000000000000001"),
        ),
        (
            "list conferences",
            requests::list_conferences(
                ACCOUNT,
                &ListConferences {
                    friendly_name: Some("wt-CA00000000000000000000000000000001".into()),
                    status: Some(ConferenceStatus::InProgress),
                    page_size: Some(20),
                },
            ),
        ),
    ];
    for status in UpdateCallStatus::ALL {
        out.push((
            "update call status",
            requests::update_call(
                ACCOUNT,
                &call,
                &UpdateCall {
                    status: Some(status),
                    ..UpdateCall::default()
                },
            ),
        ));
    }
    out.push((
        "update call, every field",
        requests::update_call(
            ACCOUNT,
            &call,
            &UpdateCall {
                url: Some(URL.into()),
                method: Some(HttpMethod::Post),
                status: None,
                twiml: Some("<Response><Hangup/></Response>".into()),
                status_callback: Some(URL.into()),
                status_callback_method: Some(HttpMethod::Post),
                time_limit: Some(600),
                fallback_url: Some(URL.into()),
            },
        ),
    ));
    out
}

fn openapi() -> OpenApi {
    OpenApi::load(warm_transfer_dev::paths::twilio_openapi()).unwrap()
}

#[test]
fn every_request_conforms_to_twilios_openapi() {
    let api = openapi();
    for (name, spec) in every_request() {
        let violations =
            api.check_request(spec.method.as_str(), &spec.path, &spec.query, &spec.form);
        assert!(violations.is_empty(), "{name}: {violations:#?}");
    }
}

#[test]
fn the_checker_catches_a_misspelt_field_a_bad_value_and_a_missing_one() {
    let api = openapi();
    let (_, mut spec) = every_request().remove(0);
    // One field name changed, as a typo in the client would.
    let field = spec
        .form
        .iter_mut()
        .find(|(k, _)| k == "StatusCallbackMethod")
        .expect("create_call sends StatusCallbackMethod");
    field.0 = "StatusCallbackMethd".into();
    let violations = api.check_request("POST", &spec.path, &spec.query, &spec.form);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0]
            .0
            .contains("StatusCallbackMethd is not defined"),
        "{violations:?}"
    );

    let (_, spec) = every_request().remove(0);
    let mut bad = spec.form.clone();
    bad.retain(|(k, _)| k != "To");
    bad.push(("Timeout".into(), "soon".into()));
    bad.push(("Method".into(), "PUT".into()));
    bad.push(("Url".into(), "not a url".into()));
    let violations: Vec<String> = api
        .check_request("POST", &spec.path, &[], &bad)
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("required form field To is missing")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("is not an integer")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("is not GET or POST")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("is not a URI")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Timeout") && v.contains("repeated")),
        "{violations:?}"
    );

    let update = requests::update_call(
        ACCOUNT,
        &sid("CA00000000000000000000000000000002"),
        &UpdateCall::default(),
    );
    let violations = api.check_request(
        "POST",
        &update.path,
        &[],
        &[("Status".into(), "hung-up".into())],
    );
    assert!(violations[0].0.contains("is not one of"), "{violations:?}");
    assert!(!api.check_request("PUT", &update.path, &[], &[]).is_empty());
    assert!(
        !api.check_request("GET", "/2010-04-01/Accounts/AC1/Callz.json", &[], &[])
            .is_empty()
    );
    assert!(
        !api.check_request("GET", &update.path, &[("Colour".into(), "red".into())], &[])
            .is_empty()
    );
}

#[test]
fn response_fixtures_conform_to_the_response_schemas() {
    let api = openapi();
    let calls = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let call =
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CA00000000000000000000000000000001.json");
    let participants = format!(
        "/2010-04-01/Accounts/{ACCOUNT}/Conferences/wt-CA00000000000000000000000000000001/Participants.json"
    );
    let conferences = format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences.json");
    for (fixture, method, path, status) in [
        ("call.json", "POST", calls.as_str(), 201),
        ("call.json", "POST", call.as_str(), 200),
        ("call.json", "GET", call.as_str(), 200),
        ("call_list.json", "GET", calls.as_str(), 200),
        ("participant.json", "POST", participants.as_str(), 201),
        ("participant_list.json", "GET", participants.as_str(), 200),
        ("conference_list.json", "GET", conferences.as_str(), 200),
    ] {
        let body: serde_json::Value =
            serde_json::from_str(&super::twilio_fixture(fixture)).unwrap();
        let violations = api.check_response(method, path, status, &body);
        assert!(
            violations.is_empty(),
            "{fixture} as {method} {status}: {violations:#?}"
        );
    }
    // And a fixture with a field Twilio never sends is caught.
    let mut body: serde_json::Value =
        serde_json::from_str(&super::twilio_fixture("call.json")).unwrap();
    body["colour"] = "red".into();
    body["status"] = "hung-up".into();
    assert_eq!(api.check_response("GET", &call, 200, &body).len(), 2);
}
