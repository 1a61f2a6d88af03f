//! A development-only simulator of the slice of Twilio this product uses:
//! the REST API on loopback (requests checked against Twilio's OpenAPI
//! file), call legs with real states, TwiML fetched from the product's
//! webhooks with valid signatures, bridges, conference rooms, status
//! callbacks, and scripted people. Tests ask it at any moment who is
//! connected to whom, and whether the customer was ever left alone.

mod engine;
pub mod people;
mod rest;
pub mod twiml;
mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warm_transfer_core::domain::LegStatus;
use warm_transfer_core::twilio::contract::OpenApi;

pub use people::{Answer, Script};
pub use world::{EndReason, Entry, Situation};
use world::{Interrupt, Location, World};

/// REST operations a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateCall,
    UpdateCall,
    CreateParticipant,
}

pub struct SimConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// 1.0 runs people's delays in real time; 0.1 ten times faster.
    pub time_scale: f64,
    pub openapi_path: PathBuf,
    /// Script for numbers without one of their own.
    pub default_script: fn(&str) -> Option<Script>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: "simulator-auth-token".into(),
            time_scale: 1.0,
            openapi_path: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/twilio/twilio_api_v2010.json"
            )),
            default_script: |_| None,
        }
    }
}

pub(crate) struct Sim {
    config: SimConfig,
    world: Mutex<World>,
    scripts: Mutex<HashMap<String, Script>>,
    http: reqwest::Client,
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
    Contract(#[from] warm_transfer_core::twilio::contract::ContractError),
    #[error("simulator: {0}")]
    Http(String),
}

impl Simulator {
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let openapi = OpenApi::load(&config.openapi_path)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| SimError::Http(e.to_string()))?;
        let sim = Arc::new(Sim {
            config,
            world: Mutex::new(World::default()),
            scripts: Mutex::new(HashMap::new()),
            http,
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
        self.sim.with_world(|w| {
            w.situations.entry(number.to_owned()).or_default();
        });
    }

    /// The person on this number hangs up now.
    pub fn hang_up(&self, number: &str) -> bool {
        let sid = self.sim.with_world(|w| {
            w.legs
                .iter()
                .rev()
                .find(|l| l.to == number && l.is_live())
                .map(|l| l.sid.clone())
        });
        let Some(sid) = sid else {
            return false;
        };
        self.sim.log(format!("{number} hangs up"));
        self.sim
            .interrupt(&sid, Interrupt::HangUp(EndReason::Person))
    }

    /// The next `times` requests of `operation` fail with Twilio's error body.
    pub fn fail_next(
        &self,
        operation: Operation,
        times: usize,
        status: u16,
        code: u32,
        message: &str,
    ) {
        self.sim.with_world(|w| {
            let queue = w.faults.entry(operation).or_default();
            queue.extend(std::iter::repeat_n(
                (status, code, message.to_owned()),
                times,
            ));
        });
    }

    pub fn status_of(&self, number: &str) -> Option<LegStatus> {
        self.sim
            .with_world(|w| w.leg_of_number(number).map(|l| l.status))
    }

    pub fn situation(&self, number: &str) -> Situation {
        self.sim.with_world(|w| w.situation_of(number))
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
                let number = |sid: &str| w.leg(sid).map(|l| l.to.clone()).unwrap_or_default();
                let members: Vec<String> = room.members.iter().map(|m| number(&m.sid)).collect();
                let ringing: Vec<String> = w
                    .legs
                    .iter()
                    .filter(|l| {
                        l.is_live() && l.ringing_into.as_deref() == Some(room.name.as_str())
                    })
                    .map(|l| l.to.clone())
                    .collect();
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

    /// Webhooks that failed or answered invalid TwiML.
    pub fn application_errors(&self) -> Vec<String> {
        self.sim.with_world(|w| w.application_errors.clone())
    }

    /// The invariant of the product, for a watched number: never alone in a
    /// room (beyond `grace`) nor disconnected, except by their own hang-up.
    pub fn stranded(&self, number: &str, grace: Duration) -> Vec<String> {
        let log = self
            .sim
            .with_world(|w| w.situations.get(number).cloned().unwrap_or_default());
        let mut problems = Vec::new();
        for (i, (at, situation)) in log.iter().enumerate() {
            let until = log.get(i + 1).map_or_else(Instant::now, |(next, _)| *next);
            match situation {
                Situation::Alone if until.duration_since(*at) > grace => problems.push(format!(
                    "{number} alone for {:?} at {:?}",
                    until.duration_since(*at),
                    at.duration_since(self.sim.started)
                )),
                Situation::Ended(reason)
                    if *reason != EndReason::Person
                        && log.iter().any(|(_, s)| *s == Situation::Connected) =>
                {
                    problems.push(format!("{number} was disconnected ({reason:?})"))
                }
                _ => {}
            }
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
