//! Customers calling in, on the strict simulator: the caller waits in the
//! room hearing their place in the queue, the call is offered to the
//! team's available members one at a time, and once a member answers it
//! is theirs like any call. In every scenario the caller is never alone
//! (waiting with the wait audio counts as attended) beyond the grace.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use warm_transfer_core::usecases::reconcile;
use warm_transfer_dev::idp::LocalAgent;
use warm_transfer_dev::local::{LOCAL_CALLER_ID, LocalOptions};
use warm_transfer_dev::sim::{CallbackFault, Fault, Operation, Script};

use crate::scenarios::{SOON, scenario_with};
use crate::teams::{BOB, CAROL, Team, team, team_on};

/// The customer calling in.
const CALLER: &str = "+15550100008";

impl Team {
    /// `CALLER` dials the centre's number (team billing's); the call's SID.
    fn call_in(&self) -> String {
        let sim = &self.s.stack.sim;
        sim.watch(CALLER);
        let base = self.s.stack.base_url();
        sim.call_in(
            CALLER,
            LOCAL_CALLER_ID,
            &format!("{base}/twiml/inbound"),
            Some(format!("{base}/events/caller")),
        )
    }

    /// Waits until `name` (a member rung for the call) has answered it.
    async fn taken_by(&self, sid: &str, name: &str) -> Value {
        self.s
            .wait_call(sid, &format!("{name} took the call"), |c| {
                c["transfer"]["member"]["name"] == name && c["state"] == "transferred"
            })
            .await
    }

    /// How many times the waiting caller's wait loop was answered.
    fn queue_turns(&self) -> usize {
        self.s
            .stack
            .sim
            .webhook_answers()
            .iter()
            .filter(|a| a.path == "/twiml/queue" && a.status == Some(200))
            .count()
    }
}

#[tokio::test]
async fn a_caller_is_answered_by_the_longest_idle_member_who_sees_their_number() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    let sid = t.call_in();
    let call = t.taken_by(&sid, "Bob").await;
    assert_eq!(call["transfer"]["team"]["name"], "billing", "{call}");
    t.s.wait_room(&sid, &[CALLER, BOB]).await;
    t.wait_presence(&[("Bob", "busy"), ("Carol", "available")])
        .await;
    // Bob's phone showed the caller's number (the inbound call's token).
    let sim = &t.s.stack.sim;
    let bobs = sim.calls().into_iter().find(|c| c.to == BOB).unwrap();
    assert_eq!(bobs.from, CALLER, "the agent sees who is calling");
    assert!(t.queue_turns() >= 1, "the wait loop offered the call");
    // The caller hangs up: Bob's call ends with the room, Bob is free.
    assert!(sim.hang_up(CALLER));
    t.s.wait_call(&sid, "call over", |c| c["state"] == "ended")
        .await;
    t.wait_presence(&[("Bob", "available")]).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn the_first_member_declines_and_the_second_answers() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    t.s.stack
        .sim
        .script(BOB, Script::decline_after(Duration::from_secs(2)));
    let sid = t.call_in();
    let call = t.taken_by(&sid, "Carol").await;
    assert_eq!(
        Team::passed(&call),
        [("Bob".to_owned(), "target-busy".to_owned())],
        "{call}"
    );
    t.s.wait_room(&sid, &[CALLER, CAROL]).await;
    let history = Team::history_kinds(&t.s.call(&sid).await);
    assert!(
        history
            .iter()
            .any(|h| h.contains("offered to Bob (team billing)")),
        "{history:#?}"
    );
    t.s.stack.sim.hang_up(CALLER);
    t.s.wait_call_over(CAROL).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn nobody_available_then_a_member_comes_back_and_is_offered_the_call() {
    let t = team(&[("bob", BOB)]).await;
    let away =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            "/presence",
            Some(json!({"status": "away"})),
        )
        .await;
    assert_eq!(away.0, 200, "{}", away.1);
    let sid = t.call_in();
    // Several turns of the wait loop with nobody to offer the call to.
    let sim = &t.s.stack.sim;
    assert!(sim.wait_for(SOON, |_| t.queue_turns() >= 3).await);
    let waiting = t.s.call(&sid).await;
    assert_eq!(waiting["transfer"], Value::Null, "nobody rung: {waiting}");
    assert_eq!(sim.calls_to(BOB), 0);
    let back =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            "/presence",
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(back.0, 200, "{}", back.1);
    t.taken_by(&sid, "Bob").await;
    t.s.wait_room(&sid, &[CALLER, BOB]).await;
    sim.hang_up(CALLER);
    t.s.wait_call_over(BOB).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn a_caller_nobody_answers_goes_to_the_fallback_at_the_maximum_wait() {
    // The product's clock runs in real time (the simulator's ten times
    // faster): the shortest maximum wait the configuration takes, 30 s.
    let s = scenario_with(LocalOptions {
        inbound_max_wait_secs: Some(30),
        ..LocalOptions::default()
    })
    .await;
    let t = team_on(s, &[("bob", BOB)]).await;
    t.s.stack.sim.script(BOB, Script::no_answer());
    let sid = t.call_in();
    let deadline = std::time::Instant::now() + Duration::from_secs(50);
    let call = loop {
        let call = t.s.call(&sid).await;
        if call["state"] == "ended" {
            break call;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the caller should have been released: {call:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let history = Team::history_kinds(&call);
    assert!(
        history.iter().any(|h| h.contains("maximum wait reached")),
        "{history:#?}"
    );
    let sim = &t.s.stack.sim;
    assert!(
        sim.wait_for(SOON, |sim| sim
            .status_of(CALLER)
            .is_some_and(|s| s.is_final()))
            .await
    );
    assert!(
        sim.timeline_text().contains("all our agents are busy"),
        "the caller is told before the call ends:\n{}",
        sim.timeline_text()
    );
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn the_caller_hanging_up_while_a_member_rings_calls_the_ring_off() {
    let t = team(&[("bob", BOB)]).await;
    t.s.stack.sim.script(BOB, Script::no_answer());
    let sid = t.call_in();
    t.s.wait_call(&sid, "Bob ringing", |c| {
        c["transfer"]["member"]["name"] == "Bob" && c["transfer"]["state"] == "target-ringing"
    })
    .await;
    t.wait_presence(&[("Bob", "busy")]).await;
    assert!(t.s.stack.sim.hang_up(CALLER));
    t.s.wait_call_over(BOB).await;
    t.s.wait_call(&sid, "call over", |c| c["state"] == "ended")
        .await;
    t.wait_presence(&[("Bob", "available")]).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn an_inbound_call_is_warm_transferred_on_like_any_call() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    let sid = t.call_in();
    t.taken_by(&sid, "Bob").await;
    t.s.wait_room(&sid, &[CALLER, BOB]).await;
    // Bob, who took the call, hands it to Carol, warm.
    let (status, call) =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            &format!("/calls/{sid}/transfer"),
            Some(json!({"agent": "local-carol"})),
        )
        .await;
    assert_eq!(status, 202, "{call}");
    t.s.wait_call(&sid, "Carol answered", |c| {
        c["transfer"]["member"]["name"] == "Carol" && c["transfer"]["state"] == "target-answered"
    })
    .await;
    t.s.wait_room(&sid, &[CALLER, BOB, CAROL]).await;
    // Carol sees the caller's number too.
    let carols =
        t.s.stack
            .sim
            .calls()
            .into_iter()
            .find(|c| c.to == CAROL)
            .unwrap();
    assert_eq!(carols.from, CALLER);
    let (status, body) =
        t.s.api_as(
            &t.tokens["bob"],
            reqwest::Method::POST,
            &format!("/calls/{sid}/leave"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.s.wait_room(&sid, &[CALLER, CAROL]).await;
    t.wait_presence(&[("Bob", "available"), ("Carol", "busy")])
        .await;
    t.s.stack.sim.hang_up(CALLER);
    t.s.wait_call_over(CAROL).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn every_callback_lost_while_waiting_the_reconciler_repairs_and_the_loop_offers_on() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    let sim = &t.s.stack.sim;
    sim.script(BOB, Script::no_answer());
    // Not one status or conference callback reaches the product.
    sim.on_callback(|_| Some(CallbackFault::Lose));
    let sid = t.call_in();
    // The wait loop (a TwiML request, not a callback) offers Bob; his
    // ring ends unreported, so the call still shows him ringing.
    t.s.wait_call(&sid, "Bob offered", |c| {
        c["transfer"]["member"]["name"] == "Bob"
    })
    .await;
    assert!(
        sim.wait_for(SOON, |sim| sim.status_of(BOB).is_some_and(|s| s.is_final()))
            .await
    );
    assert_eq!(sim.calls_to(CAROL), 0, "nobody else rung meanwhile");
    // The reconciler finds Bob's ring over: Carol is free to be offered.
    let services = t.s.stack.app.services();
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(31);
    let report = reconcile::run(services, later).await.unwrap();
    assert!(report.repairs >= 1, "{report:?}");
    t.s.wait_call(&sid, "Carol offered", |c| {
        c["transfer"]["member"]["name"] == "Carol"
    })
    .await;
    t.s.wait_room(&sid, &[CALLER, CAROL]).await;
    // Carol's answer is unreported too: the next look applies it, and
    // makes her the room's anchor (past the first run's lease).
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(180);
    reconcile::run(services, later).await.unwrap();
    t.s.wait_call(&sid, "Carol has the call", |c| c["state"] == "transferred")
        .await;
    sim.hang_up(CALLER);
    t.s.wait_call_over(CAROL).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn a_refused_caller_id_rings_the_member_from_the_centres_number_once() {
    let t = team(&[("bob", BOB)]).await;
    let sim = &t.s.stack.sim;
    // Twilio refuses to show the caller (an expired token): nobody dialled.
    sim.fail_next(
        Operation::CreateParticipant,
        1,
        400,
        21210,
        "The source phone number provided, is not yet verified for your account.",
    );
    let sid = t.call_in();
    t.taken_by(&sid, "Bob").await;
    assert_eq!(
        sim.requests(Operation::CreateParticipant),
        2,
        "refused, then rung once"
    );
    let bobs: Vec<_> = sim.calls().into_iter().filter(|c| c.to == BOB).collect();
    assert_eq!(bobs.len(), 1, "Bob's phone rang once");
    assert_eq!(
        bobs[0].from, LOCAL_CALLER_ID,
        "the centre's number, as a fallback"
    );
    sim.hang_up(CALLER);
    t.s.wait_call_over(BOB).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn a_ring_whose_outcome_is_unknown_is_never_sent_again() {
    let t = team(&[("bob", BOB), ("carol", CAROL)]).await;
    let sim = &t.s.stack.sim;
    // Bob's ring goes through but its answer is lost (a 5xx after applying).
    sim.fault_next(
        Operation::CreateParticipant,
        Fault::AppliedThenError { status: 500 },
    );
    let sid = t.call_in();
    let call = t.taken_by(&sid, "Bob").await;
    assert_eq!(call["transfer"]["attempt"], 1, "{call}");
    assert_eq!(sim.calls_to(BOB), 1, "never dialled twice");
    assert_eq!(sim.calls_to(CAROL), 0);
    sim.hang_up(CALLER);
    t.s.wait_call_over(BOB).await;
    t.s.assert_never_stranded(CALLER);
}

#[tokio::test]
async fn a_supervisor_listens_then_whispers_on_a_call_taken_from_the_queue() {
    let t = team(&[("bob", BOB)]).await;
    let sim = &t.s.stack.sim;
    const SAM: &str = "+15550100019";
    sim.script(SAM, Script::answer_after(Duration::from_millis(500)));
    let sam =
        t.s.stack
            .token_for(&LocalAgent::new("sam@example.com", &[SAM], true));
    let sid = t.call_in();
    let supervise = async |mode: &str| {
        t.s.api_as(
            &sam,
            reqwest::Method::POST,
            &format!("/calls/{sid}/supervisor"),
            Some(json!({ "mode": mode })),
        )
        .await
    };
    t.taken_by(&sid, "Bob").await;
    t.s.wait_room(&sid, &[CALLER, BOB]).await;
    // Already in the room: the supervisor joins muted, then coaches Bob.
    let (status, call) = supervise("listen").await;
    assert_eq!(status, 202, "{call}");
    t.s.wait_room(&sid, &[CALLER, BOB, SAM]).await;
    assert_eq!(sim.redirects_of(CALLER), 0, "the caller never moved");
    t.s.wait_call(&sid, "the supervisor in the room", |c| {
        c["supervisor"]["joined"] == true
    })
    .await;
    assert!(sim.hears(SAM, CALLER) && !sim.hears(CALLER, SAM));
    let (status, call) = supervise("whisper").await;
    assert!(status < 300, "{status} {call}");
    assert!(
        sim.wait_for(SOON, |sim| sim.hears(BOB, SAM) && !sim.hears(CALLER, SAM))
            .await
    );
    // The caller hangs up: everyone goes, the supervisor too.
    sim.hang_up(CALLER);
    t.s.wait_call_over(SAM).await;
    t.s.wait_call_over(BOB).await;
    t.s.assert_never_stranded(CALLER);
}
