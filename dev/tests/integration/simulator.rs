//! The Twilio simulator alone, against a tiny scripted webhook app served
//! here (not the product): REST requests, TwiML runs, bridges, conference
//! rooms, status callbacks, signatures, contract checks and faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use warm_transfer_core::domain::LegStatus;
use warm_transfer_core::signature::validate_form;
use warm_transfer_dev::sim::{
    CallbackFault, CallbackKind, Connection, EndReason, Fault, Operation, Script, SimConfig,
    Simulator, Situation,
};

const CUSTOMER: &str = "+15550200001";
const AGENT: &str = "+15550200002";
const TARGET: &str = "+15550200003";
const CALLER_ID: &str = "+15550209999";
const SOON: Duration = Duration::from_secs(10);

/// One webhook request as the app received it.
#[derive(Debug, Clone)]
struct Hook {
    path: String,
    url: String,
    method: String,
    signature: Option<String>,
    token: Option<String>,
    region: Option<String>,
    /// Form fields, or the query of a GET.
    params: Vec<(String, String)>,
    /// What the signature covers after the URL: the form of a POST.
    signed: Vec<(String, String)>,
}

impl Hook {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a route answers: a status and a body.
type Reply = (u16, String);

/// A webhook app scripted per path (a sequence of replies, the last one
/// repeated); records every request.
struct App {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
    hooks: Arc<Mutex<Vec<Hook>>>,
}

impl App {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Vec<Reply>>>> = Arc::default();
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let (served_routes, served_hooks) = (routes.clone(), hooks.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, hooks) = (served_routes.clone(), served_hooks.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let (routes, hooks) = (routes.clone(), hooks.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let path = parts.uri.path().to_owned();
                            // Another test starting moto_server or dynalite
                            // probes the port it was handed to see who answers
                            // there; that port may be this app's by now.
                            let probe = path.starts_with("/moto-api/")
                                || parts.headers.contains_key("x-amz-target");
                            if probe {
                                let mut response = http::Response::new(Full::new(Bytes::new()));
                                *response.status_mut() = http::StatusCode::NOT_FOUND;
                                return Ok::<_, Infallible>(response);
                            }
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            let signed: Vec<(String, String)> =
                                form_urlencoded::parse(&body).into_owned().collect();
                            let params = if parts.method == http::Method::GET {
                                form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                                    .into_owned()
                                    .collect()
                            } else {
                                signed.clone()
                            };
                            let hook = Hook {
                                url: format!("http://{addr}{}", parts.uri),
                                path: path.clone(),
                                method: parts.method.to_string(),
                                signature: header("X-Twilio-Signature"),
                                token: header("I-Twilio-Idempotency-Token"),
                                region: header("X-Home-Region"),
                                params,
                                signed,
                            };
                            hooks.lock().unwrap().push(hook);
                            let (status, body) = {
                                let mut routes = routes.lock().unwrap();
                                match routes.get_mut(&path) {
                                    Some(replies) if replies.len() > 1 => replies.remove(0),
                                    Some(replies) => replies[0].clone(),
                                    None => (200, String::new()),
                                }
                            };
                            let mut response = http::Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("text/xml"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            routes,
            hooks,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `path` answers this TwiML document.
    fn twiml(&self, path: &str, body: &str) {
        self.reply(
            path,
            200,
            &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{body}</Response>"),
        );
    }

    fn reply(&self, path: &str, status: u16, body: &str) {
        self.replies(path, &[(status, body)]);
    }

    /// `path` answers these, in turn, then the last one again and again.
    fn replies(&self, path: &str, replies: &[(u16, &str)]) {
        self.routes.lock().unwrap().insert(
            path.to_owned(),
            replies.iter().map(|(s, b)| (*s, b.to_string())).collect(),
        );
    }

    fn hooks(&self, path: &str) -> Vec<Hook> {
        self.hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    fn all_hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }
}

struct Bench {
    sim: Simulator,
    app: App,
    http: reqwest::Client,
    config_sid: String,
    token: String,
}

async fn bench() -> Bench {
    let config = SimConfig {
        time_scale: 0.05,
        ..SimConfig::default()
    };
    let (config_sid, token) = (config.account_sid.clone(), config.auth_token.clone());
    let sim = Simulator::start(config).await.unwrap();
    for number in [CUSTOMER, AGENT, TARGET] {
        sim.script(number, Script::answer_after(Duration::from_millis(200)));
    }
    Bench {
        sim,
        app: App::start().await,
        http: reqwest::Client::new(),
        config_sid,
        token,
    }
}

impl Bench {
    fn api(&self, path: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{path}",
            self.sim.base_url(),
            self.config_sid
        )
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(self.api(path))
            .basic_auth(&self.config_sid, Some(&self.token))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.api(path))
            .basic_auth(&self.config_sid, Some(&self.token))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates an outbound call to `to` running the TwiML at `path`.
    async fn call(&self, to: &str, path: &str) -> String {
        let url = self.app.url(path);
        let callback = self.app.url("/status");
        let (status, call) = self
            .post(
                "Calls.json",
                &[
                    ("To", to),
                    ("From", CALLER_ID),
                    ("Url", &url),
                    ("Method", "POST"),
                    ("StatusCallback", &callback),
                    ("StatusCallbackEvent", "initiated"),
                    ("StatusCallbackEvent", "ringing"),
                    ("StatusCallbackEvent", "answered"),
                    ("StatusCallbackEvent", "completed"),
                    ("StatusCallbackMethod", "POST"),
                    ("Timeout", "30"),
                ],
            )
            .await;
        assert_eq!(status, 201, "{call}");
        assert_eq!(call["status"], "queued");
        assert_eq!(call["direction"], "outbound-api");
        call["sid"].as_str().unwrap().to_owned()
    }

    async fn wait_for(&self, what: &str, check: impl Fn(&Simulator) -> bool) {
        assert!(
            self.sim.wait_for(SOON, check).await,
            "timed out waiting for {what}\n{}",
            self.sim.timeline_text()
        );
    }

    async fn wait_for_hook(&self, path: &str, count: usize) -> Vec<Hook> {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            let hooks = self.app.hooks(path);
            if hooks.len() >= count {
                return hooks;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {count} requests of {path}\n{}",
                self.sim.timeline_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What every test checks at its end: each webhook was signed as
    /// Twilio signs, and no request broke the OpenAPI contract.
    fn assert_clean(&self) {
        let hooks = self.app.all_hooks();
        assert!(!hooks.is_empty());
        for hook in hooks {
            assert_eq!(
                validate_form(
                    &self.token,
                    &hook.url,
                    &hook.signed,
                    hook.signature.as_deref()
                ),
                Ok(()),
                "bad signature on {hook:?}"
            );
            assert_eq!(hook.get("AccountSid"), Some(self.config_sid.as_str()));
            assert_eq!(hook.region.as_deref(), Some("us1"), "{hook:?}");
            assert!(hook.token.as_ref().is_some_and(|t| !t.is_empty()));
        }
        assert_eq!(self.sim.contract_violations(), Vec::<String>::new());
    }
}

/// Status callbacks of one call, in the order sent.
fn callbacks_of(hooks: &[Hook], call_sid: &str) -> Vec<(String, String)> {
    hooks
        .iter()
        .filter(|h| h.get("CallSid") == Some(call_sid))
        .map(|h| {
            (
                h.get("SequenceNumber").unwrap_or("").to_owned(),
                h.get("CallStatus").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn dial_number_bridges_then_the_child_hang_up_requests_the_action() {
    let b = bench().await;
    let events = b.app.url("/child-status");
    let action = b.app.url("/after-dial");
    b.app.twiml(
        "/start",
        &format!(
            r#"<Dial action="{action}" callerId="{CALLER_ID}" timeout="20"><Number statusCallback="{events}" statusCallbackEvent="initiated ringing answered completed">{TARGET}</Number></Dial>"#
        ),
    );
    b.app.twiml("/after-dial", "<Say>Goodbye</Say><Hangup/>");
    b.sim.watch(CUSTOMER);
    let parent = b.call(CUSTOMER, "/start").await;

    b.wait_for("bridge", |s| {
        s.connections() == [Connection::Bridge(CUSTOMER.into(), TARGET.into())]
    })
    .await;
    assert_eq!(b.sim.situation(CUSTOMER), Situation::Connected);
    let start = &b.app.hooks("/start")[0];
    assert_eq!(start.get("CallSid"), Some(parent.as_str()));
    assert_eq!(start.get("CallStatus"), Some("in-progress"));
    assert_eq!(start.get("Direction"), Some("outbound-api"));
    assert_eq!(start.get("To"), Some(CUSTOMER));

    // The child leg is listed under its parent.
    let (status, list) = b
        .get(&format!(
            "Calls.json?ParentCallSid={parent}&Status=in-progress"
        ))
        .await;
    assert_eq!(status, 200);
    let calls = list["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{list}");
    let child = calls[0]["sid"].as_str().unwrap().to_owned();
    assert_eq!(calls[0]["parent_call_sid"], parent.as_str());
    assert_eq!(calls[0]["from"], CALLER_ID);
    assert_eq!(calls[0]["direction"], "outbound-dial");
    let seen = b.sim.call(&child).unwrap();
    assert_eq!(
        (seen.parent.as_deref(), seen.to.as_str(), seen.status),
        (Some(parent.as_str()), TARGET, LegStatus::InProgress)
    );
    assert_eq!(b.sim.calls().len(), 2);

    assert!(b.sim.hang_up(TARGET));
    let after = b.wait_for_hook("/after-dial", 1).await;
    assert_eq!(after[0].get("CallSid"), Some(parent.as_str()));
    assert_eq!(after[0].get("DialCallStatus"), Some("completed"));
    assert_eq!(after[0].get("DialCallSid"), Some(child.as_str()));
    assert!(after[0].get("DialCallDuration").is_some());

    // The action's <Hangup/> ends the parent.
    b.wait_for("parent ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert!(b.sim.connections().is_empty());
    assert_eq!(
        b.sim.situation(CUSTOMER),
        Situation::Ended(EndReason::Twiml)
    );
    // Ended by the application with a spoken message after the other side
    // left, within the grace: a clean ending.
    assert_eq!(
        b.sim.stranded(CUSTOMER, Duration::from_secs(5)),
        Vec::<String>::new()
    );

    let child_events = b.wait_for_hook("/child-status", 4).await;
    assert_eq!(
        callbacks_of(&child_events, &child),
        pairs(&[
            ("0", "initiated"),
            ("1", "ringing"),
            ("2", "in-progress"),
            ("3", "completed")
        ])
    );
    for hook in &child_events {
        assert_eq!(hook.get("ParentCallSid"), Some(parent.as_str()));
        assert_eq!(hook.get("CallbackSource"), Some("call-progress-events"));
        assert_eq!(hook.get("Direction"), Some("outbound-dial"));
        assert!(hook.get("Timestamp").is_some_and(|t| t.ends_with("+0000")));
    }
    let parent_events = b.wait_for_hook("/status", 4).await;
    assert_eq!(
        callbacks_of(&parent_events, &parent),
        pairs(&[
            ("0", "initiated"),
            ("1", "ringing"),
            ("2", "in-progress"),
            ("3", "completed")
        ])
    );
    b.assert_clean();
}

#[tokio::test]
async fn redirecting_the_child_ends_the_parents_dial_with_its_action() {
    let b = bench().await;
    let action = b.app.url("/after-dial");
    b.app.twiml(
        "/start",
        &format!(r#"<Dial action="{action}"><Number>{TARGET}</Number></Dial>"#),
    );
    b.app.twiml(
        "/after-dial",
        r#"<Play loop="0">https://example.com/hold.mp3</Play>"#,
    );
    b.app.twiml("/elsewhere", "<Pause length=\"60\"/>");
    let parent = b.call(CUSTOMER, "/start").await;
    b.wait_for("bridge", |s| !s.connections().is_empty()).await;
    let (_, list) = b.get(&format!("Calls.json?ParentCallSid={parent}")).await;
    let child = list["calls"][0]["sid"].as_str().unwrap().to_owned();

    let elsewhere = b.app.url("/elsewhere");
    let (status, updated) = b
        .post(
            &format!("Calls/{child}.json"),
            &[("Url", &elsewhere), ("Method", "POST")],
        )
        .await;
    assert_eq!(status, 200, "{updated}");

    let after = b.wait_for_hook("/after-dial", 1).await;
    assert_eq!(after[0].get("DialCallStatus"), Some("completed"));
    assert_eq!(after[0].get("DialCallSid"), Some(child.as_str()));
    let redirected = b.wait_for_hook("/elsewhere", 1).await;
    assert_eq!(redirected[0].get("CallSid"), Some(child.as_str()));
    assert_eq!(redirected[0].get("ParentCallSid"), Some(parent.as_str()));
    // Both legs live on, apart.
    assert!(b.sim.connections().is_empty());
    assert_eq!(b.sim.status_of(CUSTOMER), Some(LegStatus::InProgress));
    assert_eq!(b.sim.status_of(TARGET), Some(LegStatus::InProgress));

    // Status=completed hangs up a live call; canceled leaves it alone.
    let (_, canceled) = b
        .post(&format!("Calls/{parent}.json"), &[("Status", "canceled")])
        .await;
    assert_eq!(canceled["status"], "in-progress");
    let (status, _) = b
        .post(&format!("Calls/{parent}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 200);
    b.wait_for("parent hung up", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    let (_, fetched) = b.get(&format!("Calls/{parent}.json")).await;
    assert_eq!(fetched["status"], "completed");
    b.assert_clean();
}

#[tokio::test]
async fn conference_ends_for_everyone_when_the_end_on_exit_member_leaves() {
    let b = bench().await;
    let room_events = b.app.url("/room-events");
    let after = b.app.url("/after-room");
    b.app.twiml(
        "/agent",
        &format!(
            r#"<Dial><Conference endConferenceOnExit="true" participantLabel="agent" statusCallback="{room_events}" statusCallbackEvent="start end join leave">room-1</Conference></Dial>"#
        ),
    );
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial action="{after}"><Conference participantLabel="customer" startConferenceOnEnter="false" waitUrl="{wait}">room-1</Conference></Dial>"#,
            wait = b.app.url("/wait")
        ),
    );
    b.app
        .twiml("/wait", "<Play>https://example.com/music.mp3</Play>");
    b.app.twiml("/after-room", "<Say>The agent left</Say>");
    b.sim.watch(CUSTOMER);
    let agent = b.call(AGENT, "/agent").await;
    b.wait_for("agent in room", |s| {
        s.connections()
            .iter()
            .any(|c| matches!(c, Connection::Room { members, .. } if members == &[AGENT]))
    })
    .await;
    let customer = b.call(CUSTOMER, "/customer").await;
    b.wait_for("both in room", |s| {
        s.connections()
            == [Connection::Room {
                name: "room-1".into(),
                members: vec![AGENT.into(), CUSTOMER.into()],
                ringing: vec![],
            }]
    })
    .await;
    assert_eq!(b.sim.situation(CUSTOMER), Situation::Connected);
    let (_, rooms) = b
        .get("Conferences.json?FriendlyName=room-1&Status=in-progress")
        .await;
    let conference = rooms["conferences"][0]["sid"].as_str().unwrap().to_owned();
    assert!(conference.starts_with("CF") && conference.len() == 34);

    assert!(b.sim.hang_up(AGENT));
    let after = b.wait_for_hook("/after-room", 1).await;
    assert_eq!(after[0].get("CallSid"), Some(customer.as_str()));
    // Twilio: a dialed conference reports `answered`, with neither
    // DialCallSid nor DialCallDuration.
    assert_eq!(after[0].get("DialCallStatus"), Some("answered"));
    assert_eq!(after[0].get("DialCallSid"), None);
    assert_eq!(after[0].get("DialCallDuration"), None);
    b.wait_for("customer ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert!(b.sim.connections().is_empty());

    let events = b.wait_for_hook("/room-events", 6).await;
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|h| {
            (
                h.get("SequenceNumber").unwrap().to_owned(),
                h.get("StatusCallbackEvent").unwrap().to_owned(),
                h.get("ParticipantLabel").unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("0", "participant-join", "agent"),
        ("1", "participant-join", "customer"),
        ("2", "conference-start", ""),
        ("3", "participant-leave", "agent"),
        ("4", "participant-leave", "customer"),
        ("5", "conference-end", ""),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert!(
        events
            .iter()
            .all(|h| h.get("ConferenceSid") == Some(conference.as_str())
                && h.get("FriendlyName") == Some("room-1"))
    );
    // Participant events say who and how; leave explains itself; end says
    // why and who ended it.
    let join = &events[0];
    assert_eq!(join.get("CallSid"), Some(agent.as_str()));
    assert_eq!(join.get("EndConferenceOnExit"), Some("true"));
    assert_eq!(join.get("StartConferenceOnEnter"), Some("true"));
    assert_eq!(join.get("Muted"), Some("false"));
    assert_eq!(join.get("Hold"), Some("false"));
    assert_eq!(join.get("Coaching"), Some("false"));
    assert_eq!(events[1].get("StartConferenceOnEnter"), Some("false"));
    assert_eq!(events[2].get("CallSid"), None);
    assert_eq!(events[3].get("ParticipantCallStatus"), Some("completed"));
    assert_eq!(
        events[3].get("ReasonParticipantLeft"),
        Some("participant_hung_up")
    );
    assert_eq!(events[4].get("CallSid"), Some(customer.as_str()));
    assert_eq!(events[4].get("ParticipantCallStatus"), Some("in-progress"));
    assert_eq!(
        events[4].get("ReasonParticipantLeft"),
        Some("moderator_ended_conference")
    );
    let end = &events[5];
    assert_eq!(
        end.get("ReasonConferenceEnded"),
        Some("participant-with-end-conference-on-exit-left")
    );
    assert_eq!(end.get("CallSidEndingConference"), Some(agent.as_str()));
    assert_eq!(end.get("ParticipantLabelEndingConference"), Some("agent"));
    // The agent waited alone with no waitUrl: Twilio's default music. The
    // customer joined a started room and never waited.
    assert!(b.sim.heard_default_music(AGENT));
    assert!(!b.sim.heard_default_music(CUSTOMER));
    let (_, ended) = b.get("Conferences.json?FriendlyName=room-1").await;
    assert_eq!(ended["conferences"][0]["status"], "completed");
    b.assert_clean();
}

#[tokio::test]
async fn a_busy_participant_reports_busy_and_never_joins() {
    let b = bench().await;
    b.sim.script(TARGET, Script::busy());
    b.app.twiml(
        "/customer",
        r#"<Dial><Conference startConferenceOnEnter="true">room-2</Conference></Dial>"#,
    );
    b.call(CUSTOMER, "/customer").await;
    b.wait_for("customer in room", |s| !s.connections().is_empty())
        .await;

    let events = b.app.url("/participant-status");
    let (status, participant) = b
        .post(
            "Conferences/room-2/Participants.json",
            &[
                ("From", CALLER_ID),
                ("To", TARGET),
                ("Label", "target"),
                ("EarlyMedia", "true"),
                ("Beep", "false"),
                ("EndConferenceOnExit", "false"),
                ("StatusCallback", &events),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
                ("Timeout", "20"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{participant}");
    assert_eq!(participant["label"], "target");
    let call_sid = participant["call_sid"].as_str().unwrap().to_owned();
    assert!(
        participant["conference_sid"]
            .as_str()
            .unwrap()
            .starts_with("CF")
    );

    let hooks = b.wait_for_hook("/participant-status", 3).await;
    assert_eq!(
        callbacks_of(&hooks, &call_sid),
        pairs(&[("0", "initiated"), ("1", "ringing"), ("2", "busy")])
    );
    assert_eq!(b.sim.status_of(TARGET), Some(LegStatus::Busy));
    assert_eq!(
        b.sim.connections(),
        [Connection::Room {
            name: "room-2".into(),
            members: vec![CUSTOMER.into()],
            ringing: vec![],
        }]
    );
    b.assert_clean();
}

#[tokio::test]
async fn requests_outside_the_openapi_contract_are_rejected_and_recorded() {
    let b = bench().await;
    let url = b.app.url("/start");
    let (status, error) = b
        .post(
            "Calls.json",
            &[
                ("To", CUSTOMER),
                ("From", CALLER_ID),
                ("Url", &url),
                ("Colour", "blue"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["status"], 400);
    assert!(
        error["message"].as_str().unwrap().contains("Colour"),
        "{error}"
    );
    let violations = b.sim.contract_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("Colour"));
    assert_eq!(b.sim.calls_to(CUSTOMER), 0);

    // Wrong credentials and unknown calls answer as Twilio does.
    let response = b
        .http
        .get(b.api("Calls.json"))
        .basic_auth(&b.config_sid, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (status, missing) = b.get("Calls/CA0123456789abcdef0123456789abcdef.json").await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], 20404);
}

#[tokio::test]
async fn injected_faults_answer_the_next_requests_then_stop() {
    let b = bench().await;
    b.app.twiml("/start", "<Pause length=\"60\"/>");
    b.sim
        .fail_next(Operation::CreateCall, 2, 429, 20429, "Too Many Requests");
    let url = b.app.url("/start");
    let form = [("To", CUSTOMER), ("From", CALLER_ID), ("Url", url.as_str())];
    for _ in 0..2 {
        let (status, error) = b.post("Calls.json", &form).await;
        assert_eq!(status, 429);
        assert_eq!(error["code"], 20429);
        assert_eq!(
            error["more_info"],
            "https://www.twilio.com/docs/errors/20429"
        );
    }
    assert_eq!(b.sim.calls_to(CUSTOMER), 0);
    let (status, _) = b.post("Calls.json", &form).await;
    assert_eq!(status, 201);
    b.wait_for_hook("/start", 1).await;
    b.assert_clean();
}

#[tokio::test]
async fn invalid_twiml_or_a_failing_webhook_ends_the_leg_with_an_application_error() {
    let b = bench().await;
    b.app
        .reply("/broken", 200, "<Response><Dial><Nonsense/></Response>");
    b.app.reply("/down", 500, "oops");
    b.sim.watch(CUSTOMER);
    b.call(CUSTOMER, "/broken").await;
    b.wait_for("leg ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert_eq!(
        b.sim.situation(CUSTOMER),
        Situation::Ended(EndReason::ApplicationError)
    );
    let errors = b.sim.application_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("/broken"));

    b.call(AGENT, "/down").await;
    b.wait_for("second leg ends", |s| {
        s.status_of(AGENT) == Some(LegStatus::Completed)
    })
    .await;
    let errors = b.sim.application_errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[1].contains("/down") && errors[1].contains("500"));
    assert!(b.sim.timeline_text().contains("application error"));
    b.assert_clean();
}

#[tokio::test]
async fn unanswered_dial_reports_no_answer_to_the_action_after_the_timeout() {
    let b = bench().await;
    b.sim.script(TARGET, Script::no_answer());
    let action = b.app.url("/after-dial");
    b.app.twiml(
        "/start",
        &format!(r#"<Dial action="{action}" timeout="10"><Number>{TARGET}</Number></Dial>"#),
    );
    b.app.twiml("/after-dial", "<Hangup/>");
    b.call(CUSTOMER, "/start").await;
    let after = b.wait_for_hook("/after-dial", 1).await;
    assert_eq!(after[0].get("DialCallStatus"), Some("no-answer"));
    b.wait_for("target leg over", |s| {
        s.status_of(TARGET).is_some_and(|st| st.is_final())
    })
    .await;
    b.assert_clean();
}

/// The `StatusCallbackEvent`s a conference callback path received, in order.
fn events_of(hooks: &[Hook]) -> Vec<String> {
    hooks
        .iter()
        .map(|h| h.get("StatusCallbackEvent").unwrap_or("").to_owned())
        .collect()
}

impl Bench {
    /// The SID of the live conference of that name.
    async fn conference(&self, name: &str) -> String {
        let (_, rooms) = self
            .get(&format!("Conferences.json?FriendlyName={name}"))
            .await;
        rooms["conferences"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|c| c["status"] != "completed")
            .and_then(|c| c["sid"].as_str())
            .unwrap()
            .to_owned()
    }

    /// Whether the room holds exactly these members, in any order.
    fn in_room(&self, name: &str, members: &[&str]) -> bool {
        let mut expected: Vec<&str> = members.to_vec();
        expected.sort();
        self.sim.connections().iter().any(|c| match c {
            Connection::Room {
                name: n,
                members: m,
                ..
            } if n == name => {
                let mut m: Vec<&str> = m.iter().map(String::as_str).collect();
                m.sort();
                m == expected
            }
            _ => false,
        })
    }
}

#[tokio::test]
async fn a_conference_starts_with_two_participants_one_of_them_a_starter() {
    let b = bench().await;
    let events = b.app.url("/room-events");
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial><Conference startConferenceOnEnter="false" waitUrl="" statusCallback="{events}" statusCallbackEvent="start end join leave">room-s</Conference></Dial>"#
        ),
    );
    b.app.twiml(
        "/agent",
        r#"<Dial><Conference startConferenceOnEnter="false" waitUrl="">room-s</Conference></Dial>"#,
    );
    b.app.twiml(
        "/target",
        r#"<Dial><Conference waitUrl="">room-s</Conference></Dial>"#,
    );
    b.sim.watch(CUSTOMER);
    b.call(CUSTOMER, "/customer").await;
    b.wait_for("customer in room", |_| b.in_room("room-s", &[CUSTOMER]))
        .await;
    b.wait_for_hook("/room-events", 1).await;
    assert_eq!(b.sim.situation(CUSTOMER), Situation::Alone);

    // Two participants, neither a starter: still not started.
    b.call(AGENT, "/agent").await;
    b.wait_for("agent in room", |_| b.in_room("room-s", &[CUSTOMER, AGENT]))
        .await;
    b.wait_for_hook("/room-events", 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        events_of(&b.app.hooks("/room-events")),
        ["participant-join", "participant-join"]
    );
    assert_eq!(b.sim.situation(CUSTOMER), Situation::Alone);
    let conference = b.conference("room-s").await;
    let (_, room) = b.get(&format!("Conferences/{conference}.json")).await;
    assert_eq!(room["status"], "init");

    // A starter joins: the conference starts, and everyone talks.
    b.call(TARGET, "/target").await;
    b.wait_for_hook("/room-events", 4).await;
    assert_eq!(
        events_of(&b.app.hooks("/room-events")),
        [
            "participant-join",
            "participant-join",
            "participant-join",
            "conference-start"
        ]
    );
    b.wait_for("customer talks", |s| {
        s.situation(CUSTOMER) == Situation::Connected
    })
    .await;
    let (_, room) = b.get(&format!("Conferences/{conference}.json")).await;
    assert_eq!(room["status"], "in-progress");
    assert!(!b.sim.heard_default_music(CUSTOMER));
    b.assert_clean();
}

#[tokio::test]
async fn wait_audio_is_default_music_silence_or_the_wait_url_fetched_with_its_method() {
    let b = bench().await;
    let wait = b.app.url("/wait");
    let wait_get = b.app.url("/wait-get");
    b.app.twiml(
        "/default",
        "<Dial><Conference>room-default</Conference></Dial>",
    );
    b.app.twiml(
        "/silent",
        r#"<Dial><Conference waitUrl="">room-silent</Conference></Dial>"#,
    );
    b.app.twiml(
        "/posted",
        &format!(r#"<Dial><Conference waitUrl="{wait}">room-posted</Conference></Dial>"#),
    );
    b.app.twiml(
        "/got",
        &format!(
            r#"<Dial><Conference waitUrl="{wait_get}" waitMethod="GET">room-got</Conference></Dial>"#
        ),
    );
    b.app.twiml(
        "/wait",
        r#"<Play loop="0">https://example.com/a.mp3</Play>"#,
    );
    b.app.reply("/wait-get", 200, "ID3 not really an mp3");
    for number in [CUSTOMER, AGENT, TARGET, "+15550200004"] {
        b.sim.watch(number);
    }
    b.sim.script(
        "+15550200004",
        Script::answer_after(Duration::from_millis(200)),
    );
    b.call(CUSTOMER, "/default").await;
    b.call(AGENT, "/silent").await;
    let posted = b.call(TARGET, "/posted").await;
    let got = b.call("+15550200004", "/got").await;

    let wait_hooks = b.wait_for_hook("/wait", 1).await;
    assert_eq!(wait_hooks[0].method, "POST");
    assert_eq!(wait_hooks[0].get("CallSid"), Some(posted.as_str()));
    let get_hooks = b.wait_for_hook("/wait-get", 1).await;
    assert_eq!(get_hooks[0].method, "GET");
    assert_eq!(get_hooks[0].get("CallSid"), Some(got.as_str()));
    b.wait_for("default music", |s| s.heard_default_music(CUSTOMER))
        .await;
    assert!(!b.sim.heard_default_music(AGENT));
    assert!(!b.sim.heard_default_music(TARGET));
    assert!(!b.sim.heard_default_music("+15550200004"));
    let problems = b.sim.problems(CUSTOMER, Duration::from_secs(60));
    assert!(
        problems.iter().any(|p| p.contains("default music")),
        "{problems:?}"
    );
    assert_eq!(
        b.sim.problems(AGENT, Duration::from_secs(60)),
        Vec::<String>::new()
    );
    // All four wait alone: each is Alone, not Connected.
    assert_eq!(b.sim.situation(AGENT), Situation::Alone);
    assert!(b.sim.application_errors().is_empty());
    b.assert_clean();
}

#[tokio::test]
async fn a_failing_wait_url_drops_the_participant_to_its_next_verb() {
    let b = bench().await;
    let wait = b.app.url("/wait-down");
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial><Conference waitUrl="{wait}">room-w</Conference></Dial><Say>Sorry</Say><Redirect>/next</Redirect>"#
        ),
    );
    b.app.reply("/wait-down", 500, "oops");
    b.app.twiml("/next", "<Hangup/>");
    b.sim.watch(CUSTOMER);
    let customer = b.call(CUSTOMER, "/customer").await;
    // The relative <Redirect> is resolved against the document's URL.
    let next = b.wait_for_hook("/next", 1).await;
    assert_eq!(next[0].get("CallSid"), Some(customer.as_str()));
    b.wait_for("customer ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert!(b.sim.connections().is_empty());
    let errors = b.sim.application_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("/wait-down"), "{errors:?}");
    // The default policy does not retry a 500.
    assert_eq!(b.app.hooks("/wait-down").len(), 1);
    let problems = b.sim.problems(CUSTOMER, Duration::from_secs(60));
    assert!(
        problems.iter().any(|p| p.contains("application error")),
        "{problems:?}"
    );
    b.assert_clean();
}

#[tokio::test]
async fn a_rest_participant_created_first_fixes_the_conference_callback() {
    let b = bench().await;
    b.sim
        .script(TARGET, Script::answer_after(Duration::from_secs(10)));
    b.sim.script("+15550200004", Script::busy());
    let rest_events = b.app.url("/rest-room");
    let twiml_events = b.app.url("/twiml-room");
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial><Conference waitUrl="" participantLabel="customer" statusCallback="{twiml_events}" statusCallbackEvent="start end join leave">room-r</Conference></Dial><Say>The call is over</Say><Hangup/>"#
        ),
    );
    b.sim.watch(CUSTOMER);

    // The participant's phone rings: the room and its callback exist already.
    let (status, participant) = b
        .post(
            "Conferences/room-r/Participants.json",
            &[
                ("From", CALLER_ID),
                ("To", TARGET),
                ("Label", "target"),
                ("ConferenceStatusCallback", &rest_events),
                ("ConferenceStatusCallbackEvent", "start"),
                ("ConferenceStatusCallbackEvent", "end"),
                ("ConferenceStatusCallbackEvent", "join"),
                ("ConferenceStatusCallbackEvent", "leave"),
                ("ConferenceStatusCallbackEvent", "modify"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{participant}");
    assert_eq!(participant["status"], "queued");
    let target_sid = participant["call_sid"].as_str().unwrap().to_owned();
    let conference = participant["conference_sid"].as_str().unwrap().to_owned();
    let customer = b.call(CUSTOMER, "/customer").await;
    b.wait_for("customer in room, target ringing", |s| {
        s.connections()
            == [Connection::Room {
                name: "room-r".into(),
                members: vec![CUSTOMER.into()],
                ringing: vec![TARGET.into()],
            }]
    })
    .await;
    // Someone rings into the room with early media: the customer waits, attended.
    b.wait_for("waiting", |s| s.situation(CUSTOMER) == Situation::Waiting)
        .await;

    // Live participants, ringing ones included; a ringing one cannot be updated.
    let (_, list) = b
        .get(&format!("Conferences/{conference}/Participants.json"))
        .await;
    assert_eq!(list["participants"].as_array().unwrap().len(), 2, "{list}");
    let (status, fetched) = b
        .get(&format!(
            "Conferences/{conference}/Participants/target.json"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "ringing");
    let (status, refused) = b
        .post(
            &format!("Conferences/{conference}/Participants/target.json"),
            &[("EndConferenceOnExit", "true")],
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["message"], "Participant is not connected");
    assert_eq!(b.sim.requests(Operation::UpdateParticipant), 1);

    // The target answers: the conference starts, on the REST callback only.
    b.sim.script(TARGET, Script::answer_after(Duration::ZERO));
    b.wait_for("target in room", |_| {
        b.in_room("room-r", &[CUSTOMER, TARGET])
    })
    .await;
    b.wait_for("customer talks", |s| {
        s.situation(CUSTOMER) == Situation::Connected
    })
    .await;
    let (status, updated) = b
        .post(
            &format!("Conferences/{conference}/Participants/{target_sid}.json"),
            &[("EndConferenceOnExit", "true")],
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["end_conference_on_exit"], true);
    assert_eq!(updated["status"], "connected");

    // A busy participant leaves without having joined.
    let (status, _) = b
        .post(
            &format!("Conferences/{conference}/Participants.json"),
            &[("From", CALLER_ID), ("To", "+15550200004")],
        )
        .await;
    assert_eq!(status, 201);
    b.wait_for("busy", |s| {
        s.status_of("+15550200004") == Some(LegStatus::Busy)
    })
    .await;

    // The target leaves: the conference ends; the customer's <Dial> is over
    // and its next verbs run.
    assert!(b.sim.hang_up(TARGET));
    b.wait_for("customer ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert_eq!(
        b.sim.situation(CUSTOMER),
        Situation::Ended(EndReason::Twiml)
    );
    assert!(b.sim.timeline_text().contains("says: The call is over"));
    // Told, then hung up by the application within the grace: clean.
    assert_eq!(
        b.sim.problems(CUSTOMER, Duration::from_secs(5)),
        Vec::<String>::new()
    );

    let events = b.wait_for_hook("/rest-room", 8).await;
    assert!(b.app.hooks("/twiml-room").is_empty());
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|h| {
            (
                h.get("StatusCallbackEvent").unwrap().to_owned(),
                h.get("ParticipantLabel").unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("participant-join", "customer"),
        ("participant-join", "target"),
        ("conference-start", ""),
        ("participant-modify", "target"),
        ("participant-leave", ""),
        ("participant-leave", "target"),
        ("participant-leave", "customer"),
        ("conference-end", ""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, expected);
    let busy = &events[4];
    assert_eq!(busy.get("ParticipantCallStatus"), Some("busy"));
    assert_eq!(
        busy.get("ReasonParticipantLeft"),
        Some("participant_add_failed")
    );
    assert_eq!(events[5].get("CallSid"), Some(target_sid.as_str()));
    assert_eq!(
        events[5].get("ReasonParticipantLeft"),
        Some("participant_hung_up")
    );
    assert_eq!(events[6].get("CallSid"), Some(customer.as_str()));
    assert_eq!(
        events[7].get("CallSidEndingConference"),
        Some(target_sid.as_str())
    );
    assert_eq!(
        events[7].get("ReasonConferenceEnded"),
        Some("participant-with-end-conference-on-exit-left")
    );
    // A participant of an ended conference is gone.
    let (status, gone) = b
        .get(&format!(
            "Conferences/{conference}/Participants/target.json"
        ))
        .await;
    assert_eq!((status, gone["code"].as_u64()), (404, Some(20404)));
    b.assert_clean();
}

#[tokio::test]
async fn ending_the_conference_via_the_api_or_redirecting_a_member_takes_calls_out() {
    let b = bench().await;
    let events = b.app.url("/room-events");
    let after = b.app.url("/after-room");
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial action="{after}"><Conference waitUrl="" statusCallback="{events}" statusCallbackEvent="start end join leave">room-api</Conference></Dial>"#
        ),
    );
    b.app.twiml(
        "/agent",
        r#"<Dial><Conference waitUrl="">room-api</Conference></Dial><Hangup/>"#,
    );
    b.app.twiml(
        "/target",
        r#"<Dial><Conference waitUrl="">room-api</Conference></Dial>"#,
    );
    b.app.twiml("/after-room", "<Hangup/>");
    b.app.twiml("/elsewhere", r#"<Pause length="60"/>"#);
    b.call(CUSTOMER, "/customer").await;
    // The room's callback is its first participant's: the customer must be
    // in before the agent, whose TwiML names none (on a loaded machine the
    // two answered within the same millisecond, either first).
    b.wait_for("customer in room", |_| b.in_room("room-api", &[CUSTOMER]))
        .await;
    let agent = b.call(AGENT, "/agent").await;
    b.call(TARGET, "/target").await;
    b.wait_for("three in room", |s| {
        s.connections()
            .iter()
            .any(|c| matches!(c, Connection::Room { members, .. } if members.len() == 3))
    })
    .await;

    // Redirecting a member's call takes it out of the room.
    let elsewhere = b.app.url("/elsewhere");
    let (status, _) = b
        .post(&format!("Calls/{agent}.json"), &[("Url", &elsewhere)])
        .await;
    assert_eq!(status, 200);
    b.wait_for_hook("/elsewhere", 1).await;
    assert_eq!(b.sim.redirects_of(AGENT), 1);
    b.wait_for("agent out", |_| b.in_room("room-api", &[CUSTOMER, TARGET]))
        .await;

    let conference = b.conference("room-api").await;
    let (status, ended) = b
        .post(
            &format!("Conferences/{conference}.json"),
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    let after = b.wait_for_hook("/after-room", 1).await;
    assert_eq!(after[0].get("DialCallStatus"), Some("answered"));
    let hooks = b.wait_for_hook("/room-events", 8).await;
    let leave = hooks
        .iter()
        .find(|h| {
            h.get("CallSid") == Some(agent.as_str())
                && h.get("StatusCallbackEvent") == Some("participant-leave")
        })
        .unwrap();
    assert_eq!(
        leave.get("ReasonParticipantLeft"),
        Some("participant_updated_via_api")
    );
    let end = hooks.last().unwrap();
    assert_eq!(end.get("StatusCallbackEvent"), Some("conference-end"));
    assert_eq!(
        end.get("ReasonConferenceEnded"),
        Some("conference-ended-via-api")
    );
    assert!(
        hooks
            .iter()
            .any(|h| h.get("ReasonParticipantLeft") == Some("conference_ended_via_api"))
    );
    b.assert_clean();
}

#[tokio::test]
async fn call_updates_follow_the_call_state() {
    let b = bench().await;
    b.sim
        .script(CUSTOMER, Script::answer_after(Duration::from_secs(10)));
    b.app.twiml("/start", r#"<Pause length="60"/>"#);
    let sid = b.call(CUSTOMER, "/start").await;
    b.wait_for("ringing", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Ringing)
    })
    .await;
    let url = b.app.url("/elsewhere");
    let (status, refused) = b.post(&format!("Calls/{sid}.json"), &[("Url", &url)]).await;
    assert_eq!((status, refused["code"].as_u64()), (400, Some(21220)));
    assert_eq!(b.sim.redirects_of(CUSTOMER), 0);
    let (status, _) = b
        .post(&format!("Calls/{sid}.json"), &[("Status", "canceled")])
        .await;
    assert_eq!(status, 200);
    b.wait_for("canceled", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Canceled)
    })
    .await;
    assert_eq!(b.sim.requests(Operation::UpdateCall), 2);
    b.assert_clean();
}

#[tokio::test]
async fn webhooks_carry_twilios_headers_and_retry_as_the_url_fragment_says() {
    let b = bench().await;
    // Default policy: a 500 is not retried; the fragment asks for 5xx retries.
    b.app.replies(
        "/flaky",
        &[
            (500, "no"),
            (503, "no"),
            (
                200,
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="60"/></Response>"#,
            ),
        ],
    );
    let flaky = format!("{}#rc=3&rp=ct,5xx", b.app.url("/flaky"));
    let callback = b.app.url("/status-500");
    b.app.reply("/status-500", 500, "no");
    b.app.reply("/status-429", 429, "slow down");
    let (status, call) = b
        .post(
            "Calls.json",
            &[
                ("To", CUSTOMER),
                ("From", CALLER_ID),
                ("Url", &flaky),
                ("StatusCallback", &callback),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "answered"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{call}");
    let attempts = b.wait_for_hook("/flaky", 3).await;
    // One event: the same idempotency token on every attempt; the fragment
    // was neither sent nor signed (assert_clean checks the signatures).
    assert!(attempts.iter().all(|h| h.token == attempts[0].token));
    assert!(!attempts[0].url.contains('#'));
    b.wait_for("in progress", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::InProgress)
    })
    .await;
    let status_hooks = b.wait_for_hook("/status-500", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Each callback once (no retry on 5xx by default), each its own token.
    assert_eq!(b.app.hooks("/status-500").len(), 2);
    assert_ne!(status_hooks[0].token, status_hooks[1].token);
    assert!(b.sim.application_errors().is_empty());

    // A 429 is never retried, whatever the fragment says.
    let limited = format!("{}#rc=5&rp=all", b.app.url("/status-429"));
    let url = b.app.url("/flaky");
    let (status, _) = b
        .post(
            "Calls.json",
            &[
                ("To", AGENT),
                ("From", CALLER_ID),
                ("Url", &url),
                ("StatusCallback", &limited),
                ("StatusCallbackEvent", "initiated"),
            ],
        )
        .await;
    assert_eq!(status, 201);
    b.wait_for_hook("/status-429", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.app.hooks("/status-429").len(), 1);
    b.assert_clean();
}

#[tokio::test]
async fn the_fallback_url_answers_when_the_twiml_fails() {
    let b = bench().await;
    b.app.reply("/down", 500, "oops");
    b.app
        .twiml("/fallback", "<Say>Sorry, one moment</Say><Hangup/>");
    let (url, fallback) = (b.app.url("/down"), b.app.url("/fallback"));
    let (status, _) = b
        .post(
            "Calls.json",
            &[
                ("To", CUSTOMER),
                ("From", CALLER_ID),
                ("Url", &url),
                ("FallbackUrl", &fallback),
            ],
        )
        .await;
    assert_eq!(status, 201);
    let hooks = b.wait_for_hook("/fallback", 1).await;
    assert_eq!(hooks[0].get("ErrorCode"), Some("11200"));
    assert_eq!(hooks[0].get("ErrorUrl"), Some(url.as_str()));
    b.wait_for("ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    assert_eq!(
        b.sim.situation(CUSTOMER),
        Situation::Ended(EndReason::Twiml)
    );
    assert!(b.sim.application_errors().is_empty());
    b.assert_clean();
}

#[tokio::test]
async fn faults_can_apply_a_request_then_fail_or_answer_late() {
    let b = bench().await;
    b.app.twiml("/start", r#"<Pause length="60"/>"#);
    b.app.twiml("/elsewhere", r#"<Pause length="60"/>"#);
    let url = b.app.url("/start");
    let form = [("To", CUSTOMER), ("From", CALLER_ID), ("Url", url.as_str())];

    // Applied, then 500: the call exists anyway.
    b.sim.fault_next(
        Operation::CreateCall,
        Fault::AppliedThenError { status: 500 },
    );
    let (status, error) = b.post("Calls.json", &form).await;
    assert_eq!((status, error["code"].as_u64()), (500, Some(20500)));
    assert_eq!(b.sim.calls_to(CUSTOMER), 1);
    assert_eq!(b.sim.requests(Operation::CreateCall), 1);
    b.wait_for("in progress", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::InProgress)
    })
    .await;
    let sid = b.sim.calls()[0].sid.clone();

    // Applied, answered late: the client gives up, the redirect happened.
    b.sim.fault_next(
        Operation::UpdateCall,
        Fault::AppliedThenTimeout(Duration::from_millis(1500)),
    );
    let elsewhere = b.app.url("/elsewhere");
    let sent = b
        .http
        .post(b.api(&format!("Calls/{sid}.json")))
        .basic_auth(&b.config_sid, Some(&b.token))
        .form(&[("Url", elsewhere.as_str())])
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    b.wait_for_hook("/elsewhere", 1).await;
    assert_eq!(b.sim.redirects_of(CUSTOMER), 1);

    // Refused: nothing happens.
    b.sim.fault_next(
        Operation::UpdateCall,
        Fault::Refuse {
            status: 503,
            code: 20503,
            message: "Service Unavailable".into(),
        },
    );
    let (status, _) = b
        .post(&format!("Calls/{sid}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 503);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.sim.status_of(CUSTOMER), Some(LegStatus::InProgress));
    assert_eq!(b.sim.requests(Operation::UpdateCall), 2);
    b.assert_clean();
}

#[tokio::test]
async fn callbacks_can_be_lost_delayed_past_later_ones_or_duplicated() {
    let b = bench().await;
    b.app.twiml("/start", "<Hangup/>");
    b.sim.on_callback(|info| {
        (info.kind == CallbackKind::Call && info.number.as_deref() == Some(CUSTOMER))
            .then_some(())?;
        match info.event.as_str() {
            "initiated" => Some(CallbackFault::Duplicate),
            "ringing" => Some(CallbackFault::Lose),
            "in-progress" => Some(CallbackFault::Delay(Duration::from_millis(500))),
            _ => None,
        }
    });
    let sid = b.call(CUSTOMER, "/start").await;
    let hooks = b.wait_for_hook("/status", 4).await;
    assert_eq!(
        callbacks_of(&hooks, &sid),
        pairs(&[
            ("0", "initiated"),
            ("0", "initiated"),
            ("3", "completed"),
            ("2", "in-progress")
        ])
    );
    assert_eq!(hooks[0].token, hooks[1].token);
    assert_ne!(hooks[0].token, hooks[2].token);
    b.assert_clean();
}

#[tokio::test]
async fn an_application_hang_up_without_a_word_strands_the_customer() {
    let b = bench().await;
    let action = b.app.url("/after-dial");
    b.app.twiml(
        "/start",
        &format!(r#"<Dial action="{action}"><Number>{TARGET}</Number></Dial>"#),
    );
    b.app.twiml("/after-dial", "<Hangup/>");
    b.sim.watch(CUSTOMER);
    b.call(CUSTOMER, "/start").await;
    b.wait_for("bridge", |s| s.situation(CUSTOMER) == Situation::Connected)
        .await;
    assert!(b.sim.hang_up(TARGET));
    b.wait_for("ends", |s| {
        s.status_of(CUSTOMER) == Some(LegStatus::Completed)
    })
    .await;
    let stranded = b.sim.stranded(CUSTOMER, Duration::from_secs(5));
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    assert!(stranded[0].contains("disconnected"));
    b.assert_clean();
}

#[tokio::test]
async fn a_coach_is_heard_by_the_coached_only_and_never_added_to_a_held_participant() {
    const SUPERVISOR: &str = "+15550200005";
    let b = bench().await;
    b.sim
        .script(SUPERVISOR, Script::answer_after(Duration::from_millis(200)));
    let events = b.app.url("/room-events");
    b.app.twiml(
        "/customer",
        &format!(
            r#"<Dial><Conference waitUrl="" participantLabel="customer" statusCallback="{events}" statusCallbackEvent="start end join leave mute hold modify">room-c</Conference></Dial>"#
        ),
    );
    b.app.twiml(
        "/agent",
        r#"<Dial><Conference waitUrl="" participantLabel="agent">room-c</Conference></Dial>"#,
    );
    b.sim.watch(CUSTOMER);
    b.call(CUSTOMER, "/customer").await;
    b.wait_for("customer in room", |_| b.in_room("room-c", &[CUSTOMER]))
        .await;
    let agent = b.call(AGENT, "/agent").await;
    b.wait_for("agent in room", |s| {
        b.in_room("room-c", &[CUSTOMER, AGENT]) && s.situation(CUSTOMER) == Situation::Connected
    })
    .await;
    let conference = b.conference("room-c").await;
    let participants = format!("Conferences/{conference}/Participants.json");
    let agent_path = format!("Conferences/{conference}/Participants/{agent}.json");

    // Coaching needs someone to coach; the coached must be in the room and
    // not on hold (16028, 16027). None of these dials anyone.
    let supervisor = [("From", CALLER_ID), ("To", SUPERVISOR)];
    let refused = [
        (vec![("Coaching", "true")], 21200),
        (
            vec![("CallSidToCoach", "CA0000000000000000000000000000000a")],
            16028,
        ),
    ];
    for (fields, code) in refused {
        let form: Vec<(&str, &str)> = supervisor.iter().copied().chain(fields).collect();
        let (status, body) = b.post(&participants, &form).await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(code)), "{body}");
    }
    let (status, _) = b.post(&agent_path, &[("Hold", "true")]).await;
    assert_eq!(status, 200);
    let coach_agent: Vec<(&str, &str)> = supervisor
        .iter()
        .copied()
        .chain([("Coaching", "true"), ("CallSidToCoach", agent.as_str())])
        .collect();
    let (status, body) = b.post(&participants, &coach_agent).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(16027)),
        "{body}"
    );
    assert_eq!(
        body["message"], "Participant to be whispered is on hold",
        "{body}"
    );
    assert_eq!(
        b.sim.calls_to(SUPERVISOR),
        0,
        "a refused create dials nobody"
    );
    let (status, _) = b.post(&agent_path, &[("Hold", "false")]).await;
    assert_eq!(status, 200);

    // Listen: muted, the supervisor hears both and neither hears them.
    let listen: Vec<(&str, &str)> = supervisor
        .iter()
        .copied()
        .chain([("Muted", "true"), ("Label", "supervisor")])
        .collect();
    let (status, body) = b.post(&participants, &listen).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["muted"], true);
    assert_eq!(body["coaching"], false);
    let sup_path = format!("Conferences/{conference}/Participants/supervisor.json");
    b.wait_for("supervisor in room", |_| {
        b.in_room("room-c", &[CUSTOMER, AGENT, SUPERVISOR])
    })
    .await;
    assert!(b.sim.hears(SUPERVISOR, CUSTOMER) && b.sim.hears(SUPERVISOR, AGENT));
    assert!(!b.sim.hears(CUSTOMER, SUPERVISOR) && !b.sim.hears(AGENT, SUPERVISOR));
    assert!(b.sim.hears(CUSTOMER, AGENT));

    // Whisper: unmuted and coaching the agent: the agent alone hears them.
    let (status, body) = b
        .post(
            &sup_path,
            &[
                ("Muted", "false"),
                ("Coaching", "true"),
                ("CallSidToCoach", agent.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["coaching"], true);
    assert_eq!(body["call_sid_to_coach"], agent.as_str());
    assert!(b.sim.hears(AGENT, SUPERVISOR));
    assert!(!b.sim.hears(CUSTOMER, SUPERVISOR));
    // Coaching a held participant is refused on update too; nothing changes.
    let (status, _) = b.post(&agent_path, &[("Hold", "true")]).await;
    assert_eq!(status, 200);
    let (status, body) = b
        .post(&sup_path, &[("CallSidToCoach", agent.as_str())])
        .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(16027)),
        "{body}"
    );
    let (status, _) = b.post(&agent_path, &[("Hold", "false")]).await;
    assert_eq!(status, 200);

    // The agent goes: a muted supervisor is no company for the customer.
    let (status, _) = b.post(&sup_path, &[("Muted", "true")]).await;
    assert_eq!(status, 200);
    assert!(b.sim.hang_up(AGENT));
    b.wait_for("customer alone with a listener", |s| {
        s.situation(CUSTOMER) == Situation::Alone
    })
    .await;
    // Barge: heard by everyone.
    let (status, body) = b
        .post(&sup_path, &[("Muted", "false"), ("Coaching", "false")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call_sid_to_coach"], Value::Null);
    b.wait_for("customer talks with the supervisor", |s| {
        s.situation(CUSTOMER) == Situation::Connected
    })
    .await;
    assert!(b.sim.hears(CUSTOMER, SUPERVISOR));

    let hooks = b.wait_for_hook("/room-events", 14).await;
    let supervisor_events: Vec<String> = hooks
        .iter()
        .filter(|h| h.get("ParticipantLabel") == Some("supervisor"))
        .map(|h| {
            format!(
                "{} muted={} coaching={}",
                h.get("StatusCallbackEvent").unwrap_or(""),
                h.get("Muted").unwrap_or(""),
                h.get("Coaching").unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        supervisor_events,
        [
            "participant-join muted=true coaching=false",
            "participant-modify muted=false coaching=true",
            "participant-unmute muted=false coaching=true",
            "participant-mute muted=true coaching=true",
            "participant-modify muted=false coaching=false",
            "participant-unmute muted=false coaching=false",
        ]
    );
    b.assert_clean();
}
