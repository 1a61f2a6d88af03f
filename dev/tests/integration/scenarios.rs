//! End-to-end warm-transfer scenarios: the development server (every real
//! handler), dynalite and the Twilio simulator, driven through the
//! front-end API. Throughout, the customer is never alone in a room nor
//! disconnected except by their own hang-up.

use std::time::Duration;

use serde_json::{Value, json};
use warm_transfer_core::domain::LegStatus;
use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_core::signature::sign_form;
use warm_transfer_core::usecases::reconcile;
use warm_transfer_dev::counting::serving;
use warm_transfer_dev::idp::LocalAgent;
use warm_transfer_dev::local::{LOCAL_AUTH_TOKEN, LocalOptions, LocalStack};
use warm_transfer_dev::sim::{
    CallbackFault, CallbackInfo, CallbackKind, Connection, EndReason, Fault, Operation, Script,
    Simulator, Situation,
};
use warm_transfer_dev::{log_capture, privacy};

pub(crate) const AGENT: &str = "+15550100001";
pub(crate) const CUSTOMER: &str = "+15550100002";
pub(crate) const TARGET: &str = "+15550100003";
pub(crate) const SOON: Duration = Duration::from_secs(15);
/// How long the customer may be alone while moving into the room.
pub(crate) const GRACE: Duration = Duration::from_millis(1500);

pub(crate) struct Scenario {
    pub(crate) stack: LocalStack,
    pub(crate) http: reqwest::Client,
    /// The first agent, a supervisor: may follow the call after the handover.
    pub(crate) token: String,
}

pub(crate) async fn scenario() -> Scenario {
    scenario_ringing_for(20).await
}

/// A scenario whose second agents ring for up to `ring_timeout_secs`
/// (Twilio's time; the simulator runs ten times faster).
pub(crate) async fn scenario_ringing_for(ring_timeout_secs: u32) -> Scenario {
    scenario_with(LocalOptions {
        ring_timeout_secs,
        ..LocalOptions::default()
    })
    .await
}

/// A scenario on a stack with these options, ten times faster than real time.
/// Nobody follows these calls by push (push.rs does): without the local
/// stream, its publisher adds no load to these timing-sensitive runs.
pub(crate) async fn scenario_with(options: LocalOptions) -> Scenario {
    // Every scenario reads its stack's log lines for full numbers at the end.
    log_capture::install();
    let stack = LocalStack::start(LocalOptions {
        port: 0,
        time_scale: 0.1,
        push: false,
        ..options
    })
    .await
    .unwrap();
    let sim = &stack.sim;
    for number in [AGENT, CUSTOMER, TARGET] {
        sim.script(number, Script::answer_after(Duration::from_millis(500)));
    }
    sim.watch(CUSTOMER);
    // AGENT's phone, and the first agents' of the many-calls scenarios.
    let many: Vec<String> = (0..10).map(|n| format!("+15550107{n:03}")).collect();
    let numbers: Vec<&str> = std::iter::once(AGENT)
        .chain(many.iter().map(String::as_str))
        .collect();
    let token = stack.token_for(&LocalAgent::new("lead@example.com", &numbers, true));
    Scenario {
        stack,
        http: reqwest::Client::new(),
        token,
    }
}

impl Scenario {
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_as(&self.token, method, path, body).await
    }

    /// A request signed in as the agent holding `token`.
    pub(crate) async fn api_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.stack.base_url()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn start_call(&self) -> String {
        let (status, call) = self
            .api(
                reqwest::Method::POST,
                "/calls",
                Some(json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER })),
            )
            .await;
        assert_eq!(status, 201, "{call}");
        call["callSid"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn call(&self, sid: &str) -> Value {
        self.api(reqwest::Method::GET, &format!("/calls/{sid}"), None)
            .await
            .1
    }

    pub(crate) async fn transfer(&self, sid: &str, to: &str) -> (u16, Value) {
        self.api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/transfer"),
            Some(json!({ "to": to })),
        )
        .await
    }

    pub(crate) async fn wait_call(
        &self,
        sid: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + SOON;
        loop {
            let call = self.call(sid).await;
            if check(&call) {
                return call;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {call:#}\n{}",
                self.stack.sim.timeline_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn connected(&self) -> String {
        let sid = self.start_call().await;
        self.wait_call(&sid, "customer connected", |c| c["state"] == "connected")
            .await;
        assert!(
            self.stack
                .sim
                .connections()
                .contains(&Connection::Bridge(AGENT.into(), CUSTOMER.into()))
        );
        sid
    }

    /// Waits until this number's latest call has ended, whatever the reason.
    pub(crate) async fn wait_call_over(&self, number: &str) {
        let sim = &self.stack.sim;
        assert!(
            sim.wait_for(SOON, |sim| sim
                .status_of(number)
                .is_some_and(|st| st.is_final()))
                .await,
            "{number} still on a call\n{}",
            sim.timeline_text()
        );
    }

    pub(crate) async fn transfer_state(&self, sid: &str, state: &str) -> Value {
        self.wait_call(sid, state, |c| c["transfer"]["state"] == state)
            .await
    }

    pub(crate) fn room_members(&self, sid: &str) -> Vec<String> {
        let room = format!("wt-{sid}");
        self.stack
            .sim
            .connections()
            .into_iter()
            .find_map(|c| match c {
                Connection::Room {
                    name, mut members, ..
                } if name == room => {
                    members.sort();
                    Some(members)
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    pub(crate) async fn wait_room(&self, sid: &str, expected: &[&str]) {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        let ok = self
            .stack
            .sim
            .wait_for(SOON, |_| self.room_members(sid) == expected)
            .await;
        assert!(
            ok,
            "room should hold {expected:?}, has {:?}\n{}",
            self.room_members(sid),
            self.stack.sim.timeline_text()
        );
    }

    /// Agent two answered and everybody is in the room, the customer
    /// having been redirected exactly once whatever Twilio answered.
    pub(crate) async fn all_three_in_the_room_after_one_redirect(&self, sid: &str) {
        self.transfer_state(sid, "target-answered").await;
        self.wait_room(sid, &[AGENT, CUSTOMER, TARGET]).await;
        assert_eq!(self.stack.sim.redirects_of(CUSTOMER), 1);
    }

    /// The invariant, and that nothing the product sent broke Twilio's
    /// contract: the customer is never alone (no agent present or ringing)
    /// beyond the grace, never cut off except by their own hang-up or a
    /// spoken goodbye after the last agent left, and never hears Twilio's
    /// default music or an application error.
    pub(crate) fn assert_customer_never_stranded(&self) {
        self.assert_never_stranded(CUSTOMER);
    }

    /// [`Self::assert_customer_never_stranded`] for the customer on `number`
    /// (a customer who called in, say).
    pub(crate) fn assert_never_stranded(&self, number: &str) {
        let sim = &self.stack.sim;
        assert_eq!(
            sim.problems(number, GRACE),
            Vec::<String>::new(),
            "{}",
            sim.timeline_text()
        );
        assert_eq!(sim.contract_violations(), Vec::<String>::new());
        assert_eq!(
            sim.application_errors(),
            Vec::<String>::new(),
            "{}",
            sim.timeline_text()
        );
        self.assert_no_full_number_spread();
        self.assert_within_permissions();
    }

    /// No log line and no free text stored (history, reasons) carries a
    /// full number of the scenario's people: every local number starts
    /// +1 55501 or +1 55502, and the caller ID is +1 500 555 0006. Seven
    /// digits and more, with the country code, so that no timestamp's
    /// nanoseconds match by chance.
    pub(crate) fn assert_no_full_number_spread(&self) {
        const DIGITS: [&str; 3] = ["1555010", "1555020", "15005550006"];
        assert!(
            !log_capture::lines().is_empty(),
            "the product's log lines are kept"
        );
        assert_eq!(privacy::numbers_in_logs(&DIGITS), Vec::<String>::new());
        // The scan runs on a runtime of its own: this check is called from
        // synchronous code inside the test's runtime.
        let table = self.stack.app.config().table_name.clone();
        let dynalite = &self.stack.dynalite;
        let stored = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(privacy::numbers_in_store(dynalite, &table, &DIGITS))
                })
                .join()
                .unwrap()
        });
        assert_eq!(stored, Vec::<String>::new());
    }

    /// Every DynamoDB request each function made is one its role grants
    /// (`Endpoint::needs`, which the template's policies equal).
    pub(crate) fn assert_within_permissions(&self) {
        assert_eq!(
            self.stack.dynamo_ops.outside_permissions(),
            Vec::<String>::new(),
            "requests the function's IAM role would refuse (handlers/needs.rs)"
        );
    }
}

#[tokio::test]
async fn happy_path_warm_transfer() {
    let s = scenario().await;
    let sid = s.connected().await;
    let (status, _) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202);
    s.transfer_state(&sid, "target-answered").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER, TARGET]).await;
    let (status, call) = s
        .api(reqwest::Method::POST, &format!("/calls/{sid}/leave"), None)
        .await;
    assert_eq!(status, 200, "{call}");
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.transfer_state(&sid, "first-agent-left").await;
    assert_eq!(s.stack.sim.situation(CUSTOMER), Situation::Connected);
    // Customer and second agent talk; then the customer hangs up and it all ends.
    assert!(s.stack.sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    assert_eq!(call["transfer"]["state"], "ended");
    s.wait_call_over(TARGET).await;
    assert!(
        s.stack.sim.connections().is_empty(),
        "{:?}",
        s.stack.sim.connections()
    );
    let history = s.call(&sid).await["events"].as_array().unwrap().len();
    assert!(history > 10, "every callback and action is in the history");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn second_agent_busy() {
    let s = scenario().await;
    s.stack.sim.script(TARGET, Script::busy());
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    let call = s.transfer_state(&sid, "target-busy").await;
    assert_eq!(call["state"], "connected");
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert_eq!(s.stack.sim.situation(CUSTOMER), Situation::Connected);
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn second_agent_does_not_answer() {
    let s = scenario().await;
    s.stack.sim.script(TARGET, Script::no_answer());
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-ringing").await;
    s.transfer_state(&sid, "target-no-answer").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    // A retry to someone who answers completes the transfer.
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::from_millis(300)));
    let (status, call) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(call["transfer"]["attempt"], 2);
    s.transfer_state(&sid, "target-answered").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER, TARGET]).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn transfer_cancelled_while_ringing() {
    let s = scenario().await;
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::from_secs(100)));
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-ringing").await;
    let (status, call) = s
        .api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/transfer/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["transfer"]["state"], "cancelled");
    assert!(
        s.stack
            .sim
            .wait_for(SOON, |sim| sim.status_of(TARGET)
                == Some(LegStatus::Canceled))
            .await,
        "{}",
        s.stack.sim.timeline_text()
    );
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn customer_hangs_up_while_second_agent_rings() {
    let s = scenario().await;
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::from_secs(100)));
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-ringing").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert!(s.stack.sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    assert_eq!(call["transfer"]["state"], "ended");
    // Nobody is left ringing or waiting in an empty room.
    let sim = &s.stack.sim;
    s.wait_call_over(TARGET).await;
    s.wait_call_over(AGENT).await;
    assert!(
        sim.wait_for(SOON, |sim| sim.situation(CUSTOMER)
            == Situation::Ended(EndReason::Person))
            .await
    );
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn two_transfer_requests_at_the_same_moment() {
    let s = scenario().await;
    let sid = s.connected().await;
    let (a, b) = tokio::join!(s.transfer(&sid, TARGET), s.transfer(&sid, "+15550100004"));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    let loser = if a.0 == 409 { &a.1 } else { &b.1 };
    assert!(loser["state"].is_string(), "409 names the state: {loser}");
    s.transfer_state(&sid, "target-answered").await;
    let dialled = s.stack.sim.calls_to(TARGET) + s.stack.sim.calls_to("+15550100004");
    assert_eq!(dialled, 1, "exactly one second agent was called");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn transfer_before_the_customer_answers_is_refused() {
    let s = scenario().await;
    s.stack
        .sim
        .script(CUSTOMER, Script::answer_after(Duration::from_secs(100)));
    let sid = s.start_call().await;
    s.wait_call(&sid, "customer ringing", |c| {
        c["state"] == "customer-ringing"
    })
    .await;
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 409);
    assert_eq!(body["state"], "customer-ringing");
    assert_eq!(s.stack.sim.calls_to(TARGET), 0);
    assert!(s.call(&sid).await["transfer"].is_null());
}

#[tokio::test]
async fn twilio_failing_the_redirect_leaves_the_call_as_it_was_and_a_retry_succeeds() {
    let s = scenario().await;
    let sid = s.connected().await;
    // Refused with a 500: the product cannot know it was not applied, so it
    // looks the customer up instead of sending the redirect again.
    s.stack.sim.fail_next(
        Operation::UpdateCall,
        1,
        500,
        20500,
        "Internal Server Error",
    );
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(s.stack.sim.redirects_of(CUSTOMER), 0);
    // What Twilio said is in the log, under the request id the body gives.
    assert!(body["requestId"].is_string(), "{body}");
    let call = s.call(&sid).await;
    assert_eq!(call["transfer"]["state"], "failed");
    assert_eq!(call["state"], "connected");
    assert!(
        s.stack
            .sim
            .connections()
            .contains(&Connection::Bridge(AGENT.into(), CUSTOMER.into()))
    );
    // The second agent, rung in parallel, was called off.
    s.wait_call_over(TARGET).await;
    assert_eq!(s.stack.sim.situation(CUSTOMER), Situation::Connected);

    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202, "{body}");
    s.all_three_in_the_room_after_one_redirect(&sid).await;
    s.assert_customer_never_stranded();
}

/// Twilio's refusals quote the number they refused (error 21215's text is
/// Twilio's own): the stored reason, the history and the logs show it
/// masked, and the 502 none of Twilio's text (a 5xx body says what the
/// agent can do and the request id: `ApiError::into_response_for`).
#[tokio::test]
async fn a_number_twilio_refuses_is_masked_wherever_its_message_goes() {
    let s = scenario().await;
    let sid = s.connected().await;
    let refusal = format!(
        "Account not authorized to call {TARGET}. Perhaps you need to enable some \
         international permissions: https://www.twilio.com/console/voice/calls/geo-permissions/low-risk"
    );
    s.stack
        .sim
        .fail_next(Operation::CreateParticipant, 1, 400, 21215, &refusal);
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 502, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        !error.contains("0003") && !error.contains("21215"),
        "{error}"
    );
    assert!(body["requestId"].is_string(), "{body}");
    let call = s.call(&sid).await;
    assert_eq!(call["transfer"]["state"], "failed");
    s.wait_call(&sid, "customer back with agent one", |c| {
        c["state"] == "connected"
    })
    .await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn duplicate_and_out_of_order_callbacks_change_nothing() {
    let s = scenario().await;
    let sid = s.connected().await;
    let before = s.call(&sid).await;
    let customer_leg = before["customerLeg"]["callSid"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/events/customer-leg", s.stack.base_url());
    for (status, sequence) in [
        ("ringing", "1"),
        ("initiated", "0"),
        ("in-progress", "2"),
        ("ringing", "1"),
    ] {
        let params: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000001"),
            ("CallSid", customer_leg.as_str()),
            ("ParentCallSid", sid.as_str()),
            ("CallStatus", status),
            ("SequenceNumber", sequence),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let response = s
            .http
            .post(&url)
            .header(
                "X-Twilio-Signature",
                sign_form(LOCAL_AUTH_TOKEN, &url, &params),
            )
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.text().await.unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#
        );
    }
    let after = s.call(&sid).await;
    assert_eq!(after["state"], "connected");
    assert_eq!(after["customerLeg"], before["customerLeg"]);
    // A forged one is refused.
    let response = s
        .http
        .post(&url)
        .header("X-Twilio-Signature", "forged")
        .form(&[
            ("CallSid", customer_leg.as_str()),
            ("CallStatus", "completed"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(s.call(&sid).await["state"], "connected");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_plain_call_ends_with_hangup() {
    let s = scenario().await;
    let sid = s.connected().await;
    assert!(s.stack.sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    assert!(call["transfer"].is_null());
    let sim = &s.stack.sim;
    assert!(
        sim.wait_for(SOON, |sim| sim.situation(AGENT)
            == Situation::Ended(EndReason::Twiml))
            .await,
        "{}",
        sim.timeline_text()
    );
    assert!(
        sim.timeline_text().contains("TwiML for +15550100001"),
        "the Dial action was asked"
    );
    assert!(sim.connections().is_empty());
    s.assert_customer_never_stranded();
}

impl Scenario {
    /// Connected, transferred, and the first agent has left: the customer
    /// talks with the second agent.
    async fn handed_over(&self) -> String {
        let sid = self.connected().await;
        let (status, body) = self.transfer(&sid, TARGET).await;
        assert_eq!(status, 202, "{body}");
        self.transfer_state(&sid, "target-answered").await;
        self.wait_room(&sid, &[AGENT, CUSTOMER, TARGET]).await;
        let (status, call) = self
            .api(reqwest::Method::POST, &format!("/calls/{sid}/leave"), None)
            .await;
        assert_eq!(status, 200, "{call}");
        self.wait_room(&sid, &[CUSTOMER, TARGET]).await;
        sid
    }

    /// The customer's call ends cleanly: a spoken goodbye, then hang-up,
    /// within the grace of the last agent leaving.
    pub(crate) async fn customer_released(&self, sid: &str) {
        let sim = &self.stack.sim;
        assert!(
            sim.wait_for(SOON, |sim| sim.situation(CUSTOMER)
                == Situation::Ended(EndReason::Twiml))
                .await,
            "{:?}\n{}",
            sim.situation(CUSTOMER),
            sim.timeline_text()
        );
        self.wait_call(sid, "ended", |c| c["state"] == "ended")
            .await;
        self.assert_customer_never_stranded();
    }
}

/// When the customer hangs up after a handover, every callback until agent
/// two's own end derives "end agent two's call" again: Twilio is asked
/// once, not once per callback, and with a hang-up alone, since agent two
/// answered (no cancel first). None when the room's end reached agent two
/// before any callback.
#[tokio::test]
async fn a_leg_nobody_needs_is_ended_with_one_request_whatever_the_callbacks() {
    let s = scenario().await;
    let sid = s.handed_over().await;
    let sim = &s.stack.sim;
    assert!(sim.wait_for(SOON, |sim| sim.callbacks_settled()).await);
    let before = sim.requests(Operation::UpdateCall);
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    s.wait_call_over(TARGET).await;
    assert!(sim.wait_for(SOON, |sim| sim.callbacks_settled()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let updates = sim.requests(Operation::UpdateCall) - before;
    assert!(
        updates <= 1,
        "agent two's call ended by {updates} requests\n{}",
        sim.timeline_text()
    );
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn agent_two_hangs_up_after_the_handover() {
    let s = scenario().await;
    let sid = s.handed_over().await;
    assert!(s.stack.sim.hang_up(TARGET));
    // Agent two was made the room's anchor before agent one left, so Twilio
    // itself ends the room and the customer hears the goodbye.
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn agent_two_hangs_up_after_the_handover_with_every_callback_lost() {
    let s = scenario().await;
    let sid = s.handed_over().await;
    // From now on no callback reaches the product: the guarantee must not
    // hang on one.
    s.stack.sim.on_callback(|_| Some(CallbackFault::Lose));
    assert!(s.stack.sim.hang_up(TARGET));
    let sim = &s.stack.sim;
    assert!(
        sim.wait_for(SOON, |sim| sim.situation(CUSTOMER)
            == Situation::Ended(EndReason::Twiml))
            .await,
        "{}",
        sim.timeline_text()
    );
    s.assert_customer_never_stranded();
    let _ = sid;
}

/// Agent one hangs up their own phone while agent two's rings.
async fn agent_one_hangs_up_while_agent_two_rings(script: Script) -> (Scenario, String) {
    let s = scenario().await;
    s.stack.sim.script(TARGET, script);
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-ringing").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert!(s.stack.sim.hang_up(AGENT));
    (s, sid)
}

#[tokio::test]
async fn agent_one_hangs_up_while_agent_two_rings_and_agent_two_answers() {
    let (s, sid) =
        agent_one_hangs_up_while_agent_two_rings(Script::answer_after(Duration::from_secs(20)))
            .await;
    s.transfer_state(&sid, "first-agent-left").await;
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    assert_eq!(s.stack.sim.situation(CUSTOMER), Situation::Connected);
    // Agent two is the room's anchor: their goodbye releases the customer.
    s.wait_call(&sid, "agent two anchors the room", |c| {
        c["events"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["kind"] == "second agent now ends the room on leaving")
        })
    })
    .await;
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn agent_one_hangs_up_while_agent_two_rings_and_agent_two_is_busy() {
    let (s, sid) =
        agent_one_hangs_up_while_agent_two_rings(Script::decline_after(Duration::from_secs(20)))
            .await;
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn agent_one_hangs_up_while_agent_two_rings_and_agent_two_does_not_answer() {
    let (s, sid) = agent_one_hangs_up_while_agent_two_rings(Script::no_answer()).await;
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn redirect_applied_but_answered_after_the_timeout_is_sent_once() {
    let s = scenario().await;
    let sid = s.connected().await;
    // Twilio moves the customer, then answers long after the client gave up.
    s.stack.sim.fault_next(
        Operation::UpdateCall,
        Fault::AppliedThenTimeout(Duration::from_secs(8)),
    );
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        s.stack.sim.redirects_of(CUSTOMER),
        1,
        "{}",
        s.stack.sim.timeline_text()
    );
    s.all_three_in_the_room_after_one_redirect(&sid).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn redirect_applied_but_answered_with_a_5xx_is_sent_once() {
    let s = scenario().await;
    let sid = s.connected().await;
    s.stack.sim.fault_next(
        Operation::UpdateCall,
        Fault::AppliedThenError { status: 503 },
    );
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202, "{body}");
    s.all_three_in_the_room_after_one_redirect(&sid).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn agent_two_reaches_the_room_before_the_customer() {
    let s = scenario().await;
    // Agent two answers at once; the REST participant creates the room and
    // with it the room's callback (Twilio: the first participant's wins).
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::ZERO));
    let sid = s.handed_over().await;
    let call = s
        .wait_call(&sid, "the room's callbacks", |c| {
            c["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "customer participant-join"))
        })
        .await;
    assert_eq!(call["state"], "transferred");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn the_customers_participant_join_is_lost() {
    let s = scenario().await;
    s.stack.sim.on_callback(|cb: &CallbackInfo| {
        (cb.kind == CallbackKind::Conference
            && cb.event == "participant-join"
            && cb.label.as_deref() == Some("customer"))
        .then_some(CallbackFault::Lose)
    });
    let sid = s.handed_over().await;
    assert_eq!(s.call(&sid).await["state"], "transferred");
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn every_callback_duplicated_and_some_reordered() {
    let s = scenario().await;
    s.stack
        .sim
        .on_callback(|cb: &CallbackInfo| match cb.event.as_str() {
            // Early progress arrives late, after what followed it.
            "ringing" | "initiated" | "participant-join" => {
                Some(CallbackFault::Delay(Duration::from_millis(400)))
            }
            _ => Some(CallbackFault::Duplicate),
        });
    let sid = s.handed_over().await;
    assert_eq!(s.call(&sid).await["transfer"]["state"], "first-agent-left");
    assert!(s.stack.sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    assert_eq!(call["transfer"]["state"], "ended");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_transfer_to_a_number_already_on_the_call_is_refused() {
    let s = scenario().await;
    let sid = s.connected().await;
    for number in [CUSTOMER, AGENT] {
        let (status, body) = s.transfer(&sid, number).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["field"], "to");
    }
    assert_eq!(s.stack.sim.redirects_of(CUSTOMER), 0);
    s.assert_customer_never_stranded();
}

/// A customer left alone in the room with the product none the wiser: from
/// the moment agent two rings no callback reaches the product; agent one
/// hangs up, agent two declines.
async fn alone_unheard() -> (Scenario, String) {
    let s = scenario().await;
    s.stack
        .sim
        .script(TARGET, Script::decline_after(Duration::from_secs(20)));
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-ringing").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.stack.sim.on_callback(|_| Some(CallbackFault::Lose));
    assert!(s.stack.sim.hang_up(AGENT));
    s.wait_call_over(TARGET).await;
    (s, sid)
}

#[tokio::test]
async fn the_reconciler_releases_a_customer_whose_callbacks_were_all_lost() {
    let (s, sid) = alone_unheard().await;
    assert_eq!(s.call(&sid).await["transfer"]["state"], "target-ringing");
    // One run of the reconciler, as the schedule's next period would start it.
    let report = reconcile_later(&s).await;
    assert!(report.repairs >= 1, "{report:?}");
    s.customer_released(&sid).await;
    let call = s.call(&sid).await;
    assert!(call["repairs"].as_u64().unwrap() >= 1, "{call:#}");
}

/// One reconciler run, as the schedule's next period would start it: late
/// enough that every open session is due for a check.
pub(crate) async fn reconcile_later(s: &Scenario) -> reconcile::RunReport {
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    serving(
        Endpoint::Reconciler,
        reconcile::run(s.stack.app.services(), later),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_reconciler_hangs_up_a_second_agent_nobody_could_call_off() {
    // Twilio's longest ring: the orphan is still ringing when the reconciler looks.
    let s = scenario_ringing_for(600).await;
    let sim = &s.stack.sim;
    sim.script(TARGET, Script::answer_after(Duration::from_secs(100)));
    let sid = s.connected().await;
    // None of agent two's callbacks arrive, and Twilio fails every call
    // update for a while: the redirect (so the transfer fails) and then each
    // attempt to call off agent two, who was dialled in parallel.
    sim.on_callback(|cb: &CallbackInfo| {
        (cb.number.as_deref() == Some(TARGET)).then_some(CallbackFault::Lose)
    });
    sim.fail_next(Operation::UpdateCall, 40, 503, 20503, "Service Unavailable");
    let (status, body) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 502, "{body}");
    sim.clear_faults();
    assert_eq!(s.call(&sid).await["transfer"]["state"], "failed");
    // Twilio is back, but nothing tells the product agent two still rings.
    assert_eq!(
        sim.status_of(TARGET),
        Some(LegStatus::Ringing),
        "{}",
        sim.timeline_text()
    );
    let report = reconcile_later(&s).await;
    assert!(report.repairs >= 1, "{report:?}");
    s.wait_call_over(TARGET).await;
    assert_eq!(sim.status_of(TARGET), Some(LegStatus::Canceled));
    let call = s.call(&sid).await;
    assert!(call["repairs"].as_u64().unwrap() >= 1, "{call:#}");
    assert!(
        call["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "reconciler"),
        "{call:#}"
    );
    // The customer never left agent one.
    assert!(
        sim.connections()
            .contains(&Connection::Bridge(AGENT.into(), CUSTOMER.into()))
    );
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn two_reconciler_runs_at_once_make_each_repair_once() {
    let (s, sid) = alone_unheard().await;
    let ended_rooms = s.stack.sim.requests(Operation::UpdateConference);
    // Two overlapping schedules start their runs at the same moment.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (a, b) = futures::join!(
        serving(
            Endpoint::Reconciler,
            reconcile::run(s.stack.app.services(), later)
        ),
        serving(
            Endpoint::Reconciler,
            reconcile::run(s.stack.app.services(), later)
        )
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.checked + b.checked,
        1,
        "one run checks the call: {a:?} {b:?}"
    );
    assert_eq!(
        a.taken + b.taken,
        1,
        "the other finds it taken: {a:?} {b:?}"
    );
    assert_eq!(
        s.stack.sim.requests(Operation::UpdateConference) - ended_rooms,
        1,
        "the lone customer's room is ended once\n{}",
        s.stack.sim.timeline_text()
    );
    s.customer_released(&sid).await;
    let call = s.call(&sid).await;
    assert_eq!(
        call["repairs"].as_u64(),
        Some((a.repairs + b.repairs) as u64)
    );
}

#[tokio::test]
async fn the_reconciler_leaves_healthy_calls_alone() {
    const HEALTHY: usize = 4;
    // One supervisor starts and transfers every call: more than an agent's
    // default allowance a minute.
    let s = scenario_with(LocalOptions {
        agent_dials_per_minute: Some(60),
        ..LocalOptions::default()
    })
    .await;
    let sim = &s.stack.sim;
    let number = |role: u32, n: usize| format!("+1555010{role}{n:03}");
    let mut calls = Vec::new();
    for n in 0..HEALTHY {
        let (agent, customer, target) = (number(7, n), number(8, n), number(9, n));
        for person in [&agent, &customer, &target] {
            sim.script(person, Script::answer_after(Duration::from_millis(300)));
        }
        sim.watch(&customer);
        let (status, call) = s
            .api(
                reqwest::Method::POST,
                "/calls",
                Some(json!({ "agentNumber": agent, "customerNumber": customer })),
            )
            .await;
        assert_eq!(status, 201, "{call}");
        let sid = call["callSid"].as_str().unwrap().to_owned();
        s.wait_call(&sid, "connected", |c| c["state"] == "connected")
            .await;
        // Half of them mid-transfer (agent two on the line with both), half
        // already handed over to agent two.
        assert_eq!(s.transfer(&sid, &target).await.0, 202);
        s.transfer_state(&sid, "target-answered").await;
        if n % 2 == 1 {
            let (status, _) = s
                .api(reqwest::Method::POST, &format!("/calls/{sid}/leave"), None)
                .await;
            assert_eq!(status, 200);
            s.transfer_state(&sid, "first-agent-left").await;
        }
        calls.push((sid, customer));
    }
    // Let every callback of those moves arrive before looking.
    assert!(sim.wait_for(SOON, |sim| sim.callbacks_settled()).await);
    let changes = |sim: &Simulator| {
        [
            Operation::UpdateCall,
            Operation::UpdateParticipant,
            Operation::UpdateConference,
            Operation::CreateCall,
            Operation::CreateParticipant,
        ]
        .map(|op| sim.requests(op))
    };
    let before = changes(sim);
    let report = reconcile_later(&s).await;
    assert_eq!(
        report.checked, HEALTHY,
        "every open call was looked at: {report:?}"
    );
    assert_eq!(report.repairs, 0, "{report:?}");
    assert_eq!(changes(sim), before, "nothing was changed at Twilio");
    for (sid, customer) in &calls {
        assert_eq!(s.call(sid).await["repairs"].as_u64(), Some(0));
        assert_eq!(sim.situation(customer), Situation::Connected);
        assert_eq!(sim.problems(customer, GRACE), Vec::<String>::new());
    }
}

// Consult (customer on hold), take-back and blind transfers.

impl Scenario {
    async fn hold(&self, sid: &str, held: bool) -> (u16, Value) {
        self.api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/hold"),
            Some(json!({ "held": held })),
        )
        .await
    }

    /// A warm transfer whose second agent answered: all three in the room.
    async fn agent_two_in_the_room(&self) -> String {
        let sid = self.connected().await;
        assert_eq!(self.transfer(&sid, TARGET).await.0, 202);
        self.transfer_state(&sid, "target-answered").await;
        self.wait_room(&sid, &[AGENT, CUSTOMER, TARGET]).await;
        sid
    }

    async fn post(&self, sid: &str, action: &str) -> (u16, Value) {
        self.api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/{action}"),
            None,
        )
        .await
    }

    /// A warm transfer whose second agent has answered, then a consult:
    /// the customer on hold while the agents talk.
    async fn consulting(&self) -> String {
        let sid = self.agent_two_in_the_room().await;
        let (status, call) = self.hold(&sid, true).await;
        assert_eq!(status, 200, "{call}");
        assert_eq!(call["transfer"]["state"], "consulting");
        assert_eq!(call["customerHeld"], true);
        let sim = &self.stack.sim;
        assert!(
            sim.wait_for(SOON, |sim| sim.situation(CUSTOMER) == Situation::OnHold)
                .await,
            "{}",
            sim.timeline_text()
        );
        sid
    }

    async fn customer_talking(&self) {
        let sim = &self.stack.sim;
        assert!(
            sim.wait_for(SOON, |sim| sim.situation(CUSTOMER) == Situation::Connected)
                .await,
            "{:?}\n{}",
            sim.situation(CUSTOMER),
            sim.timeline_text()
        );
    }

    async fn blind_transfer(&self, sid: &str) -> (u16, Value) {
        self.api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/transfer"),
            Some(json!({ "to": TARGET, "kind": "cold" })),
        )
        .await
    }
}

#[tokio::test]
async fn consult_then_complete() {
    let s = scenario().await;
    let sid = s.consulting().await;
    // Completing takes the customer off hold, then agent one leaves.
    let (status, call) = s.post(&sid, "leave").await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["customerHeld"], false);
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.transfer_state(&sid, "first-agent-left").await;
    s.customer_talking().await;
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn consult_then_cancel() {
    let s = scenario().await;
    let sid = s.consulting().await;
    let (status, call) = s.post(&sid, "transfer/cancel").await;
    assert_eq!(status, 200, "{call}");
    s.transfer_state(&sid, "cancelled").await;
    s.wait_call_over(TARGET).await;
    // Agent one has the customer back, off hold.
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.customer_talking().await;
    s.wait_call(&sid, "customer off hold", |c| c["customerHeld"] == false)
        .await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn consult_then_three_way_then_agent_one_leaves() {
    let s = scenario().await;
    let sid = s.consulting().await;
    let (status, call) = s.hold(&sid, false).await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["transfer"]["state"], "three-way");
    s.customer_talking().await;
    let (status, call) = s.post(&sid, "leave").await;
    assert_eq!(status, 200, "{call}");
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.transfer_state(&sid, "first-agent-left").await;
    s.customer_talking().await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn customer_hangs_up_while_on_hold() {
    let s = scenario().await;
    let sid = s.consulting().await;
    assert!(s.stack.sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    // The room ends with the customer; nobody is left in it.
    s.wait_call_over(AGENT).await;
    s.wait_call_over(TARGET).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn agent_two_hangs_up_during_the_consult() {
    let s = scenario().await;
    let sid = s.consulting().await;
    assert!(s.stack.sim.hang_up(TARGET));
    // The product takes the customer off hold: agent one has them back.
    s.transfer_state(&sid, "target-left").await;
    s.customer_talking().await;
    s.wait_call(&sid, "customer off hold", |c| c["customerHeld"] == false)
        .await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn holding_is_refused_without_a_transfer_under_way() {
    let s = scenario().await;
    let sid = s.connected().await;
    let (status, body) = s.hold(&sid, true).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(s.stack.sim.requests(Operation::UpdateParticipant), 0);
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/hold"),
            Some(json!({ "held": "yes" })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "held");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn take_back_after_agent_two_answered() {
    let s = scenario().await;
    let sid = s.agent_two_in_the_room().await;
    // Wrong person: agent one takes the call back.
    let (status, call) = s.post(&sid, "transfer/cancel").await;
    assert_eq!(status, 200, "{call}");
    s.wait_call_over(TARGET).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.customer_talking().await;
    let history = s.call(&sid).await["events"].to_string();
    assert!(history.contains("transfer taken back"), "{history}");
    // And tries again, to the right person.
    let other = "+15550100004";
    s.stack
        .sim
        .script(other, Script::answer_after(Duration::from_millis(300)));
    let (status, call) = s.transfer(&sid, other).await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(call["transfer"]["attempt"], 2);
    s.transfer_state(&sid, "target-answered").await;
    assert_eq!(s.stack.sim.redirects_of(CUSTOMER), 1, "already in the room");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn cold_transfer_answered() {
    let s = scenario().await;
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::from_secs(5)));
    let sid = s.connected().await;
    let (status, call) = s.blind_transfer(&sid).await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(call["transfer"]["kind"], "cold");
    // Agent one is free at once, while agent two's phone still rings.
    s.wait_call_over(AGENT).await;
    assert_eq!(s.stack.sim.status_of(TARGET), Some(LegStatus::Ringing));
    s.transfer_state(&sid, "first-agent-left").await;
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.customer_talking().await;
    assert_eq!(s.call(&sid).await["state"], "transferred");
    // Agent two ends the room on leaving: the customer hears the goodbye.
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

async fn cold_transfer_unanswered(script: Script, state: &str) {
    let s = scenario().await;
    s.stack.sim.script(TARGET, script);
    let sid = s.connected().await;
    assert_eq!(s.blind_transfer(&sid).await.0, 202);
    s.wait_call_over(AGENT).await;
    s.transfer_state(&sid, state).await;
    // Nobody is left for the customer: the fallback, never silence.
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn cold_transfer_busy() {
    cold_transfer_unanswered(Script::busy(), "ended").await;
}

#[tokio::test]
async fn cold_transfer_no_answer() {
    cold_transfer_unanswered(Script::no_answer(), "ended").await;
}

/// Recording on: agent one's bridge with the customer, then the room.
async fn recording_scenario() -> Scenario {
    scenario_with(LocalOptions {
        ring_timeout_secs: 20,
        recording: true,
        ..LocalOptions::default()
    })
    .await
}

impl Scenario {
    /// The recordings `GET /calls/{callSid}` lists, once `count` are there.
    async fn recordings(&self, sid: &str, count: usize) -> Vec<Value> {
        let call = self
            .wait_call(sid, "recordings reported", |c| {
                c["recordings"].as_array().is_some_and(|r| r.len() >= count)
            })
            .await;
        call["recordings"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn recording_covers_the_bridge_and_the_room_across_a_failed_and_a_retried_transfer() {
    let s = recording_scenario().await;
    let sim = &s.stack.sim;
    // Every recording callback arrives twice: each recording is still listed once.
    sim.on_callback(|info| {
        (info.kind == CallbackKind::Recording).then_some(CallbackFault::Duplicate)
    });
    sim.script(TARGET, Script::busy());
    let sid = s.connected().await;
    // A few seconds of conversation on the bridge (Twilio's time).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-busy").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    // The bridge ended when the customer moved: its recording is reported.
    let bridge = s.recordings(&sid, 1).await;
    assert_eq!(bridge[0]["source"], "bridge", "{bridge:?}");

    sim.script(TARGET, Script::answer_after(Duration::from_millis(300)));
    let (status, call) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202, "{call}");
    s.transfer_state(&sid, "target-answered").await;
    let (status, call) = s.post(&sid, "leave").await;
    assert_eq!(status, 200, "{call}");
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;

    // One recording per bridge and per room, as Twilio made them.
    let listed = s.recordings(&sid, 2).await;
    let made = sim.recordings();
    assert_eq!(made.len(), 2, "{made:?}\n{}", sim.timeline_text());
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!((made[0].source, made[0].channels), ("DialVerb", 2));
    assert_eq!(
        made[0].of, sid,
        "a dial recording belongs to the parent call"
    );
    assert_eq!((made[1].source, made[1].channels), ("Conference", 1));
    for (listed, made, source) in [
        (&listed[0], &made[0], "bridge"),
        (&listed[1], &made[1], "room"),
    ] {
        assert_eq!(listed["sid"], made.sid.as_str());
        assert_eq!(listed["source"], source);
        assert_eq!(listed["status"], "completed");
        assert_eq!(listed["durationSecs"], made.duration_secs);
        assert!(made.duration_secs >= 1, "{made:?}");
    }
    // The room's recording spans both attempts and the handover.
    assert!(made[1].duration_secs > made[0].duration_secs, "{made:?}");

    // The history says what was recorded, and no phone number.
    let call = s.call(&sid).await;
    let entries: Vec<&Value> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().contains("recording"))
        .collect();
    assert_eq!(
        entries.len(),
        4,
        "two recordings, each reported twice: {entries:?}"
    );
    for (entry, made) in entries.iter().zip([&made[0], &made[0], &made[1], &made[1]]) {
        let detail = entry["detail"].as_str().unwrap();
        assert!(detail.contains(&made.sid), "{entry}");
        for number in [AGENT, CUSTOMER, TARGET] {
            assert!(!detail.contains(&number[2..]), "{entry}");
        }
    }

    // A recording callback is signature-checked like every webhook.
    let url = format!("{}/events/recording?session={sid}", s.stack.base_url());
    let forged = [
        ("RecordingSid", "RE00000000000000000000000000000099"),
        ("RecordingSource", "Conference"),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "5"),
    ];
    let response = s
        .http
        .post(&url)
        .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let params: Vec<(String, String)> = forged
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let response = s
        .http
        .post(&url)
        .header(
            "X-Twilio-Signature",
            sign_form("not-the-auth-token", &url, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        s.call(&sid).await["recordings"].as_array().unwrap().len(),
        2
    );
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn recording_off_records_nothing() {
    let s = scenario().await;
    let sid = s.handed_over().await;
    assert!(s.stack.sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    s.wait_call_over(TARGET).await;
    assert!(
        s.stack
            .sim
            .wait_for(SOON, |sim| sim.callbacks_settled())
            .await,
        "{}",
        s.stack.sim.timeline_text()
    );
    assert_eq!(s.stack.sim.recordings(), Vec::new());
    assert_eq!(call["recordings"], json!([]));
    let call = s.call(&sid).await;
    assert!(
        !call["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"].as_str().unwrap().contains("recording")),
        "{call:#}"
    );
    s.assert_customer_never_stranded();
}

/// What one complete warm transfer costs in webhook requests, as the
/// simulator delivered them: the per-call figures the capacity arithmetic
/// of docs/operations.md (and so the template's throttles) rests on.
#[tokio::test]
async fn one_warm_transfer_makes_no_more_webhook_requests_than_the_capacity_arithmetic_counts() {
    let s = scenario().await;
    let sid = s.connected().await;
    assert_eq!(s.transfer(&sid, TARGET).await.0, 202);
    s.transfer_state(&sid, "target-answered").await;
    assert_eq!(s.post(&sid, "leave").await.0, 200);
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    assert!(s.stack.sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    s.wait_call_over(TARGET).await;
    assert!(
        s.stack
            .sim
            .wait_for(SOON, |sim| sim.callbacks_settled())
            .await
    );
    let delivered = |prefix: &str| {
        s.stack
            .sim
            .timeline()
            .iter()
            .filter(|e| e.text.contains("-> webhook") && e.text.contains(&format!(" {prefix}")))
            .filter(|e| !e.text.contains("LOST"))
            .count()
    };
    let (twiml, callbacks) = (delivered("/twiml/") as u64, delivered("/events/") as u64);
    let capacity = super::Capacity::from_docs();
    assert!(twiml <= capacity.twiml_per_call, "{twiml} TwiML requests");
    assert!(
        callbacks <= capacity.callbacks_per_call,
        "{callbacks} callbacks"
    );
    // And docs/operations.md does not overstate it either.
    assert!(twiml * 4 >= capacity.twiml_per_call * 3, "{twiml}");
    assert!(
        callbacks * 4 >= capacity.callbacks_per_call * 3,
        "{callbacks}"
    );
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn agent_two_hangs_up_during_the_consult_unheard_and_the_reconciler_resumes_the_customer() {
    let s = scenario().await;
    let sid = s.consulting().await;
    // Neither agent two's `completed` nor the room's `participant-leave`
    // reaches the product: it still thinks the consult goes on.
    s.stack.sim.on_callback(|_| Some(CallbackFault::Lose));
    assert!(s.stack.sim.hang_up(TARGET));
    s.wait_call_over(TARGET).await;
    assert_eq!(s.call(&sid).await["customerHeld"], true);
    // Agent one is still in the room: on hold is not alone meanwhile.
    assert_eq!(s.stack.sim.situation(CUSTOMER), Situation::OnHold);
    let report = reconcile_later(&s).await;
    assert!(report.repairs >= 1, "{report:?}");
    s.customer_talking().await;
    s.wait_call(&sid, "customer off hold", |c| c["customerHeld"] == false)
        .await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_consult_with_every_callback_duplicated_and_some_late() {
    let s = scenario().await;
    s.stack
        .sim
        .on_callback(|info: &CallbackInfo| match info.kind {
            CallbackKind::Conference => Some(CallbackFault::Delay(Duration::from_millis(300))),
            _ => Some(CallbackFault::Duplicate),
        });
    let sid = s.consulting().await;
    let (status, call) = s.hold(&sid, false).await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(s.post(&sid, "leave").await.0, 200);
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.transfer_state(&sid, "first-agent-left").await;
    s.customer_talking().await;
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn cold_transfer_busy_with_every_callback_duplicated_and_some_late() {
    let s = scenario().await;
    s.stack.sim.script(TARGET, Script::busy());
    s.stack
        .sim
        .on_callback(|info: &CallbackInfo| match info.kind {
            CallbackKind::Conference => Some(CallbackFault::Delay(Duration::from_millis(300))),
            _ => Some(CallbackFault::Duplicate),
        });
    let sid = s.connected().await;
    assert_eq!(s.blind_transfer(&sid).await.0, 202);
    s.wait_call_over(AGENT).await;
    // Nobody is left for the customer: the fallback, never silence, and
    // the repeated callbacks release them once.
    s.customer_released(&sid).await;
}

// Onward transfers: the agent a call was handed to hands it on, signed in
// as themselves.

const C_AGENT: &str = "+15550100004";
const D_AGENT: &str = "+15550100005";

impl Scenario {
    /// A transfer asked for by the agent `from`, signed in as themselves.
    async fn transfer_as(&self, sid: &str, from: &str, body: Value) -> (u16, Value) {
        let token = self.agent_token(from);
        let path = format!("/calls/{sid}/transfer");
        self.api_as(&token, reqwest::Method::POST, &path, Some(body))
            .await
    }

    /// An agent's own sign-in: not a supervisor, one number.
    fn agent_token(&self, number: &str) -> String {
        let email = format!("agent{}@example.com", &number[number.len() - 4..]);
        self.stack
            .token_for(&LocalAgent::new(&email, &[number], false))
    }

    /// `from` (signed in as themselves) transfers the call they were handed
    /// to `to`, who answers; `from` leaves. `to` has the customer.
    async fn hand_on(&self, sid: &str, from: &str, to: &str) {
        let (status, call) = self.transfer_as(sid, from, json!({ "to": to })).await;
        assert_eq!(status, 202, "{call}");
        assert_eq!(call["transfer"]["from"], from, "{call}");
        self.wait_call(sid, "the next agent answered", |c| {
            c["transfer"]["to"] == to && c["transfer"]["state"] == "target-answered"
        })
        .await;
        self.wait_room(sid, &[CUSTOMER, from, to]).await;
        let token = self.agent_token(from);
        let path = format!("/calls/{sid}/leave");
        let (status, call) = self
            .api_as(&token, reqwest::Method::POST, &path, None)
            .await;
        assert_eq!(status, 200, "{call}");
        self.wait_room(sid, &[CUSTOMER, to]).await;
        self.wait_call(sid, "handed on", |c| {
            c["currentAgent"] == to && c["transfer"]["state"] == "first-agent-left"
        })
        .await;
    }

    /// A scenario whose onward agents answer.
    async fn with_onward_agents(self) -> Self {
        for number in [C_AGENT, D_AGENT] {
            self.stack
                .sim
                .script(number, Script::answer_after(Duration::from_millis(500)));
        }
        self
    }
}

#[tokio::test]
async fn a_call_handed_on_three_times_keeps_every_hop() {
    let s = scenario().await.with_onward_agents().await;
    let sid = s.handed_over().await;
    s.hand_on(&sid, TARGET, C_AGENT).await;
    // Agent one, who left, may no longer act on the call.
    let (status, body) = s.transfer_as(&sid, AGENT, json!({ "to": D_AGENT })).await;
    assert_eq!(status, 403, "{body}");
    s.hand_on(&sid, C_AGENT, D_AGENT).await;
    // Agent four says goodbye: they were made the room's anchor before
    // agent three left, so the customer hears the goodbye, never silence.
    assert!(s.stack.sim.hang_up(D_AGENT));
    s.customer_released(&sid).await;
    assert_eq!(
        s.stack.sim.redirects_of(CUSTOMER),
        1,
        "one move, three hops"
    );

    let call = s.call(&sid).await;
    let hops: Vec<(&str, &str, &str)> = call["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let text = |k: &str| h[k].as_str().unwrap();
            (text("from"), text("to"), text("outcome"))
        })
        .collect();
    assert_eq!(
        hops,
        vec![
            (AGENT, TARGET, "first-agent-left"),
            (TARGET, C_AGENT, "first-agent-left"),
        ],
        "{call:#}"
    );
    assert_eq!(call["transfer"]["from"], C_AGENT);
    assert_eq!(call["transfer"]["to"], D_AGENT);
    assert_eq!(call["transfer"]["attempt"], 3);
    assert_eq!(call["currentAgent"], D_AGENT);
    // The history names who did each hop, without a phone number.
    let history: Vec<(&str, &str)> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "api")
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .filter(|(kind, _)| kind.contains("transfer requested") || kind.contains("left"))
        .collect();
    assert_eq!(
        history,
        vec![
            ("warm transfer requested", "lead@example.com"),
            ("first agent left", "lead@example.com"),
            ("warm transfer requested", "agent0003@example.com"),
            ("agent left after handing on", "agent0003@example.com"),
            ("warm transfer requested", "agent0004@example.com"),
            ("agent left after handing on", "agent0004@example.com"),
        ],
        "{call:#}"
    );
}

#[tokio::test]
async fn an_onward_transfer_that_fails_leaves_the_call_with_its_owner() {
    let s = scenario().await;
    s.stack.sim.script(C_AGENT, Script::busy());
    let sid = s.handed_over().await;
    let (status, call) = s.transfer_as(&sid, TARGET, json!({ "to": C_AGENT })).await;
    assert_eq!(status, 202, "{call}");
    s.transfer_state(&sid, "target-busy").await;
    // Agent two still has the customer, and ends the room again on leaving.
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    // (Agent one's leaving anchored agent two without a history entry.)
    let anchored = |c: &Value| {
        c["events"].as_array().is_some_and(|events| {
            events
                .iter()
                .any(|e| e["kind"] == "second agent now ends the room on leaving")
        })
    };
    s.wait_call(&sid, "agent two anchors the room again", anchored)
        .await;
    assert_eq!(s.call(&sid).await["currentAgent"], TARGET);
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
    // Twilio itself ended the room as agent two left: the product did not
    // have to find the customer alone.
    let call = s.call(&sid).await;
    let released = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "no agent left: customer sent to the fallback");
    assert!(!released, "{call:#}");
}

#[tokio::test]
async fn the_agent_handing_on_hangs_up_while_the_next_one_rings() {
    // Agent three rings for 20 s of Twilio's time (2 s here): long enough
    // to see it ringing on a loaded machine.
    let s = scenario_ringing_for(60).await;
    s.stack
        .sim
        .script(C_AGENT, Script::answer_after(Duration::from_secs(20)));
    let sid = s.handed_over().await;
    let (status, call) = s.transfer_as(&sid, TARGET, json!({ "to": C_AGENT })).await;
    assert_eq!(status, 202, "{call}");
    // start-transfer answered once agent two's anchor was lifted.
    let ringing = |sim: &Simulator| sim.status_of(C_AGENT) == Some(LegStatus::Ringing);
    assert!(s.stack.sim.wait_for(SOON, ringing).await);
    // Agent two no longer ends the room: hanging up leaves the customer
    // with agent three ringing, who then answers and has the call.
    assert!(s.stack.sim.hang_up(TARGET));
    s.wait_room(&sid, &[CUSTOMER, C_AGENT]).await;
    s.transfer_state(&sid, "first-agent-left").await;
    s.customer_talking().await;
    assert!(s.stack.sim.hang_up(C_AGENT));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn recording_across_two_hops() {
    let s = recording_scenario().await.with_onward_agents().await;
    let sim = &s.stack.sim;
    let sid = s.handed_over().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.hand_on(&sid, TARGET, C_AGENT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.hang_up(C_AGENT));
    s.customer_released(&sid).await;
    // The bridge, then one room recording from its start to its end,
    // across both hops; each listed with the SID Twilio gave it.
    let listed = s.recordings(&sid, 2).await;
    let made = sim.recordings();
    assert_eq!(made.len(), 2, "{made:?}\n{}", sim.timeline_text());
    for (listed, made, source) in [
        (&listed[0], &made[0], "bridge"),
        (&listed[1], &made[1], "room"),
    ] {
        assert_eq!(listed["sid"], made.sid.as_str());
        assert_eq!(listed["source"], source);
        assert_eq!(listed["status"], "completed");
        assert_eq!(listed["durationSecs"], made.duration_secs);
    }
    assert!(made[1].duration_secs >= 6, "two hops of talk: {made:?}");
}

impl Scenario {
    /// `from` (signed in as themselves) sends the call they were handed on
    /// blind to `to`: the customer waits on hold, `from` is free at once.
    async fn hand_on_blind(&self, sid: &str, from: &str, to: &str) {
        let body = json!({ "to": to, "kind": "cold" });
        let (status, call) = self.transfer_as(sid, from, body).await;
        assert_eq!(status, 202, "{call}");
        self.wait_call_over(from).await;
        let sim = &self.stack.sim;
        assert!(
            sim.wait_for(SOON, |sim| sim.situation(CUSTOMER) == Situation::OnHold)
                .await,
            "{:?}\n{}",
            sim.situation(CUSTOMER),
            sim.timeline_text()
        );
    }
}

#[tokio::test]
async fn a_handed_over_call_sent_on_blind_is_answered() {
    let s = scenario().await;
    s.stack
        .sim
        .script(C_AGENT, Script::answer_after(Duration::from_millis(1500)));
    let sid = s.handed_over().await;
    s.hand_on_blind(&sid, TARGET, C_AGENT).await;
    // Agent three answers: the customer comes off hold and talks with them.
    s.wait_room(&sid, &[CUSTOMER, C_AGENT]).await;
    s.customer_talking().await;
    let call = s
        .wait_call(&sid, "handed on, customer off hold", |c| {
            c["currentAgent"] == C_AGENT && c["customerHeld"] == false
        })
        .await;
    assert_eq!(call["transfer"]["kind"], "cold");
    assert_eq!(s.stack.sim.redirects_of(CUSTOMER), 1);
    assert!(s.stack.sim.hang_up(C_AGENT));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn a_handed_over_call_sent_on_blind_to_a_busy_agent_reaches_the_fallback() {
    let s = scenario().await;
    s.stack.sim.script(C_AGENT, Script::busy());
    let sid = s.handed_over().await;
    let (status, call) = s
        .transfer_as(&sid, TARGET, json!({ "to": C_AGENT, "kind": "cold" }))
        .await;
    assert_eq!(status, 202, "{call}");
    // Nobody is left for the customer: the goodbye, never silence.
    s.customer_released(&sid).await;
    s.transfer_state(&sid, "ended").await;
}

// The remaining new paths with faulty callbacks.

/// Every callback duplicated, and the conference's late enough that
/// later participant callbacks overtake them.
fn duplicated_and_late(info: &CallbackInfo) -> Option<CallbackFault> {
    match info.kind {
        CallbackKind::Conference => Some(CallbackFault::Delay(Duration::from_millis(300))),
        _ => Some(CallbackFault::Duplicate),
    }
}

#[tokio::test]
async fn a_take_back_with_every_callback_duplicated_and_some_late() {
    let s = scenario().await;
    s.stack.sim.on_callback(duplicated_and_late);
    let sid = s.agent_two_in_the_room().await;
    let (status, call) = s.post(&sid, "transfer/cancel").await;
    assert_eq!(status, 200, "{call}");
    s.wait_call_over(TARGET).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.customer_talking().await;
    // The repeated callbacks of agent two's hang-up change nothing: agent
    // one keeps the customer, and the room is not ended on them.
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert_eq!(s.call(&sid).await["transfer"]["state"], "cancelled");
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_take_back_with_every_callback_lost_leaves_agent_one_with_the_customer() {
    let s = scenario().await;
    let sid = s.agent_two_in_the_room().await;
    s.stack.sim.on_callback(|_| Some(CallbackFault::Lose));
    let (status, call) = s.post(&sid, "transfer/cancel").await;
    assert_eq!(status, 200, "{call}");
    s.wait_call_over(TARGET).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.customer_talking().await;
    // The reconciler learns what the lost callbacks said, and finds
    // nothing to repair for the customer.
    reconcile_later(&s).await;
    let call = s.call(&sid).await;
    assert_eq!(call["transfer"]["state"], "cancelled", "{call:#}");
    assert_eq!(call["state"], "connected", "{call:#}");
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn cold_transfer_answered_with_every_callback_duplicated_and_some_late() {
    let s = scenario().await;
    s.stack
        .sim
        .script(TARGET, Script::answer_after(Duration::from_secs(2)));
    s.stack.sim.on_callback(duplicated_and_late);
    let sid = s.connected().await;
    assert_eq!(s.blind_transfer(&sid).await.0, 202);
    s.wait_call_over(AGENT).await;
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    s.customer_talking().await;
    s.transfer_state(&sid, "first-agent-left").await;
    assert!(s.stack.sim.hang_up(TARGET));
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn three_hops_with_every_callback_duplicated_and_some_late() {
    let s = scenario().await.with_onward_agents().await;
    s.stack.sim.on_callback(duplicated_and_late);
    let sid = s.handed_over().await;
    s.hand_on(&sid, TARGET, C_AGENT).await;
    s.hand_on(&sid, C_AGENT, D_AGENT).await;
    assert!(s.stack.sim.hang_up(D_AGENT));
    s.customer_released(&sid).await;
    let call = s.call(&sid).await;
    assert_eq!(call["hops"].as_array().map(Vec::len), Some(2), "{call:#}");
}

#[tokio::test]
async fn the_reconciler_releases_a_customer_an_onward_transfer_left_alone_unheard() {
    let s = scenario().await;
    s.stack
        .sim
        .script(C_AGENT, Script::decline_after(Duration::from_secs(20)));
    let sid = s.handed_over().await;
    let (status, call) = s.transfer_as(&sid, TARGET, json!({ "to": C_AGENT })).await;
    assert_eq!(status, 202, "{call}");
    let ringing = |sim: &Simulator| sim.status_of(C_AGENT) == Some(LegStatus::Ringing);
    assert!(s.stack.sim.wait_for(SOON, ringing).await);
    // Nothing reaches the product any more: agent two hangs up (not
    // ending the room, as they were transferring on), then agent three
    // turns the call down.
    s.stack.sim.on_callback(|_| Some(CallbackFault::Lose));
    assert!(s.stack.sim.hang_up(TARGET));
    s.wait_call_over(C_AGENT).await;
    let report = reconcile_later(&s).await;
    assert!(report.repairs >= 2, "{report:?}");
    s.customer_released(&sid).await;
    // What the reconciler found out names agent two's leg by its attempt.
    let history = s.call(&sid).await["events"].to_string();
    assert!(
        history.contains("second agent completed (attempt 1)"),
        "{history}"
    );
}
