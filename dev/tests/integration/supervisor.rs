//! A supervisor on a call, end to end on the strict simulator: listening,
//! whispering and barging in, during a consult, while the customer hangs
//! up and while the agent hands over. Each asserts the customer is never
//! alone, a supervisor never counting as company (the simulator hears a
//! muted or coaching participant as nobody to the customer).

use serde_json::{Value, json};
use warm_transfer_dev::idp::LocalAgent;
use warm_transfer_dev::local::LocalOptions;
use warm_transfer_dev::sim::{CallbackFault, Operation, Script, Situation};

use crate::scenarios::{
    AGENT, CUSTOMER, SOON, Scenario, TARGET, reconcile_later, scenario, scenario_with,
};

const SUPERVISOR: &str = "+15550100009";

struct Supervised {
    s: Scenario,
    /// Signed in as a member of the supervisor group, with their own phone.
    sam: String,
}

async fn supervised() -> Supervised {
    supervised_on(scenario().await)
}

fn supervised_on(s: Scenario) -> Supervised {
    s.stack.sim.script(
        SUPERVISOR,
        Script::answer_after(std::time::Duration::from_millis(500)),
    );
    let sam = s
        .stack
        .token_for(&LocalAgent::new("sam@example.com", &[SUPERVISOR], true));
    Supervised { s, sam }
}

impl Supervised {
    async fn supervise(&self, sid: &str, mode: &str) -> (u16, Value) {
        self.s
            .api_as(
                &self.sam,
                reqwest::Method::POST,
                &format!("/calls/{sid}/supervisor"),
                Some(json!({ "mode": mode })),
            )
            .await
    }

    async fn call_as_sam(&self, sid: &str) -> Value {
        self.s
            .api_as(
                &self.sam,
                reqwest::Method::GET,
                &format!("/calls/{sid}"),
                None,
            )
            .await
            .1
    }

    /// Waits until the supervisor may whisper: their phone and the agent
    /// are in the room (the call offers it to them).
    async fn whisper_offered(&self, sid: &str) {
        let deadline = std::time::Instant::now() + SOON;
        loop {
            let call = self.call_as_sam(sid).await;
            let offered = call["actions"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("whisper")));
            if offered && call["supervisor"]["joined"] == true {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "whisper never offered: {call:#}\n{}",
                self.s.stack.sim.timeline_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The history names the supervisor for each of their acts.
    async fn acts_by_sam(&self, sid: &str) -> Vec<String> {
        self.s.call(sid).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == "sam@example.com")
            .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_supervisor_listens_whispers_barges_and_leaves_without_being_dialled_again() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    sim.watch(SUPERVISOR);
    let sid = s.connected().await;

    // Only the supervisor group supervises; an agent is refused by name.
    let agent = s
        .stack
        .token_for(&LocalAgent::new("alice@example.com", &[AGENT], false));
    let (status, refused) = s
        .api_as(
            &agent,
            reqwest::Method::POST,
            &format!("/calls/{sid}/supervisor"),
            Some(json!({ "mode": "listen" })),
        )
        .await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (403, Some("not-supervisor"))
    );
    // On the plain bridge the agent is not in a room to be whispered to.
    let (status, refused) = v.supervise(&sid, "whisper").await;
    assert_eq!(
        (status, refused["state"].as_str()),
        (409, Some("connected")),
        "{refused}"
    );
    let (status, refused) = v.supervise(&sid, "shout").await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("mode")));

    // Listen: the bridge is moved into the room (the customer redirected
    // once), the agent follows, the supervisor joins muted.
    let (status, call) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202, "{call}");
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    assert_eq!(sim.redirects_of(CUSTOMER), 1);
    v.whisper_offered(&sid).await;
    assert!(sim.hears(SUPERVISOR, CUSTOMER) && sim.hears(SUPERVISOR, AGENT));
    assert!(!sim.hears(CUSTOMER, SUPERVISOR) && !sim.hears(AGENT, SUPERVISOR));
    assert_eq!(sim.situation(CUSTOMER), Situation::Connected);
    // The agent sees who listens.
    let seen = s.call(&sid).await;
    assert_eq!(seen["supervisor"]["id"], "sam@example.com", "{seen:#}");
    assert_eq!(seen["supervisor"]["mode"], "listen");

    // Whisper: the agent alone hears them.
    let (status, call) = v.supervise(&sid, "whisper").await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["supervisor"]["mode"], "whisper");
    assert!(sim.hears(AGENT, SUPERVISOR) && !sim.hears(CUSTOMER, SUPERVISOR));
    // The same request again changes nothing and asks nothing of Twilio.
    let updates = sim.requests(Operation::UpdateParticipant);
    let (status, _) = v.supervise(&sid, "whisper").await;
    assert_eq!(status, 200);
    assert_eq!(sim.requests(Operation::UpdateParticipant), updates);

    // Barge: everyone hears them.
    let (status, _) = v.supervise(&sid, "barge").await;
    assert_eq!(status, 200);
    assert!(sim.hears(CUSTOMER, SUPERVISOR) && sim.hears(AGENT, SUPERVISOR));
    // Three modes, one dial.
    assert_eq!(sim.calls_to(SUPERVISOR), 1);
    assert_eq!(sim.requests(Operation::CreateParticipant), 1);

    // Leave: their phone is hung up; agent and customer talk on.
    let (status, call) = v.supervise(&sid, "leave").await;
    assert_eq!(status, 200, "{call}");
    s.wait_call_over(SUPERVISOR).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert_eq!(sim.situation(CUSTOMER), Situation::Connected);
    let call = s.call(&sid).await;
    assert!(call.get("supervisor").is_none(), "{call:#}");
    assert_eq!(
        v.acts_by_sam(&sid).await,
        [
            "supervisor joins to listen",
            "supervisor switches from listen to whisper",
            "supervisor switches from whisper to barge",
            "supervisor leaves",
        ]
    );

    assert!(sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    s.wait_call_over(AGENT).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn a_supervisor_joins_a_consult_and_whispers_to_the_agent_not_the_held_customer() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    let (status, _) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202);
    s.all_three_in_the_room_after_one_redirect(&sid).await;
    let (status, call) = s
        .api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/hold"),
            Some(json!({ "held": true })),
        )
        .await;
    assert_eq!(status, 200, "{call}");

    let (status, call) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202, "{call}");
    s.wait_room(&sid, &[AGENT, CUSTOMER, TARGET, SUPERVISOR])
        .await;
    assert_eq!(sim.redirects_of(CUSTOMER), 1, "already in the room");
    v.whisper_offered(&sid).await;
    // The customer is on hold: the whisper coaches the agent, never them,
    // so Twilio's 16027 does not arise.
    let (status, call) = v.supervise(&sid, "whisper").await;
    assert_eq!(status, 200, "{call}");
    assert!(sim.hears(AGENT, SUPERVISOR));
    assert!(!sim.hears(TARGET, SUPERVISOR) && !sim.hears(CUSTOMER, SUPERVISOR));
    assert_eq!(sim.situation(CUSTOMER), Situation::OnHold);

    // Should Twilio still answer 16027 (the agent held meanwhile), the
    // switch is refused with a 409 saying so, and nothing changes.
    let (status, _) = v.supervise(&sid, "barge").await;
    assert_eq!(status, 200);
    sim.fail_next(
        Operation::UpdateParticipant,
        1,
        400,
        16027,
        "Participant to be whispered is on hold",
    );
    let (status, refused) = v.supervise(&sid, "whisper").await;
    assert_eq!(
        (status, refused["state"].as_str()),
        (409, Some("agent-held")),
        "{refused}"
    );
    assert_eq!(v.call_as_sam(&sid).await["supervisor"]["mode"], "barge");

    // The consult goes on: the customer comes back, and is never left
    // with only the supervisor.
    let (status, _) = s
        .api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/hold"),
            Some(json!({ "held": false })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sim.situation(CUSTOMER), Situation::Connected);
    let (status, _) = s
        .api(
            reqwest::Method::POST,
            &format!("/calls/{sid}/transfer/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    s.wait_call_over(TARGET).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call_over(SUPERVISOR).await;
    s.wait_call_over(AGENT).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn the_customer_hanging_up_while_a_supervisor_whispers_takes_everyone_out() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    v.whisper_offered(&sid).await;
    let (status, _) = v.supervise(&sid, "whisper").await;
    assert_eq!(status, 200);
    assert!(sim.hears(AGENT, SUPERVISOR));

    assert!(sim.hang_up(CUSTOMER));
    let call = s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    assert!(call.get("supervisor").is_none(), "{call:#}");
    s.wait_call_over(SUPERVISOR).await;
    s.wait_call_over(AGENT).await;
    assert!(sim.connections().is_empty(), "{:?}", sim.connections());
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn on_a_handover_the_listening_supervisor_leaves_with_the_agent() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    let (status, _) = s.transfer(&sid, TARGET).await;
    assert_eq!(status, 202);
    s.transfer_state(&sid, "target-answered").await;
    s.wait_room(&sid, &[AGENT, CUSTOMER, TARGET, SUPERVISOR])
        .await;
    assert_eq!(
        sim.redirects_of(CUSTOMER),
        1,
        "moved once, for the supervisor"
    );

    let (status, call) = s
        .api(reqwest::Method::POST, &format!("/calls/{sid}/leave"), None)
        .await;
    assert_eq!(status, 200, "{call}");
    // The supervisor supervised agent one: they leave with them.
    s.wait_call_over(SUPERVISOR).await;
    s.wait_room(&sid, &[CUSTOMER, TARGET]).await;
    assert_eq!(sim.situation(CUSTOMER), Situation::Connected);
    // Their call's end reported, the call shows no supervisor.
    s.wait_call(&sid, "handed over, supervisor gone", |c| {
        c["state"] == "transferred" && c.get("supervisor").is_none()
    })
    .await;
    // The call is agent two's: a supervisor may join anew, coaching them.
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    s.wait_room(&sid, &[CUSTOMER, TARGET, SUPERVISOR]).await;
    assert_eq!(sim.calls_to(SUPERVISOR), 2);

    assert!(sim.hang_up(CUSTOMER));
    s.wait_call_over(TARGET).await;
    s.wait_call_over(SUPERVISOR).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn with_every_callback_lost_the_reconciler_releases_a_customer_left_with_a_listener() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    v.whisper_offered(&sid).await;
    // From now on no callback reaches the product; the agent hangs up.
    sim.on_callback(|_| Some(CallbackFault::Lose));
    assert!(sim.hang_up(AGENT));
    // A listening supervisor is no company: the customer is alone.
    assert!(
        sim.wait_for(SOON, |sim| sim.situation(CUSTOMER) == Situation::Alone)
            .await
    );
    assert_eq!(
        s.call(&sid).await["state"],
        "connected",
        "nothing was heard"
    );
    let report = reconcile_later(s).await;
    assert!(report.repairs >= 1, "{report:?}");
    s.wait_call_over(SUPERVISOR).await;
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn a_help_request_is_on_the_board_until_a_supervisor_joins_from_it() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    let alice = s
        .stack
        .token_for(&LocalAgent::new("alice@example.com", &[AGENT], false));
    let board =
        |token: String| async move { s.api_as(&token, reqwest::Method::GET, "/board", None).await };
    // The board is the supervisors' alone.
    let (status, refused) = board(alice.clone()).await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (403, Some("not-supervisor"))
    );
    let (status, listed) = board(v.sam.clone()).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["calls"][0]["callSid"], sid.as_str(), "{listed:#}");
    assert!(listed["calls"][0].get("help").is_none());

    // The agent asks; asking again is not offered (it would change nothing).
    let help = format!("/calls/{sid}/help");
    let (status, call) = s.api_as(&alice, reqwest::Method::POST, &help, None).await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["help"]["by"], "alice@example.com");
    assert!(
        !call["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("ask-for-help"))
    );
    // Only the call's agent asks for help on it.
    let (status, _) = v.s.api_as(&v.sam, reqwest::Method::POST, &help, None).await;
    assert_eq!(status, 403);
    let (_, listed) = board(v.sam.clone()).await;
    let first = &listed["calls"][0];
    assert_eq!(first["callSid"], sid.as_str());
    assert_eq!(first["help"]["by"], "alice@example.com", "{listed:#}");
    assert_eq!(first["state"], "connected");
    assert_eq!(first["currentAgent"], AGENT);

    // A supervisor joins from the board: the request is answered.
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    let (_, listed) = board(v.sam.clone()).await;
    assert!(listed["calls"][0].get("help").is_none(), "{listed:#}");
    assert_eq!(listed["calls"][0]["supervisor"]["mode"], "listen");
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    let asked: Vec<String> = s.call(&sid).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "alice@example.com")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(asked, ["agent asks for a supervisor"]);
    assert_eq!(v.acts_by_sam(&sid).await, ["supervisor joins to listen"]);

    // Once over, the call leaves the board.
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    let (_, listed) = board(v.sam.clone()).await;
    assert!(
        !listed["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["callSid"] == sid.as_str()),
        "{listed:#}"
    );
    s.wait_call_over(SUPERVISOR).await;
    s.assert_customer_never_stranded();
}

const OUTSIDE: &str = "+15550100007";

#[tokio::test]
async fn an_outside_party_added_then_the_agent_leaves_never_leaves_the_customer_with_only_them() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    sim.script(
        OUTSIDE,
        Script::answer_after(std::time::Duration::from_millis(500)),
    );
    let sid = s.connected().await;
    let party = format!("/calls/{sid}/party");
    // Never a number already on the call.
    let (status, refused) = s
        .api(
            reqwest::Method::POST,
            &party,
            Some(json!({ "number": "+15550100002" })),
        )
        .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("number")),
        "{refused}"
    );
    let (status, call) = s
        .api(
            reqwest::Method::POST,
            &party,
            Some(json!({ "number": OUTSIDE })),
        )
        .await;
    assert_eq!(status, 202, "{call}");
    s.wait_room(&sid, &[AGENT, CUSTOMER, OUTSIDE]).await;
    assert_eq!(sim.redirects_of(CUSTOMER), 1);
    assert!(sim.hears(CUSTOMER, OUTSIDE) && sim.hears(OUTSIDE, AGENT));
    let call = s
        .wait_call(&sid, "the party's join heard", |c| {
            c["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "party-1 participant-join"))
        })
        .await;
    assert!(
        call["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("drop-party"))
    );

    // The agent hangs up: an outside party is no agent, so the customer is
    // told and the call ends; the party's call with it.
    assert!(sim.hang_up(AGENT));
    s.wait_call_over(OUTSIDE).await;
    s.customer_released(&sid).await;
}

#[tokio::test]
async fn an_outside_party_dropped_leaves_the_agent_and_the_customer_talking() {
    let v = supervised().await;
    let (s, sim) = (&v.s, &v.s.stack.sim);
    sim.script(
        OUTSIDE,
        Script::answer_after(std::time::Duration::from_millis(500)),
    );
    let sid = s.connected().await;
    let party = format!("/calls/{sid}/party");
    let (status, _) = s
        .api(
            reqwest::Method::POST,
            &party,
            Some(json!({ "number": OUTSIDE })),
        )
        .await;
    assert_eq!(status, 202);
    s.wait_room(&sid, &[AGENT, CUSTOMER, OUTSIDE]).await;
    // One at a time.
    let (status, refused) = s
        .api(
            reqwest::Method::POST,
            &party,
            Some(json!({ "number": "+15550100006" })),
        )
        .await;
    assert_eq!(
        (status, refused["state"].as_str()),
        (409, Some("party-on-the-call"))
    );
    let (status, call) = s
        .api(reqwest::Method::POST, &party, Some(json!({ "drop": true })))
        .await;
    assert_eq!(status, 200, "{call}");
    s.wait_call_over(OUTSIDE).await;
    s.wait_room(&sid, &[AGENT, CUSTOMER]).await;
    assert_eq!(sim.situation(CUSTOMER), Situation::Connected);
    let acts: Vec<String> = s.call(&sid).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "lead@example.com")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        acts.ends_with(&[
            "outside party added".to_owned(),
            "outside party dropped".to_owned()
        ]),
        "{acts:?}"
    );
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call_over(AGENT).await;
    s.assert_customer_never_stranded();
}

#[tokio::test]
async fn recording_goes_on_with_a_supervisor_in_the_room_and_after_they_leave() {
    let v = supervised_on(
        scenario_with(LocalOptions {
            ring_timeout_secs: 20,
            recording: true,
            ..LocalOptions::default()
        })
        .await,
    );
    let (s, sim) = (&v.s, &v.s.stack.sim);
    let sid = s.connected().await;
    // A few seconds on the bridge (Twilio's time), then into the room.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = v.supervise(&sid, "listen").await;
    assert_eq!(status, 202);
    s.wait_room(&sid, &[AGENT, CUSTOMER, SUPERVISOR]).await;
    v.whisper_offered(&sid).await;
    let (status, _) = v.supervise(&sid, "leave").await;
    assert_eq!(status, 200);
    s.wait_call_over(SUPERVISOR).await;
    // The room and its recording go on without the supervisor.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sim.recordings().len(), 1, "only the bridge's is over");
    assert!(sim.hang_up(CUSTOMER));
    s.wait_call(&sid, "ended", |c| c["state"] == "ended").await;
    let listed = s
        .wait_call(&sid, "recordings reported", |c| {
            c["recordings"].as_array().is_some_and(|r| r.len() >= 2)
        })
        .await;
    let made = sim.recordings();
    assert_eq!(made.len(), 2, "{made:?}");
    assert_eq!(made[0].source, "DialVerb");
    assert_eq!(made[1].source, "Conference");
    assert_eq!(listed["recordings"][1]["source"], "room", "{listed:#}");
    assert!(made[1].duration_secs >= 1, "{made:?}");
    s.assert_customer_never_stranded();
}
