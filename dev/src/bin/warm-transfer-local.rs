//! Runs the product on this machine with no AWS or Twilio account: dynalite,
//! the Twilio simulator and the development server. First a complete warm
//! transfer is driven through the real handlers and its timeline printed;
//! then the agent console stays up until Ctrl-C or SIGTERM.
//!
//! Options: `--port N` (default 3000, 0 for any), `--no-demo`, `--no-serve`.

use std::time::Duration;

use serde_json::{Value, json};
use warm_transfer_dev::local::{LocalOptions, LocalStack};

const AGENT: &str = "+15550100001";
const CUSTOMER: &str = "+15550100002";
const SECOND_AGENT: &str = "+15550100003";

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    port: u16,
    demo: bool,
    serve: bool,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        port: 3000,
        demo: true,
        serve: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-demo" => parsed.demo = false,
            "--no-serve" => parsed.serve = false,
            "--port" => {
                parsed.port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a number")?;
            }
            other => {
                return Err(format!(
                    "unknown option {other} (try --port N, --no-demo, --no-serve)"
                ));
            }
        }
    }
    Ok(parsed)
}

/// A front-end request, signed in as `agent` (a local agent's name).
async fn api(
    stack: &LocalStack,
    agent: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", stack.base_url()))
        .bearer_auth(stack.token(agent));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {body}").into());
    }
    Ok(body)
}

async fn wait_for(
    stack: &LocalStack,
    agent: &str,
    sid: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    for _ in 0..600 {
        let call = api(
            stack,
            agent,
            reqwest::Method::GET,
            &format!("/calls/{sid}"),
            None,
        )
        .await?;
        if check(&call) {
            return Ok(call);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("gave up waiting for {what}").into())
}

/// One complete warm transfer, as an agent would do it from the console.
async fn demo(stack: &LocalStack) -> Result<(), Error> {
    println!("== demo: a warm transfer from {AGENT} to {SECOND_AGENT}, customer {CUSTOMER}\n");
    stack.sim.watch(CUSTOMER);
    // Alice (the first agent) starts the call and hands it to Bob.
    let call = api(
        stack,
        "alice",
        reqwest::Method::POST,
        "/calls",
        Some(json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER })),
    )
    .await?;
    let sid = call["callSid"].as_str().ok_or("no callSid")?.to_owned();
    wait_for(stack, "alice", &sid, "the customer to answer", |c| {
        c["state"] == "connected"
    })
    .await?;
    api(
        stack,
        "alice",
        reqwest::Method::POST,
        &format!("/calls/{sid}/transfer"),
        Some(json!({ "to": SECOND_AGENT })),
    )
    .await?;
    wait_for(stack, "alice", &sid, "the second agent to answer", |c| {
        c["transfer"]["state"] == "target-answered"
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    api(
        stack,
        "alice",
        reqwest::Method::POST,
        &format!("/calls/{sid}/leave"),
        None,
    )
    .await?;
    // Handed over: the call is Bob's now, and only his (or a supervisor's) to read.
    wait_for(stack, "bob", &sid, "the first agent to leave", |c| {
        c["transfer"]["state"] == "first-agent-left"
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.sim.hang_up(CUSTOMER);
    let call = wait_for(stack, "bob", &sid, "the call to end", |c| {
        c["state"] == "ended"
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("-- simulated Twilio: legs, webhooks, callbacks --");
    print!("{}", stack.sim.timeline_text());
    println!("\n-- the call's history as the console shows it --");
    for event in call["events"].as_array().into_iter().flatten() {
        println!(
            "{}  {:<6}  {}{}{}",
            event["at"].as_str().unwrap_or_default(),
            event["source"].as_str().unwrap_or_default(),
            event["kind"].as_str().unwrap_or_default(),
            event["detail"]
                .as_str()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default(),
            event["actor"]
                .as_str()
                .map(|a| format!("  by {a}"))
                .unwrap_or_default()
        );
    }
    let stranded = stack.sim.stranded(CUSTOMER, Duration::from_millis(1500));
    if stranded.is_empty() {
        println!("\ncustomer never left alone or dropped: ok");
    } else {
        println!("\nCUSTOMER STRANDED: {stranded:?}");
        return Err("invariant broken".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let stack = LocalStack::start(LocalOptions {
        port: args.port,
        // The product's own variable, for a local run that dials a lot.
        agent_dials_per_minute: std::env::var(
            warm_transfer_core::config::vars::AGENT_DIALS_PER_MINUTE,
        )
        .ok()
        .and_then(|limit| limit.parse().ok()),
        ..LocalOptions::default()
    })
    .await?;
    if args.demo {
        demo(&stack).await?;
    }
    if args.serve {
        let base = stack.base_url();
        println!(
            "\nconsole: {base}/console  (sign in at the local identity provider: no account needed)"
        );
        println!(
            "local agents: alice (+15550100001, +15550200001, +15550300001), bob (+15550100003, +15550200003), sam (supervisor, +15550100009)"
        );
        println!("a token for curl, valid one hour:");
        println!("  TOKEN=$(curl -s '{base}/local-idp/dev-token?agent=alice')");
        println!("  curl -H \"Authorization: Bearer $TOKEN\" {base}/calls/CA...");
        println!(
            "simulated people: numbers ending 0486 are busy, 0404 never answer, 0500 fail; others answer"
        );
        println!("Ctrl-C to stop");
        stopped().await?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: either way `main` returns and the stack's drop stops
/// dynalite (which also dies with this process if it is killed outright).
async fn stopped() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = terminate.recv() => Ok(()),
    }
}
