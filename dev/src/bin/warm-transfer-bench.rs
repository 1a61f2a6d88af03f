//! The benchmarks of BENCHMARKS.md:
//! `cargo run --release -p warm-transfer-dev --bin warm-transfer-bench`
//! builds the release binaries it measures first (`--no-build` skips that);
//! `--smoke` runs a few requests of each part only; `--functions-only`
//! measures cold start, size, memory and warm invocations only,
//! `--function NAME` of one function (repeatable); `--cold-starts N` sets
//! how many cold starts each way. `--peer-only` runs the
//! side-by-side with the seed alone (`--peer-runs N`, default 3). `--scale N`
//! (repeatable) runs the scale run with N calls at once instead of the
//! rest (`--scale-runs R` times each, `--time-scale F`, `--plot FILE`
//! writes the SVG of p99 against N; `--ramp-secs S`: the calls start over S
//! seconds of Twilio time, default 20; `--talk-secs S`: each talks S seconds
//! before its transfer, default 5).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::{
    CallSession, LegObservation, LegStatus, Observation, TransferKind,
};
use warm_transfer_core::endpoint::{Caller, Endpoint, HttpEndpoint};
use warm_transfer_core::handlers::App;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::secrets;
use warm_transfer_core::signature::sign_form;
use warm_transfer_core::store::{CallStore, DynamoStore};
use warm_transfer_core::twilio::TwilioClient;
use warm_transfer_dev::bench::cpu;
use warm_transfer_dev::bench::delay_proxy::DelayProxy;
use warm_transfer_dev::bench::load::{self, Request};
use warm_transfer_dev::bench::percentile;
use warm_transfer_dev::bench::runtime_api::RuntimeApi;
use warm_transfer_dev::bench::scale;
use warm_transfer_dev::bench::twilio_stub::TwilioStub;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::events;
use warm_transfer_dev::idp::{LOCAL_CLIENT_ID, LocalIssuer, local_agents};
use warm_transfer_dev::local::LOCAL_AUTH_TOKEN;
use warm_transfer_dev::moto::MotoServer;
use warm_transfer_dev::server::DevServer;

type Error = Box<dyn std::error::Error + Send + Sync>;

const AUTH_TOKEN: &str = "bench-auth-token";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TABLE: &str = "calls-bench";
/// The injected wait per round trip; the second run doubles it, so the
/// latency's growth counts the trips whatever dynalite's own time is.
const DELAY: Duration = Duration::from_millis(20);

/// One endpoint's latency at one injected delay.
struct Timing {
    name: &'static str,
    target: u32,
    p50: Duration,
    p99: Duration,
}

struct Settings {
    smoke: bool,
    /// `--functions-only`: parts 2-3 alone (cold start, size, memory).
    functions_only: bool,
    /// `--function NAME` (repeatable): only these functions in parts 2-3.
    only: Vec<String>,
    /// `--cold-starts N`: cold starts per function and way (default 15).
    cold: Option<usize>,
    /// `--peer-only`: part 4 alone; `--peer-runs N` of it.
    peer_only: bool,
    /// The side by side's load generator.
    client: Client,
    /// `--handler-only`: the handlers' own CPU per request alone.
    handler_only: bool,
    peer_runs: usize,
    /// `--scale N` (repeatable): the scale run with N calls at once.
    scale: Vec<usize>,
    scale_runs: usize,
    time_scale: f64,
    ramp_secs: f64,
    talk_secs: f64,
    plot: Option<PathBuf>,
}

impl Settings {
    fn samples(&self) -> usize {
        if self.smoke { 5 } else { 60 }
    }
    fn load_time(&self) -> Duration {
        if self.smoke {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        }
    }
    fn cold_starts(&self) -> usize {
        self.cold.unwrap_or(if self.smoke { 2 } else { 15 })
    }
}

fn workspace() -> PathBuf {
    warm_transfer_dev::paths::workspace()
}

/// Where cargo put this release build (and so the binaries it measures):
/// `target/release`, or under `CARGO_TARGET_DIR`.
fn release_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target/release"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_map(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("static number")
}

fn connected_session(n: usize) -> (CallSid, CallSession, [Observation; 2]) {
    let sid = CallSid::parse(&format!("CA{n:032x}")).expect("hex sid");
    let customer =
        CallSid::parse(&format!("CA{:032x}", (n as u128) + (1u128 << 100))).expect("hex sid");
    let session = CallSession::start(
        sid.clone(),
        phone("+15550100001"),
        phone("+15550100002"),
        phone("+15005550006"),
        OffsetDateTime::now_utc(),
    );
    let leg = |call: &CallSid| LegObservation {
        call_sid: call.clone(),
        status: LegStatus::InProgress,
        sequence: Some(2),
        at: OffsetDateTime::now_utc(),
    };
    (
        sid.clone(),
        session,
        [
            Observation::AgentLeg(leg(&sid)),
            Observation::CustomerLeg(leg(&customer)),
        ],
    )
}

/// Part 1: each endpoint's latency with DynamoDB and Twilio 20 ms away.
async fn round_trips(settings: &Settings, delay: Duration) -> Result<Vec<Timing>, Error> {
    let dynalite = Dynalite::start().await?;
    dynalite.create_table(TABLE).await?;
    let twilio = TwilioStub::start().await?;
    let dynamo_far = DelayProxy::start(
        dynalite.endpoint().trim_start_matches("http://").parse()?,
        delay,
    )
    .await?;
    let twilio_far = DelayProxy::start(twilio.addr(), delay).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = Config::from_map(&env_map(&[
        (vars::TWILIO_ACCOUNT_SID, ACCOUNT.into()),
        (vars::TWILIO_AUTH_TOKEN, AUTH_TOKEN.into()),
        (vars::TWILIO_API_BASE_URL, twilio_far.url()),
        (vars::TABLE_NAME, TABLE.into()),
        (vars::DYNAMODB_ENDPOINT, dynamo_far.url()),
        (vars::PUBLIC_BASE_URL, base.clone()),
        (vars::DEFAULT_CALLER_ID, "+15005550006".into()),
    ]))?;
    let far_store = DynamoStore::new(
        DynamoStore::client_from_config(&config).await,
        TABLE,
        Duration::from_secs(3600),
    );
    let twilio_client = TwilioClient::from_config(&config)?;
    let app = App::new(config, Arc::new(far_store), twilio_client);
    let issuer = Arc::new(LocalIssuer::new(&base, local_agents())?);
    // Alice's numbers include the sessions' first agent (+15550100001).
    let token = issuer.token_for(issuer.agent("alice").ok_or("no local agent alice")?);
    let _server = DevServer::start(app, listener, issuer, None)?;
    // Setup writes go straight to dynalite: only the measured requests pay the delay.
    let near = DynamoStore::new(dynalite.client(), TABLE, Duration::from_secs(3600));
    let samples = settings.samples();
    let mut sessions = Vec::new();
    for n in 1..=samples + 2 {
        let (sid, session, observations) = connected_session(n);
        near.create_session(&session).await?;
        for observation in observations {
            near.observe(&sid, observation).await?;
        }
        sessions.push(sid);
    }
    let transferring = sessions.pop().ok_or("no session")?;
    warm_transfer_core::usecases::transfer::record_transfer(
        &near,
        &transferring,
        phone("+15550100003"),
        TransferKind::Warm,
        None,
        OffsetDateTime::now_utc(),
        &|_| Ok(()),
    )
    .await?;

    let client = reqwest::Client::new();
    let signed = |path: &str, form: Vec<(String, String)>| {
        let url = format!("{base}{path}");
        let signature = sign_form(AUTH_TOKEN, &url, &form);
        client
            .post(url)
            .header("X-Twilio-Signature", signature)
            .form(&form)
    };
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let call = transferring.to_string();
    let room = format!("wt-{call}");
    let mut timings = Vec::new();
    let targets = [
        ("dial-customer", 0),
        ("conference-twiml", 0),
        ("agent-dial-ended", 1),
        ("status-callback", 1),
        ("start-transfer", 2),
    ];
    for (name, target) in targets {
        let mut latencies = Vec::new();
        for (i, fresh) in sessions.iter().enumerate().take(samples) {
            let request = match name {
                "dial-customer" => signed(
                    "/twiml/dial-customer?callerId=%2B15005550006&to=%2B15550100002",
                    form(&[("CallSid", &call), ("CallStatus", "in-progress")]),
                ),
                "conference-twiml" => signed(
                    &format!("/twiml/conference?role=customer&room={room}"),
                    form(&[("CallSid", &call), ("CallStatus", "in-progress")]),
                ),
                "agent-dial-ended" => signed(
                    "/twiml/agent-dial-ended",
                    form(&[("CallSid", &call), ("DialCallStatus", "completed")]),
                ),
                "status-callback" => {
                    // Alternately news and stale repeats: both cost one conditional write.
                    let status = if i % 2 == 0 { "ringing" } else { "in-progress" };
                    let sequence = (i + 1).to_string();
                    signed(
                        &format!("/events/participant?attempt=1&session={call}"),
                        form(&[
                            ("CallSid", "CA00000000000000000000000000000003"),
                            ("CallStatus", status),
                            ("SequenceNumber", &sequence),
                        ]),
                    )
                }
                _ => client
                    .post(format!("{base}/calls/{fresh}/transfer"))
                    .bearer_auth(&token)
                    .json(&json!({ "to": "+15550100003" })),
            };
            let sent = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            if !status.is_success() {
                return Err(format!("{name} answered {status}").into());
            }
            latencies.push(sent.elapsed());
        }
        latencies.sort();
        let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        timings.push(Timing {
            name,
            target,
            p50,
            p99,
        });
    }
    Ok(timings)
}

/// Part 1's table: trips = growth of p50 when the delay doubles, divided
/// by the delay; overhead = p99 beyond the injected waits at 20 ms.
fn round_trip_table(near: &[Timing], far: &[Timing]) -> String {
    let mut rows = vec![
        format!(
            "| endpoint | p50 ms at {0} ms | p99 ms at {0} ms | p50 ms at {1} ms | sequential round trips | target | overhead beyond the waits at {0} ms, p99 ms |",
            ms(DELAY),
            ms(DELAY * 2)
        ),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (at20, at40) in near.iter().zip(far) {
        let trips = ((ms(at40.p50) - ms(at20.p50)) / ms(DELAY)).round().max(0.0) as u32;
        let overhead = ms(at20.p99) - f64::from(trips) * ms(DELAY);
        rows.push(format!(
            "| {} | {:.2} | {:.2} | {:.2} | {trips} | {} {} | {overhead:.2} |",
            at20.name,
            ms(at20.p50),
            ms(at20.p99),
            ms(at40.p50),
            at20.target,
            if trips == at20.target {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    rows.join("\n")
}

fn python_env() -> Result<PathBuf, Error> {
    let venv = workspace().join("target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let status = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()?;
        if !status.success() {
            return Err("python3 -m venv failed".into());
        }
        let status = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "-r"])
            .arg(workspace().join("dev/bench/requirements.txt"))
            .status()?;
        if !status.success() {
            return Err("pip install -r dev/bench/requirements.txt failed".into());
        }
    }
    Ok(venv)
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

const DIAL_CUSTOMER_PATH: &str = "/twiml/dial-customer?callerId=%2B15005550006&to=%2B15550100002";
const CONFERENCE_PATH: &str =
    "/twiml/conference?role=customer&room=wt-CA00000000000000000000000000000001";

fn dial_request(base: &str) -> Request {
    webhook_request(base, DIAL_CUSTOMER_PATH, AUTH_TOKEN)
}

/// A signed Twilio webhook POST, as Twilio sends it to either server.
fn webhook_request(base: &str, path: &str, token: &str) -> Request {
    let url = format!("{base}{path}");
    let form: Vec<(String, String)> = vec![
        ("AccountSid".into(), ACCOUNT.into()),
        (
            "CallSid".into(),
            "CA00000000000000000000000000000001".into(),
        ),
        ("CallStatus".into(), "in-progress".into()),
    ];
    Request {
        headers: vec![("X-Twilio-Signature".into(), sign_form(token, &url, &form))],
        url,
        form,
    }
}

async fn wait_until_serving(request: &Request, timeout: Duration) -> Result<Duration, Error> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    while started.elapsed() < timeout {
        let attempt = client
            .post(&request.url)
            .headers({
                let mut h = reqwest::header::HeaderMap::new();
                for (k, v) in &request.headers {
                    h.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_bytes())?,
                        v.parse()?,
                    );
                }
                h
            })
            .form(&request.form)
            .send()
            .await;
        if attempt.is_ok_and(|r| r.status().is_success()) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("server did not start".into())
}

/// How the seed's gunicorn runs: the deployments its users would choose.
#[derive(Clone, Copy)]
enum Gunicorn {
    /// Threaded workers, which keep connections alive as the load tool does.
    Threads { workers: usize, threads: usize },
    /// Sync workers (gunicorn's default), one connection per request.
    Sync { workers: usize },
}

impl Gunicorn {
    fn describe(self) -> String {
        match self {
            Gunicorn::Threads { workers, threads } => {
                format!("gunicorn gthread, {workers} worker(s) x {threads} threads, keep-alive 5 s")
            }
            Gunicorn::Sync { workers } => {
                format!("gunicorn sync, {workers} worker(s), connection closed per request")
            }
        }
    }

    fn args(self) -> Vec<String> {
        match self {
            Gunicorn::Threads { workers, threads } => vec![
                "--worker-class".into(),
                "gthread".into(),
                "--workers".into(),
                workers.to_string(),
                "--threads".into(),
                threads.to_string(),
                "--keep-alive".into(),
                "5".into(),
            ],
            Gunicorn::Sync { workers } => vec!["--workers".into(), workers.to_string()],
        }
    }
}

/// `taskset -c CORE` before a command, when pinned.
fn pinned_command(core: Option<usize>, program: &Path) -> tokio::process::Command {
    match core {
        Some(core) => {
            let mut command = tokio::process::Command::new("taskset");
            command.arg("-c").arg(core.to_string()).arg(program);
            command
        }
        None => tokio::process::Command::new(program),
    }
}

fn start_gunicorn(
    venv: &Path,
    setup: Gunicorn,
    port: u16,
    core: Option<usize>,
) -> Result<tokio::process::Child, Error> {
    Ok(warm_transfer_dev::process::die_with_parent(
        pinned_command(core, &venv.join("bin/gunicorn"))
            .args(setup.args())
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "warning",
                "seed.wsgi",
            ])
            .current_dir(workspace().join("dev/bench/django_seed"))
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .spawn()?)
}

/// Sends `signal` (TERM: gunicorn's master stops its workers; INT: the
/// development server stops its dynalite), then waits for the exit.
async fn stop_gracefully(mut child: tokio::process::Child, signal: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Ours over the seed: requests/s, then the seed's p50 and p99 over ours.
type Ratios = (f64, f64, f64);

/// One server under load on one webhook.
struct Measured {
    stats: load::Stats,
    /// The server's CPU time per answered request (its process tree).
    cpu_per_request: Duration,
}

/// Loads each webhook on the server at `base` (signed with `token`), after
/// a short warm-up, reading the server's CPU time around each load.
async fn load_server(settings: &Settings, base: &str, token: &str, pid: u32) -> Vec<Measured> {
    let mut out = Vec::new();
    for (_, path) in WEBHOOKS {
        let request = webhook_request(base, path, token);
        load::run_lean(request.clone(), CONNECTIONS, Duration::from_millis(300)).await;
        let before = cpu::tree(pid);
        let stats = match settings.client {
            Client::Wrk => load::run_wrk(&request, CONNECTIONS, settings.load_time())
                .await
                .unwrap_or_else(|| load::Stats::failed(CONNECTIONS)),
            Client::Lean => load::run_lean(request, CONNECTIONS, settings.load_time()).await,
        };
        let spent = cpu::tree(pid).saturating_sub(before);
        let cpu_per_request = spent / u32::try_from(stats.requests.max(1)).unwrap_or(u32::MAX);
        out.push(Measured {
            stats,
            cpu_per_request,
        });
    }
    out
}

const WEBHOOKS: [(&str, &str); 2] = [
    ("dial-customer", DIAL_CUSTOMER_PATH),
    ("conference-twiml", CONFERENCE_PATH),
];
/// The side by side's load generator; both servers get the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// wrk, one thread (Debian's `wrk` package).
    Wrk,
    /// `load::run_lean`, one thread with one event loop.
    Lean,
}

impl Client {
    fn describe(self) -> &'static str {
        match self {
            Client::Wrk => "wrk (-t1, 8 keep-alive connections, --latency)",
            Client::Lean => {
                "the bench's lean HTTP/1.1 client (one thread, 8 keep-alive connections)"
            }
        }
    }
}

/// Keep-alive connections of the load tool, as in the issue's wrk runs.
const CONNECTIONS: usize = 8;

/// One placement of the servers and the load tool.
struct Placement {
    name: &'static str,
    /// The servers' core; the load tool takes the others.
    server_core: Option<usize>,
    gunicorn: Vec<Gunicorn>,
}

fn placements(cores: usize) -> Vec<Placement> {
    let mut out = Vec::new();
    if cores >= 2 {
        out.push(Placement {
            name: "per core (server pinned to core 1, load tool to core 0)",
            server_core: Some(1),
            gunicorn: vec![
                Gunicorn::Threads {
                    workers: 1,
                    threads: 4,
                },
                Gunicorn::Sync { workers: 2 },
            ],
        });
    }
    out.push(Placement {
        name: "shared (server and load tool on every core)",
        server_core: None,
        gunicorn: vec![
            Gunicorn::Threads {
                workers: cores,
                threads: 4,
            },
            Gunicorn::Sync {
                workers: 2 * cores + 1,
            },
        ],
    });
    out
}

/// What the stateless webhook handlers cost on their own: CPU time per
/// request of `App::handle` called in a loop on one thread (signature
/// check, parameters, TwiML), less the cost of building the requests.
fn handler_cpu(endpoint: HttpEndpoint, path: &str, iterations: u32) -> Result<Duration, Error> {
    let base = "http://127.0.0.1:3000";
    let config = Config::from_map(&env_map(&[
        (vars::TWILIO_ACCOUNT_SID, ACCOUNT.into()),
        (vars::TWILIO_AUTH_TOKEN, AUTH_TOKEN.into()),
        (vars::TABLE_NAME, TABLE.into()),
        // Never reached: these webhooks touch neither DynamoDB nor Twilio.
        (vars::DYNAMODB_ENDPOINT, "http://127.0.0.1:9".into()),
        (vars::TWILIO_API_BASE_URL, "http://127.0.0.1:9".into()),
        (vars::PUBLIC_BASE_URL, base.into()),
        (vars::DEFAULT_CALLER_ID, "+15005550006".into()),
    ]))?;
    let webhook = webhook_request(base, path, AUTH_TOKEN);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&webhook.form)
        .finish();
    let query: HashMap<String, String> =
        form_urlencoded::parse(path.split_once('?').map_or("", |(_, q)| q).as_bytes())
            .into_owned()
            .collect();
    let build = || {
        use lambda_http::RequestExt;
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(&webhook.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "127.0.0.1:3000");
        for (name, value) in &webhook.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(lambda_http::Body::from(body.clone()))
            .map(|r| r.with_query_string_parameters(query.clone()))
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Duration, Error> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let store = DynamoStore::new(
                        DynamoStore::client_from_config(&config).await,
                        TABLE,
                        Duration::from_secs(3600),
                    );
                    let twilio = TwilioClient::from_config(&config)?;
                    let app = App::new(config.clone(), Arc::new(store), twilio);
                    let answer = app.handle(endpoint, build()?).await;
                    if !answer.status().is_success() {
                        return Err(format!("{endpoint:?} answered {}", answer.status()).into());
                    }
                    let started = cpu::this_thread();
                    for _ in 0..iterations {
                        std::hint::black_box(build()?);
                    }
                    let building = cpu::this_thread().saturating_sub(started);
                    let started = cpu::this_thread();
                    for _ in 0..iterations {
                        std::hint::black_box(app.handle(endpoint, build()?).await);
                    }
                    let handling = cpu::this_thread().saturating_sub(started);
                    Ok(handling.saturating_sub(building) / iterations)
                })
            })
            .join()
            .map_err(|_| Error::from("handler loop panicked"))?
    })
}

/// The handlers' own CPU per request for both TwiML webhooks, as a list
/// (`--handler-only` prints it alone, for a profiler or a profile A/B).
fn handler_costs(settings: &Settings) -> Result<String, Error> {
    let iterations = if settings.smoke { 2_000 } else { 20_000 };
    let mut out = format!(
        "\nThe handlers' own CPU per request (App::handle in a loop on one thread, {iterations} requests):\n\n"
    );
    for (endpoint, (name, path)) in [HttpEndpoint::DialCustomer, HttpEndpoint::ConferenceTwiml]
        .into_iter()
        .zip(WEBHOOKS)
    {
        let per = handler_cpu(endpoint, path, iterations)?;
        out.push_str(&format!("- {name}: {:.1} us\n", per.as_secs_f64() * 1e6));
    }
    Ok(out)
}

/// Part 4: the seed's Django webhooks against ours, same machine, same load
/// tool, same run; per core and on shared cores; `peer_runs` times.
async fn side_by_side(settings: &Settings) -> Result<String, Error> {
    let venv = python_env()?;
    let cores = cpu::online();
    let mut out = String::new();
    // Django's cold start, as before: process start to first answer.
    let mut cold = Vec::new();
    for _ in 0..settings.cold_starts().min(5) {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let child = start_gunicorn(&venv, Gunicorn::Sync { workers: 2 }, port, None)?;
        wait_until_serving(&dial_request(&base), Duration::from_secs(30)).await?;
        cold.push(started.elapsed());
        stop_gracefully(child, "-TERM").await;
    }
    cold.sort();
    out.push_str(&format!(
        "Load generator: {}.\n\n",
        settings.client.describe()
    ));
    out.push_str(
        "| placement | run | webhook | server | requests/s | p50 ms | p99 ms | server CPU us/request | errors |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    // Ratios per placement and webhook, one per run: ours / the best Django.
    let mut ratios: BTreeMap<(usize, &str), Vec<Ratios>> = BTreeMap::new();
    let placements = placements(cores);
    for run in 1..=settings.peer_runs {
        for (p, placement) in placements.iter().enumerate() {
            // The load tool keeps off the servers' core.
            let load_cores: Vec<usize> = match placement.server_core {
                Some(core) => (0..cores).filter(|c| *c != core).collect(),
                None => Vec::new(),
            };
            cpu::pin_self(&load_cores)?;
            let mut best: Vec<Option<load::Stats>> = vec![None; WEBHOOKS.len()];
            for setup in &placement.gunicorn {
                let port = free_port()?;
                let base = format!("http://127.0.0.1:{port}");
                let child = start_gunicorn(&venv, *setup, port, placement.server_core)?;
                let pid = child.id().ok_or("gunicorn has no pid")?;
                wait_until_serving(&dial_request(&base), Duration::from_secs(30)).await?;
                let measured = load_server(settings, &base, AUTH_TOKEN, pid).await;
                stop_gracefully(child, "-TERM").await;
                for (i, m) in measured.iter().enumerate() {
                    row(
                        &mut out,
                        placement.name,
                        run,
                        WEBHOOKS[i].0,
                        &format!("seed, Django + twilio-python, {}", setup.describe()),
                        m,
                    );
                    if best[i]
                        .as_ref()
                        .is_none_or(|b| b.per_second() < m.stats.per_second())
                    {
                        best[i] = Some(m.stats.clone());
                    }
                }
            }
            // Ours: the same handlers a Lambda runs, in the development
            // server's process (its tokio runtime takes the cores it may use).
            let port = free_port()?;
            let base = format!("http://127.0.0.1:{port}");
            let child = warm_transfer_dev::process::die_with_parent(
                pinned_command(
                    placement.server_core,
                    &release_dir().join("warm-transfer-local"),
                )
                .args(["--no-demo", "--port", &port.to_string()])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            )
            .spawn()?;
            let pid = child.id().ok_or("development server has no pid")?;
            wait_until_serving(
                &webhook_request(&base, DIAL_CUSTOMER_PATH, LOCAL_AUTH_TOKEN),
                Duration::from_secs(30),
            )
            .await?;
            // Its own process only: dynalite and the simulator idle meanwhile.
            let measured = load_server(settings, &base, LOCAL_AUTH_TOKEN, pid).await;
            stop_gracefully(child, "-INT").await;
            for (i, m) in measured.iter().enumerate() {
                row(
                    &mut out,
                    placement.name,
                    run,
                    WEBHOOKS[i].0,
                    "warm-transfer (Rust handler, development server)",
                    m,
                );
                if let Some(django) = &best[i] {
                    ratios.entry((p, WEBHOOKS[i].0)).or_default().push((
                        m.stats.per_second() / django.per_second().max(f64::MIN_POSITIVE),
                        ms(django.p50) / ms(m.stats.p50).max(f64::MIN_POSITIVE),
                        ms(django.p99) / ms(m.stats.p99).max(f64::MIN_POSITIVE),
                    ));
                }
            }
        }
    }
    cpu::pin_self(&[])?;
    out.push_str(
        "\nRatios, ours / the seed's best setup of the same run (min-max over the runs):\n\n\
         | placement | webhook | requests/s ratio | p50 ratio | p99 ratio | runs |\n|---|---|---|---|---|---|\n",
    );
    for ((p, webhook), runs) in &ratios {
        let range = |f: fn(&Ratios) -> f64| {
            let values: Vec<f64> = runs.iter().map(f).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(0.0, f64::max);
            format!("{min:.1}x-{max:.1}x")
        };
        out.push_str(&format!(
            "| {} | {webhook} | {} | {} | {} | {} |\n",
            placements[*p].name,
            range(|r| r.0),
            range(|r| r.1),
            range(|r| r.2),
            runs.len()
        ));
    }
    out.push_str(&handler_costs(settings)?);
    out.push_str(&format!(
        "\nDjango cold start (process start to first answer, gunicorn 2 sync workers, median of {}): {:.0} ms.\n",
        cold.len(),
        ms(percentile(&cold, 50.0)),
    ));
    Ok(out)
}

fn row(out: &mut String, placement: &str, run: usize, webhook: &str, server: &str, m: &Measured) {
    out.push_str(&format!(
        "| {placement} | {run} | {webhook} | {server} | {:.0} | {:.2} | {:.2} | {:.1} | {} |\n",
        m.stats.per_second(),
        ms(m.stats.p50),
        ms(m.stats.p99),
        m.cpu_per_request.as_secs_f64() * 1e6,
        m.stats.errors,
    ));
}

/// Parts 2 and 3: cold start through the Lambda Runtime API, binary sizes, peak memory.
async fn functions(settings: &Settings) -> Result<String, Error> {
    let dynalite = Dynalite::start().await?;
    // The push functions' identity provider: `$connect` verifies a token it
    // signed against its JWKS, served by the stub; ws-connect's event carries
    // one alice signed in with, as the events test does.
    let issuer = LocalIssuer::new("http://127.0.0.1:9", local_agents())?;
    let alice = issuer.token_for(issuer.agent("alice").ok_or("no local agent alice")?);
    let twilio = TwilioStub::serving_jwks(serde_json::to_string(issuer.jwks())?).await?;
    let stub = format!("http://{}", twilio.addr());
    // The deployed way: secrets read from Secrets Manager at start (a real
    // Secrets Manager API, moto_server, on loopback).
    let moto = MotoServer::start().await?;
    let secret_arn = moto
        .create_secret(
            "bench",
            &json!({ "TWILIO_AUTH_TOKEN": events::EVENTS_AUTH_TOKEN }).to_string(),
        )
        .await?;
    let release = release_dir();
    let mut rows = vec![
        "| function | cold start p50 ms (min-max), secrets from env | cold start p50 ms (min-max), secret read | warm invocation p50 ms | warm p99 ms | warm answers | x86_64 size MB | arm64 size MB (cargo lambda build) | peak RSS MB after load |".to_owned(),
        "|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for endpoint in Endpoint::ALL {
        let name = endpoint.function_name();
        if !settings.only.is_empty() && !settings.only.iter().any(|o| o == name) {
            continue;
        }
        let binary = release.join(name);
        if !binary.exists() {
            rows.push(format!("| {name} | not built | | | | | | | |"));
            continue;
        }
        // Each function its own table holding the call its event names, with
        // a history of tens of entries, not the thousands the other
        // functions' runs would leave (get-call reads it all).
        let table = format!("{TABLE}-{name}");
        dynalite.create_table(&table).await?;
        DynamoStore::new(dynalite.client(), &table, Duration::from_secs(3600))
            .create_session(&events::stream_session().1)
            .await?;
        let event = serde_json::to_string(&events::event(endpoint))?
            .replace(events::EVENTS_WS_TOKEN, &alice);
        // The reconciler passes over the due sessions every few seconds
        // until its invocation's deadline nears (`reconcile::run_until`):
        // given 30 s, its first answer would come after its whole window.
        // 8 s leaves room for one pass, as an invocation near its end makes.
        let timeout = match endpoint.caller() {
            Caller::Schedule => Duration::from_secs(8),
            _ => Duration::from_secs(30),
        };
        let mut env = vec![
            ("TWILIO_ACCOUNT_SID", events::EVENTS_ACCOUNT_SID.to_owned()),
            ("TWILIO_AUTH_TOKEN", events::EVENTS_AUTH_TOKEN.to_owned()),
            ("TABLE_NAME", table.clone()),
            ("DYNAMODB_ENDPOINT", dynalite.endpoint()),
            ("TWILIO_API_BASE_URL", stub.clone()),
            ("DEFAULT_CALLER_ID", "+15005550006".to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        if matches!(endpoint.caller(), Caller::WebSocket | Caller::Stream) {
            env.extend([
                (vars::JWT_ISSUER, issuer.issuer().to_owned()),
                (vars::JWT_AUDIENCE, LOCAL_CLIENT_ID.to_owned()),
                (vars::JWKS_URL, format!("{stub}/jwks.json")),
                (vars::WEBSOCKET_MANAGEMENT_URL, stub.clone()),
            ]);
        }
        // The same, with SECRET_ARN instead of the secret variables.
        let secret_env: Vec<(&str, String)> = env
            .iter()
            .filter(|(k, _)| !secrets::FIELDS.contains(k))
            .cloned()
            .chain([("SECRET_ARN", secret_arn.clone())])
            .chain(moto.function_env())
            .collect();
        // The function binary, talking to the given Runtime API.
        let start_with = |api: &RuntimeApi, env: &[(&str, String)]| {
            warm_transfer_dev::process::die_with_parent(
                tokio::process::Command::new(&binary)
                    .env_clear()
                    .envs(env.iter().cloned())
                    .env("AWS_LAMBDA_RUNTIME_API", api.address())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .spawn()
        };
        let start_function = |api: &RuntimeApi| start_with(api, &env);
        // Alternating runs, so a change of load on the machine touches both.
        let (mut starts, mut with_secret) = (Vec::new(), Vec::new());
        // The secret read must give the answers the environment gives (a
        // repeated start-call answers 409 after the first 201 either way),
        // or the timing would compare a refusal with a success.
        let mut statuses = [std::collections::BTreeSet::new(), Default::default()];
        for _ in 0..settings.cold_starts() {
            for (way, (env, out)) in [(&env[..], &mut starts), (&secret_env[..], &mut with_secret)]
                .into_iter()
                .enumerate()
            {
                let api = RuntimeApi::start_with_timeout(event.clone(), 1, timeout).await?;
                let started = Instant::now();
                let mut child = start_with(&api, env)?;
                tokio::time::timeout(Duration::from_secs(20), api.wait_for(1)).await?;
                if let Some((at, status)) = api.responses().first() {
                    out.push(at.duration_since(started));
                    statuses[way].insert(*status);
                }
                child.kill().await?;
            }
        }
        if !statuses[1].is_subset(&statuses[0]) {
            return Err(format!(
                "{name}: answered {:?} from the environment, {:?} with the secret read",
                statuses[0], statuses[1]
            )
            .into());
        }
        starts.sort();
        with_secret.sort();
        let spread = |runs: &[Duration]| match (runs.first(), runs.last()) {
            (Some(min), Some(max)) => format!(
                "{:.1} ({:.1}-{:.1})",
                ms(percentile(runs, 50.0)),
                ms(*min),
                ms(*max)
            ),
            _ => "no answer".to_owned(),
        };
        // Warm invocations one after the other, as one Lambda instance runs
        // them: each one's duration (event handed out to response received),
        // then the peak memory after all of them.
        let invocations = if settings.smoke { 50 } else { 2000 };
        let api = RuntimeApi::start_with_timeout(event.clone(), invocations, timeout).await?;
        let mut child = start_function(&api)?;
        tokio::time::timeout(Duration::from_secs(600), api.wait_for(invocations)).await?;
        let mut warm = api.durations();
        // The first answer pays for fresh connections: not a warm one.
        if !warm.is_empty() {
            warm.remove(0);
        }
        warm.sort();
        let mut answers = std::collections::BTreeMap::new();
        for (_, status) in api.responses() {
            *answers.entry(status).or_insert(0usize) += 1;
        }
        let answers = answers
            .iter()
            .map(|(status, n)| match status {
                // Not an HTTP function: its result, with no status.
                0 => format!("{n}x result"),
                599 => format!("{n}x error"),
                _ => format!("{n}x {status}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rss = child
            .id()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or("?".to_owned(), |kb| format!("{:.1}", kb / 1024.0));
        child.kill().await?;
        let size = |path: PathBuf| {
            std::fs::metadata(path).map_or("not built".to_owned(), |m| {
                format!("{:.2}", m.len() as f64 / 1_048_576.0)
            })
        };
        // What `sam deploy` ships: docs/deploy.md's `cargo lambda build`.
        let arm = workspace().join(format!("target/lambda/{name}/bootstrap"));
        rows.push(format!(
            "| {name} | {} | {} | {:.2} | {:.2} | {answers} | {} | {} | {rss} |",
            spread(&starts),
            spread(&with_secret),
            ms(percentile(&warm, 50.0)),
            ms(percentile(&warm, 99.0)),
            size(binary),
            size(arm),
        ));
    }
    Ok(rows.join("\n"))
}

/// Load average and the time, to state beside every figure.
fn conditions() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let now = OffsetDateTime::now_utc();
    format!(
        "{:02}:{:02} UTC, load average {}",
        now.hour(),
        now.minute(),
        load.join(" ")
    )
}

/// The scale runs: each N `scale_runs` times; the table of what must be
/// zero and of the costs, the latencies per webhook, and the plot.
async fn scale_runs(settings: &Settings) -> Result<String, Error> {
    let mut out = String::new();
    let mut per_kind = String::new();
    let mut summary = String::from(
        "| N | run | when | peak calls at once | inbound | outbound endings (handover/busy/no answer/cancel/hang-up) | faulty callbacks (dup/late) | stranded | 5xx (webhooks+front end) | unanswered webhooks | disagreements | unfinished | store conflicts | Twilio retries | reconciler repairs | webhook requests/s | wall s | CPU s per call: process / product / dynalite |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    // p99 per webhook per N: the median over the runs.
    let mut p99s: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
    let mut p50s: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
    let mut problems = String::new();
    for &calls in &settings.scale {
        for run in 1..=settings.scale_runs {
            let when = conditions();
            let options = scale::Options {
                calls,
                time_scale: settings.time_scale,
                ramp_secs: settings.ramp_secs,
                talk_secs: settings.talk_secs,
                // A leg notices a change within 4 ms of Twilio's time or 25 ms real.
                sim_poll: Duration::from_secs_f64((0.02 * settings.time_scale).max(0.004))
                    .min(Duration::from_millis(25)),
                grace_secs: 3.0,
                product_threads: cpu::online(),
                inbound: true,
            };
            let product = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(options.product_threads)
                .thread_name(scale::PRODUCT_THREADS)
                .thread_keep_alive(Duration::from_secs(3600))
                .enable_all()
                .build()?;
            let report = scale::run(&options, Some(product.handle().clone())).await;
            product.shutdown_background();
            let report = report?;
            let per_call = |d: Option<Duration>| {
                d.map_or("-".to_owned(), |d| {
                    format!("{:.3}", d.as_secs_f64() / calls as f64)
                })
            };
            let endings = [
                "handover",
                "busy",
                "no answer",
                "cancel",
                "customer hangs up",
            ]
            .map(|e| report.endings.get(e).copied().unwrap_or(0).to_string())
            .join("/");
            summary.push_str(&format!(
                "| {calls} | {run} | {when} | {} | {} | {endings} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {} / {} / {} |\n",
                report.peak_calls,
                report.inbound,
                report.duplicated,
                report.reordered,
                report.stranded.len(),
                report.webhook_5xx + report.front_end_5xx,
                report.webhook_unanswered,
                report.disagreements.len(),
                report.unfinished.len(),
                report.store_conflicts,
                report.twilio_retries,
                report.reconciler_repairs,
                report.webhook_requests as f64 / report.wall.as_secs_f64(),
                report.wall.as_secs_f64(),
                per_call(Some(report.cpu_process)),
                per_call(report.cpu_product),
                per_call(report.cpu_dynalite),
            ));
            let per_call_counts = |counts: &std::collections::BTreeMap<String, u64>| {
                let all: u64 = counts
                    .iter()
                    .filter(|(k, _)| !k.starts_with("refused "))
                    .map(|(_, n)| n)
                    .sum();
                let each = counts
                    .iter()
                    .map(|(k, n)| format!("{k} {:.2}", *n as f64 / calls as f64))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{:.2} ({each})", all as f64 / calls as f64)
            };
            per_kind.push_str(&format!(
                "- N={calls} run {run}: DynamoDB writes per call {}; Twilio REST requests per call {}\n",
                per_call_counts(&report.writes),
                per_call_counts(&report.rest),
            ));
            for latency in report.webhooks.iter().chain(&report.front_end) {
                p99s.entry(latency.what.clone())
                    .or_default()
                    .entry(calls)
                    .or_default()
                    .push(ms(latency.p99));
                p50s.entry(latency.what.clone())
                    .or_default()
                    .entry(calls)
                    .or_default()
                    .push(ms(latency.p50));
            }
            for (what, list) in [
                ("stranded", &report.stranded),
                ("disagreement", &report.disagreements),
                ("unfinished", &report.unfinished),
                ("unexpected answer", &report.unexpected),
                ("contract violation", &report.contract_violations),
            ] {
                for line in list.iter().take(20) {
                    problems.push_str(&format!("- N={calls} run {run}, {what}: {line}\n"));
                }
            }
        }
    }
    out.push_str(&summary);
    out.push_str(
        "\nWrites and REST requests per call, by kind (`refused` writes lost their condition):\n\n",
    );
    out.push_str(&per_kind);
    out.push_str("\nLatency per request as the simulator (webhooks) or the agents (front end) saw it, ms, p50 / p99 (median over the runs):\n\n");
    let ns = &settings.scale;
    out.push_str(&format!(
        "| request | {} |\n|---|{}\n",
        ns.iter()
            .map(|n| format!("N = {n}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(ns.len())
    ));
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    for (what, by_n) in &p99s {
        let cells: Vec<String> = ns
            .iter()
            .map(
                |n| match (p50s.get(what).and_then(|m| m.get(n)), by_n.get(n)) {
                    (Some(p50), Some(p99)) => format!("{:.1} / {:.1}", median(p50), median(p99)),
                    _ => "-".to_owned(),
                },
            )
            .collect();
        out.push_str(&format!("| {what} | {} |\n", cells.join(" | ")));
    }
    if !problems.is_empty() {
        out.push_str(&format!(
            "\nWhat went wrong (first 20 of each):\n\n{problems}"
        ));
    }
    if let Some(path) = &settings.plot {
        let series: Vec<(String, Vec<(f64, f64)>)> = p99s
            .iter()
            .filter(|(what, _)| what.starts_with('/'))
            .map(|(what, by_n)| {
                (
                    what.clone(),
                    by_n.iter().map(|(n, v)| (*n as f64, median(v))).collect(),
                )
            })
            .collect();
        std::fs::write(
            path,
            plot_svg(
                "Webhook p99 latency against simultaneous calls",
                "calls at once (N)",
                "p99 ms",
                &series,
            ),
        )?;
        out.push_str(&format!("\nPlot written to {}.\n", path.display()));
    }
    Ok(out)
}

/// A line chart, one line per series, as a small standalone SVG.
fn plot_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let (width, height, left, right, top, bottom) = (760.0, 420.0, 70.0, 230.0, 40.0, 50.0);
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let x = |v: f64| left + v / x_max * (width - left - right);
    let y = |v: f64| height - bottom - v / y_max * (height - top - bottom);
    let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n",
        (width - right + left) / 2.0
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"black\"/>\n",
        height - bottom,
        width - right
    ));
    for i in 0..=5 {
        let value = y_max * f64::from(i) / 5.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value:.0}</text>\n<line x1=\"{left}\" y1=\"{1:.1}\" x2=\"{2}\" y2=\"{1:.1}\" stroke=\"#ddd\"/>\n",
            left - 6.0,
            y(value),
            width - right
        ));
    }
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for v in xs {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{v:.0}</text>\n",
            x(v),
            height - bottom + 16.0
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{y_label}</text>\n",
        (width - right + left) / 2.0,
        height - 10.0,
        (height - bottom + top) / 2.0,
        (height - bottom + top) / 2.0
    ));
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for (a, b) in points {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>\n",
                x(*a),
                y(*b)
            ));
        }
        let ly = top + 16.0 * i as f64;
        svg.push_str(&format!(
            "<line x1=\"{0}\" y1=\"{ly:.1}\" x2=\"{1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3:.1}\">{name}</text>\n",
            width - right + 10.0,
            width - right + 30.0,
            width - right + 36.0,
            ly + 4.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Release builds of every function and of the development server, and
/// dynalite, so `cargo run --release -p warm-transfer-dev --bin
/// warm-transfer-bench` measures a fresh clone (cargo skips what is fresh).
fn build_release() -> Result<(), Error> {
    let root = workspace();
    if !root.join("dev/node_modules/.bin/dynalite").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--prefix", "dev", "--no-audit", "--no-fund"])
            .current_dir(&root)
            .status()?;
        if !status.success() {
            return Err("npm ci --prefix dev failed".into());
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut functions = vec!["build".to_owned(), "--release".to_owned()];
    for endpoint in Endpoint::ALL {
        functions.extend(["-p".to_owned(), endpoint.function_name().to_owned()]);
    }
    let server = [
        "build",
        "--release",
        "-p",
        "warm-transfer-dev",
        "--bin",
        "warm-transfer-local",
    ];
    for args in [functions, server.map(str::to_owned).to_vec()] {
        let status = std::process::Command::new(&cargo)
            .args(&args)
            .current_dir(&root)
            .status()?;
        if !status.success() {
            return Err(format!("cargo {} failed", args.join(" ")).into());
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let values = |flag: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    };
    let number = |flag: &str| -> Result<Option<f64>, Error> {
        values(flag)
            .last()
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|e| format!("{flag} {v}: {e}").into())
            })
            .transpose()
    };
    let settings = Settings {
        smoke: args.iter().any(|a| a == "--smoke"),
        functions_only: args.iter().any(|a| a == "--functions-only"),
        only: values("--function"),
        cold: number("--cold-starts")?.map(|n| n as usize),
        peer_only: args.iter().any(|a| a == "--peer-only"),
        handler_only: args.iter().any(|a| a == "--handler-only"),
        // wrk when installed (the issue's client), else the bench's own.
        client: if !args.iter().any(|a| a == "--lean-client") && load::wrk_installed() {
            Client::Wrk
        } else {
            Client::Lean
        },
        peer_runs: number("--peer-runs")?.map_or(3, |n| n as usize),
        scale: values("--scale")
            .iter()
            .map(|v| v.parse::<usize>())
            .collect::<Result<_, _>>()?,
        scale_runs: number("--scale-runs")?.map_or(1, |n| n as usize),
        time_scale: number("--time-scale")?.unwrap_or(0.5),
        ramp_secs: number("--ramp-secs")?.unwrap_or(20.0),
        talk_secs: number("--talk-secs")?.unwrap_or(5.0),
        plot: values("--plot").last().map(PathBuf::from),
    };
    if !std::env::args().any(|a| a == "--no-build") {
        build_release()?;
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "# warm-transfer benchmarks{}\n",
        if settings.smoke { " (smoke run)" } else { "" }
    );
    println!(
        "Machine: {} cores, {cpu}. Date: {}.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        OffsetDateTime::now_utc().date()
    );
    if !settings.scale.is_empty() {
        println!("## Scale run\n");
        println!("{}", scale_runs(&settings).await?);
        return Ok(());
    }
    if settings.handler_only {
        println!("{}", handler_costs(&settings)?);
        return Ok(());
    }
    if settings.peer_only {
        println!("## 4. The seed's stack side by side\n");
        println!("{}", side_by_side(&settings).await?);
        return Ok(());
    }
    if settings.functions_only {
        println!("## 2-3. Cold start, size and memory of each function binary\n");
        println!("{}", functions(&settings).await?);
        return Ok(());
    }
    println!(
        "## 1. Sequential round trips per endpoint (DynamoDB and Twilio each behind a 20 ms, then a 40 ms loopback delay)\n"
    );
    let near = round_trips(&settings, DELAY).await?;
    let far = round_trips(&settings, DELAY * 2).await?;
    println!("{}\n", round_trip_table(&near, &far));
    println!("## 2-3. Cold start, size and memory of each function binary\n");
    println!("{}\n", functions(&settings).await?);
    println!("## 4. The seed's stack side by side\n");
    println!("{}", side_by_side(&settings).await?);
    Ok(())
}
