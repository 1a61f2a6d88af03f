//! Runs the product on this machine with no AWS or Twilio account: dynalite,
//! the Twilio simulator and the development server. First a complete warm
//! transfer is driven through the real handlers and its timeline printed;
//! then the agent console stays up until Ctrl-C or SIGTERM.
//!
//! Options: `--port N` (default 3000, 0 for any), `--no-demo`, `--no-serve`,
//! `--no-answer NUMBER` (that simulated phone rings and is never answered;
//! repeatable: the browser tests pass over a team member with it),
//! `--inbound` (the demo is a customer calling the centre instead: team
//! billing's Bob answers).
//!
//! With `--twilio` the same stack talks to a real Twilio account instead of
//! the simulator (docs/try-with-twilio.md): `--public-url URL` (a tunnel
//! to this server), `--agent NUMBER`, `--customer NUMBER`, optionally
//! `--transfer-to NUMBER`, `--max-call-minutes N` (default 10) and `--yes`
//! (the numbers are confirmed without asking).

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
    twilio: bool,
    public_url: Option<String>,
    agent: Option<String>,
    customer: Option<String>,
    transfer_to: Option<String>,
    max_call_minutes: u64,
    yes: bool,
    no_answer: Vec<String>,
    inbound: bool,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        port: 3000,
        demo: true,
        serve: true,
        twilio: false,
        public_url: None,
        agent: None,
        customer: None,
        transfer_to: None,
        max_call_minutes: 10,
        yes: false,
        no_answer: Vec::new(),
        inbound: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--no-demo" => parsed.demo = false,
            "--inbound" => parsed.inbound = true,
            "--no-serve" => parsed.serve = false,
            "--twilio" => parsed.twilio = true,
            "--yes" => parsed.yes = true,
            "--port" => {
                parsed.port = value("a number")?
                    .parse()
                    .map_err(|_| "--port needs a number")?;
            }
            "--max-call-minutes" => {
                parsed.max_call_minutes = value("a number")?
                    .parse()
                    .ok()
                    .filter(|m| (1..=240).contains(m))
                    .ok_or("--max-call-minutes needs a number from 1 to 240")?;
            }
            "--public-url" => parsed.public_url = Some(value("a URL")?),
            "--agent" => parsed.agent = Some(value("a number")?),
            "--customer" => parsed.customer = Some(value("a number")?),
            "--transfer-to" => parsed.transfer_to = Some(value("a number")?),
            "--no-answer" => parsed.no_answer.push(value("a number")?),
            other => {
                return Err(format!(
                    "unknown option {other} (try --port N, --no-demo, --no-serve, --no-answer NUMBER, --inbound, or --twilio \
                     --public-url URL --agent NUMBER --customer NUMBER [--transfer-to NUMBER] \
                     [--max-call-minutes N] [--yes])"
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

/// One complete warm transfer, as an agent would do it from the console:
/// to team billing, where Bob is the one available member.
async fn demo(stack: &LocalStack) -> Result<(), Error> {
    println!(
        "== demo: a warm transfer from {AGENT} to team billing (bob, {SECOND_AGENT}), customer {CUSTOMER}\n"
    );
    stack.sim.watch(CUSTOMER);
    // Both consoles are open: their heartbeats put them in the directory.
    for agent in ["alice", "bob"] {
        let status = json!({ "status": "available" });
        api(
            stack,
            agent,
            reqwest::Method::POST,
            "/presence",
            Some(status),
        )
        .await?;
    }
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
        Some(json!({ "team": "billing" })),
    )
    .await?;
    wait_for(stack, "alice", &sid, "the second agent to answer", |c| {
        c["transfer"]["state"] == "target-answered"
    })
    .await?;
    print_presence(stack, "alice").await?;
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

    report(stack, &call)
}

/// A customer calls the centre's number (team billing's): they wait with
/// the wait loop, Bob (the longest idle member) is offered the call and
/// answers, they talk, the customer hangs up.
async fn inbound_demo(stack: &LocalStack) -> Result<(), Error> {
    let centre = warm_transfer_dev::local::LOCAL_CALLER_ID;
    println!(
        "== demo: {CUSTOMER} calls the centre ({centre}, team billing); bob ({SECOND_AGENT}) is available\n"
    );
    stack.sim.watch(CUSTOMER);
    let available = json!({ "status": "available" });
    api(
        stack,
        "bob",
        reqwest::Method::POST,
        "/presence",
        Some(available),
    )
    .await?;
    let base = stack.base_url();
    let sid = stack.sim.call_in(
        CUSTOMER,
        centre,
        &format!("{base}/twiml/inbound"),
        Some(format!("{base}/events/caller")),
    );
    wait_for(stack, "sam", &sid, "bob to answer", |c| {
        c["state"] == "transferred"
    })
    .await?;
    print_presence(stack, "sam").await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stack.sim.hang_up(CUSTOMER);
    let call = wait_for(stack, "sam", &sid, "the call to end", |c| {
        c["state"] == "ended"
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    report(stack, &call)
}

/// Everyone's presence, as `agent`'s directory shows it.
async fn print_presence(stack: &LocalStack, agent: &str) -> Result<(), Error> {
    let directory = api(stack, agent, reqwest::Method::GET, "/directory", None).await?;
    println!("-- presence while they talk --");
    for agent in directory["agents"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {}",
            agent["name"].as_str().unwrap_or_default(),
            agent["availability"].as_str().unwrap_or_default()
        );
    }
    println!();
    Ok(())
}

/// The simulator's timeline, the call's history, and the verdict on the
/// customer: never left alone or dropped.
fn report(stack: &LocalStack, call: &Value) -> Result<(), Error> {
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
        Ok(())
    } else {
        println!("\nCUSTOMER STRANDED: {stranded:?}");
        Err("invariant broken".into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    if args.twilio {
        return match real_twilio::run(&args).await {
            Ok(()) => Ok(()),
            Err(error) => {
                eprintln!("\n{error}");
                std::process::exit(1);
            }
        };
    }
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
    for number in &args.no_answer {
        stack
            .sim
            .script(number, warm_transfer_dev::sim::Script::no_answer());
    }
    if args.demo && args.inbound {
        inbound_demo(&stack).await?;
    } else if args.demo {
        demo(&stack).await?;
    }
    if args.serve {
        let base = stack.base_url();
        println!(
            "\nconsole: {base}/console  (sign in at the local identity provider: no account needed)"
        );
        println!(
            "local agents: alice (+15550100001, +15550200001, +15550300001), bob (+15550100003, +15550200003), carol (+15550100004), dave (+15550100005), sam (supervisor, +15550100009)"
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

/// `--twilio`: the local stack with the user's Twilio account.
mod real_twilio {
    use std::collections::HashMap;
    use std::io::{BufRead, Write};
    use std::time::Duration;

    use warm_transfer_core::config::{Config, vars};
    use warm_transfer_core::ids::PhoneNumber;
    use warm_transfer_core::twilio::TwilioClient;
    use warm_transfer_dev::call_guard::{CallGuard, Ended};
    use warm_transfer_dev::idp::{LocalAgent, local_agents};
    use warm_transfer_dev::local::{LocalOptions, LocalStack, RealTwilio};
    use warm_transfer_dev::twilio_account::{
        AccountKind, Checks, Confirmed, SETTINGS_FILE, read_settings,
    };

    use super::{Args, Error, stopped};

    fn number(role: &str, option: &str, given: Option<&String>) -> Result<PhoneNumber, Error> {
        let given = given.ok_or(format!(
            "{option} NUMBER is needed: the {role}'s phone, in E.164 (+14155550100)"
        ))?;
        PhoneNumber::parse(given)
            .map_err(|e| format!("{option}: {e} (E.164: + and the country code)").into())
    }

    /// The numbers, said back (masked) and confirmed by the user.
    fn confirm(numbers: &[Confirmed], max_minutes: u64, yes: bool) -> Result<(), Error> {
        println!("this run places calls only to these numbers:");
        for confirmed in numbers {
            println!("  {:<11} {}", confirmed.role, confirmed.number.masked());
        }
        println!(
            "each call ends after {max_minutes} minutes at most, and every call of the run ends when it stops"
        );
        if yes {
            println!("confirmed by --yes");
            return Ok(());
        }
        print!("type yes to go on: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim().eq_ignore_ascii_case("yes") {
            Ok(())
        } else {
            Err("not confirmed: no call placed".into())
        }
    }

    fn print_ended(ended: &[Ended], why: &str) {
        for call in ended {
            match &call.outcome {
                Ok(how) => println!("{why}: call {} {how}", call.sid),
                Err(error) => println!("{why}: call {} could NOT be ended: {error}", call.sid),
            }
        }
    }

    pub async fn run(args: &Args) -> Result<(), Error> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = warm_transfer_dev::paths::workspace().join(SETTINGS_FILE);
        let settings = read_settings(&env, &file)?;
        let missing: Vec<&str> = [
            vars::TWILIO_ACCOUNT_SID,
            vars::TWILIO_AUTH_TOKEN,
            vars::DEFAULT_CALLER_ID,
        ]
        .into_iter()
        .filter(|name| !settings.contains_key(*name))
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "--twilio needs {} in the environment or in {SETTINGS_FILE} (docs/try-with-twilio.md)",
                missing.join(", ")
            )
            .into());
        }
        let public_url = args
            .public_url
            .as_deref()
            .ok_or("--public-url URL is needed: the https URL of a tunnel to this server (docs/try-with-twilio.md)")?;
        let public_url = url::Url::parse(public_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or("--public-url must be an http(s) URL")?;
        // The user's own configuration, read as a function reads it.
        let mut user_env = settings.clone();
        user_env.insert(vars::TABLE_NAME.to_owned(), "unused".to_owned());
        let user = Config::from_map(&user_env)?;

        let agent = number("agent", "--agent", args.agent.as_ref())?;
        let customer = number("customer", "--customer", args.customer.as_ref())?;
        let mut numbers = vec![
            Confirmed {
                role: "agent",
                number: agent.clone(),
            },
            Confirmed {
                role: "customer",
                number: customer,
            },
        ];
        let second = match args.transfer_to.as_ref() {
            Some(given) => Some(number("second agent", "--transfer-to", Some(given))?),
            None => None,
        };
        if let Some(second) = &second {
            numbers.push(Confirmed {
                role: "second agent",
                number: second.clone(),
            });
        }
        confirm(&numbers, args.max_call_minutes, args.yes)?;

        let upstream = user.twilio_api_base_url.as_str().to_owned();
        let guard = CallGuard::start(
            &upstream,
            numbers.iter().map(|c| c.number.as_str().to_owned()),
            Duration::from_secs(args.max_call_minutes * 60),
        )
        .await?;
        // Alice is the agent on the phone given; Bob, when given, the
        // second agent; Sam the supervisor, as in the simulated stack.
        let mut agents = local_agents();
        agents[0] = LocalAgent::new("alice@example.com", &[agent.as_str()], false);
        if let Some(second) = &second {
            agents[1] = LocalAgent::new("bob@example.com", &[second.as_str()], false);
        }
        let stack = LocalStack::start(LocalOptions {
            port: args.port,
            twilio: Some(RealTwilio {
                settings,
                public_url: public_url.clone(),
                api_base_url: guard.base_url(),
                agents,
                confirmed: numbers
                    .iter()
                    .map(|c| c.number.as_str().to_owned())
                    .collect(),
            }),
            ..LocalOptions::default()
        })
        .await?;
        println!("\nchecking the account and the tunnel (no call is placed before these pass):");
        let passed = Checks {
            config: &user,
            numbers: &numbers,
            public_url: &public_url,
            tunnel: &stack.server.tunnel,
        }
        .run()
        .await?;
        for line in &passed.lines {
            println!("  ok  {line}");
        }
        guard.arm();

        let base = stack.base_url();
        println!("\nconsole: {base}/console");
        println!(
            "sign in as alice (agent {}), start a call to the customer {}",
            agent.masked(),
            numbers[1].number.masked()
        );
        println!("your agent phone rings first; answer it, then the customer's rings");
        if passed.kind == AccountKind::Trial {
            println!(
                "trial account: each phone first hears Twilio's trial message; press a key to go on"
            );
        }
        match &second {
            Some(second) => println!(
                "to transfer, press Transfer and give {} (bob signs in to follow the call)",
                second.masked()
            ),
            None => println!("add --transfer-to NUMBER to try a warm transfer to a second phone"),
        }
        println!("Ctrl-C to stop: every call this run placed is then ended");

        let twilio = TwilioClient::from_config(&user)?;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let stop = stopped();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                result = &mut stop => {
                    result?;
                    break;
                }
                _ = tick.tick() => {
                    let ended = guard.end_overdue(&twilio).await;
                    print_ended(&ended, "maximum call length reached");
                }
            }
        }
        let created = guard.created().len();
        let ended = guard.end_all(&twilio).await;
        print_ended(&ended, "stopping");
        let failed = ended.iter().filter(|e| e.outcome.is_err()).count();
        let done = ended.len() - failed;
        if ended.is_empty() {
            println!("stopped: none of the {created} call(s) this run placed was still live");
        } else {
            println!(
                "stopped: ended {done} live call leg(s) of the {created} call(s) this run placed"
            );
        }
        if failed > 0 {
            println!(
                "{failed} could not be ended: end them in the Twilio Console (Monitor > Calls); \
                 their time limit ends them anyway"
            );
        }
        Ok(())
    }
}
