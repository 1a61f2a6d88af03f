//! The benchmarks of BENCHMARKS.md:
//! `cargo run --release -p warm-transfer-dev --bin warm-transfer-bench`
//! builds the release binaries it measures first (`--no-build` skips that);
//! `--smoke` runs a few requests of each part only; `--functions-only`
//! measures cold start, size and memory only, `--function NAME` of one
//! function (repeatable).

use std::collections::HashMap;
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
use warm_transfer_core::handlers::{App, Endpoint};
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::secrets;
use warm_transfer_core::signature::sign_form;
use warm_transfer_core::store::{CallStore, DynamoStore};
use warm_transfer_core::twilio::TwilioClient;
use warm_transfer_dev::bench::delay_proxy::DelayProxy;
use warm_transfer_dev::bench::load::{self, Request};
use warm_transfer_dev::bench::percentile;
use warm_transfer_dev::bench::runtime_api::RuntimeApi;
use warm_transfer_dev::bench::twilio_stub::TwilioStub;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::events;
use warm_transfer_dev::idp::{LocalIssuer, local_agents};
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
        if self.smoke { 2 } else { 15 }
    }
}

fn workspace() -> PathBuf {
    warm_transfer_dev::paths::workspace()
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
    let _server = DevServer::start(app, listener, issuer)?;
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
    near.request_transfer(
        &transferring,
        phone("+15550100003"),
        TransferKind::Warm,
        None,
        OffsetDateTime::now_utc(),
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

fn start_gunicorn(venv: &Path, workers: usize, port: u16) -> Result<tokio::process::Child, Error> {
    Ok(warm_transfer_dev::process::die_with_parent(
        tokio::process::Command::new(venv.join("bin/gunicorn"))
            .args([
                "--workers",
                &workers.to_string(),
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

/// Part 4: the seed's Django webhooks against ours, same machine, same load tool.
async fn side_by_side(settings: &Settings) -> Result<String, Error> {
    let venv = python_env()?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // A fresh port and a graceful stop per start: a SIGKILLed master leaves
    // its workers serving the old port for a moment, which would answer for
    // the next instance.
    let mut cold = Vec::new();
    let mut serving = None;
    for run in 0..settings.cold_starts().min(5) {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let child = start_gunicorn(&venv, workers, port)?;
        wait_until_serving(&dial_request(&base), Duration::from_secs(30)).await?;
        cold.push(started.elapsed());
        if run + 1 < settings.cold_starts().min(5) {
            stop_gracefully(child, "-TERM").await;
        } else {
            serving = Some((child, base));
        }
    }
    let (gunicorn, django_base) = serving.ok_or("gunicorn never started")?;
    let webhooks = [
        ("dial-customer", DIAL_CUSTOMER_PATH),
        ("conference-twiml", CONFERENCE_PATH),
    ];
    let mut django = Vec::new();
    for (_, path) in webhooks {
        let request = webhook_request(&django_base, path, AUTH_TOKEN);
        django.push(load::run(request, 16, settings.load_time()).await);
    }
    stop_gracefully(gunicorn, "-TERM").await;

    // Ours: the same handler a Lambda runs, behind the development server,
    // in its own process like gunicorn's workers (the load tool runs here).
    let ours_port = free_port()?;
    let ours_base = format!("http://127.0.0.1:{ours_port}");
    let started = Instant::now();
    let ours_server = warm_transfer_dev::process::die_with_parent(
        tokio::process::Command::new(workspace().join("target/release/warm-transfer-local"))
            .args(["--no-demo", "--port", &ours_port.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .spawn()?;
    let ours_request = webhook_request(&ours_base, DIAL_CUSTOMER_PATH, LOCAL_AUTH_TOKEN);
    wait_until_serving(&ours_request, Duration::from_secs(30)).await?;
    let ours_ready = started.elapsed();
    let mut ours = Vec::new();
    for (_, path) in webhooks {
        let request = webhook_request(&ours_base, path, LOCAL_AUTH_TOKEN);
        ours.push(load::run(request, 16, settings.load_time()).await);
    }
    stop_gracefully(ours_server, "-INT").await;

    cold.sort();
    let django_cold = percentile(&cold, 50.0);
    let mut out = String::from(
        "| webhook | server | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n",
    );
    let mut ratios = String::new();
    for (((name, _), ours), django) in webhooks.iter().zip(&ours).zip(&django) {
        for (server, stats) in [
            (
                "warm-transfer (Rust handler, development server process)".to_owned(),
                ours,
            ),
            (
                format!("seed (Django + twilio-python, gunicorn {workers} sync workers)"),
                django,
            ),
        ] {
            out.push_str(&format!(
                "| {name} | {server} | {:.0} | {:.2} | {:.2} | {} |\n",
                stats.per_second(),
                ms(stats.p50),
                ms(stats.p99),
                stats.errors,
            ));
        }
        if django.requests == 0 {
            ratios.push_str(&format!(
                "- {name}: no ratio, the seed answered no request without error\n"
            ));
            continue;
        }
        let ratio = ours.per_second() / django.per_second();
        ratios.push_str(&format!(
            "- {name}: throughput ratio **{ratio:.1}x**, p50 latency ratio {:.1}x, p99 latency ratio {:.1}x{}\n",
            ms(django.p50) / ms(ours.p50),
            ms(django.p99) / ms(ours.p99),
            if *name == "dial-customer" {
                if ratio >= 20.0 { " (target 20x: met)" } else { " (target 20x: MISSED)" }
            } else {
                ""
            },
        ));
    }
    out.push('\n');
    out.push_str(&ratios);
    out.push_str(&format!(
        "\nDjango cold start (process start to first answer, median of {}): {:.0} ms. \
         The development server process (dynalite, simulator and server) answered its first request {:.0} ms after it started.\n",
        cold.len(),
        ms(django_cold),
        ms(ours_ready),
    ));
    Ok(out)
}

/// Parts 2 and 3: cold start through the Lambda Runtime API, binary sizes, peak memory.
async fn functions(settings: &Settings) -> Result<String, Error> {
    let dynalite = Dynalite::start().await?;
    dynalite.create_table(TABLE).await?;
    let twilio = TwilioStub::start().await?;
    // The deployed way: secrets read from Secrets Manager at start (a real
    // Secrets Manager API, moto_server, on loopback).
    let moto = MotoServer::start().await?;
    let secret_arn = moto
        .create_secret(
            "bench",
            &json!({ "TWILIO_AUTH_TOKEN": events::EVENTS_AUTH_TOKEN }).to_string(),
        )
        .await?;
    let release = workspace().join("target/release");
    let mut rows = vec![
        "| function | cold start p50 ms (min-max), secrets from env | cold start p50 ms (min-max), secret read | x86_64 size MB | arm64 size MB (cargo lambda build) | peak RSS MB after load |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for endpoint in Endpoint::ALL {
        let name = endpoint.function_name();
        if !settings.only.is_empty() && !settings.only.iter().any(|o| o == name) {
            continue;
        }
        let binary = release.join(name);
        if !binary.exists() {
            rows.push(format!("| {name} | not built | | | | |"));
            continue;
        }
        let event = serde_json::to_string(&events::event(endpoint))?;
        let env = [
            ("TWILIO_ACCOUNT_SID", events::EVENTS_ACCOUNT_SID.to_owned()),
            ("TWILIO_AUTH_TOKEN", events::EVENTS_AUTH_TOKEN.to_owned()),
            ("TABLE_NAME", TABLE.to_owned()),
            ("DYNAMODB_ENDPOINT", dynalite.endpoint()),
            ("TWILIO_API_BASE_URL", format!("http://{}", twilio.addr())),
            ("DEFAULT_CALLER_ID", "+15005550006".to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
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
                let api = RuntimeApi::start(event.clone(), 1).await?;
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
        // Peak memory after many warm invocations.
        let invocations = if settings.smoke { 50 } else { 2000 };
        let api = RuntimeApi::start(event.clone(), invocations).await?;
        let mut child = start_function(&api)?;
        tokio::time::timeout(Duration::from_secs(120), api.wait_for(invocations)).await?;
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
        // What `sam deploy` ships: the README's `cargo lambda build`.
        let arm = workspace().join(format!("target/lambda/{name}/bootstrap"));
        rows.push(format!(
            "| {name} | {} | {} | {} | {} | {rss} |",
            spread(&starts),
            spread(&with_secret),
            size(binary),
            size(arm),
        ));
    }
    Ok(rows.join("\n"))
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
    let settings = Settings {
        smoke: args.iter().any(|a| a == "--smoke"),
        functions_only: args.iter().any(|a| a == "--functions-only"),
        only: args
            .windows(2)
            .filter(|w| w[0] == "--function")
            .map(|w| w[1].clone())
            .collect(),
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
