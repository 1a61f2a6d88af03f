//! The Twilio client against a recording HTTP server on loopback: exact
//! requests, typed errors, and which failures are retried.

use std::time::Duration;

use base64::Engine;
use warm_transfer_core::config::Secret;
use warm_transfer_core::ids::{CallSid, PhoneNumber, RoomName};
use warm_transfer_core::twilio::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "auth-token-under-test";

fn fixture(name: &str) -> String {
    super::twilio_fixture(name)
}

fn json(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

fn client(server: &MockServer, timeout: Duration) -> TwilioClient {
    TwilioClient::new(TwilioClientConfig {
        api_base_url: server.uri().parse().unwrap(),
        account_sid: ACCOUNT.into(),
        username: ACCOUNT.into(),
        password: Secret::new(TOKEN),
        timeout,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
    })
    .unwrap()
}

fn sid(s: &str) -> CallSid {
    CallSid::parse(s).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn form(request: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

const CALLS: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls.json";
const CALL_2: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls/CA00000000000000000000000000000002.json";

#[tokio::test]
async fn create_call_sends_exact_fields_with_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALLS))
        .respond_with(json(201, "call.json"))
        .mount(&server)
        .await;
    let call = client(&server, Duration::from_secs(2))
        .create_call(&CreateCall {
            status_callback: Some("https://x.example/events/agent-leg".into()),
            status_callback_event: CallStatusEvent::ALL.to_vec(),
            status_callback_method: Some(HttpMethod::Post),
            timeout: Some(30),
            ..CreateCall::new(
                phone("+15550100001"),
                phone("+15005550006"),
                "https://x.example/twiml/dial-customer?callerId=%2B15005550006&to=%2B15550100002",
            )
        })
        .await
        .unwrap();
    assert_eq!(call.sid, "CA00000000000000000000000000000001");
    let request = only_request(&server).await;
    assert_eq!(
        request.headers["authorization"],
        basic(ACCOUNT, TOKEN).as_str()
    );
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        form(&request),
        pairs(&[
            ("To", "+15550100001"),
            ("From", "+15005550006"),
            (
                "Url",
                "https://x.example/twiml/dial-customer?callerId=%2B15005550006&to=%2B15550100002"
            ),
            ("Method", "POST"),
            ("StatusCallback", "https://x.example/events/agent-leg"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", "30"),
        ])
    );
}

#[tokio::test]
async fn call_updates_redirect_hang_up_and_cancel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    let twilio = client(&server, Duration::from_secs(2));
    let call = sid("CA00000000000000000000000000000002");
    twilio
        .redirect_call(
            &call,
            "https://x.example/twiml/conference?role=customer&room=wt-CA1",
        )
        .await
        .unwrap();
    twilio.hang_up_call(&call).await.unwrap();
    twilio.cancel_call(&call).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let forms: Vec<_> = requests.iter().map(form).collect();
    assert_eq!(
        forms,
        vec![
            pairs(&[
                (
                    "Url",
                    "https://x.example/twiml/conference?role=customer&room=wt-CA1"
                ),
                ("Method", "POST")
            ]),
            pairs(&[("Status", "completed")]),
            pairs(&[("Status", "canceled")]),
        ]
    );
}

#[tokio::test]
async fn fetch_and_list_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CALLS))
        .respond_with(json(200, "call_list.json"))
        .mount(&server)
        .await;
    let twilio = client(&server, Duration::from_secs(2));
    twilio
        .fetch_call(&sid("CA00000000000000000000000000000002"))
        .await
        .unwrap();
    let calls = twilio
        .list_calls(&ListCalls {
            parent_call_sid: Some(sid("CA00000000000000000000000000000001")),
            status: Some(CallStatus::InProgress),
            ..ListCalls::default()
        })
        .await
        .unwrap();
    assert_eq!(
        calls[0].parent_call_sid.as_deref(),
        Some("CA00000000000000000000000000000001")
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[1].url.query(),
        Some("ParentCallSid=CA00000000000000000000000000000001&Status=in-progress")
    );
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn participants_and_conferences() {
    let server = MockServer::start().await;
    let base = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Conferences";
    Mock::given(method("POST"))
        .and(path(format!(
            "{base}/wt-CA00000000000000000000000000000001/Participants.json"
        )))
        .respond_with(json(201, "participant.json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "{base}/CF00000000000000000000000000000001/Participants/second-agent-1.json"
        )))
        .respond_with(json(200, "participant.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}.json")))
        .respond_with(json(200, "conference_list.json"))
        .mount(&server)
        .await;
    let twilio = client(&server, Duration::from_secs(2));
    let room = RoomName::parse("wt-CA00000000000000000000000000000001").unwrap();
    let participant = twilio
        .create_participant(
            &ConferenceRef::FriendlyName(room),
            &CreateParticipant {
                label: Some("second-agent-1".into()),
                early_media: Some(true),
                end_conference_on_exit: Some(false),
                timeout: Some(25),
                status_callback: Some(
                    "https://x.example/events/participant?attempt=1&session=CA1".into(),
                ),
                status_callback_event: vec![CallStatusEvent::Ringing, CallStatusEvent::Answered],
                ..CreateParticipant::new(phone("+15005550006"), phone("+15550100003"))
            },
        )
        .await
        .unwrap();
    assert_eq!(participant.call_sid, "CA00000000000000000000000000000003");
    twilio
        .update_participant(
            "CF00000000000000000000000000000001",
            "second-agent-1",
            &UpdateParticipant {
                hold: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let rooms = twilio
        .list_conferences(&ListConferences {
            friendly_name: Some("wt-CA00000000000000000000000000000001".into()),
            status: Some(ConferenceStatus::InProgress),
            page_size: None,
        })
        .await
        .unwrap();
    assert_eq!(rooms[0].sid, "CF00000000000000000000000000000001");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        form(&requests[0]),
        pairs(&[
            ("From", "+15005550006"),
            ("To", "+15550100003"),
            ("Label", "second-agent-1"),
            ("EarlyMedia", "true"),
            ("EndConferenceOnExit", "false"),
            ("Timeout", "25"),
            (
                "StatusCallback",
                "https://x.example/events/participant?attempt=1&session=CA1"
            ),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
        ])
    );
    assert_eq!(form(&requests[1]), pairs(&[("Hold", "true")]));
    assert_eq!(
        requests[2].url.query(),
        Some("FriendlyName=wt-CA00000000000000000000000000000001&Status=in-progress")
    );
}

#[tokio::test]
async fn api_key_credentials_are_used_for_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    let twilio = TwilioClient::new(TwilioClientConfig {
        api_base_url: server.uri().parse().unwrap(),
        account_sid: ACCOUNT.into(),
        username: "SK00000000000000000000000000000009".into(),
        password: Secret::new("key-secret"),
        timeout: Duration::from_secs(2),
        retry: RetryPolicy::default(),
    })
    .unwrap();
    twilio
        .fetch_call(&sid("CA00000000000000000000000000000002"))
        .await
        .unwrap();
    let request = only_request(&server).await;
    assert_eq!(
        request.headers["authorization"],
        basic("SK00000000000000000000000000000009", "key-secret").as_str()
    );
}

#[tokio::test]
async fn throttling_is_retried_once_after_a_delay() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(json(429, "error_too_many_requests.json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    client(&server, Duration::from_secs(2))
        .hang_up_call(&sid("CA00000000000000000000000000000002"))
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALL_2))
        .respond_with(
            json(429, "error_too_many_requests.json").insert_header("retry-after", "3600"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    let result = tokio::time::timeout(
        Duration::from_secs(2),
        client(&server, Duration::from_secs(2))
            .fetch_call(&sid("CA00000000000000000000000000000002")),
    )
    .await;
    assert!(result.expect("an hour's Retry-After is capped").is_ok());
}

#[tokio::test]
async fn server_errors_are_retried_up_to_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(json(200, "call.json"))
        .mount(&server)
        .await;
    let twilio = client(&server, Duration::from_secs(2));
    twilio
        .hang_up_call(&sid("CA00000000000000000000000000000002"))
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let error = client(&server, Duration::from_secs(2))
        .hang_up_call(&sid("CA00000000000000000000000000000002"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        3,
        "bounded"
    );
}

#[tokio::test]
async fn a_redirect_is_sent_once_whatever_twilio_answers() {
    // Twilio may have moved the call before failing or timing out: moving
    // it again would pull the customer out of the room it just entered.
    for response in [
        ResponseTemplate::new(500),
        ResponseTemplate::new(503),
        json(429, "error_too_many_requests.json"),
        json(200, "call.json").set_delay(Duration::from_secs(3)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(CALL_2))
            .respond_with(response)
            .mount(&server)
            .await;
        let error = client(&server, Duration::from_millis(300))
            .redirect_call(
                &sid("CA00000000000000000000000000000002"),
                "https://x.example/t",
            )
            .await
            .unwrap_err();
        assert!(
            error.is_uncertain() || error.status() == Some(429),
            "{error:?}"
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_come_typed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALL_2))
        .respond_with(json(400, "error_not_in_progress.json"))
        .mount(&server)
        .await;
    let error = client(&server, Duration::from_secs(2))
        .redirect_call(
            &sid("CA00000000000000000000000000000002"),
            "https://x.example/t",
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        TwilioError::Api {
            status: 400,
            code: Some(21220),
            message: "Call is not in-progress. Cannot redirect.".into(),
            more_info: Some("https://www.twilio.com/docs/errors/21220".into()),
        }
    );
    assert!(error.to_string().contains("21220"));
    assert!(!error.to_string().contains(TOKEN));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_dial_that_may_have_reached_twilio_is_never_repeated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALLS))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let error = client(&server, Duration::from_secs(2))
        .create_call(&CreateCall::new(
            phone("+15550100001"),
            phone("+15005550006"),
            "https://x.example/t",
        ))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "dialled once only"
    );

    let server = MockServer::start().await;
    let participants = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Conferences/wt-CA00000000000000000000000000000001/Participants.json";
    Mock::given(method("POST"))
        .and(path(participants))
        .respond_with(json(429, "error_too_many_requests.json"))
        .mount(&server)
        .await;
    let room = RoomName::parse("wt-CA00000000000000000000000000000001").unwrap();
    client(&server, Duration::from_secs(2))
        .create_participant(
            &ConferenceRef::FriendlyName(room),
            &CreateParticipant::new(phone("+15005550006"), phone("+15550100003")),
        )
        .await
        .unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_dial_whose_connection_failed_is_retried() {
    // Nothing listens: the request never left, so trying again is safe.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let twilio = TwilioClient::new(TwilioClientConfig {
        api_base_url: format!("http://127.0.0.1:{port}").parse().unwrap(),
        account_sid: ACCOUNT.into(),
        username: ACCOUNT.into(),
        password: Secret::new(TOKEN),
        timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(5),
        },
    })
    .unwrap();
    let error = twilio
        .create_call(&CreateCall::new(
            phone("+15550100001"),
            phone("+15005550006"),
            "https://x.example/t",
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, TwilioError::Connection(_)), "{error:?}");
}

#[tokio::test]
async fn a_hanging_server_times_out_clearly() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALLS))
        .respond_with(json(201, "call.json").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let error = client(&server, Duration::from_millis(300))
        .create_call(&CreateCall::new(
            phone("+15550100001"),
            phone("+15005550006"),
            "https://x.example/t",
        ))
        .await
        .unwrap_err();
    assert_eq!(error, TwilioError::Timeout(Duration::from_millis(300)));
    assert!(error.to_string().contains("did not answer"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "not retried after a possible delivery"
    );
}
