//! The reconciler end to end against dynalite (the real DynamoDB API) and a
//! stand-in Twilio (wiremock) that keeps calls, rooms and participants and
//! records every request: lost callbacks are recovered, orphans hung up,
//! lone customers released, each repair made once however many runs
//! overlap, and healthy calls left untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::leg_now as leg;
use serde_json::{Value, json};
use time::OffsetDateTime;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::*;
use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_core::endpoint::HttpEndpoint;
use warm_transfer_core::handlers::App;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, DynamoStore};
use warm_transfer_core::twilio::{RetryPolicy, TwilioClient, TwilioClientConfig};
use warm_transfer_core::usecases::reconcile::{self, RunReport};
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::store_ext::RequestTransfer;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TABLE: &str = "calls-reconciler";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const CF: &str = "CF00000000000000000000000000000001";

fn agent_sid(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

fn customer_sid(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{:032x}", 0x2000_0000 + n)).unwrap()
}

fn target_sid(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{:032x}", 0x3000_0000 + n)).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

/// What the stand-in Twilio knows.
#[derive(Default)]
struct World {
    /// Call SID -> status.
    calls: HashMap<String, String>,
    /// Call SID -> parent call SID.
    parents: HashMap<String, String>,
    /// (SID, friendly name, status).
    rooms: Vec<(String, String, String)>,
    /// Room SID -> (call SID, label, status).
    participants: HashMap<String, Vec<(String, String, String)>>,
    /// Path substring -> status to answer with instead.
    faults: Vec<(String, u16)>,
    /// Every request: method and path (with the query).
    log: Vec<(String, String, String)>,
}

#[derive(Clone)]
struct Twilio(Arc<Mutex<World>>);

fn call_json(sid: &str, status: &str, parent: Option<&String>) -> Value {
    json!({
        "sid": sid, "status": status, "account_sid": ACCOUNT,
        "parent_call_sid": parent, "to": "+15550100002", "from": "+15005550006",
        "direction": "outbound-api",
    })
}

fn error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({ "code": code, "message": message, "status": status, "more_info": null }),
    )
}

impl Respond for Twilio {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut world = self.0.lock().unwrap();
        let path = request.url.path().to_owned();
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let form: HashMap<String, String> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let method = request.method.to_string();
        world.log.push((
            method.clone(),
            path.clone(),
            String::from_utf8_lossy(&request.body).into_owned(),
        ));
        if let Some((_, status)) = world.faults.iter().find(|(p, _)| path.contains(p.as_str())) {
            return error(*status, 20500, "injected fault");
        }
        let rest = path
            .strip_prefix(&format!("/2010-04-01/Accounts/{ACCOUNT}/"))
            .unwrap_or_default()
            .to_owned();
        let parts: Vec<&str> = rest.trim_end_matches(".json").split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["Calls"]) => {
                let parent = query.get("ParentCallSid");
                let calls: Vec<Value> = world
                    .calls
                    .iter()
                    .filter(|(sid, _)| world.parents.get(*sid) == parent && parent.is_some())
                    .map(|(sid, status)| call_json(sid, status, world.parents.get(sid)))
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "calls": calls, "next_page_uri": null }))
            }
            ("GET", ["Calls", sid]) => match world.calls.get(*sid) {
                Some(status) => ResponseTemplate::new(200).set_body_json(call_json(
                    sid,
                    status,
                    world.parents.get(*sid),
                )),
                None => error(404, 20404, "not found"),
            },
            ("POST", ["Calls", sid]) => {
                let Some(status) = world.calls.get(*sid).cloned() else {
                    return error(404, 20404, "not found");
                };
                let asked = form.get("Status").map(String::as_str);
                let ringing = matches!(status.as_str(), "queued" | "initiated" | "ringing");
                let next = match (asked, status.as_str()) {
                    (Some("canceled"), _) if ringing => "canceled",
                    (Some("completed"), "in-progress") => "completed",
                    (Some("completed"), _) if ringing => "canceled",
                    (Some(_), "in-progress") => "in-progress",
                    _ => return error(400, 21220, "Call is not in-progress. Cannot redirect."),
                };
                world.calls.insert((*sid).to_owned(), next.to_owned());
                ResponseTemplate::new(200).set_body_json(call_json(sid, next, None))
            }
            ("GET", ["Conferences"]) => {
                let name = query.get("FriendlyName");
                let rooms: Vec<Value> = world
                    .rooms
                    .iter()
                    .filter(|(_, n, _)| Some(n) == name)
                    .map(|(sid, n, status)| json!({"sid": sid, "friendly_name": n, "status": status}))
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "conferences": rooms, "next_page_uri": null }))
            }
            ("POST", ["Conferences", room]) => {
                for entry in world.rooms.iter_mut().filter(|(sid, _, _)| sid == room) {
                    entry.2 = "completed".into();
                }
                world.participants.remove(*room);
                ResponseTemplate::new(200)
                    .set_body_json(json!({"sid": room, "status": "completed"}))
            }
            ("GET", ["Conferences", room, "Participants"]) => {
                let list: Vec<Value> = world
                    .participants
                    .get(*room)
                    .into_iter()
                    .flatten()
                    .map(|(call, label, status)| {
                        json!({"call_sid": call, "conference_sid": room, "label": label, "status": status})
                    })
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "participants": list, "next_page_uri": null }))
            }
            ("POST", ["Conferences", room, "Participants", who]) => {
                let found = world
                    .participants
                    .get(*room)
                    .into_iter()
                    .flatten()
                    .find(|(call, label, _)| call == who || label == who)
                    .cloned();
                match found {
                    Some((call, label, status)) => ResponseTemplate::new(200).set_body_json(
                        json!({"call_sid": call, "conference_sid": room, "label": label, "status": status}),
                    ),
                    None => error(404, 20404, "not found"),
                }
            }
            _ => error(404, 20404, "not found"),
        }
    }
}

struct Harness {
    _dynalite: Dynalite,
    store: Arc<DynamoStore>,
    app: App,
    world: Arc<Mutex<World>>,
    _server: MockServer,
}

async fn harness() -> Harness {
    let dynalite = Dynalite::start()
        .await
        .expect("dynalite (npm ci --prefix dev)");
    dynalite.create_table(TABLE).await.unwrap();
    let store = Arc::new(DynamoStore::new(
        dynalite.client(),
        TABLE,
        Duration::from_secs(72 * 3600),
    ));
    let server = MockServer::start().await;
    let world = Arc::new(Mutex::new(World::default()));
    Mock::given(wiremock::matchers::any())
        .respond_with(Twilio(world.clone()))
        .mount(&server)
        .await;
    let env: HashMap<String, String> = [
        (vars::TWILIO_ACCOUNT_SID, ACCOUNT.to_owned()),
        (vars::TWILIO_AUTH_TOKEN, "auth-token".to_owned()),
        (vars::TWILIO_API_BASE_URL, server.uri()),
        (vars::TABLE_NAME, TABLE.to_owned()),
        (vars::DYNAMODB_ENDPOINT, dynalite.endpoint()),
        (vars::DEFAULT_CALLER_ID, "+15005550006".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_map(&env).unwrap();
    let twilio = TwilioClient::new(TwilioClientConfig {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        ..TwilioClientConfig::from_config(&config)
    })
    .unwrap();
    let app = App::new(config, store.clone(), twilio);
    Harness {
        _dynalite: dynalite,
        store,
        app,
        world,
        _server: server,
    }
}

impl Harness {
    fn twilio_has(&self, call: &CallSid, status: &str, parent: Option<&CallSid>) {
        let mut world = self.world.lock().unwrap();
        world.calls.insert(call.to_string(), status.to_owned());
        if let Some(parent) = parent {
            world.parents.insert(call.to_string(), parent.to_string());
        }
    }

    fn room(&self, n: u32, participants: &[(&CallSid, &str, &str)]) {
        let mut world = self.world.lock().unwrap();
        let room = agent_sid(n).room().as_str().to_owned();
        world
            .rooms
            .push((CF.to_owned(), room, "in-progress".to_owned()));
        world.participants.insert(
            CF.to_owned(),
            participants
                .iter()
                .map(|(c, l, s)| (c.to_string(), (*l).to_owned(), (*s).to_owned()))
                .collect(),
        );
    }

    fn fault(&self, path: &str, status: u16) {
        self.world
            .lock()
            .unwrap()
            .faults
            .push((path.to_owned(), status));
    }

    fn clear_faults(&self) {
        self.world.lock().unwrap().faults.clear();
    }

    /// Requests that change something at Twilio.
    fn writes(&self) -> Vec<(String, String)> {
        self.world
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(m, _, _)| m != "GET")
            .map(|(_, p, body)| (p.clone(), body.clone()))
            .collect()
    }

    fn request_count(&self) -> usize {
        self.world.lock().unwrap().log.len()
    }

    async fn observe(&self, n: u32, observation: Observation) {
        self.store
            .observe(&agent_sid(n), observation)
            .await
            .unwrap();
    }

    /// A connected call `n`, in the store and at Twilio.
    async fn connected(&self, n: u32) {
        let id = agent_sid(n);
        super::store_connected_call(self.store.as_ref(), &id, &customer_sid(n)).await;
        self.twilio_has(&id, "in-progress", None);
        self.twilio_has(&customer_sid(n), "in-progress", Some(&id));
    }

    /// Call `n` mid-transfer as the callbacks left it: the customer moved
    /// into the room (the redirect was accepted), the first agent joined,
    /// the second agent's phone ringing.
    async fn transfer_ringing(&self, n: u32) {
        self.connected(n).await;
        let id = agent_sid(n);
        self.store
            .request_transfer(
                &id,
                phone("+15550100003"),
                TransferKind::Warm,
                None,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        self.store
            .update(&id, &|s: &mut CallSession| {
                s.room_named(CF);
                s.customer_redirected(1)
            })
            .await
            .unwrap();
        self.observe(
            n,
            Observation::Conference {
                event: ConferenceEvent::Join,
                participant: Some(RoomParticipant::FirstAgent),
                sequence: None,
                conference: None,
                at: OffsetDateTime::now_utc(),
            },
        )
        .await;
        self.observe(
            n,
            Observation::TargetLeg {
                attempt: 1,
                observation: leg(&target_sid(n), LegStatus::Ringing, 1),
            },
        )
        .await;
    }

    async fn session(&self, n: u32) -> CallSession {
        self.store
            .get_session(&agent_sid(n))
            .await
            .unwrap()
            .unwrap()
    }

    async fn repairs_in_history(&self, n: u32) -> Vec<HistoryEvent> {
        self.store
            .list_events(&agent_sid(n))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.source == EventSource::Reconciler)
            .collect()
    }

    async fn run_at(&self, after: time::Duration) -> RunReport {
        reconcile::run(self.app.services(), OffsetDateTime::now_utc() + after)
            .await
            .unwrap()
    }
}

/// Past every deadline a pending session can have.
const SOON: time::Duration = time::Duration::seconds(31);

fn end_room_requests(writes: &[(String, String)]) -> usize {
    writes
        .iter()
        .filter(|(p, body)| {
            p.ends_with(&format!("Conferences/{CF}.json")) && body == "Status=completed"
        })
        .count()
}

/// Every conference and participant callback of the transfer is lost: the
/// first agent hung up, the second agent never answered, and the customer
/// sits alone in the room. One run ends the room (the customer's TwiML goes
/// on to the fallback).
async fn lone_customer(h: &Harness) {
    h.transfer_ringing(1).await;
    h.twilio_has(&agent_sid(1), "completed", None);
    h.twilio_has(&target_sid(1), "no-answer", None);
    h.room(1, &[(&customer_sid(1), "customer", "connected")]);
    assert!(
        !h.session(1).await.customer_alone(),
        "as far as the store knows"
    );
}

#[tokio::test]
async fn a_customer_left_alone_in_the_room_is_released_in_one_run() {
    let h = harness().await;
    lone_customer(&h).await;

    let report = h.run_at(SOON).await;
    assert_eq!(report.checked, 1, "{report:?}");
    let session = h.session(1).await;
    assert!(session.customer_released, "{session:?}");
    assert_eq!(session.state(), SessionState::Ended);
    assert_eq!(end_room_requests(&h.writes()), 1, "{:?}", h.writes());
    assert_eq!(h.writes().len(), 1, "nothing else changed at Twilio");
    let repairs = h.repairs_in_history(1).await;
    assert_eq!(repairs.len(), report.repairs);
    let details: Vec<&str> = repairs.iter().filter_map(|e| e.detail.as_deref()).collect();
    assert!(details.contains(&"first agent completed"), "{details:?}");
    assert!(
        details.contains(&"second agent no-answer (attempt 1)"),
        "{details:?}"
    );
    // One text for the release, whoever carries it out (FollowUp::done_text).
    let released = FollowUp::ReleaseCustomer.done_text().unwrap();
    assert!(details.contains(&released), "{details:?}");

    // The customer's leg ends after the fallback; once Twilio says so the
    // session settles and leaves the index.
    h.twilio_has(&customer_sid(1), "completed", None);
    let later = h.run_at(time::Duration::minutes(3)).await;
    assert_eq!(later.repairs, 1, "{later:?}");
    assert!(h.session(1).await.is_settled());
    let after = h.request_count();
    let last = h.run_at(time::Duration::days(1)).await;
    assert_eq!(last.due, 0, "{last:?}");
    assert_eq!(
        h.request_count(),
        after,
        "a settled call costs Twilio nothing"
    );
    assert_eq!(end_room_requests(&h.writes()), 1);
}

#[tokio::test]
async fn the_second_agent_left_ringing_after_the_customer_hung_up_is_hung_up() {
    let h = harness().await;
    h.transfer_ringing(2).await;
    // The customer hung up; the first agent's leg ended with it. The second
    // agent answered into the room, and that leg's callbacks were lost:
    // it is still there, with nobody.
    h.observe(
        2,
        Observation::TargetLeg {
            attempt: 1,
            observation: leg(&target_sid(2), LegStatus::InProgress, 2),
        },
    )
    .await;
    h.observe(
        2,
        Observation::CustomerLeg(leg(&customer_sid(2), LegStatus::Completed, 3)),
    )
    .await;
    h.observe(
        2,
        Observation::AgentLeg(leg(&agent_sid(2), LegStatus::Completed, 3)),
    )
    .await;
    h.twilio_has(&customer_sid(2), "completed", None);
    h.twilio_has(&agent_sid(2), "completed", None);
    h.twilio_has(&target_sid(2), "in-progress", None);
    assert_eq!(h.session(2).await.state(), SessionState::Ended);

    let report = h.run_at(SOON).await;
    let writes = h.writes();
    let hang_ups: Vec<_> = writes
        .iter()
        .filter(|(p, _)| p.ends_with(&format!("Calls/{}.json", target_sid(2))))
        .collect();
    assert!(
        hang_ups.iter().any(|(_, body)| body == "Status=completed"),
        "{writes:?}"
    );
    assert_eq!(
        h.world.lock().unwrap().calls[target_sid(2).as_str()],
        "completed"
    );
    let session = h.session(2).await;
    assert!(session.is_settled(), "{session:?}");
    assert_eq!(report.repairs, 1, "{report:?}");
    let repairs = h.repairs_in_history(2).await;
    assert_eq!(
        repairs[0].detail.as_deref(),
        Some("hung up the second agent's leg")
    );
    assert_eq!(h.run_at(time::Duration::days(1)).await.due, 0);
}

#[tokio::test]
async fn a_lost_completed_callback_of_the_second_agent_closes_the_session() {
    let h = harness().await;
    h.transfer_ringing(3).await;
    h.observe(
        3,
        Observation::TargetLeg {
            attempt: 1,
            observation: leg(&target_sid(3), LegStatus::InProgress, 2),
        },
    )
    .await;
    h.observe(
        3,
        Observation::CustomerLeg(leg(&customer_sid(3), LegStatus::Completed, 3)),
    )
    .await;
    h.observe(
        3,
        Observation::AgentLeg(leg(&agent_sid(3), LegStatus::Completed, 3)),
    )
    .await;
    h.twilio_has(&customer_sid(3), "completed", None);
    h.twilio_has(&agent_sid(3), "completed", None);
    // The room ended with the customer; only the callback went missing.
    h.twilio_has(&target_sid(3), "completed", None);

    let report = h.run_at(SOON).await;
    assert_eq!(report.repairs, 1, "{report:?}");
    assert!(
        h.writes().is_empty(),
        "nothing to do at Twilio: {:?}",
        h.writes()
    );
    assert!(h.session(3).await.is_settled());
    let repairs = h.repairs_in_history(3).await;
    assert_eq!(
        repairs[0].detail.as_deref(),
        Some("second agent completed (attempt 1)")
    );
}

#[tokio::test]
async fn two_runs_at_once_make_each_repair_once() {
    let h = harness().await;
    lone_customer(&h).await;
    let at = OffsetDateTime::now_utc() + SOON;
    let (a, b) = futures::join!(
        reconcile::run(h.app.services(), at),
        reconcile::run(h.app.services(), at)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.due + b.due, 2, "both runs found it due: {a:?} {b:?}");
    assert_eq!(a.taken + b.taken, 1, "one lost the claim: {a:?} {b:?}");
    assert_eq!(a.checked + b.checked, 1, "{a:?} {b:?}");
    assert_eq!(end_room_requests(&h.writes()), 1, "{:?}", h.writes());
    let repairs = h.repairs_in_history(1).await;
    assert_eq!(repairs.len(), a.repairs + b.repairs);
    // The same repairs as one run alone: two leg ends, the customer's
    // presence, and the release.
    let mut kinds: Vec<String> = repairs.iter().filter_map(|e| e.detail.clone()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), repairs.len(), "no repair twice: {repairs:?}");
}

#[tokio::test]
async fn healthy_calls_are_never_touched() {
    let h = harness().await;
    for n in 10..18 {
        h.connected(n).await;
    }
    // A transfer under way whose callbacks all arrived is healthy too.
    h.transfer_ringing(20).await;
    h.twilio_has(&target_sid(20), "ringing", None);
    h.room(
        20,
        &[
            (&customer_sid(20), "customer", "connected"),
            (&agent_sid(20), "first-agent", "connected"),
            (&target_sid(20), "second-agent-1", "ringing"),
        ],
    );
    // The customer's join arrived as well.
    h.observe(
        20,
        Observation::Conference {
            event: ConferenceEvent::Join,
            participant: Some(RoomParticipant::Customer),
            sequence: None,
            conference: None,
            at: OffsetDateTime::now_utc(),
        },
    )
    .await;
    let before: Vec<CallSession> =
        futures::future::join_all((10..18).chain([20]).map(|n| h.session(n))).await;

    let report = h.run_at(time::Duration::minutes(11)).await;
    assert_eq!(report.due, 9, "{report:?}");
    assert_eq!(report.checked, 9, "{report:?}");
    assert_eq!(report.repairs, 0, "{report:?}");
    assert!(h.writes().is_empty(), "{:?}", h.writes());
    let after: Vec<CallSession> =
        futures::future::join_all((10..18).chain([20]).map(|n| h.session(n))).await;
    assert_eq!(after, before, "not one session write");
    for n in (10..18).chain([20]) {
        assert!(h.repairs_in_history(n).await.is_empty());
    }
    // Checked: not due again until their next deadline.
    assert_eq!(h.run_at(time::Duration::minutes(11)).await.due, 0);
}

#[tokio::test]
async fn an_uncertain_twilio_answer_is_looked_at_again_never_guessed() {
    let h = harness().await;
    lone_customer(&h).await;
    h.fault(&format!("Calls/{}.json", target_sid(1)), 503);
    let report = h.run_at(SOON).await;
    assert_eq!(report.uncertain, 1, "{report:?}");
    assert_eq!(report.repairs, 0);
    assert!(h.writes().is_empty(), "{:?}", h.writes());
    assert!(h.repairs_in_history(1).await.is_empty());
    assert!(!h.session(1).await.customer_released);

    // Throttled: the run stops and the session waits.
    h.clear_faults();
    h.fault(&format!("Calls/{}.json", agent_sid(1)), 429);
    let report = h.run_at(time::Duration::minutes(3)).await;
    assert_eq!(report.uncertain, 1, "{report:?}");
    assert!(h.writes().is_empty());

    h.clear_faults();
    let report = h.run_at(time::Duration::minutes(6)).await;
    assert_eq!(report.checked, 1, "{report:?}");
    assert!(h.session(1).await.customer_released);
    assert_eq!(end_room_requests(&h.writes()), 1);
}

#[tokio::test]
async fn the_call_view_counts_the_repairs() {
    let h = harness().await;
    lone_customer(&h).await;
    let report = h.run_at(SOON).await;
    assert!(report.repairs >= 3, "{report:?}");
    let event =
        std::fs::read_to_string(warm_transfer_dev::paths::workspace().join("events/get-call.json"))
            .unwrap();
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = h.app.handle(HttpEndpoint::GetCall, request).await;
    assert_eq!(response.status(), 200);
    let body: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
        lambda_http::Body::Empty => Value::Null,
        _ => Value::Null,
    };
    assert_eq!(body["callSid"], agent_sid(1).as_str());
    assert_eq!(body["repairs"], report.repairs);
    let from_reconciler = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "reconciler")
        .count();
    assert_eq!(from_reconciler, report.repairs);
}

#[tokio::test]
async fn the_room_the_customer_is_in_is_released_not_an_earlier_one_of_the_same_name() {
    const CF2: &str = "CF00000000000000000000000000000002";
    let h = harness().await;
    // The session remembers the room the participant create answered with.
    h.transfer_ringing(1).await;
    assert_eq!(h.session(1).await.room_sid.as_deref(), Some(CF));
    h.twilio_has(&agent_sid(1), "completed", None);
    h.twilio_has(&target_sid(1), "busy", None);
    {
        let mut world = h.world.lock().unwrap();
        let name = agent_sid(1).room().as_str().to_owned();
        // Agent two turned the call down before the customer arrived: that
        // conference ended, and the customer's redirect opened a new one
        // under the same name, where the customer now waits alone.
        world
            .rooms
            .push((CF.to_owned(), name.clone(), "completed".into()));
        world
            .rooms
            .push((CF2.to_owned(), name, "in-progress".into()));
        world.participants.insert(
            CF2.to_owned(),
            vec![(
                customer_sid(1).to_string(),
                "customer".into(),
                "connected".into(),
            )],
        );
    }
    let report = h.run_at(SOON).await;
    assert!(report.repairs >= 1, "{report:?}");
    assert!(h.session(1).await.customer_released);
    let writes = h.writes();
    assert_eq!(
        end_room_requests(&writes),
        0,
        "not the ended room: {writes:?}"
    );
    assert!(
        writes.iter().any(
            |(path, body)| path.ends_with(&format!("Conferences/{CF2}.json"))
                && body == "Status=completed"
        ),
        "the customer's room is ended: {writes:?}"
    );
}

/// Every callback that would say so is lost: a customer left alone waits
/// at most the reconciler's `longest_wait_alone`, which is within 20 s.
#[test]
fn a_customer_left_alone_is_found_within_twenty_seconds_whatever_is_lost() {
    let wait = reconcile::longest_wait_alone();
    assert!(wait <= Duration::from_secs(20), "{wait:?}");
    // A check ends before its lease, so no two runs check one session at once.
    assert!(reconcile::CHECK_BUDGET < Duration::try_from(reconcile::LEASE).unwrap());
    // The passes of one invocation reach the next one's (every minute).
    assert!(reconcile::WINDOW + reconcile::POLL >= Duration::from_secs(60));
    // And the invocation, its last check included, fits its Lambda timeout.
    assert!(
        reconcile::WINDOW + reconcile::CHECK_BUDGET + warm_transfer_core::time_budget::MARGIN
            <= Endpoint::Reconciler.timeout()
    );
}

/// One scheduled invocation keeps passing over the index: a session that
/// falls due while it runs (here a customer left alone, every callback
/// lost) is repaired by it, not by the next invocation a minute later.
#[tokio::test]
async fn one_invocation_keeps_checking_and_releases_a_customer_left_alone_meanwhile() {
    let h = harness().await;
    lone_customer(&h).await;
    let started = tokio::time::Instant::now();
    let due_in = Duration::try_from(RECHECK_SOON).unwrap();
    let deadline =
        started + due_in + reconcile::POLL * 2 + reconcile::CHECK_BUDGET + Duration::from_secs(1);
    let report = reconcile::run_until(h.app.services(), deadline)
        .await
        .unwrap();
    assert!(report.checked >= 1, "{report:?}");
    let session = h.session(1).await;
    assert!(session.customer_released, "{session:?}");
    assert_eq!(end_room_requests(&h.writes()), 1, "{:?}", h.writes());
    assert!(
        tokio::time::Instant::now() < deadline,
        "the invocation stopped before its deadline"
    );
}

/// A blind team transfer whose member was busy, and the handler that was
/// to ring the next member is gone: the customer waits on hold, never
/// alone while the next ring is due. The reconciler does not dial: it ends
/// the route, and the transfer ends as a failed blind one does (the room
/// ended, so the customer reaches the fallback).
#[tokio::test]
async fn a_team_route_whose_next_member_was_never_rung_is_ended() {
    let h = harness().await;
    h.connected(1).await;
    let id = agent_sid(1);
    h.store
        .request_transfer(
            &id,
            phone("+15550100003"),
            TransferKind::Cold,
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let route = TeamRoute::new(
        TeamName::parse("billing").unwrap(),
        5,
        OffsetDateTime::now_utc() + time::Duration::minutes(2),
    );
    let member = Member {
        id: AgentId::parse("local-bob").unwrap(),
        name: "Bob".into(),
    };
    h.store
        .update(&id, &|s: &mut CallSession| {
            s.ring_member(member.clone(), Some(route.clone()));
            s.room_named(CF);
            s.waiting_on_hold(1)?;
            s.customer_redirected(1)
        })
        .await
        .unwrap();
    h.observe(1, Observation::AgentLeg(leg(&id, LegStatus::Completed, 3)))
        .await;
    h.observe(
        1,
        Observation::TargetLeg {
            attempt: 1,
            observation: leg(&target_sid(1), LegStatus::Busy, 2),
        },
    )
    .await;
    h.twilio_has(&id, "completed", None);
    h.twilio_has(&target_sid(1), "busy", None);
    h.room(1, &[(&customer_sid(1), "customer", "connected")]);
    let session = h.session(1).await;
    assert_eq!(session.next_member_due(), Some(1));
    assert!(!session.customer_alone(), "the next member is due");

    let report = h.run_at(SOON).await;
    assert_eq!(report.checked, 1, "{report:?}");
    let session = h.session(1).await;
    let route = session.transfer.as_ref().unwrap().route.as_ref().unwrap();
    assert!(route.exhausted, "{session:?}");
    assert!(session.customer_released, "{session:?}");
    assert_eq!(end_room_requests(&h.writes()), 1, "{:?}", h.writes());
    assert!(
        !h.writes()
            .iter()
            .any(|(p, _)| p.contains("Participants.json")),
        "the reconciler never dials: {:?}",
        h.writes()
    );
    let kinds: Vec<String> = h
        .repairs_in_history(1)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.iter().any(|k| k == reconcile::ROUTE_ENDED),
        "{kinds:?}"
    );
}
