//! The flood bench: anonymous requests with large bodies thrown at the
//! Twilio routes as fast as a few connections can send them, while one
//! normal call (started, warm-transferred, handed over, hung up) runs
//! through the same local stack. It measures what each refused request
//! costs the product (CPU of the product's threads, resident memory of
//! the process) and whether every webhook of the call was answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::cpu;
use crate::local::{LocalOptions, LocalStack};

/// Sam's number: a supervisor, who may follow the call after handing it over.
const AGENT: &str = "+15550100009";
const CUSTOMER: &str = "+15550100002";
const TARGET: &str = "+15550100003";
/// The product's runtime threads, whose CPU time is the product's.
const PRODUCT_THREADS: &str = "product";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Options {
    /// Connections sending the flood at once.
    pub connections: usize,
    /// Size of each anonymous body.
    pub body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 8,
            // The measured attack: 5.8 MB of `a&` (2.9 M empty fields).
            body_bytes: 5_800_000,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub refused: u64,
    pub not_refused: u64,
    pub wall: Duration,
    /// CPU time of the product's threads during the flood.
    pub product_cpu: Duration,
    /// Resident memory of the process: before the flood, its peak during
    /// the flood, and after.
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_after_mb: f64,
    /// p50 and p99 of the time to the refusal.
    pub p50: Duration,
    pub p99: Duration,
    /// The handler alone per refusal: unsigned (403), signed but too large (413).
    pub handler_unsigned: Duration,
    pub handler_oversized: Duration,
    /// The normal call: its end state, and what the simulator saw go wrong.
    pub call_state: String,
    pub call_problems: Vec<String>,
}

impl Report {
    pub fn cpu_per_refusal(&self) -> Duration {
        self.product_cpu / self.refused.max(1) as u32
    }

    pub fn refusals_per_second(&self) -> f64 {
        self.refused as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One run: a fresh stack on its own runtime, the flood and the call.
pub async fn run(options: &Options, product: tokio::runtime::Handle) -> Result<Report, Error> {
    let stack = LocalStack::start(LocalOptions {
        port: 0,
        time_scale: 0.5,
        push: false,
        product_runtime: Some(product),
        ..LocalOptions::default()
    })
    .await?;
    let base = stack.base_url();
    let body = Bytes::from(b"a&".repeat(options.body_bytes / 2));
    let token = stack.token("sam");
    let http = reqwest::Client::new();
    // Warm: one refusal before measuring, so first-use allocations count
    // in "before".
    flood_once(&http, &base, body.clone(), 0).await?;
    let rss_before_mb = rss_mb();
    let cpu_before = cpu::threads(PRODUCT_THREADS);
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let not_refused = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(std::sync::Mutex::new(rss_before_mb));
    let mut flooders = Vec::new();
    for connection in 0..options.connections {
        let (http, base, body) = (reqwest::Client::new(), base.clone(), body.clone());
        let (stop, refused, not_refused) = (stop.clone(), refused.clone(), not_refused.clone());
        flooders.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = connection;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match flood_once(&http, &base, body.clone(), n).await {
                    Ok(true) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        latencies.push(sent.elapsed());
                    }
                    _ => {
                        not_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let now = rss_mb();
                {
                    let mut peak = peak.lock().unwrap_or_else(|p| p.into_inner());
                    *peak = peak.max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let call_state = normal_call(&stack, &http, &token).await?;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for flooder in flooders {
        latencies.extend(flooder.await?);
    }
    sampler.await?;
    let wall = started.elapsed();
    let product_cpu = cpu::threads(PRODUCT_THREADS).saturating_sub(cpu_before);
    latencies.sort();
    let mut call_problems = stack.sim.problems(CUSTOMER, Duration::from_millis(1500));
    call_problems.extend(stack.sim.application_errors());
    call_problems.extend(stack.sim.contract_violations());
    let rss_peak_mb = *peak.lock().unwrap_or_else(|p| p.into_inner());
    let (handler_unsigned, handler_oversized) = {
        let app = stack.app.clone();
        let bytes = options.body_bytes;
        tokio::task::spawn_blocking(move || handler_alone(&app, bytes, 200)).await?
    };
    Ok(Report {
        handler_unsigned,
        handler_oversized,
        refused: refused.load(Ordering::Relaxed),
        not_refused: not_refused.load(Ordering::Relaxed),
        wall,
        product_cpu,
        rss_before_mb,
        rss_peak_mb,
        rss_after_mb: rss_mb(),
        p50: super::percentile(&latencies, 50.0),
        p99: super::percentile(&latencies, 99.0),
        call_state,
        call_problems,
    })
}

/// The handler's own CPU time per refusal, without the HTTP server around
/// it: `App::handle` on requests built beforehand (as Lambda's runtime
/// hands them over), on one thread; (unsigned 403, signed but oversized 413).
pub fn handler_alone(
    app: &warm_transfer_core::handlers::App,
    body_bytes: usize,
    n: u32,
) -> (Duration, Duration) {
    use warm_transfer_core::endpoint::HttpEndpoint;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return (Duration::ZERO, Duration::ZERO),
    };
    let body = b"a&".repeat(body_bytes / 2);
    let per = |signature: Option<&str>, expected: u16| {
        let mut spent = Duration::ZERO;
        for _ in 0..n {
            let mut request = http::Request::builder()
                .method("POST")
                .uri("http://127.0.0.1/events/call-status")
                .header("content-type", "application/x-www-form-urlencoded");
            if let Some(signature) = signature {
                request = request.header("x-twilio-signature", signature);
            }
            let request = request
                .body(lambda_http::Body::Binary(body.clone()))
                .expect("a valid request");
            let before = cpu::this_thread();
            let response = runtime.block_on(app.handle(HttpEndpoint::StatusCallback, request));
            spent += cpu::this_thread().saturating_sub(before);
            assert_eq!(response.status().as_u16(), expected);
        }
        spent / n
    };
    (
        per(None, 403),
        per(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), 413),
    )
}

/// One anonymous request to a Twilio route (they take turns); true when it
/// was refused with 403, as every unsigned webhook must be.
async fn flood_once(
    http: &reqwest::Client,
    base: &str,
    body: Bytes,
    n: usize,
) -> Result<bool, Error> {
    const ROUTES: [&str; 4] = [
        "/events/call-status",
        "/twiml/dial-customer",
        "/twiml/agent-dial-ended",
        "/events/conference",
    ];
    let response = http
        .post(format!("{base}{}", ROUTES[n % ROUTES.len()]))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    Ok(response.status() == 403)
}

/// A warm transfer from start to the customer's hang-up, through the
/// front-end API; the call's final state.
async fn normal_call(
    stack: &LocalStack,
    http: &reqwest::Client,
    token: &str,
) -> Result<String, Error> {
    let base = stack.base_url();
    let api = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let value: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, Error>((status, value))
        }
    };
    let (status, call) = api(
        reqwest::Method::POST,
        "/calls".into(),
        Some(json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER })),
    )
    .await?;
    if status != 201 {
        return Err(format!("start call: {status} {call}").into());
    }
    let sid = call["callSid"].as_str().unwrap_or_default().to_owned();
    let wait_for = |what: &'static str, check: fn(&Value) -> bool| {
        let api = &api;
        let sid = sid.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (_, call) = api(reqwest::Method::GET, format!("/calls/{sid}"), None).await?;
                if check(&call) {
                    return Ok::<_, Error>(call);
                }
                if Instant::now() > deadline {
                    return Err(format!("never {what}: {call}").into());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for("connected", |c| c["state"] == "connected").await?;
    let (status, answer) = api(
        reqwest::Method::POST,
        format!("/calls/{sid}/transfer"),
        Some(json!({ "to": TARGET })),
    )
    .await?;
    if status != 202 {
        return Err(format!("transfer: {status} {answer}").into());
    }
    wait_for("answered", |c| c["transfer"]["state"] == "target-answered").await?;
    let (status, answer) = api(reqwest::Method::POST, format!("/calls/{sid}/leave"), None).await?;
    if status >= 300 {
        return Err(format!("leave: {status} {answer}").into());
    }
    wait_for("handed over", |c| c["state"] == "transferred").await?;
    stack.sim.hang_up(CUSTOMER);
    let ended = wait_for("ended", |c| c["state"] == "ended").await?;
    Ok(ended["state"].as_str().unwrap_or_default().to_owned())
}
