//! What following a call costs, before push and after: one warm transfer
//! with its handover on the local stack (Twilio simulator, dynalite), the
//! first agent's console following the call either by reading it every
//! second (the console before push) or over the WebSocket (one read when
//! the subscription opens, then frames). Counted: the requests each
//! function got (one Lambda invocation each in AWS), the `$connect`,
//! `$disconnect` and publisher invocations, and every DynamoDB request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::follow::Follower;
use crate::capacity::Billed;
use crate::counting::Invocation;
use crate::local::{LocalOptions, LocalStack};
use crate::sim::Operation;

type Error = Box<dyn std::error::Error + Send + Sync>;

const AGENT: &str = "+15550100001";
const CUSTOMER: &str = "+15550100002";
const SECOND_AGENT: &str = "+15550100003";

/// What the product may ask of Twilio during a call.
pub const REST_OPERATIONS: [Operation; 11] = [
    Operation::CreateCall,
    Operation::UpdateCall,
    Operation::CreateParticipant,
    Operation::UpdateParticipant,
    Operation::DeleteParticipant,
    Operation::FetchCall,
    Operation::FetchParticipant,
    Operation::UpdateConference,
    Operation::FetchConference,
    Operation::ListCalls,
    Operation::ListParticipants,
];

/// One measured call.
#[derive(Debug, Clone)]
pub struct Costs {
    pub push: bool,
    /// From the call's start to the handover.
    pub call_secs: f64,
    /// Requests by function (HTTP API routes).
    pub invocations: BTreeMap<String, u64>,
    /// `$connect`, `$disconnect` and publisher invocations (batches).
    pub connects: u64,
    pub disconnects: u64,
    pub batches: u64,
    /// Frames posted to the console.
    pub frames: u64,
    /// DynamoDB requests by operation.
    pub dynamodb: BTreeMap<String, u64>,
    /// Twilio REST requests by operation, from the call's start until it
    /// ended after the customer's hang-up.
    pub rest: BTreeMap<String, u64>,
    /// DynamoDB writes over the whole call by the kind of item written
    /// (`SESSION`, `EVENT`, ...), those refused by their condition
    /// (`refused KIND`), and by function (`by function KIND`).
    pub writes: BTreeMap<String, u64>,
    /// How long the console followed the call (its WebSocket was open, by push).
    pub followed_secs: f64,
    /// Everything up to the call's end, after the customer's hang-up.
    pub end: Ended,
}

/// What the call cost from its start to its end (the counts above stop at
/// the handover).
#[derive(Debug, Clone, Default)]
pub struct Ended {
    /// Every handler run: HTTP API requests, `$connect`/`$disconnect`, batches.
    pub handled: Vec<Invocation>,
    /// Requests the HTTP API handed a function (front end and Twilio's webhooks).
    pub http_requests: u64,
    pub dynamodb: BTreeMap<String, u64>,
    pub billed: Billed,
    pub frames: u64,
    pub connects: u64,
    pub disconnects: u64,
}

impl Costs {
    pub fn lambda_invocations(&self) -> u64 {
        self.invocations.values().sum::<u64>() + self.connects + self.disconnects + self.batches
    }

    pub fn dynamodb_reads(&self) -> u64 {
        ["GetItem", "Query", "Scan"]
            .iter()
            .map(|op| self.dynamodb.get(*op).copied().unwrap_or(0))
            .sum()
    }
}

async fn api(
    stack: &LocalStack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", stack.base_url()))
        .bearer_auth(stack.token("alice"));
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

/// Waits until the console's view of the call satisfies `check`.
async fn until(
    follower: &mut Follower,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<(), Error> {
    follower
        .until(Duration::from_secs(60), check)
        .await
        .map(drop)
        .map_err(|_| format!("the call never reached {what}").into())
}

/// One call: started, `talk` of conversation, a warm transfer, the
/// handover; followed by a polling console, or by push.
pub async fn measure(push: bool, talk: Duration) -> Result<Costs, Error> {
    measure_call(push, talk, Duration::ZERO).await
}

/// The same, agent two and the customer talking `after` the handover
/// before the customer hangs up.
pub async fn measure_call(push: bool, talk: Duration, after: Duration) -> Result<Costs, Error> {
    let stack = LocalStack::start(LocalOptions {
        push,
        ..LocalOptions::default()
    })
    .await?;
    stack.capacity.enable();
    stack.capacity.reset();
    stack.dynamo_ops.0.reset();
    stack.dynamo_ops.2.reset();
    stack.server.invocations.reset();
    stack.server.handled.reset();
    stack.push_counts.handled.reset();
    let started = Instant::now();
    let call = api(
        &stack,
        reqwest::Method::POST,
        "/calls",
        Some(json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER })),
    )
    .await?;
    let sid = call["callSid"].as_str().ok_or("no callSid")?.to_owned();
    let stack = Arc::new(stack);

    // The console follows the call.
    let read = {
        let (stack, path) = (stack.clone(), format!("/calls/{sid}"));
        move || {
            let (stack, path) = (stack.clone(), path.clone());
            async move {
                api(&stack, reqwest::Method::GET, &path, None)
                    .await
                    .unwrap_or_default()
            }
        }
    };
    let second = Duration::from_secs(1);
    let following = Instant::now();
    let mut follower = if push {
        let url = format!("{}?callSid={sid}", stack.ws_url());
        let token = stack.token("alice");
        Follower::by_push(url, token, Duration::from_secs(30), second, read)
    } else {
        Follower::by_polling(second, read)
    };

    until(&mut follower, "connected", |c| c["state"] == "connected").await?;
    tokio::time::sleep(talk).await;
    api(
        &stack,
        reqwest::Method::POST,
        &format!("/calls/{sid}/transfer"),
        Some(json!({ "to": SECOND_AGENT })),
    )
    .await?;
    until(&mut follower, "target-answered", |c| {
        c["transfer"]["state"] == "target-answered"
    })
    .await?;
    api(
        &stack,
        reqwest::Method::POST,
        &format!("/calls/{sid}/leave"),
        None,
    )
    .await?;
    let call_secs = started.elapsed().as_secs_f64();
    // The console stops following once it handed the call over: by push
    // when told (`revoked`), by polling at once.
    if push {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(follower);
    let followed_secs = following.elapsed().as_secs_f64();
    // The socket's close reaches $disconnect.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let counts = &stack.push_counts;
    let read = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let mut costs = Costs {
        push,
        call_secs,
        invocations: stack.server.invocations.snapshot(),
        connects: read(&counts.connects),
        disconnects: read(&counts.disconnects),
        batches: read(&counts.batches),
        frames: read(&counts.frames),
        dynamodb: stack.dynamo_ops.0.snapshot(),
        rest: BTreeMap::new(),
        writes: BTreeMap::new(),
        followed_secs,
        end: Ended::default(),
    };
    tokio::time::sleep(after).await;
    // The call's end: the customer hangs up on agent two. Every request
    // the product made of Twilio over the whole call, by kind.
    let sim = &stack.sim;
    sim.hang_up(CUSTOMER);
    let over = |sim: &crate::sim::Simulator| {
        sim.status_of(SECOND_AGENT).is_some_and(|s| s.is_final()) && sim.callbacks_settled()
    };
    if !sim.wait_for(Duration::from_secs(30), over).await {
        return Err("the call never ended after the customer hung up".into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    costs.writes = stack.dynamo_ops.2.snapshot();
    for operation in REST_OPERATIONS {
        let n = sim.requests(operation) as u64;
        if n > 0 {
            costs.rest.insert(format!("{operation:?}"), n);
        }
    }
    let mut handled = stack.server.handled.snapshot();
    handled.extend(stack.push_counts.handled.snapshot());
    costs.end = Ended {
        handled,
        http_requests: stack.server.invocations.snapshot().values().sum(),
        dynamodb: stack.dynamo_ops.0.snapshot(),
        billed: stack.capacity.snapshot(),
        frames: read(&counts.frames),
        connects: read(&counts.connects),
        disconnects: read(&counts.disconnects),
    };
    Ok(costs)
}

/// The two measurements as a Markdown table.
pub fn table(before: &Costs, after: &Costs) -> String {
    let row = |name: &str, f: &dyn Fn(&Costs) -> String| {
        format!("| {name} | {} | {} |\n", f(before), f(after))
    };
    let function = |name: &'static str| {
        move |c: &Costs| c.invocations.get(name).copied().unwrap_or(0).to_string()
    };
    let op = |name: &'static str| {
        move |c: &Costs| c.dynamodb.get(name).copied().unwrap_or(0).to_string()
    };
    let mut out =
        String::from("| per transferred call | polling (before) | push (after) |\n|---|---|---|\n");
    out += &row("call, start to handover (s)", &|c| {
        format!("{:.1}", c.call_secs)
    });
    out += &row("**Lambda invocations**", &|c| {
        format!("**{}**", c.lambda_invocations())
    });
    out += &row("- get-call (the console's reads)", &function("get-call"));
    out += &row("- start-call, start-transfer, leave-call", &|c| {
        ["start-call", "start-transfer", "leave-call"]
            .iter()
            .map(|f| c.invocations.get(*f).copied().unwrap_or(0))
            .sum::<u64>()
            .to_string()
    });
    out += &row("- Twilio webhooks (TwiML, callbacks)", &|c| {
        c.invocations
            .iter()
            .filter(|(f, _)| {
                !["get-call", "start-call", "start-transfer", "leave-call"].contains(&f.as_str())
            })
            .map(|(_, n)| n)
            .sum::<u64>()
            .to_string()
    });
    out += &row("- ws-connect, ws-disconnect", &|c| {
        format!("{}, {}", c.connects, c.disconnects)
    });
    out += &row("- stream-publisher (batches)", &|c| c.batches.to_string());
    out += &row("**DynamoDB reads**", &|c| {
        format!("**{}**", c.dynamodb_reads())
    });
    out += &row("- GetItem", &op("GetItem"));
    out += &row("- Query", &op("Query"));
    out += &row("DynamoDB writes (PutItem, UpdateItem, DeleteItem)", &|c| {
        ["PutItem", "UpdateItem", "DeleteItem"]
            .iter()
            .map(|o| c.dynamodb.get(*o).copied().unwrap_or(0))
            .sum::<u64>()
            .to_string()
    });
    out += &row("frames pushed", &|c| c.frames.to_string());
    out += &row(
        "**Twilio REST requests, start to the customer's hang-up**",
        &|c| format!("**{}**", c.rest.values().sum::<u64>()),
    );
    let mut kinds: Vec<&String> = before.rest.keys().chain(after.rest.keys()).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        out += &row(&format!("- {kind}"), &|c| {
            c.rest.get(kind).copied().unwrap_or(0).to_string()
        });
    }
    out += &row(
        "**DynamoDB writes, start to the customer's hang-up**",
        &|c| {
            let all = c.writes.iter().filter(|(k, _)| !k.contains(' '));
            format!("**{}**", all.map(|(_, n)| n).sum::<u64>())
        },
    );
    let mut kinds: Vec<&String> = before.writes.keys().chain(after.writes.keys()).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds.iter().filter(|k| !k.starts_with("by ")) {
        out += &row(&format!("- {kind}"), &|c| {
            c.writes.get(*kind).copied().unwrap_or(0).to_string()
        });
    }
    out
}

/// Who wrote what (`function KIND`), for finding writes to cut.
pub fn writers(costs: &Costs) -> String {
    costs
        .writes
        .iter()
        .filter_map(|(k, n)| k.strip_prefix("by ").map(|k| format!("{k}: {n}\n")))
        .collect()
}
