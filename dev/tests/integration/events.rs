//! Every file in `events/` goes through lambda_http's own event parsing into
//! its function's handler, with DynamoDB (dynalite) and a recording Twilio on
//! loopback, so the fixtures `sam local invoke` uses cannot rot. The events
//! must also match what `make-events` generates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::*;
use warm_transfer_core::endpoint::HttpEndpoint;
use warm_transfer_core::endpoint::{Caller, Endpoint};
use warm_transfer_core::handlers::App;
use warm_transfer_core::handlers::webhook_urls::CALLBACK_RETRIES;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, DynamoStore};
use warm_transfer_core::twilio::TwilioClient;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::events::*;
use warm_transfer_dev::store_ext::RequestTransfer;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TABLE: &str = "calls-events";
const ACCOUNT_PATH: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001";

struct Harness {
    _dynalite: Dynalite,
    twilio: MockServer,
    store: Arc<DynamoStore>,
    app: App,
}

fn fixture(name: &str) -> String {
    super::twilio_fixture(name)
}

fn sid(s: &str) -> CallSid {
    CallSid::parse(s).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

/// The agent the front-end events' claims name.
fn alice() -> Actor {
    Actor {
        id: EVENTS_AGENT_EMAIL.to_owned(),
        numbers: vec![phone(AGENT)],
        supervisor: false,
    }
}

/// The functions' configuration for these events: their test tokens, the
/// recording Twilio, and a DynamoDB endpoint.
fn config(twilio: &MockServer, dynamodb_endpoint: String) -> Config {
    let env: HashMap<String, String> = [
        (vars::TWILIO_ACCOUNT_SID, EVENTS_ACCOUNT_SID.to_owned()),
        (vars::TWILIO_AUTH_TOKEN, EVENTS_AUTH_TOKEN.to_owned()),
        (vars::TWILIO_API_BASE_URL, twilio.uri()),
        (vars::TABLE_NAME, TABLE.to_owned()),
        (vars::DYNAMODB_ENDPOINT, dynamodb_endpoint),
        (vars::DEFAULT_CALLER_ID, CALLER_ID.to_owned()),
        (
            vars::CORS_ALLOW_ORIGIN,
            "https://console.example.com".to_owned(),
        ),
        (
            vars::HOLD_MUSIC_URL,
            format!("https://{HOST}/twiml/hold-music"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Config::from_map(&env).unwrap()
}

async fn harness() -> Harness {
    let dynalite = Dynalite::start().await.unwrap();
    dynalite.create_table(TABLE).await.unwrap();
    let twilio = MockServer::start().await;
    let json = |status, name| {
        ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
    };
    Mock::given(method("POST"))
        .and(path(format!("{ACCOUNT_PATH}/Calls.json")))
        .respond_with(json(201, "call.json"))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Calls/CA[0-9a-f]{32}\.json$"))
        .respond_with(json(200, "call.json"))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Conferences/[^/]+/Participants\.json$"))
        .respond_with(json(201, "participant.json"))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"/Conferences/CF[0-9a-f]{32}/Participants/[^/]+\.json$",
        ))
        .respond_with(json(200, "participant.json"))
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT_PATH}/Conferences.json")))
        .respond_with(json(200, "conference_list.json"))
        .mount(&twilio)
        .await;
    let config = config(&twilio, dynalite.endpoint());
    let store = Arc::new(DynamoStore::new(
        dynalite.client(),
        TABLE,
        Duration::from_secs(3600),
    ));
    let twilio_client = TwilioClient::from_config(&config).unwrap();
    let app = App::new(config, store.clone(), twilio_client);
    Harness {
        _dynalite: dynalite,
        twilio,
        store,
        app,
    }
}

fn leg(call: &str, status: LegStatus, seq: u32) -> LegObservation {
    LegObservation {
        call_sid: sid(call),
        status,
        sequence: Some(seq),
        at: OffsetDateTime::now_utc(),
    }
}

impl Harness {
    async fn connected(&self) {
        let session = CallSession::start(
            sid(SESSION),
            phone(AGENT),
            phone(CUSTOMER),
            phone(CALLER_ID),
            OffsetDateTime::now_utc(),
        );
        self.store.create_session(&session).await.unwrap();
        for observation in [
            Observation::AgentLeg(leg(SESSION, LegStatus::InProgress, 2)),
            Observation::CustomerLeg(leg(CUSTOMER_LEG, LegStatus::InProgress, 2)),
        ] {
            self.store
                .observe(&sid(SESSION), observation)
                .await
                .unwrap();
        }
    }

    async fn transferring(&self, target: Option<LegStatus>) {
        self.connected().await;
        self.record_transfer().await;
        if let Some(status) = target {
            let observation = Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET_LEG, status, 1),
            };
            self.store
                .observe(&sid(SESSION), observation)
                .await
                .unwrap();
        }
    }

    async fn record_transfer(&self) {
        self.store
            .request_transfer(
                &sid(SESSION),
                phone(TARGET),
                TransferKind::Warm,
                None,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
    }

    async fn session(&self) -> CallSession {
        self.store
            .get_session(&sid(SESSION))
            .await
            .unwrap()
            .unwrap()
    }

    async fn invoke(&self, endpoint: Endpoint) -> Response<Body> {
        self.invoke_text(endpoint, &recorded(endpoint)).await
    }

    async fn invoke_text(&self, endpoint: Endpoint, text: &str) -> Response<Body> {
        let request = lambda_http::request::from_str(text).expect("API Gateway event");
        self.app
            .handle(endpoint.http().expect("an HTTP endpoint"), request)
            .await
    }

    async fn twilio_requests(&self) -> Vec<Request> {
        self.twilio.received_requests().await.unwrap()
    }
}

fn recorded(endpoint: Endpoint) -> String {
    let file = warm_transfer_dev::paths::workspace().join(file_name(endpoint));
    std::fs::read_to_string(file).unwrap()
}

fn body(response: &Response<Body>) -> String {
    String::from_utf8(response.body().as_ref().to_vec()).unwrap()
}

fn json(response: &Response<Body>) -> Value {
    serde_json::from_str(&body(response)).unwrap()
}

fn golden(name: &str) -> String {
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(warm_transfer_dev::paths::reference().join("golden/twiml.json"))
            .unwrap(),
    )
    .unwrap();
    file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["xml"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A golden document with the product's connection overrides on its status
/// callback URLs (twilio-python renders the fragment like any other text).
fn golden_with_retries(name: &str) -> String {
    let mut xml = golden(name);
    for events in ["/events/conference", "/events/customer-leg"] {
        xml = xml.replace(
            &format!("{events}\""),
            &format!("{events}#{}\"", CALLBACK_RETRIES.replace('&', "&amp;")),
        );
    }
    xml
}

/// The room's TwiML as the product writes it: the golden document, with the
/// hold music fetched by GET (cacheable) and, for the customer, the
/// fallback that runs when the room ends (the golden `redirect` case).
fn golden_room(name: &str) -> String {
    let xml = golden_with_retries(name)
        .replace(
            "wt-CA0123456789abcdef0123456789abcdef",
            &format!("wt-{SESSION}"),
        )
        .replace(r#"waitMethod="POST""#, r#"waitMethod="GET""#);
    if name != "conference_customer" {
        return xml;
    }
    let redirect = golden("redirect");
    let redirect =
        &redirect[redirect.find("<Redirect").unwrap()..redirect.find("</Response>").unwrap()];
    let fallback = redirect.replace(
        &redirect[redirect.find('>').unwrap() + 1..redirect.find("</").unwrap()],
        &format!("https://{HOST}/twiml/fallback?role=customer"),
    );
    xml.replace(
        "</Dial></Response>",
        &format!("</Dial>{fallback}</Response>"),
    )
}

fn form(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn assert_twiml(response: &Response<Body>) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/xml");
}

#[test]
fn event_files_are_what_make_events_writes() {
    for endpoint in Endpoint::ALL {
        let on_disk: Value = serde_json::from_str(&recorded(endpoint)).unwrap();
        assert_eq!(
            on_disk,
            event(endpoint),
            "{}: run cargo run -p warm-transfer-dev --bin make-events",
            file_name(endpoint)
        );
    }
}

#[tokio::test]
async fn start_call() {
    let h = harness().await;
    let response = h.invoke(Endpoint::StartCall).await;
    assert_eq!(response.status(), 201, "{}", body(&response));
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    let call = json(&response);
    assert_eq!(call["callSid"], SESSION);
    assert_eq!(call["state"], "agent-ringing");
    let sent = form(&h.twilio_requests().await[0]);
    assert_eq!(sent["To"], AGENT);
    assert_eq!(sent["From"], CALLER_ID);
    assert_eq!(
        sent["Url"],
        format!("https://{HOST}/twiml/dial-customer?callerId=%2B15005550006&to=%2B14155550100")
    );
    assert_eq!(
        sent["StatusCallback"],
        format!("https://{HOST}/events/agent-leg#{CALLBACK_RETRIES}")
    );
    assert_eq!(
        sent["FallbackUrl"],
        format!("https://{HOST}/twiml/fallback?role=first-agent")
    );
    assert_eq!(h.session().await.customer_number.as_str(), CUSTOMER);
}

#[tokio::test]
async fn get_call() {
    let h = harness().await;
    h.connected().await;
    h.store
        .append_event(
            &sid(SESSION),
            &HistoryEvent::api(&alice(), OffsetDateTime::now_utc(), "call started", None),
        )
        .await
        .unwrap();
    let response = h.invoke(Endpoint::GetCall).await;
    assert_eq!(response.status(), 200);
    let call = json(&response);
    assert_eq!(call["state"], "connected");
    assert_eq!(call["customerLeg"]["status"], "in-progress");
    assert_eq!(call["events"][0]["kind"], "call started");
    assert_eq!(call["events"][0]["actor"], EVENTS_AGENT_EMAIL);
}

#[tokio::test]
async fn start_transfer() {
    let h = harness().await;
    h.connected().await;
    let response = h.invoke(Endpoint::StartTransfer).await;
    assert_eq!(response.status(), 202, "{}", body(&response));
    assert_eq!(json(&response)["transfer"]["state"], "customer-in-room");
    let requests = h.twilio_requests().await;
    assert_eq!(requests.len(), 2, "redirect and participant, nothing else");
    let redirect = requests
        .iter()
        .find(|r| {
            r.url
                .path()
                .ends_with(&format!("/Calls/{CUSTOMER_LEG}.json"))
        })
        .unwrap();
    assert_eq!(
        form(redirect)["Url"],
        format!("https://{HOST}/twiml/conference?role=customer&room=wt-{SESSION}")
    );
    let participant = requests
        .iter()
        .find(|r| r.url.path().ends_with("/Participants.json"))
        .unwrap();
    assert!(
        participant
            .url
            .path()
            .contains(&format!("/Conferences/wt-{SESSION}/"))
    );
    let fields = form(participant);
    assert_eq!(fields["To"], TARGET);
    assert_eq!(fields["EarlyMedia"], "true");
    assert_eq!(fields["Label"], "second-agent-1");
    assert_eq!(
        fields["StatusCallback"],
        format!("https://{HOST}/events/participant?attempt=1&session={SESSION}#{CALLBACK_RETRIES}")
    );
    // Agent two may create the room: the room's callback comes with it.
    assert_eq!(
        fields["ConferenceStatusCallback"],
        format!("https://{HOST}/events/conference#{CALLBACK_RETRIES}")
    );
    assert_eq!(
        fields["WaitUrl"],
        format!("https://{HOST}/twiml/hold-music")
    );
    assert_eq!(fields["WaitMethod"], "GET");
    // The customer's move is recorded without waiting for a conference callback.
    let session = h.session().await;
    assert!(session.customer_in_room());
    assert_eq!(
        session.room_sid.as_deref(),
        Some("CF00000000000000000000000000000001")
    );
    // The same request again (same Idempotency-Key) starts nothing new.
    let again = h.invoke(Endpoint::StartTransfer).await;
    assert_eq!(again.status(), 200);
    assert_eq!(h.twilio_requests().await.len(), 2);
}

/// Twilio stops answering mid-transfer: every request waits out the
/// client's timeout, and the look-ups after an uncertain move are retried.
/// The invocation still answers before its Lambda timeout, with a 5xx.
#[tokio::test]
async fn a_transfer_against_a_twilio_that_never_answers_stops_before_the_lambda_timeout() {
    let h = harness().await;
    h.connected().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
        .with_priority(1)
        .mount(&h.twilio)
        .await;
    let started = std::time::Instant::now();
    let response = h.invoke(Endpoint::StartTransfer).await;
    let took = started.elapsed();
    assert!(response.status().is_server_error(), "{}", body(&response));
    assert!(
        took < Endpoint::StartTransfer.timeout(),
        "answered after {took:?}, past the Lambda timeout"
    );
    let error = json(&response)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!error.is_empty(), "a JSON error body");
    assert!(
        json(&response)["requestId"].is_string(),
        "{}",
        body(&response)
    );
    assert!(
        response
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "the console can read it"
    );
}

#[tokio::test]
async fn cancel_transfer() {
    let h = harness().await;
    h.transferring(Some(LegStatus::Ringing)).await;
    let response = h.invoke(Endpoint::CancelTransfer).await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(json(&response)["transfer"]["state"], "cancelled");
    let ended: Vec<_> = h
        .twilio_requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with(&format!("/Calls/{TARGET_LEG}.json")))
        .collect();
    assert_eq!(form(&ended[0])["Status"], "canceled");
}

#[tokio::test]
async fn leave_call() {
    let h = harness().await;
    h.transferring(Some(LegStatus::InProgress)).await;
    let response = h.invoke(Endpoint::LeaveCall).await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(json(&response)["transfer"]["state"], "first-agent-left");
    let requests = h.twilio_requests().await;
    // Agent two first becomes the room's anchor, then agent one is hung up.
    let anchor = requests
        .iter()
        .position(|r| r.url.path().ends_with("/Participants/second-agent-1.json"))
        .expect("agent two updated");
    assert_eq!(form(&requests[anchor])["EndConferenceOnExit"], "true");
    assert_eq!(anchor, requests.len() - 2);
    let hang_up = requests.last().unwrap();
    assert!(
        hang_up
            .url
            .path()
            .ends_with(&format!("/Calls/{SESSION}.json"))
    );
    assert_eq!(form(hang_up)["Status"], "completed");
    assert!(h.session().await.transfer.unwrap().target_anchors_room);
}

#[tokio::test]
async fn hold_customer_holds_the_customer_participant_with_the_products_hold_audio() {
    let h = harness().await;
    h.transferring(Some(LegStatus::InProgress)).await;
    // Holding needs the customer in the room with agent one.
    let moved = |s: &mut CallSession| s.customer_redirected(1);
    h.store.update(&sid(SESSION), &moved).await.unwrap();
    let response = h.invoke(Endpoint::HoldCustomer).await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    let call = json(&response);
    assert_eq!(call["customerHeld"], true);
    assert_eq!(call["transfer"]["state"], "consulting");
    let requests = h.twilio_requests().await;
    let hold = requests.last().unwrap();
    assert!(
        hold.url.path().ends_with("/Participants/customer.json"),
        "{}",
        hold.url
    );
    let sent = form(hold);
    assert_eq!(sent["Hold"], "true");
    assert_eq!(
        sent["HoldUrl"],
        format!("https://{HOST}/twiml/hold?for=hold")
    );
    assert_eq!(sent["HoldMethod"], "POST");
    assert!(h.session().await.customer_held);
}

#[tokio::test]
async fn hold_twiml_loops_the_hold_music() {
    let h = harness().await;
    let response = h.invoke(Endpoint::HoldTwiml).await;
    assert_twiml(&response);
    // An audio file given straight as HoldUrl would play once; this loops.
    assert!(
        body(&response).ends_with(&format!(
            "<Response><Play loop=\"0\">https://{HOST}/twiml/hold-music</Play></Response>"
        )),
        "{}",
        body(&response)
    );
    assert!(h.twilio_requests().await.is_empty(), "stateless");
}

#[tokio::test]
async fn leave_call_is_refused_when_agent_two_cannot_anchor_the_room() {
    let h = harness().await;
    h.transferring(Some(LegStatus::InProgress)).await;
    h.twilio.reset().await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT_PATH}/Conferences.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("conference_list.json"), "application/json"),
        )
        .mount(&h.twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#,
            "application/json",
        ))
        .mount(&h.twilio)
        .await;
    let response = h.invoke(Endpoint::LeaveCall).await;
    assert_eq!(response.status(), 409, "{}", body(&response));
    assert!(
        !h.twilio_requests()
            .await
            .iter()
            .any(|r| r.url.path().ends_with(&format!("/Calls/{SESSION}.json"))),
        "agent one was not hung up: the customer would be left with nobody"
    );
}

#[tokio::test]
async fn leave_call_too_early_is_a_conflict_naming_the_state() {
    let h = harness().await;
    h.transferring(Some(LegStatus::Ringing)).await;
    let response = h.invoke(Endpoint::LeaveCall).await;
    assert_eq!(response.status(), 409);
    assert_eq!(json(&response)["state"], "target-ringing");
    assert!(h.twilio_requests().await.is_empty(), "nobody was hung up");
}

#[tokio::test]
async fn dial_customer_matches_twilios_library() {
    let h = harness().await;
    let response = h.invoke(Endpoint::DialCustomer).await;
    assert_twiml(&response);
    assert_eq!(body(&response), golden_with_retries("dial_customer"));
}

#[tokio::test]
async fn agent_dial_ended_joins_the_room_only_with_a_transfer() {
    let h = harness().await;
    // No session: the plain end of a call.
    assert_eq!(
        body(&h.invoke(Endpoint::AgentDialEnded).await),
        golden("hangup")
    );
    h.connected().await;
    assert_eq!(
        body(&h.invoke(Endpoint::AgentDialEnded).await),
        golden("hangup")
    );
    h.record_transfer().await;
    let response = h.invoke(Endpoint::AgentDialEnded).await;
    assert_twiml(&response);
    assert_eq!(body(&response), golden_room("conference_first_agent"));
}

#[tokio::test]
async fn conference_twiml_matches_twilios_library() {
    let h = harness().await;
    let response = h.invoke(Endpoint::ConferenceTwiml).await;
    assert_twiml(&response);
    assert_eq!(body(&response), golden_room("conference_customer"));
}

#[tokio::test]
async fn fallback_sends_the_customer_on_and_apologises_to_anyone_else() {
    let h = harness().await;
    let response = h.invoke(Endpoint::FallbackTwiml).await;
    assert_twiml(&response);
    let xml = body(&response);
    assert!(xml.contains("<Say>Sorry, no agent is available"), "{xml}");
    assert!(
        xml.ends_with("<Hangup /></Response>") || xml.ends_with("<Hangup/></Response>"),
        "{xml}"
    );
    assert!(h.twilio_requests().await.is_empty(), "stateless");
}

#[tokio::test]
async fn status_callback_advances_the_transfer() {
    let h = harness().await;
    h.transferring(Some(LegStatus::Ringing)).await;
    let response = h.invoke(Endpoint::StatusCallback).await;
    assert_twiml(&response);
    assert_eq!(body(&response), golden("empty"));
    assert_eq!(
        h.session().await.transfer_state(),
        Some(TransferState::TargetAnswered)
    );
    // Delivered twice: nothing changes.
    let version = h.session().await.version;
    h.invoke(Endpoint::StatusCallback).await;
    assert_eq!(h.session().await.version, version);
}

/// The invocation that wrote a callback timed out before its follow-ups;
/// Twilio's retry finds the write applied and still carries them out.
#[tokio::test]
async fn a_retried_callback_whose_write_applied_still_carries_out_its_follow_ups() {
    let h = harness().await;
    h.connected().await;
    h.record_transfer().await;
    h.store
        .update(&sid(SESSION), &|s: &mut CallSession| s.cancel_transfer())
        .await
        .unwrap();
    // The late answer of the called-off second agent, written by the first
    // attempt, whose invocation then timed out.
    let late = Observation::TargetLeg {
        attempt: 1,
        observation: leg(TARGET_LEG, LegStatus::InProgress, 2),
    };
    let (observed, _) = h.store.observe(&sid(SESSION), late).await.unwrap();
    assert_eq!(observed, Observed::Applied);
    assert_eq!(
        h.session().await.follow_ups(),
        vec![FollowUp::EndLeg(sid(TARGET_LEG))]
    );
    let version = h.session().await.version;
    let response = h.invoke(Endpoint::StatusCallback).await;
    assert_twiml(&response);
    assert_eq!(h.session().await.version, version, "nothing new to write");
    let hang_ups: Vec<_> = h
        .twilio_requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with(&format!("/Calls/{TARGET_LEG}.json")))
        .filter(|r| form(r).get("Status").map(String::as_str) == Some("completed"))
        .collect();
    assert_eq!(hang_ups.len(), 1, "the called-off agent is hung up");
}

#[tokio::test]
async fn console_page() {
    let h = harness().await;
    let response = h.invoke(Endpoint::Console).await;
    assert_eq!(response.status(), 200);
    assert!(body(&response).contains("agent console"));
}

#[tokio::test]
async fn forged_or_unsigned_webhooks_are_refused_with_403() {
    let h = harness().await;
    // Every endpoint the table says Twilio calls checks the signature.
    let twilio_calls = Endpoint::ALL
        .into_iter()
        .filter(|e| e.caller() == Caller::Twilio);
    for endpoint in twilio_calls {
        let mut event: Value = serde_json::from_str(&recorded(endpoint)).unwrap();
        event["headers"]["x-twilio-signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        assert_eq!(
            h.invoke_text(endpoint, &event.to_string()).await.status(),
            403,
            "{endpoint:?}"
        );
        event["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-twilio-signature");
        assert_eq!(
            h.invoke_text(endpoint, &event.to_string()).await.status(),
            403,
            "{endpoint:?}"
        );
        // A query parameter changed after signing (e.g. another room).
        let mut event: Value = serde_json::from_str(&recorded(endpoint)).unwrap();
        event["rawQueryString"] = "role=customer&room=wt-CA99999999999999999999999999999999".into();
        assert_eq!(
            h.invoke_text(endpoint, &event.to_string()).await.status(),
            403,
            "{endpoint:?}"
        );
    }
    assert!(h.twilio_requests().await.is_empty());
}

/// Alice's call, asked about by bob: 403 everywhere, nothing recorded.
async fn forbidden_to_another_agent(h: &Harness) {
    let console_calls = Endpoint::ALL
        .into_iter()
        .filter(|e| e.caller() == Caller::FrontEnd);
    h.connected().await;
    for endpoint in console_calls {
        let mut event: Value = serde_json::from_str(&recorded(endpoint)).unwrap();
        let mut bob = event["requestContext"]["authorizer"].take();
        bob["jwt"]["claims"]["email"] = "bob@example.com".into();
        bob["jwt"]["claims"]["custom:agent_numbers"] = TARGET.into();
        event["requestContext"]["authorizer"] = bob;
        // Alice's token beside claims that are not its own: nobody.
        let response = h.invoke_text(endpoint, &event.to_string()).await;
        assert_eq!(
            response.status(),
            401,
            "{endpoint:?}: claims not the token's"
        );
        // Bob's claims alone (no token on the request), each read as one value.
        event["headers"]
            .as_object_mut()
            .unwrap()
            .remove("authorization");
        let response = h.invoke_text(endpoint, &event.to_string()).await;
        if matches!(endpoint, Endpoint::GetDirectory | Endpoint::SetPresence) {
            // The directory and presence are everyone's own, not a call's.
            assert_eq!(response.status(), 200, "{endpoint:?}: bob's own");
            continue;
        }
        assert_eq!(response.status(), 403, "{endpoint:?}: bob on alice's call");
        assert!(json(&response)["reason"].is_string(), "{endpoint:?}");
    }
    assert!(
        h.store.list_events(&sid(SESSION)).await.unwrap().is_empty(),
        "refused requests leave no history"
    );
}

#[tokio::test]
async fn front_end_refuses_bad_tokens_and_bad_input_clearly() {
    let h = harness().await;
    // Every endpoint the table says the console calls needs the claims API
    // Gateway's JWT authorizer verified: without them (a route left without
    // the authorizer) or naming nobody, 401; another agent's, 403.
    let console_calls = Endpoint::ALL
        .into_iter()
        .filter(|e| e.caller() == Caller::FrontEnd);
    for endpoint in console_calls {
        let mut event: Value = serde_json::from_str(&recorded(endpoint)).unwrap();
        event["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
        let response = h.invoke_text(endpoint, &event.to_string()).await;
        assert_eq!(response.status(), 401, "{endpoint:?}");
        assert!(json(&response)["error"].is_string());
        assert_eq!(response.headers()["www-authenticate"], "Bearer");

        event["requestContext"]["authorizer"] = json!({ "jwt": { "claims": {} } });
        let response = h.invoke_text(endpoint, &event.to_string()).await;
        assert_eq!(response.status(), 401, "{endpoint:?} claims naming nobody");
    }
    assert!(h.twilio_requests().await.is_empty());

    let mut event: Value = serde_json::from_str(&recorded(Endpoint::StartTransfer)).unwrap();
    event["body"] = r#"{"to":5}"#.into();
    let response = h
        .invoke_text(Endpoint::StartTransfer, &event.to_string())
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(&response)["field"],
        "to",
        "a wrongly typed field is named"
    );
    event["body"] = "{}".into();
    let response = h
        .invoke_text(Endpoint::StartTransfer, &event.to_string())
        .await;
    assert_eq!(json(&response)["field"], "to", "a missing field is named");

    let mut event: Value = serde_json::from_str(&recorded(Endpoint::StartCall)).unwrap();
    event["body"] = r#"{"agentNumber":"555-0100","customerNumber":"+14155550100"}"#.into();
    let response = h.invoke_text(Endpoint::StartCall, &event.to_string()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(&response)["field"], "agentNumber");

    event["body"] = r#"{"agentNumber":"+15550100001"}"#.into();
    let response = h.invoke_text(Endpoint::StartCall, &event.to_string()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(&response)["field"], "customerNumber");

    event["body"] = "not json".into();
    assert_eq!(
        h.invoke_text(Endpoint::StartCall, &event.to_string())
            .await
            .status(),
        400
    );

    let mut event: Value = serde_json::from_str(&recorded(Endpoint::GetCall)).unwrap();
    event["pathParameters"]["callSid"] = "CA123".into();
    let response = h.invoke_text(Endpoint::GetCall, &event.to_string()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(&response)["field"], "callSid");

    let response = h.invoke(Endpoint::GetCall).await;
    assert_eq!(response.status(), 404, "unknown call");
    let response = h.invoke(Endpoint::StartTransfer).await;
    assert_eq!(response.status(), 404);
    assert!(
        h.twilio_requests().await.is_empty(),
        "nothing reached Twilio"
    );
    forbidden_to_another_agent(&h).await;
}

/// The app with a DynamoDB endpoint where nothing listens.
async fn app_with_store_down(twilio: &MockServer) -> App {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(twilio, format!("http://127.0.0.1:{port}"));
    let client = DynamoStore::client_from_config(&config).await;
    let store = Arc::new(DynamoStore::new(client, TABLE, Duration::from_secs(3600)));
    let twilio_client = TwilioClient::from_config(&config).unwrap();
    App::new(config, store, twilio_client)
}

#[tokio::test]
async fn with_the_store_down_the_api_answers_503_and_dials_nothing() {
    let h = harness().await;
    let app = app_with_store_down(&h.twilio).await;
    let request = lambda_http::request::from_str(&recorded(Endpoint::StartCall)).unwrap();
    let response = app.handle(HttpEndpoint::StartCall, request).await;
    assert_eq!(response.status(), 503, "{}", body(&response));
    assert!(
        json(&response)["error"]
            .as_str()
            .unwrap()
            .contains("try again")
    );
    // The agent's allowance (toll-fraud guard) is taken from the store before
    // anything is dialed: with the store down, nothing is. (A store that
    // fails after the call was placed calls it off: `start_call`.)
    assert!(h.twilio_requests().await.is_empty(), "nothing dialed");
    for endpoint in [
        Endpoint::GetCall,
        Endpoint::StartTransfer,
        Endpoint::CancelTransfer,
        Endpoint::LeaveCall,
    ] {
        let request = lambda_http::request::from_str(&recorded(endpoint)).unwrap();
        let response = app
            .handle(endpoint.http().expect("an HTTP endpoint"), request)
            .await;
        assert_eq!(response.status(), 503, "{endpoint:?}: {}", body(&response));
    }
    assert!(
        h.twilio_requests().await.is_empty(),
        "no transfer without a record of it"
    );
}

#[tokio::test]
async fn with_the_store_down_webhooks_still_answer_valid_twiml() {
    let h = harness().await;
    let app = app_with_store_down(&h.twilio).await;
    let twiml = |endpoint: Endpoint| {
        let app = app.clone();
        async move {
            let response = app
                .handle(
                    endpoint.http().expect("an HTTP endpoint"),
                    lambda_http::request::from_str(&recorded(endpoint)).unwrap(),
                )
                .await;
            assert_twiml(&response);
            body(&response)
        }
    };
    assert_eq!(
        twiml(Endpoint::DialCustomer).await,
        golden_with_retries("dial_customer")
    );
    // Unsure whether the customer was just moved, the first agent follows into the room.
    assert!(
        twiml(Endpoint::AgentDialEnded)
            .await
            .contains(r#"participantLabel="first-agent""#)
    );
    assert!(
        twiml(Endpoint::FallbackTwiml)
            .await
            .contains("no agent is available")
    );
    // A callback that could not be recorded is answered so that Twilio
    // sends it again (the URL's overrides ask for retries on a 5xx).
    let response = app
        .handle(
            HttpEndpoint::StatusCallback,
            lambda_http::request::from_str(&recorded(Endpoint::StatusCallback)).unwrap(),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(body(&response), golden("empty"));
}

#[tokio::test]
async fn twilio_refusing_a_call_is_a_502_and_stores_nothing() {
    let h = harness().await;
    h.twilio.reset().await;
    Mock::given(method("POST"))
        .and(path(format!("{ACCOUNT_PATH}/Calls.json")))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"code":21211,"message":"The 'To' number +15550100001 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
            "application/json",
        ))
        .mount(&h.twilio)
        .await;
    let response = h.invoke(Endpoint::StartCall).await;
    assert_eq!(response.status(), 502);
    // Twilio's answer (its code, the number) goes to the log; the caller
    // gets what happened and the request id to quote.
    let answer = json(&response);
    assert!(!answer.to_string().contains("21211"), "{answer}");
    assert!(answer["requestId"].is_string(), "{answer}");
    assert!(h.store.get_session(&sid(SESSION)).await.unwrap().is_none());
}

#[tokio::test]
async fn twilio_failing_to_hang_up_the_first_agent_is_a_502_and_nothing_changes() {
    let h = harness().await;
    h.transferring(Some(LegStatus::InProgress)).await;
    h.twilio.reset().await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT_PATH}/Conferences.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("conference_list.json"), "application/json"),
        )
        .mount(&h.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Participants/[^/]+\.json$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("participant.json"), "application/json"),
        )
        .mount(&h.twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&h.twilio)
        .await;
    let response = h.invoke(Endpoint::LeaveCall).await;
    assert_eq!(response.status(), 502, "{}", body(&response));
    assert_eq!(
        h.session().await.transfer_state(),
        Some(TransferState::TargetAnswered),
        "the agent is still there"
    );
}
