//! A development-only simulator of the slice of Twilio this product uses:
//! the REST API on loopback (requests checked against Twilio's OpenAPI
//! file), call legs with real states, TwiML fetched from the product's
//! webhooks with valid signatures, bridges, conference rooms, status
//! callbacks, and scripted people. Tests ask it at any moment who is
//! connected to whom, and whether the customer was ever left alone.
//!
//! It is meant to be at least as strict as Twilio. Each rule it models cites
//! `../shared/docs/twilio-rules.md` (rule number and source key) where it is
//! implemented; the main ones:
//!
//! - conferences (`rooms.rs`): start at two participants, one a starter
//!   (1.2); wait audio: default music when no `waitUrl`, silence for `""`,
//!   the `waitUrl` fetched with `waitMethod` (POST) otherwise, a failing one
//!   drops the participant to its next verb (1.4-1.7); endConferenceOnExit
//!   ends the room, TwiML participants carry on after their `<Dial>`, REST
//!   ones are hung up (1.8, U3); the first participant fixes the room's
//!   callback, by TwiML or REST (1.13, 1.14); labels (1.11, 3.5); event
//!   parameters and leave/end reasons (2.1-2.5, 2.7);
//! - REST (`rest.rs`): participants created into a room that exists at once
//!   (3.1), listed and fetched while live only (3.6), not updatable while
//!   connecting (3.9, U5), EndConferenceOnExit ignored on hold (3.8), hold
//!   audio (8.1, 8.2), delete (3.10, U3), conference `Status=completed`
//!   (3.11); call updates by state (4.3-4.5), a redirected participant leaves
//!   its room (4.8);
//! - calls (`engine.rs`): status callbacks (5.1-5.6), `<Dial action>`
//!   parameters (5.7-5.9), redirects of parent and child during `<Dial>`
//!   (4.6, 4.7), FallbackUrl (6.11);
//! - recordings (`recordings.rs`): one per `<Dial record>` bridge, from
//!   answer or ringing, and one per recorded conference from its start to
//!   its end, fixed by the first participant like its callback (7.1, 7.2,
//!   7.4-7.6, U10); their status callbacks go through the callback queues
//!   and faults;
//! - webhooks (`webhook.rs`): headers (6.1, 6.9), signatures without the
//!   fragment (6.2, 6.3), overrides and retries (6.6-6.8), 429 (6.10),
//!   status callbacks answered 4xx/5xx only logged (6.5), per-call callback
//!   queues (5.2, 6.12).

mod engine;
pub mod people;
mod recordings;
mod rest;
mod rooms;
pub mod twiml;
mod webhook;
mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::contract::OpenApi;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warm_transfer_core::domain::LegStatus;

pub use people::{Answer, Script};
pub use webhook::{CallbackFault, CallbackInfo, CallbackKind, WebhookAnswer};
pub use world::{EndReason, Entry, Situation};
use world::{Interrupt, Location, World};

/// REST operations, for counting requests and injecting faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST Calls.json`
    CreateCall,
    /// `POST Calls/{Sid}.json`
    UpdateCall,
    /// `POST Conferences/{name or CF}/Participants.json`
    CreateParticipant,
    /// `POST Conferences/{CF}/Participants/{CallSid or label}.json`
    UpdateParticipant,
    /// `GET Calls/{Sid}.json`
    FetchCall,
    /// `GET Conferences/{CF}/Participants/{CallSid or label}.json`
    FetchParticipant,
    /// `POST Conferences/{CF}.json`
    UpdateConference,
    /// `DELETE Conferences/{CF}/Participants/{CallSid or label}.json`
    DeleteParticipant,
    /// `GET Calls.json`
    ListCalls,
    /// `GET Conferences/{CF}/Participants.json`
    ListParticipants,
    /// `GET Conferences.json`
    ListConferences,
    /// `GET Conferences/{CF}.json`
    FetchConference,
    /// `GET Accounts/{AC}.json` (the account itself)
    FetchAccount,
    /// `GET IncomingPhoneNumbers.json`
    ListIncomingPhoneNumbers,
    /// `GET OutgoingCallerIds.json`
    ListOutgoingCallerIds,
}

/// A fault injected into the next request of an [`Operation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing happens; Twilio's JSON error is answered.
    Refuse {
        status: u16,
        code: u32,
        message: String,
    },
    /// The request takes effect, then is answered with this status (a 5xx)
    /// and Twilio's JSON error body.
    AppliedThenError { status: u16 },
    /// The request takes effect; the answer is withheld this long (pick it
    /// longer than the client's timeout).
    AppliedThenTimeout(Duration),
}

pub struct SimConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// 1.0 runs people's delays in real time; 0.1 ten times faster.
    pub time_scale: f64,
    pub openapi_path: PathBuf,
    /// Script for numbers without one of their own.
    pub default_script: fn(&str) -> Option<Script>,
    /// How often a waiting leg looks at the world again (real time): how
    /// soon it notices a change. Thousands of legs want a longer one.
    pub poll: Duration,
    /// An API key the REST side accepts besides the account SID and token.
    pub api_key: Option<(String, String)>,
    /// `Trial` or `Full`, as the account resource's `type`.
    pub account_type: &'static str,
    /// The account's own numbers (IncomingPhoneNumbers).
    pub owned_numbers: Vec<String>,
    /// Numbers verified as caller IDs (OutgoingCallerIds).
    pub verified_caller_ids: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: "simulator-auth-token".into(),
            time_scale: 1.0,
            openapi_path: crate::paths::twilio_openapi(),
            default_script: |_| None,
            poll: Duration::from_millis(4),
            api_key: None,
            account_type: "Full",
            owned_numbers: Vec::new(),
            verified_caller_ids: Vec::new(),
        }
    }
}

pub(crate) struct Sim {
    config: SimConfig,
    world: Mutex<World>,
    scripts: Mutex<HashMap<String, Script>>,
    /// Webhook clients per connect timeout (`ct` override).
    clients: Mutex<HashMap<Duration, reqwest::Client>>,
    callback_rules: Mutex<Vec<webhook::CallbackRule>>,
    queues: Mutex<webhook::Queues>,
    /// Every webhook attempt's answer, for the scale benchmark.
    answers: Mutex<Vec<WebhookAnswer>>,
    openapi: OpenApi,
    started: Instant,
    counter: AtomicU64,
}

/// Who is talking to whom right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Two phones bridged by `<Dial><Number>`.
    Bridge(String, String),
    /// A conference room: its members' numbers, and who rings into it.
    Room {
        name: String,
        members: Vec<String>,
        ringing: Vec<String>,
    },
}

/// A completed recording, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// `RE…`
    pub sid: String,
    /// `DialVerb` or `Conference`, as its callback's `RecordingSource`.
    pub source: &'static str,
    /// The parent call of a `<Dial>` recording, the `CF…` of a conference's.
    pub of: String,
    /// In Twilio's time (the simulator's time scale undone).
    pub duration_secs: u64,
    pub channels: u32,
}

/// A call leg as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub sid: String,
    pub parent: Option<String>,
    pub to: String,
    pub from: String,
    pub direction: &'static str,
    pub status: LegStatus,
    pub ended_by: Option<EndReason>,
    pub label: Option<String>,
}

impl From<&world::Leg> for Call {
    fn from(leg: &world::Leg) -> Self {
        Self {
            sid: leg.sid.clone(),
            parent: leg.parent.clone(),
            to: leg.to.clone(),
            from: leg.from.clone(),
            direction: leg.direction,
            status: leg.status,
            ended_by: leg.ended_by,
            label: leg.label.clone(),
        }
    }
}

pub struct Simulator {
    sim: Arc<Sim>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulator: {0}")]
    Contract(#[from] crate::contract::ContractError),
    #[error("simulator: {0}")]
    Http(String),
}

impl Simulator {
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let openapi = OpenApi::load(&config.openapi_path)?;
        let sim = Arc::new(Sim {
            config,
            world: Mutex::new(World::default()),
            scripts: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            callback_rules: Mutex::new(Vec::new()),
            queues: Mutex::new(HashMap::new()),
            answers: Mutex::new(Vec::new()),
            openapi,
            started: Instant::now(),
            counter: AtomicU64::new(1),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = sim.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sim = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| sim.clone().serve_rest(req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { sim, addr, task })
    }

    /// What the product uses instead of `https://api.twilio.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, number: &str, script: Script) {
        if let Ok(mut scripts) = self.sim.scripts.lock() {
            scripts.insert(number.to_owned(), script);
        }
    }

    /// Follow this person's situation for [`Simulator::stranded`].
    pub fn watch(&self, number: &str) {
        self.sim.with_world(|w| w.watch(number));
    }

    /// `from` calls `to`, one of the account's numbers, whose voice
    /// webhook is `voice_url` and whose status callback (`completed`
    /// only, as a number's is) is `status_callback`. The caller's script
    /// says when they hang up. Returns the call's SID.
    pub fn call_in(
        &self,
        from: &str,
        to: &str,
        voice_url: &str,
        status_callback: Option<String>,
    ) -> String {
        place_inbound(&self.sim, from, to, voice_url, status_callback)
    }

    /// What places calls in and hangs people up, apart from the simulator's
    /// handle (the development server's `/local-sim/` routes hold it).
    pub fn phones(&self) -> Phones {
        Phones(self.sim.clone())
    }

    /// The person on this number hangs up now.
    pub fn hang_up(&self, number: &str) -> bool {
        hang_up_number(&self.sim, number)
    }

    /// The next `times` requests of `operation` fail with Twilio's error
    /// body, and nothing happens (the same as [`Fault::Refuse`]).
    pub fn fail_next(
        &self,
        operation: Operation,
        times: usize,
        status: u16,
        code: u32,
        message: &str,
    ) {
        for _ in 0..times {
            self.fault_next(
                operation,
                Fault::Refuse {
                    status,
                    code,
                    message: message.to_owned(),
                },
            );
        }
    }

    /// Queues one fault for the next request of `operation` (after any
    /// already queued).
    pub fn fault_next(&self, operation: Operation, fault: Fault) {
        self.sim.with_world(|w| {
            w.faults.entry(operation).or_default().push_back(fault);
        });
    }

    /// Drops every fault still queued: Twilio is back to normal.
    pub fn clear_faults(&self) {
        self.sim.with_world(|w| w.faults.clear());
    }

    /// How many requests of `operation` reached the simulator, faulted and
    /// refused ones included.
    pub fn requests(&self, operation: Operation) -> usize {
        self.sim
            .with_world(|w| w.requests.get(&operation).copied().unwrap_or(0))
    }

    /// Call updates with `Url` or `Twiml` applied to this number's calls.
    pub fn redirects_of(&self, number: &str) -> usize {
        self.sim
            .with_world(|w| w.redirects.get(number).copied().unwrap_or(0))
    }

    /// Adds a rule consulted for every status and conference callback before
    /// it is sent; the first rule answering `Some` decides. Delays are real
    /// time (not scaled); a delayed callback is overtaken by later ones.
    pub fn on_callback(
        &self,
        rule: impl Fn(&CallbackInfo) -> Option<CallbackFault> + Send + Sync + 'static,
    ) {
        if let Ok(mut rules) = self.sim.callback_rules.lock() {
            rules.push(std::sync::Arc::new(rule));
        }
    }

    /// Every webhook attempt so far: what was asked and how it was answered.
    pub fn webhook_answers(&self) -> Vec<WebhookAnswer> {
        self.sim
            .answers
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Whether every status and conference callback queued so far has been
    /// answered (scripted delays excepted).
    pub fn callbacks_settled(&self) -> bool {
        self.sim.callbacks_idle()
    }

    /// Whether this number ever heard Twilio's default music: waiting in a
    /// room whose `<Conference>` (or REST participant) had no `waitUrl`, or
    /// held without a `HoldUrl`.
    pub fn heard_default_music(&self, number: &str) -> bool {
        self.sim
            .with_world(|w| w.default_music.get(number).is_some_and(|d| !d.is_empty()))
    }

    pub fn status_of(&self, number: &str) -> Option<LegStatus> {
        self.sim
            .with_world(|w| w.leg_of_number(number).map(|l| l.status))
    }

    pub fn situation(&self, number: &str) -> Situation {
        self.sim.with_world(|w| w.situation_of(number))
    }

    /// Whether `listener` hears `speaker` now: both in the same started
    /// room, the speaker neither muted, held, nor coaching someone else.
    pub fn hears(&self, listener: &str, speaker: &str) -> bool {
        self.sim.with_world(|w| {
            let (Some(l), Some(s)) = (w.leg_of_number(listener), w.leg_of_number(speaker)) else {
                return false;
            };
            match (&l.location, &s.location) {
                (Location::InRoom(a), Location::InRoom(b)) if a == b => w.hears(a, &l.sid, &s.sid),
                _ => false,
            }
        })
    }

    /// Live calls of a number (several when it was called more than once).
    pub fn calls_to(&self, number: &str) -> usize {
        self.sim
            .with_world(|w| w.legs.iter().filter(|l| l.to == number).count())
    }

    /// One call leg by SID.
    pub fn call(&self, sid: &str) -> Option<Call> {
        self.sim.with_world(|w| w.leg(sid).map(Call::from))
    }

    /// Every call leg so far, in creation order.
    pub fn calls(&self) -> Vec<Call> {
        self.sim
            .with_world(|w| w.legs.iter().map(Call::from).collect())
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.sim.with_world(|w| {
            let mut out = Vec::new();
            for leg in w.legs.iter().filter(|l| l.is_live()) {
                if let Location::Bridged(other) = &leg.location {
                    if let Some(other) = w
                        .leg(other)
                        .filter(|o| o.location == Location::Bridged(leg.sid.clone()))
                    {
                        if leg.parent.is_none() {
                            out.push(Connection::Bridge(leg.to.clone(), other.to.clone()));
                        }
                    }
                }
            }
            for room in w.rooms.iter().filter(|r| !r.ended) {
                let (members, ringing) = w.room_view(room);
                if !members.is_empty() || !ringing.is_empty() {
                    out.push(Connection::Room {
                        name: room.name.clone(),
                        members,
                        ringing,
                    });
                }
            }
            out
        })
    }

    /// Every recording completed so far, in order.
    pub fn recordings(&self) -> Vec<Recording> {
        self.sim.with_world(|w| w.recordings.clone())
    }

    pub fn timeline(&self) -> Vec<Entry> {
        self.sim.with_world(|w| w.timeline.clone())
    }

    /// The timeline as readable lines: elapsed time, then what happened.
    pub fn timeline_text(&self) -> String {
        self.timeline()
            .iter()
            .map(|e| format!("{:>8.3}s  {}\n", e.at.as_secs_f64(), e.text))
            .collect()
    }

    /// Requests that broke Twilio's OpenAPI contract (answered 400).
    pub fn contract_violations(&self) -> Vec<String> {
        self.sim.with_world(|w| w.violations.clone())
    }

    /// TwiML webhooks that failed or answered invalid TwiML (after the
    /// FallbackUrl, if any), wait URLs that failed, rejected participant
    /// labels: what Twilio's debugger reports as errors.
    pub fn application_errors(&self) -> Vec<String> {
        self.sim.with_world(|w| {
            w.application_errors
                .iter()
                .map(|(_, text)| text.clone())
                .collect()
        })
    }

    /// The invariant of the product, for a watched number: the person is
    /// never left alone nor cut off. Reported:
    ///
    /// - every stretch longer than `grace` in [`Situation::Alone`]: in
    ///   progress but not *attended*. A person is attended when another
    ///   person is connected with them (a bridge with a leg in progress, or
    ///   a started conference with another joined member in progress and not
    ///   on hold) or, in a room, when another party's phone rings into it
    ///   with early media ([`Situation::Waiting`]), or on hold while others
    ///   are connected in the room, one of whom can take them off hold
    ///   ([`Situation::OnHold`]). Being on hold with nobody there, waiting
    ///   in a room, or running TwiML outside any bridge or room counts as
    ///   alone.
    /// - an ending of the call, once they had been connected, that is not
    ///   their own hang-up ([`EndReason::Person`]), except a clean ending by
    ///   the product: [`EndReason::Twiml`] (`<Hangup/>` or the end of the
    ///   document) after being alone, having heard a `<Say>` or `<Play>`
    ///   since they were last attended. (The time alone before it still
    ///   counts against `grace`.)
    pub fn stranded(&self, number: &str, grace: Duration) -> Vec<String> {
        let (log, message) = self.sim.with_world(|w| {
            (
                w.situations.get(number).cloned().unwrap_or_default(),
                w.messages.get(number).copied(),
            )
        });
        let mut problems = Vec::new();
        let mut last_attended: Option<Instant> = None;
        for (i, (at, situation)) in log.iter().enumerate() {
            let until = log.get(i + 1).map_or_else(Instant::now, |(next, _)| *next);
            match situation {
                Situation::Connected | Situation::Waiting | Situation::OnHold => {
                    last_attended = Some(*at)
                }
                Situation::Alone if until.duration_since(*at) > grace => problems.push(format!(
                    "{number} alone for {:?} at {:?}",
                    until.duration_since(*at),
                    at.duration_since(self.sim.started)
                )),
                Situation::Ended(reason)
                    if *reason != EndReason::Person
                        && log.iter().any(|(_, s)| *s == Situation::Connected) =>
                {
                    let after_alone = i > 0 && log[i - 1].1 == Situation::Alone;
                    let told = message.is_some_and(|m| last_attended.is_none_or(|a| m >= a));
                    if !(*reason == EndReason::Twiml && after_alone && told) {
                        problems.push(format!("{number} was disconnected ({reason:?})"));
                    }
                }
                _ => {}
            }
        }
        problems
    }

    /// Everything wrong for this number: [`Simulator::stranded`], having
    /// heard Twilio's default music, and application errors on its calls.
    pub fn problems(&self, number: &str, grace: Duration) -> Vec<String> {
        let mut problems = self.stranded(number, grace);
        let (music, errors) = self.sim.with_world(|w| {
            (
                w.default_music.get(number).cloned().unwrap_or_default(),
                w.application_errors
                    .iter()
                    .filter(|(n, _)| n == number)
                    .map(|(_, text)| text.clone())
                    .collect::<Vec<_>>(),
            )
        });
        for at in music {
            problems.push(format!(
                "{number} heard Twilio's default music at {:?}",
                at.duration_since(self.sim.started)
            ));
        }
        for error in errors {
            problems.push(format!("{number}: application error: {error}"));
        }
        problems
    }

    /// Polls `check` until it holds or `timeout` passes.
    pub async fn wait_for(&self, timeout: Duration, check: impl Fn(&Simulator) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        check(self)
    }
}

/// A cloneable handle on the simulated phones (see [`Simulator::phones`]).
#[derive(Clone)]
pub struct Phones(Arc<Sim>);

impl Phones {
    /// [`Simulator::call_in`].
    pub fn call_in(
        &self,
        from: &str,
        to: &str,
        voice_url: &str,
        status_callback: Option<String>,
    ) -> String {
        place_inbound(&self.0, from, to, voice_url, status_callback)
    }

    /// [`Simulator::hang_up`].
    pub fn hang_up(&self, number: &str) -> bool {
        hang_up_number(&self.0, number)
    }
}

fn place_inbound(
    sim: &Arc<Sim>,
    from: &str,
    to: &str,
    voice_url: &str,
    status_callback: Option<String>,
) -> String {
    // The leg's `to` is the person on it: here the caller.
    let sid = sim.create_leg(engine::NewLeg {
        to: from,
        from: to,
        parent: None,
        direction: "inbound",
        status_callback,
        callback_method: None,
        callback_events: Vec::new(),
        label: None,
        fallback: None,
    });
    let token = format!("{{\"parentCallInfoToken\":\"{}\"}}", sim.new_sid("TK"));
    sim.with_world(|w| {
        if let Some(leg) = w.leg_mut(&sid) {
            leg.call_token = Some(token);
        }
    });
    let target = world::Target::Url {
        url: voice_url.to_owned(),
        method: "POST".into(),
    };
    tokio::spawn(sim.clone().run_inbound(sid.clone(), target));
    sid
}

fn hang_up_number(sim: &Arc<Sim>, number: &str) -> bool {
    let sid = sim.with_world(|w| {
        w.legs
            .iter()
            .rev()
            .find(|l| l.to == number && l.is_live())
            .map(|l| l.sid.clone())
    });
    let Some(sid) = sid else {
        return false;
    };
    sim.log(format!("{number} hangs up"));
    sim.interrupt(&sid, Interrupt::HangUp(EndReason::Person))
}
