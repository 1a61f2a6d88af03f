//! The scale run: N simultaneous calls through the local stack (dynalite,
//! the Twilio simulator, the development server with every real handler),
//! each with a warm transfer ending one of several ways, some with every
//! callback duplicated or the early ones late. It counts what must be zero
//! (customers stranded, 5xx answers, stored sessions that disagree with the
//! simulator's final truth) and measures what the load costs (write
//! conflicts, latency per webhook, CPU per call).
//!
//! A benchmark, not a timed test: `warm-transfer-bench --scale N` prints the
//! figures; the integration test runs a few calls and asserts the zeros only.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warm_transfer_core::usecases::reconcile;

use super::follow::Follower;
use crate::idp::LocalAgent;
use crate::local::{LocalOptions, LocalStack};
use crate::sim::{CallbackFault, CallbackInfo, Script, Simulator};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one scale run does.
#[derive(Debug, Clone)]
pub struct Options {
    pub calls: usize,
    /// Simulated time per real time: 0.5 runs Twilio's clock twice as fast.
    pub time_scale: f64,
    /// The calls start spread over this much Twilio time.
    pub ramp_secs: f64,
    /// How long agent and customer talk before the transfer (Twilio time).
    /// With `talk_secs >= ramp_secs` every call is on at once when the last
    /// one starts.
    pub talk_secs: f64,
    /// How soon the simulator's legs notice a change (real time).
    pub sim_poll: Duration,
    /// How long a customer may be alone while moving into the room (Twilio time).
    pub grace_secs: f64,
    /// Worker threads of the product's own runtime; 0 runs the product on
    /// the caller's runtime (no CPU figure of its own then).
    pub product_threads: usize,
    /// Customers calling in: two calls in ten (see [`Call::inbound`]).
    pub inbound: bool,
}

impl Options {
    /// A few calls, for the test that asserts the zeros.
    pub fn smoke(calls: usize) -> Self {
        Self {
            calls,
            time_scale: 0.5,
            ramp_secs: 5.0,
            talk_secs: 5.0,
            sim_poll: Duration::from_millis(4),
            grace_secs: 5.0,
            product_threads: 0,
            inbound: true,
        }
    }
}

/// Calls 3 and 4 of every ten are customers calling the centre (team
/// billing, whose members are these calls' agents) rather than agents
/// calling customers: a mix of one inbound call for four outbound.
fn inbound_call(n: usize) -> bool {
    matches!(n % 10, 3 | 4)
}

/// How a call's transfer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    /// Agent two answers, agent one leaves; later the customer or agent two hangs up.
    Handover,
    /// Agent two's line is busy; the customer stays with agent one.
    Busy,
    /// Agent two never answers; then the customer or agent one hangs up.
    NoAnswer,
    /// Agent one calls the transfer off while agent two's phone rings.
    Cancel,
    /// The customer hangs up while agent two's phone rings.
    CustomerHangsUp,
}

impl Ending {
    /// Six in ten calls are handed over; each other ending one in ten.
    fn of(n: usize) -> Self {
        match n % 10 {
            6 => Ending::Busy,
            7 => Ending::NoAnswer,
            8 => Ending::Cancel,
            9 => Ending::CustomerHangsUp,
            _ => Ending::Handover,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Handover => "handover",
            Ending::Busy => "busy",
            Ending::NoAnswer => "no answer",
            Ending::Cancel => "cancel",
            Ending::CustomerHangsUp => "customer hangs up",
        }
    }
}

/// What the simulator does to a call's callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callbacks {
    AsSent,
    /// Every callback about its people sent twice.
    Duplicated,
    /// `initiated`, `ringing` and `participant-join` held back, so what
    /// followed them arrives first.
    Reordered,
}

impl Callbacks {
    fn of(n: usize) -> Self {
        match n % 7 {
            2 => Callbacks::Duplicated,
            5 => Callbacks::Reordered,
            _ => Callbacks::AsSent,
        }
    }
}

/// Latency of one kind of request.
#[derive(Debug, Clone)]
pub struct Latency {
    pub what: String,
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
}

#[derive(Debug, Default)]
pub struct Report {
    pub calls: usize,
    /// Of them, customers who called in (answered by a team member, then
    /// one side hangs up).
    pub inbound: usize,
    pub endings: BTreeMap<&'static str, usize>,
    pub duplicated: usize,
    pub reordered: usize,
    /// Customers with a problem ([`Simulator::problems`]): alone beyond the
    /// grace, cut off, default music, an application error.
    pub stranded: Vec<String>,
    /// Webhooks answered 5xx, and those not answered at all (connection
    /// refused, timeout), as the simulator sent them.
    pub webhook_5xx: usize,
    pub webhook_unanswered: usize,
    /// Front-end requests of the agents answered 5xx.
    pub front_end_5xx: usize,
    /// Answers the agents did not expect (a 409 to a transfer...).
    pub unexpected: Vec<String>,
    /// Sessions whose stored state disagrees with the simulator's legs.
    pub disagreements: Vec<String>,
    /// Calls that did not reach their scripted ending in time.
    pub unfinished: Vec<String>,
    pub contract_violations: Vec<String>,
    /// Versioned session writes that lost a race (each read again and re-applied).
    pub store_conflicts: usize,
    /// DynamoDB writes by the kind of item written (`SESSION`, `EVENT`, ...)
    /// and those refused by their condition (`refused KIND`), all calls.
    pub writes: std::collections::BTreeMap<String, u64>,
    /// Twilio REST requests by operation, all calls.
    pub rest: std::collections::BTreeMap<String, u64>,
    pub twilio_retries: usize,
    pub reconciler_runs: usize,
    pub reconciler_repairs: usize,
    pub webhooks: Vec<Latency>,
    pub front_end: Vec<Latency>,
    /// Webhook requests the simulator made, and over how long.
    pub webhook_requests: usize,
    /// The most calls in progress at one moment (agents' view).
    pub peak_calls: usize,
    pub wall: Duration,
    /// CPU time of the whole process (simulator, agents, product), of the
    /// product's own threads, and of dynalite.
    pub cpu_process: Duration,
    pub cpu_product: Option<Duration>,
    pub cpu_dynalite: Option<Duration>,
}

impl Report {
    pub fn zero_counts_hold(&self) -> bool {
        self.stranded.is_empty()
            && self.webhook_5xx == 0
            && self.front_end_5xx == 0
            && self.disagreements.is_empty()
    }
}

/// One call's people and what happens to it.
#[derive(Clone)]
struct Call {
    n: usize,
    agent: String,
    customer: String,
    target: String,
    ending: Ending,
    callbacks: Callbacks,
    token: String,
    /// A customer calling in: `agent` is a member of team billing who may
    /// be offered any caller; `token` a supervisor's, to follow the call.
    inbound: bool,
}

/// What the agents share: the stack, an HTTP client, the counters.
struct Agents {
    stack: LocalStack,
    http: reqwest::Client,
    scale: f64,
    talk_secs: f64,
    front_end_5xx: AtomicUsize,
    live: AtomicUsize,
    peak: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
    latencies: Mutex<HashMap<&'static str, Vec<Duration>>>,
}

impl Agents {
    /// Sleeps this much Twilio time.
    async fn pause(&self, secs: f64) {
        tokio::time::sleep(Duration::from_secs_f64(secs * self.scale)).await;
    }

    async fn api(
        &self,
        what: &'static str,
        call: &Call,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.stack.base_url()))
            .bearer_auth(&call.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let sent = Instant::now();
        let (status, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "error": e.to_string() })),
        };
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.entry(what).or_default().push(sent.elapsed());
        }
        if status >= 500 {
            self.front_end_5xx.fetch_add(1, Ordering::Relaxed);
        }
        (status, body)
    }

    /// An action that must answer `expected`; anything else is noted.
    async fn act(
        &self,
        what: &'static str,
        call: &Call,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Result<Value, String> {
        let (status, answer) = self
            .api(what, call, reqwest::Method::POST, path, body)
            .await;
        if status == expected {
            return Ok(answer);
        }
        let text = format!("call {}: {what} answered {status}: {answer}", call.n);
        if let Ok(mut unexpected) = self.unexpected.lock() {
            unexpected.push(text.clone());
        }
        Err(text)
    }

    /// Follows the call as the console does (see `follow`), in Twilio's
    /// time: a read after 30 s with nothing heard, and every second while
    /// push is down.
    fn follow(self: &Arc<Self>, call: &Call, sid: &str) -> Follower {
        let url = format!("{}?callSid={sid}", self.stack.ws_url());
        let token = call.token.clone();
        let (agents, call, path) = (self.clone(), call.clone(), format!("/calls/{sid}"));
        let read = move || {
            let (agents, call, path) = (agents.clone(), call.clone(), path.clone());
            async move {
                let get = reqwest::Method::GET;
                agents
                    .api("GET /calls/{callSid}", &call, get, &path, None)
                    .await
                    .1
            }
        };
        Follower::by_push(
            url,
            token,
            Duration::from_secs_f64(30.0 * self.scale),
            Duration::from_secs_f64(self.scale),
            read,
        )
    }

    /// Waits until the agent's view of the call satisfies `check`, for at
    /// most `secs` of Twilio time.
    async fn until(
        &self,
        call: &Call,
        follower: &mut Follower,
        what: &str,
        secs: f64,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let limit = Duration::from_secs_f64(secs * self.scale);
        let view = match follower.until(limit, check).await {
            Ok(view) => return Ok(view),
            Err(last) => last,
        };
        let history: Vec<String> = view["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{} {}: {}", e["at"], e["source"], e["kind"]))
            .collect();
        Err(format!(
            "call {} ({}): no {what} after {secs} s: state {}, transfer {}; history:\n    {}",
            call.n,
            call.ending.as_str(),
            view["state"],
            view["transfer"]["state"],
            history.join("\n    ")
        ))
    }

    async fn transfer_state(
        &self,
        call: &Call,
        follower: &mut Follower,
        state: &str,
    ) -> Result<Value, String> {
        self.until(call, follower, state, 60.0, |v| {
            v["transfer"]["state"] == state
        })
        .await
    }

    fn hang_up(&self, number: &str) {
        self.stack.sim.hang_up(number);
    }

    /// Waits until every leg of the call has ended, as the simulator knows it.
    async fn all_over(&self, call: &Call) -> Result<(), String> {
        let numbers = [
            call.agent.clone(),
            call.customer.clone(),
            call.target.clone(),
        ];
        self.legs_over(call, &numbers).await
    }

    /// Waits until these numbers' latest legs have ended.
    async fn legs_over(&self, call: &Call, numbers: &[String]) -> Result<(), String> {
        let sim = &self.stack.sim;
        let over = |sim: &Simulator| {
            numbers
                .iter()
                .all(|n| sim.status_of(n).is_none_or(|s| s.is_final()))
        };
        let deadline = Instant::now() + Duration::from_secs_f64(90.0 * self.scale);
        while Instant::now() < deadline {
            if over(sim) {
                return Ok(());
            }
            self.pause(0.5).await;
        }
        Err(format!(
            "call {} ({}): legs still live after 90 s",
            call.n,
            call.ending.as_str()
        ))
    }

    /// One agent's call, from dialling to the end; the call's SID.
    async fn drive(self: &Arc<Self>, call: &Call) -> (Option<String>, Result<(), String>) {
        let live = self.live.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(live, Ordering::Relaxed);
        let outcome = if call.inbound {
            self.call_in(call).await
        } else {
            self.dial(call).await
        };
        self.live.fetch_sub(1, Ordering::Relaxed);
        outcome
    }

    async fn dial(self: &Arc<Self>, call: &Call) -> (Option<String>, Result<(), String>) {
        let started = self
            .act(
                "POST /calls",
                call,
                "/calls",
                Some(json!({ "agentNumber": call.agent, "customerNumber": call.customer })),
                201,
            )
            .await;
        let sid = match started {
            Ok(view) => match view["callSid"].as_str() {
                Some(sid) => sid.to_owned(),
                None => return (None, Err(format!("call {}: no callSid", call.n))),
            },
            Err(e) => return (None, Err(e)),
        };
        let mut follower = self.follow(call, &sid);
        let outcome = self.converse(call, &sid, &mut follower).await;
        drop(follower);
        let outcome = match outcome {
            Ok(()) => self.all_over(call).await,
            Err(e) => {
                // Whatever went wrong, end the call so the run ends.
                for number in [&call.customer, &call.target, &call.agent] {
                    self.hang_up(number);
                }
                Err(e)
            }
        };
        (Some(sid), outcome)
    }

    /// A customer calling the centre: waits for a member to take the call,
    /// talks, and one side hangs up.
    async fn call_in(self: &Arc<Self>, call: &Call) -> (Option<String>, Result<(), String>) {
        let base = self.stack.base_url();
        let sid = self.stack.sim.call_in(
            &call.customer,
            crate::local::LOCAL_CALLER_ID,
            &format!("{base}/twiml/inbound"),
            Some(format!("{base}/events/caller")),
        );
        let mut follower = self.follow(call, &sid);
        let taken = self
            .until(call, &mut follower, "a member answering", 90.0, |v| {
                v["state"] == "transferred"
            })
            .await;
        drop(follower);
        let member = match taken {
            Ok(view) => view["transfer"]["to"].as_str().map(str::to_owned),
            Err(e) => {
                self.hang_up(&call.customer);
                return (Some(sid), Err(e));
            }
        };
        self.pause(self.talk_secs).await;
        match (&member, call.n % 2) {
            (Some(member), 1) => self.hang_up(member),
            _ => self.hang_up(&call.customer),
        }
        let mut numbers = vec![call.customer.clone()];
        numbers.extend(member);
        (Some(sid), self.legs_over(call, &numbers).await)
    }

    async fn converse(
        &self,
        call: &Call,
        sid: &str,
        follower: &mut Follower,
    ) -> Result<(), String> {
        self.until(call, follower, "connected", 60.0, |v| {
            v["state"] == "connected"
        })
        .await?;
        self.pause(self.talk_secs).await;
        let transfer = format!("/calls/{sid}/transfer");
        self.act(
            "POST /calls/{callSid}/transfer",
            call,
            &transfer,
            Some(json!({ "to": call.target })),
            202,
        )
        .await?;
        match call.ending {
            Ending::Handover => {
                self.transfer_state(call, follower, "target-answered")
                    .await?;
                self.pause(3.0).await;
                self.act(
                    "POST /calls/{callSid}/leave",
                    call,
                    &format!("/calls/{sid}/leave"),
                    None,
                    200,
                )
                .await?;
                self.transfer_state(call, follower, "first-agent-left")
                    .await?;
                self.pause(5.0).await;
                if call.n % 2 == 0 {
                    self.hang_up(&call.customer);
                } else {
                    self.hang_up(&call.target);
                }
            }
            Ending::Busy => {
                self.transfer_state(call, follower, "target-busy").await?;
                self.pause(3.0).await;
                self.hang_up(&call.customer);
            }
            Ending::NoAnswer => {
                self.transfer_state(call, follower, "target-no-answer")
                    .await?;
                self.pause(2.0).await;
                if call.n % 2 == 0 {
                    self.hang_up(&call.customer);
                } else {
                    // The customer, alone then, is told goodbye.
                    self.hang_up(&call.agent);
                }
            }
            Ending::Cancel => {
                self.transfer_state(call, follower, "target-ringing")
                    .await?;
                self.pause(2.0).await;
                self.act(
                    "POST /calls/{callSid}/transfer/cancel",
                    call,
                    &format!("{transfer}/cancel"),
                    None,
                    200,
                )
                .await?;
                self.pause(3.0).await;
                self.hang_up(&call.customer);
            }
            Ending::CustomerHangsUp => {
                self.transfer_state(call, follower, "target-ringing")
                    .await?;
                self.pause(2.0).await;
                self.hang_up(&call.customer);
            }
        }
        Ok(())
    }

    /// The stored session against the simulator's legs, once all is over.
    async fn disagreement(
        &self,
        call: &Call,
        sid: &str,
        legs: &HashMap<String, String>,
    ) -> Option<String> {
        let (status, view) = self
            .api(
                "GET /calls/{callSid}",
                call,
                reqwest::Method::GET,
                &format!("/calls/{sid}"),
                None,
            )
            .await;
        if status != 200 {
            return Some(format!("call {}: GET answered {status}", call.n));
        }
        let mut wrong = Vec::new();
        if view["state"] != "ended" {
            wrong.push(format!("state {}", view["state"]));
        }
        // A customer who called in has no first agent; the member who
        // took their call is whoever the session says.
        let member = view["transfer"]["to"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stored = if call.inbound {
            vec![
                ("customer", &call.customer, &view["customerLeg"]),
                ("member", &member, &view["transfer"]["targetLeg"]),
            ]
        } else {
            vec![
                ("agent", &call.agent, &view["agentLeg"]),
                ("customer", &call.customer, &view["customerLeg"]),
                ("agent two", &call.target, &view["transfer"]["targetLeg"]),
            ]
        };
        for (who, number, leg) in stored {
            let truth = legs.get(number.as_str());
            let sid = leg["callSid"].as_str();
            match (truth, sid) {
                (None, None) => {}
                (Some(_), None) => wrong.push(format!("{who}'s leg not stored")),
                (None, Some(sid)) => wrong.push(format!("{who}'s leg {sid} unknown to Twilio")),
                (Some(truth), Some(sid)) => {
                    let simulated = self.stack.sim.call(sid).map(|c| c.status.as_str());
                    if simulated != Some(truth.as_str()) {
                        wrong.push(format!("{who}'s leg {sid} is not the latest"));
                    } else if leg["status"] != truth.as_str() {
                        wrong.push(format!(
                            "{who}'s leg stored {}, Twilio {truth}",
                            leg["status"]
                        ));
                    }
                }
            }
        }
        (!wrong.is_empty()).then(|| {
            format!(
                "call {} ({}, {:?}): {}",
                call.n,
                call.ending.as_str(),
                call.callbacks,
                wrong.join("; ")
            )
        })
    }
}

/// The name of the product's threads (at most 15 bytes: Linux's limit).
pub const PRODUCT_THREADS: &str = "wt-product";

fn latencies(what: String, mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    Latency {
        what,
        count: samples.len(),
        p50: super::percentile(&samples, 50.0),
        p99: super::percentile(&samples, 99.0),
    }
}

/// Runs the calls and reports. The product runs on `product` when given.
pub async fn run(
    options: &Options,
    product: Option<tokio::runtime::Handle>,
) -> Result<Report, Error> {
    let stack = LocalStack::start(LocalOptions {
        port: 0,
        time_scale: options.time_scale,
        ring_timeout_secs: 30,
        sim_poll: options.sim_poll,
        product_runtime: product.clone(),
        ..LocalOptions::default()
    })
    .await?;
    let sim = &stack.sim;
    let number = |role: u32, n: usize| format!("+1555{role}{n:06}");
    let mut calls = Vec::new();
    let mut faults = HashMap::new();
    let mut members = Vec::new();
    for n in 0..options.calls {
        let (agent, customer, target) = (number(1, n), number(2, n), number(3, n));
        let ending = Ending::of(n);
        let callbacks = Callbacks::of(n);
        let jitter = (n % 5) as f64 * 0.2;
        let inbound = options.inbound && inbound_call(n);
        let token = if inbound {
            // The agent is one of team billing's members; any caller may be
            // offered to them, so they answer as a handed-over agent does.
            sim.script(&agent, Script::answer_after(secs(3.0 + jitter)));
            let member =
                LocalAgent::new(&format!("member{n}@example.com"), &[agent.as_str()], false)
                    .in_teams(&[crate::local::LOCAL_INBOUND_TEAM]);
            members.push(stack.token_for(&member));
            // A supervisor follows the call, whoever takes it.
            stack.token_for(&LocalAgent::new(
                &format!("supervisor{n}@example.com"),
                &[],
                true,
            ))
        } else {
            sim.script(&agent, Script::answer_after(secs(1.0 + jitter)));
            sim.script(&customer, Script::answer_after(secs(2.0 + jitter)));
            sim.script(
                &target,
                match ending {
                    Ending::Handover => Script::answer_after(secs(3.0 + jitter)),
                    Ending::Busy if n % 20 == 6 => Script::busy(),
                    Ending::Busy => Script::decline_after(secs(4.0)),
                    Ending::NoAnswer => Script::no_answer(),
                    Ending::Cancel | Ending::CustomerHangsUp => Script::answer_after(secs(600.0)),
                },
            );
            // A supervisor of their own number: may follow the call after leaving it.
            stack.token_for(&LocalAgent::new(
                &format!("agent{n}@example.com"),
                &[agent.as_str()],
                true,
            ))
        };
        sim.watch(&customer);
        for person in [&agent, &customer, &target] {
            faults.insert(person.clone(), callbacks);
        }
        calls.push(Call {
            n,
            agent,
            customer,
            target,
            ending,
            callbacks,
            token,
            inbound,
        });
    }
    // Late by two seconds of Twilio time: later callbacks overtake them.
    let late = Duration::from_secs_f64(2.0 * options.time_scale);
    sim.on_callback(move |info: &CallbackInfo| {
        match info.number.as_ref().and_then(|n| faults.get(n))? {
            Callbacks::AsSent => None,
            Callbacks::Duplicated => Some(CallbackFault::Duplicate),
            Callbacks::Reordered => matches!(
                info.event.as_str(),
                "initiated" | "ringing" | "participant-join"
            )
            .then_some(CallbackFault::Delay(late)),
        }
    });

    // Team billing's members are signed in and available, their consoles'
    // heartbeat kept up as long as the run lasts.
    let presence = |token: String, url: String, http: reqwest::Client| async move {
        let body = json!({ "status": "available" });
        http.post(url).bearer_auth(token).json(&body).send().await
    };
    let http = reqwest::Client::new();
    let presence_url = format!("{}/presence", stack.base_url());
    for token in &members {
        presence(token.clone(), presence_url.clone(), http.clone()).await?;
    }
    let heartbeat = {
        let (members, url, http) = (members.clone(), presence_url.clone(), http.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                for token in &members {
                    let _ = presence(token.clone(), url.clone(), http.clone()).await;
                }
            }
        })
    };
    crate::metrics_capture::capture();
    let dynalite_pid = stack.dynalite.pid();
    let cpu_before = (
        super::cpu::process(),
        super::cpu::threads(PRODUCT_THREADS),
        dynalite_pid.and_then(super::cpu::pid),
    );
    let started = Instant::now();
    let agents = Arc::new(Agents {
        stack,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        scale: options.time_scale,
        talk_secs: options.talk_secs,
        front_end_5xx: AtomicUsize::new(0),
        live: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        unexpected: Mutex::new(Vec::new()),
        latencies: Mutex::new(HashMap::new()),
    });

    // The reconciler on its schedule (every minute of Twilio time).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = agents.stack.app.clone();
    let period = Duration::from_secs_f64(60.0 * options.time_scale);
    let reconciling = async move {
        let (mut runs, mut repairs) = (0, 0);
        let mut stopped = stopped;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stopped.changed() => return (runs, repairs),
            }
            if let Ok(report) =
                reconcile::run(app.services(), time::OffsetDateTime::now_utc()).await
            {
                runs += 1;
                repairs += report.repairs;
            }
        }
    };
    let reconciler = match &product {
        Some(runtime) => runtime.spawn(reconciling),
        None => tokio::spawn(reconciling),
    };

    let calls = Arc::new(calls);
    let ramp = options.ramp_secs * options.time_scale;
    let count = options.calls.max(1) as f64;
    let tasks: Vec<_> = (0..calls.len())
        .map(|i| {
            let (agents, calls) = (agents.clone(), calls.clone());
            let at = Duration::from_secs_f64(ramp * i as f64 / count);
            tokio::spawn(async move {
                tokio::time::sleep(at).await;
                agents.drive(&calls[i]).await
            })
        })
        .collect();
    let mut report = Report {
        calls: options.calls,
        ..Report::default()
    };
    let mut sids = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (sid, outcome) = task.await?;
        if let Err(e) = outcome {
            report
                .unfinished
                .push(format!("{e}\n{}", story(&agents.stack.sim, &calls[i])));
        }
        sids.push((i, sid));
    }
    // Every callback in, the late ones too.
    sim_settled(&agents.stack.sim, late).await;
    heartbeat.abort();
    let wall = started.elapsed();
    let _ = stop.send(true);
    let (runs, repairs) = reconciler.await.unwrap_or_default();

    let cpu_after = (
        super::cpu::process(),
        super::cpu::threads(PRODUCT_THREADS),
        dynalite_pid.and_then(super::cpu::pid),
    );
    let sim = &agents.stack.sim;
    let mut legs: HashMap<String, String> = HashMap::new();
    for leg in sim.calls() {
        // The latest leg of each number (creation order).
        legs.insert(leg.to.clone(), leg.status.as_str().to_owned());
    }
    for (i, sid) in &sids {
        let call = &calls[*i];
        if call.inbound {
            report.inbound += 1;
        } else {
            *report.endings.entry(call.ending.as_str()).or_default() += 1;
        }
        match call.callbacks {
            Callbacks::Duplicated => report.duplicated += 1,
            Callbacks::Reordered => report.reordered += 1,
            Callbacks::AsSent => {}
        }
        let grace = Duration::from_secs_f64(options.grace_secs * options.time_scale);
        report.stranded.extend(sim.problems(&call.customer, grace));
        if let Some(sid) = sid {
            report
                .disagreements
                .extend(agents.disagreement(call, sid, &legs).await);
        }
    }
    report.contract_violations = sim.contract_violations();
    let answers = sim.webhook_answers();
    report.webhook_requests = answers.len();
    let mut by_path: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for answer in answers {
        match answer.status {
            Some(status) if status >= 500 => report.webhook_5xx += 1,
            None => report.webhook_unanswered += 1,
            _ => {}
        }
        by_path.entry(answer.path).or_default().push(answer.latency);
    }
    report.webhooks = by_path
        .into_iter()
        .map(|(path, samples)| latencies(path, samples))
        .collect();
    if let Ok(mut front) = agents.latencies.lock() {
        let mut front: Vec<_> = front.drain().collect();
        front.sort_by_key(|(what, _)| *what);
        report.front_end = front
            .into_iter()
            .map(|(what, samples)| latencies(what.to_owned(), samples))
            .collect();
    }
    report.front_end_5xx = agents.front_end_5xx.load(Ordering::Relaxed);
    report.unexpected = agents
        .unexpected
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    let lines = crate::metrics_capture::take_captured();
    let counted = |name: &str| {
        let key = format!("\"{name}\":1");
        lines.iter().filter(|l| l.contains(&key)).count()
    };
    report.store_conflicts = counted("StoreConflicts");
    report.writes = agents
        .stack
        .dynamo_ops
        .2
        .snapshot()
        .into_iter()
        .filter(|(kind, _)| !kind.starts_with("by "))
        .collect();
    for operation in super::push_costs::REST_OPERATIONS {
        let n = agents.stack.sim.requests(operation) as u64;
        if n > 0 {
            report.rest.insert(format!("{operation:?}"), n);
        }
    }
    report.twilio_retries = counted("TwilioRetries");
    report.peak_calls = agents.peak.load(Ordering::Relaxed);
    report.reconciler_runs = runs;
    report.reconciler_repairs = repairs;
    report.wall = wall;
    report.cpu_process = cpu_after.0.saturating_sub(cpu_before.0);
    report.cpu_product = product
        .is_some()
        .then(|| cpu_after.1.saturating_sub(cpu_before.1));
    report.cpu_dynalite = match (cpu_before.2, cpu_after.2) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok(report)
}

/// The simulator's timeline lines about one call's people.
fn story(sim: &Simulator, call: &Call) -> String {
    let numbers = [&call.agent, &call.customer, &call.target];
    sim.timeline()
        .iter()
        .filter(|e| numbers.iter().any(|n| e.text.contains(n.as_str())))
        .map(|e| format!("    {:>8.3}s  {}\n", e.at.as_secs_f64(), e.text))
        .collect()
}

async fn sim_settled(sim: &Simulator, late: Duration) {
    // Late callbacks are sent outside the queues: give them their delay first.
    tokio::time::sleep(late + Duration::from_millis(200)).await;
    sim.wait_for(Duration::from_secs(30), |sim| sim.callbacks_settled())
        .await;
}

/// Twilio seconds as a script's duration (the simulator scales it).
fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
