//! Transfers to a colleague or a team on the strict simulator: the
//! directory, presence derived from the calls, and first-available routing
//! moving on from a member who does not take the call. Throughout, the
//! customer is never alone, and each agent's presence is what they are
//! doing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::{AgentId, AgentProfile, CallSession, TeamName};
use warm_transfer_core::handlers::App;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, CheckIn, Directory, DynamoStore};
use warm_transfer_core::twilio::{TwilioClient, TwilioClientConfig};
use warm_transfer_core::usecases::routing;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::idp::LocalAgent;
use warm_transfer_dev::sim::{Script, Situation};

use crate::scenarios::{AGENT, CUSTOMER, Scenario, scenario};

pub(crate) const BOB: &str = "+15550100003";
pub(crate) const CAROL: &str = "+15550100004";
pub(crate) const DAVE: &str = "+15550100005";

/// A second call's first agent (one of the lead's numbers) and customer.
const AGENT_2: &str = "+15550107000";
const CUSTOMER_2: &str = "+15550100006";

pub(crate) struct Team {
    pub(crate) s: Scenario,
    pub(crate) tokens: HashMap<&'static str, String>,
}

fn member(name: &str, number: &str) -> LocalAgent {
    LocalAgent::new(&format!("{name}@example.com"), &[number], false).in_teams(&["billing"])
}

/// The lead (first agent, a supervisor) and the billing team `members`,
/// each signed in and available, in this order: the first is the longest
/// idle. Every phone answers unless scripted otherwise.
pub(crate) async fn team(members: &[(&'static str, &'static str)]) -> Team {
    team_on(scenario().await, members).await
}

/// [`team`] on a scenario of one's own.
pub(crate) async fn team_on(s: Scenario, members: &[(&'static str, &'static str)]) -> Team {
    let mut tokens = HashMap::new();
    for (name, number) in members {
        s.stack
            .sim
            .script(number, Script::answer_after(Duration::from_millis(500)));
        let token = s.stack.token_for(&member(name, number));
        let (status, body) = s
            .api_as(
                &token,
                reqwest::Method::POST,
                "/presence",
                Some(json!({"status": "available"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["availability"], "available", "{body}");
        tokens.insert(*name, token);
        // Idle since one after the other, whatever the clock's resolution.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            "/presence",
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Team { s, tokens }
}

impl Team {
    pub(crate) async fn directory(&self) -> Value {
        let (status, body) = self.s.api(reqwest::Method::GET, "/directory", None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Everyone's availability by display name.
    pub(crate) async fn presence(&self) -> HashMap<String, String> {
        self.directory().await["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["availability"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until each named agent shows `availability`.
    pub(crate) async fn wait_presence(&self, expected: &[(&str, &str)]) {
        let deadline = std::time::Instant::now() + crate::scenarios::SOON;
        loop {
            let now = self.presence().await;
            if expected
                .iter()
                .all(|(name, a)| now.get(*name).map(String::as_str) == Some(*a))
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "presence should be {expected:?}, is {now:?}\n{}",
                self.s.stack.sim.timeline_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn transfer(&self, sid: &str, body: Value) -> (u16, Value) {
        self.s
            .api(
                reqwest::Method::POST,
                &format!("/calls/{sid}/transfer"),
                Some(body),
            )
            .await
    }

    /// Waits until the transfer's member `name` answered.
    pub(crate) async fn answered_by(&self, sid: &str, name: &str) -> Value {
        self.s
            .wait_call(sid, &format!("{name} answered"), |c| {
                c["transfer"]["member"]["name"] == name
                    && c["transfer"]["state"] == "target-answered"
            })
            .await
    }

    pub(crate) fn passed(call: &Value) -> Vec<(String, String)> {
        call["transfer"]["team"]["passed"]
            .as_array()
            .map(|passed| {
                passed
                    .iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_owned(),
                            p["why"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) async fn leave(&self, sid: &str) {
        let (status, body) = self
            .s
            .api(reqwest::Method::POST, &format!("/calls/{sid}/leave"), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub(crate) fn history_kinds(call: &Value) -> Vec<String> {
        call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["kind"].as_str().unwrap_or(""),
                    e["detail"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn a_team_transfer_rings_the_longest_idle_member_and_moves_on_when_they_decline() {
    let t = team(&[("bob", BOB), ("carol", CAROL), ("dave", DAVE)]).await;
    t.s.stack
        .sim
        .script(BOB, Script::decline_after(Duration::from_secs(2)));
    let sid = t.s.connected().await;
    t.wait_presence(&[
        ("Lead", "busy"),
        ("Bob", "available"),
        ("Carol", "available"),
    ])
    .await;
    let (status, call) = t.transfer(&sid, json!({"team": "billing"})).await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(
        call["transfer"]["member"]["name"], "Bob",
        "longest idle first: {call}"
    );
    assert_eq!(call["transfer"]["team"]["name"], "billing");
    // Bob is busy while his phone rings; nobody else is.
    t.wait_presence(&[
        ("Bob", "busy"),
        ("Carol", "available"),
        ("Dave", "available"),
    ])
    .await;
    let call = t.answered_by(&sid, "Carol").await;
    assert_eq!(
        Team::passed(&call),
        [("Bob".to_owned(), "target-busy".to_owned())],
        "{call}"
    );
    t.s.wait_room(&sid, &[AGENT, CUSTOMER, CAROL]).await;
    t.wait_presence(&[
        ("Bob", "available"),
        ("Carol", "busy"),
        ("Dave", "available"),
    ])
    .await;
    t.leave(&sid).await;
    t.s.wait_room(&sid, &[CUSTOMER, CAROL]).await;
    t.wait_presence(&[("Lead", "available"), ("Carol", "busy")])
        .await;
    let history = Team::history_kinds(&t.s.call(&sid).await);
    assert!(
        history
            .iter()
            .any(|h| h.contains("ringing Carol (team billing)")
                && h.contains("Bob passed over (target-busy)")),
        "the history names who was tried and why they were passed over: {history:#?}"
    );
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_team_whose_members_are_all_busy_leaves_the_customer_with_the_agent() {
    let t = team(&[("bob", BOB), ("carol", CAROL), ("dave", DAVE)]).await;
    for number in [BOB, CAROL, DAVE] {
        t.s.stack.sim.script(number, Script::busy());
    }
    let sid = t.s.connected().await;
    assert_eq!(t.transfer(&sid, json!({"team": "billing"})).await.0, 202);
    let call =
        t.s.wait_call(&sid, "every member tried", |c| {
            c["transfer"]["team"]["exhausted"] == true
        })
        .await;
    assert_eq!(call["transfer"]["state"], "target-busy", "{call}");
    assert_eq!(call["transfer"]["member"]["name"], "Dave");
    assert_eq!(
        Team::passed(&call),
        [
            ("Bob".to_owned(), "target-busy".to_owned()),
            ("Carol".to_owned(), "target-busy".to_owned())
        ]
    );
    t.s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert_eq!(t.s.stack.sim.situation(CUSTOMER), Situation::Connected);
    t.wait_presence(&[
        ("Lead", "busy"),
        ("Bob", "available"),
        ("Carol", "available"),
        ("Dave", "available"),
    ])
    .await;
    // Nobody available now: a second team transfer is refused at once.
    let history = Team::history_kinds(&t.s.call(&sid).await);
    assert!(
        history
            .iter()
            .any(|h| h.contains("nobody left to ring in team billing")),
        "{history:#?}"
    );
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn the_reserved_member_signing_out_while_ringing_passes_to_the_next() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    // Bob's phone rings on and on.
    t.s.stack
        .sim
        .script(BOB, Script::answer_after(Duration::from_secs(60)));
    let sid = t.s.connected().await;
    assert_eq!(t.transfer(&sid, json!({"team": "billing"})).await.0, 202);
    let ringing =
        t.s.stack
            .sim
            .wait_for(crate::scenarios::SOON, |sim| {
                sim.status_of(BOB) == Some(warm_transfer_core::domain::LegStatus::Ringing)
            })
            .await;
    assert!(ringing, "{}", t.s.stack.sim.timeline_text());
    let (status, body) =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            "/presence",
            Some(json!({"status": "offline"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let call = t.answered_by(&sid, "Carol").await;
    assert_eq!(
        Team::passed(&call),
        [("Bob".to_owned(), "target-failed".to_owned())],
        "{call}"
    );
    t.wait_presence(&[("Bob", "offline"), ("Carol", "busy")])
        .await;
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn two_transfers_at_once_to_a_team_of_two_ring_one_member_each() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    t.s.stack
        .sim
        .script(CUSTOMER_2, Script::answer_after(Duration::from_millis(500)));
    t.s.stack
        .sim
        .script(AGENT_2, Script::answer_after(Duration::from_millis(500)));
    let first = t.s.connected().await;
    let (status, second) =
        t.s.api(
            reqwest::Method::POST,
            "/calls",
            Some(json!({"agentNumber": AGENT_2, "customerNumber": CUSTOMER_2})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["callSid"].as_str().unwrap().to_owned();
    t.s.wait_call(&second, "connected", |c| c["state"] == "connected")
        .await;
    let body = json!({"team": "billing"});
    let ((a, call_a), (b, call_b)) =
        futures::join!(t.transfer(&first, body.clone()), t.transfer(&second, body));
    assert_eq!((a, b), (202, 202), "{call_a} {call_b}");
    let (member_a, member_b) = (
        call_a["transfer"]["member"]["name"]
            .as_str()
            .unwrap()
            .to_owned(),
        call_b["transfer"]["member"]["name"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    assert_ne!(member_a, member_b, "one member each");
    // Both ringing: both busy, neither offered anything else.
    t.wait_presence(&[("Bob", "busy"), ("Carol", "busy")]).await;
    t.answered_by(&first, &member_a).await;
    t.answered_by(&second, &member_b).await;
    t.wait_presence(&[("Bob", "busy"), ("Carol", "busy")]).await;
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_member_on_a_call_is_never_offered_another() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    let sid = t.s.connected().await;
    // Bob, the longest idle, takes a call first as a colleague.
    let (status, call) = t.transfer(&sid, json!({"agent": "local-bob"})).await;
    assert_eq!(status, 202, "{call}");
    t.answered_by(&sid, "Bob").await;
    t.leave(&sid).await;
    t.wait_presence(&[("Bob", "busy"), ("Carol", "available")])
        .await;
    // Bob, on the call, transfers it on to his own team: Carol, never Bob.
    let path = format!("/calls/{sid}/transfer");
    let (status, call) =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            &path,
            Some(json!({"team": "billing"})),
        )
        .await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(call["transfer"]["member"]["name"], "Carol", "{call}");
    t.answered_by(&sid, "Carol").await;
    let leave = format!("/calls/{sid}/leave");
    let (status, body) =
        t.s.api_as(&t.tokens["bob"], reqwest::Method::POST, &leave, None)
            .await;
    assert_eq!(status, 200, "{body}");
    t.s.wait_room(&sid, &[CUSTOMER, CAROL]).await;
    t.wait_presence(&[("Bob", "available"), ("Carol", "busy")])
        .await;
    // A colleague already on a call is refused by name.
    let (status, body) = t.transfer(&sid, json!({"agent": "local-carol"})).await;
    assert!(status == 409 || status == 403, "{status} {body}");
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn presence_goes_back_to_available_when_the_call_ends() {
    let t = team(&[("carol", CAROL)]).await;
    let sid = t.s.connected().await;
    assert_eq!(
        t.transfer(&sid, json!({"agent": "local-carol"})).await.0,
        202
    );
    t.answered_by(&sid, "Carol").await;
    t.wait_presence(&[("Lead", "busy"), ("Carol", "busy")])
        .await;
    assert!(t.s.stack.sim.hang_up(CUSTOMER));
    t.s.wait_call(&sid, "ended", |c| c["state"] == "ended")
        .await;
    t.wait_presence(&[("Lead", "available"), ("Carol", "available")])
        .await;
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_blind_team_transfer_keeps_the_customer_on_hold_until_a_member_answers() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    t.s.stack.sim.script(BOB, Script::no_answer());
    let sid = t.s.connected().await;
    let (status, call) = t
        .transfer(&sid, json!({"team": "billing", "kind": "cold"}))
        .await;
    assert_eq!(status, 202, "{call}");
    // Blind: the call is Carol's the moment she answers.
    let call =
        t.s.wait_call(&sid, "Carol took the call", |c| {
            c["transfer"]["member"]["name"] == "Carol"
                && c["transfer"]["state"] == "first-agent-left"
        })
        .await;
    assert_eq!(
        Team::passed(&call),
        [("Bob".to_owned(), "target-no-answer".to_owned())]
    );
    t.s.wait_room(&sid, &[CUSTOMER, CAROL]).await;
    t.wait_presence(&[("Lead", "available"), ("Carol", "busy")])
        .await;
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn unknown_and_unavailable_destinations_are_refused_before_anything_rings() {
    let t = team(&[("carol", CAROL)]).await;
    let sid = t.s.connected().await;
    let (status, body) = t.transfer(&sid, json!({"agent": "local-nobody"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = t.transfer(&sid, json!({"team": "sales"})).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (409, Some("nobody-available")),
        "{body}"
    );
    let (status, body) = t.transfer(&sid, json!({"team": "Not A Team"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = t
        .transfer(&sid, json!({"team": "billing", "agent": "local-carol"}))
        .await;
    assert_eq!(status, 400, "{body}");
    // Carol steps away: she is not offered the call.
    let (status, _) =
        t.s.api_as(
            &t.tokens["carol"],
            reqwest::Method::POST,
            "/presence",
            Some(json!({"status": "away"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = t.transfer(&sid, json!({"agent": "local-carol"})).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (409, Some("away")),
        "{body}"
    );
    assert_eq!(t.s.stack.sim.status_of(CAROL), None, "nothing rang");
    // Numbers are for supervisors only; names and presence for everyone.
    let directory = t.directory().await;
    let carol = directory["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Carol")
        .unwrap();
    assert_eq!(carol["numbers"], json!([CAROL]), "the lead is a supervisor");
    let (_, as_carol) =
        t.s.api_as(&t.tokens["carol"], reqwest::Method::GET, "/directory", None)
            .await;
    assert!(
        as_carol["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.get("numbers").is_none()),
        "{as_carol}"
    );
    assert_eq!(
        as_carol["teams"],
        json!([{"name": "billing", "members": 1, "available": 0}])
    );
    t.s.assert_customer_never_stranded();
}

// Reservations under contention, on dynalite.

const TABLE: &str = "calls";

async fn directory_app() -> (Dynalite, App, Arc<DynamoStore>) {
    let dynalite = Dynalite::start()
        .await
        .expect("dynalite (npm ci --prefix dev)");
    dynalite.create_table(TABLE).await.unwrap();
    let store = Arc::new(DynamoStore::new(
        dynalite.client(),
        TABLE,
        Duration::from_secs(3600),
    ));
    let env: HashMap<String, String> = [
        (vars::TWILIO_ACCOUNT_SID, format!("AC{}", "0".repeat(32))),
        (vars::TWILIO_AUTH_TOKEN, "auth-token".to_owned()),
        (vars::TWILIO_API_BASE_URL, "http://127.0.0.1:9".to_owned()),
        (vars::TABLE_NAME, TABLE.to_owned()),
        (vars::DYNAMODB_ENDPOINT, dynalite.endpoint()),
        (vars::DEFAULT_CALLER_ID, "+15005550006".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_map(&env).unwrap();
    let twilio = TwilioClient::new(TwilioClientConfig::from_config(&config)).unwrap();
    let app = App::new(config, store.clone(), twilio);
    (dynalite, app, store)
}

fn call(n: usize) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

/// 20 rounds of 10 transfers at once to a team of 5: each round exactly
/// five transfers get a member, each a different one, and the other five
/// find nobody only because all five are held. Then the members are free
/// again (their reservations released) for the next round.
#[tokio::test]
async fn simultaneous_team_transfers_never_hold_one_agent_twice_nor_skip_a_free_one() {
    let (_dynalite, app, store) = directory_app().await;
    let team = TeamName::parse("billing").unwrap();
    let now = OffsetDateTime::now_utc();
    let mut members = Vec::new();
    for n in 0..5 {
        let profile = AgentProfile {
            id: AgentId::parse(&format!("agent-{n}")).unwrap(),
            name: format!("Agent {n}"),
            numbers: vec![PhoneNumber::parse(&format!("+1555010100{n}")).unwrap()],
            teams: vec![team.clone()],
        };
        store
            .check_in(
                &profile,
                CheckIn::Available,
                now + time::Duration::milliseconds(n as i64),
            )
            .await
            .unwrap();
        members.push(profile.id);
    }
    // Calls the reservations are for: stored, so presence can read them.
    for n in 0..10 {
        let session = CallSession::start(
            call(n),
            PhoneNumber::parse("+15550100001").unwrap(),
            PhoneNumber::parse("+15550100002").unwrap(),
            PhoneNumber::parse("+15005550006").unwrap(),
            now,
        );
        store.create_session(&session).await.unwrap();
    }
    let services = app.services();
    for round in 0..20 {
        let at = OffsetDateTime::now_utc();
        let calls: Vec<CallSid> = (0..10).map(call).collect();
        let picks = futures::future::join_all(
            calls
                .iter()
                .map(|sid| routing::reserve_from_team(services, &team, &[], sid, at)),
        )
        .await;
        let mut held: Vec<AgentId> = picks
            .into_iter()
            .filter_map(Result::unwrap)
            .map(|agent| agent.profile.id)
            .collect();
        held.sort();
        assert_eq!(
            held, members,
            "round {round}: every member held exactly once"
        );
        let listed = routing::directory(services, at).await.unwrap();
        assert!(
            listed
                .iter()
                .all(|l| l.presence.availability.as_str() == "busy"),
            "round {round}"
        );
        for (n, id) in members.iter().enumerate() {
            let agent = store.agent(id).await.unwrap().unwrap();
            let for_call = agent.call.clone().unwrap();
            routing::release(services, id, &for_call).await;
            assert!(
                store
                    .agent(id)
                    .await
                    .unwrap()
                    .unwrap()
                    .reserved_until
                    .is_none(),
                "{n}"
            );
        }
    }
}

#[tokio::test]
async fn a_number_that_is_a_colleagues_rings_them_and_makes_them_busy() {
    let t = team(&[("carol", CAROL)]).await;
    let sid = t.s.connected().await;
    // The API's first form: a number, which the directory knows as Carol's.
    let (status, call) = t.transfer(&sid, json!({"to": CAROL})).await;
    assert_eq!(status, 202, "{call}");
    assert_eq!(call["transfer"]["member"]["name"], "Carol", "{call}");
    t.wait_presence(&[("Carol", "busy")]).await;
    t.answered_by(&sid, "Carol").await;
    // A team transfer meanwhile would not offer her another call.
    let (status, body) = t.transfer(&sid, json!({"team": "billing"})).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (409, Some("nobody-available")),
        "{body}"
    );
    t.s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_team_whose_members_are_all_on_calls_is_refused_and_nothing_rings() {
    let t = team(&[("bob", BOB)]).await;
    for number in [AGENT_2, CUSTOMER_2] {
        t.s.stack
            .sim
            .script(number, Script::answer_after(Duration::from_millis(500)));
    }
    // Bob takes another call first.
    let (status, other) =
        t.s.api(
            reqwest::Method::POST,
            "/calls",
            Some(json!({"agentNumber": AGENT_2, "customerNumber": CUSTOMER_2})),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let other = other["callSid"].as_str().unwrap().to_owned();
    t.s.wait_call(&other, "connected", |c| c["state"] == "connected")
        .await;
    assert_eq!(
        t.transfer(&other, json!({"agent": "local-bob"})).await.0,
        202
    );
    t.answered_by(&other, "Bob").await;
    t.wait_presence(&[("Bob", "busy")]).await;
    let rang_bob = t.s.stack.sim.calls_to(BOB);
    // The team's only member is on a call: nobody is offered this one.
    let sid = t.s.connected().await;
    let (status, body) = t.transfer(&sid, json!({"team": "billing"})).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (409, Some("nobody-available")),
        "{body}"
    );
    assert_eq!(
        t.s.stack.sim.calls_to(BOB),
        rang_bob,
        "Bob was not rung again"
    );
    assert_eq!(t.s.call(&sid).await["state"], "connected");
    t.wait_presence(&[("Lead", "busy"), ("Bob", "busy")]).await;
    t.s.assert_customer_never_stranded();
}
