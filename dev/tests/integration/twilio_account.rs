//! `run-local.sh --twilio` against the simulator's REST side standing in for
//! Twilio on loopback: each start-up check failing on its own, the checks
//! passing, and the call guard (confirmed numbers only, nothing before the
//! checks, every call ended on stop) through the local stack.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::LegStatus;
use warm_transfer_core::ids::PhoneNumber;
use warm_transfer_core::twilio::TwilioClient;
use warm_transfer_dev::call_guard::CallGuard;
use warm_transfer_dev::contract::OpenApi;
use warm_transfer_dev::idp::LocalAgent;
use warm_transfer_dev::local::{LocalOptions, LocalStack, RealTwilio, local_people};
use warm_transfer_dev::sim::{SimConfig, Simulator};
use warm_transfer_dev::twilio_account::{
    self, AccountKind, CheckFailed, Checks, Confirmed, read_settings,
};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "the-real-auth-token";
const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const KEY_SECRET: &str = "the-api-key-secret";
const CALLER_ID: &str = "+14155550100";
const AGENT: &str = "+14155550111";
const CUSTOMER: &str = "+14155550122";

/// A stand-in account: its type, and which numbers it owns and verified.
fn account(kind: &'static str, verified: &[&str]) -> SimConfig {
    SimConfig {
        account_sid: ACCOUNT.to_owned(),
        auth_token: TOKEN.to_owned(),
        api_key: Some((KEY_SID.to_owned(), KEY_SECRET.to_owned())),
        account_type: kind,
        owned_numbers: vec![CALLER_ID.to_owned()],
        verified_caller_ids: verified.iter().map(|n| (*n).to_owned()).collect(),
        default_script: local_people,
        ..SimConfig::default()
    }
}

/// The user's settings, as `dev/twilio.env` or the environment gives them.
fn settings(sim: &Simulator) -> HashMap<String, String> {
    [
        (vars::TWILIO_ACCOUNT_SID, ACCOUNT),
        (vars::TWILIO_AUTH_TOKEN, TOKEN),
        (vars::TWILIO_API_KEY_SID, KEY_SID),
        (vars::TWILIO_API_KEY_SECRET, KEY_SECRET),
        (vars::DEFAULT_CALLER_ID, CALLER_ID),
        (vars::TWILIO_API_BASE_URL, &sim.base_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn config(settings: &HashMap<String, String>) -> Config {
    let mut env = settings.clone();
    env.insert(vars::TABLE_NAME.to_owned(), "unused".to_owned());
    Config::from_map(&env).unwrap()
}

fn numbers(agent: &str, customer: &str) -> Vec<Confirmed> {
    vec![
        Confirmed {
            role: "agent",
            number: PhoneNumber::parse(agent).unwrap(),
        },
        Confirmed {
            role: "customer",
            number: PhoneNumber::parse(customer).unwrap(),
        },
    ]
}

/// The checks with `change` made to the settings, the local stack's server
/// playing this server and `public_url` (None: its own address) the tunnel.
async fn check(
    sim: &Simulator,
    change: impl FnOnce(&mut HashMap<String, String>),
    numbers: &[Confirmed],
    public_url: Option<String>,
) -> Result<twilio_account::Passed, CheckFailed> {
    let stack = LocalStack::start(LocalOptions::default()).await.unwrap();
    let mut settings = settings(sim);
    change(&mut settings);
    let config = config(&settings);
    let public_url = url::Url::parse(&public_url.unwrap_or_else(|| stack.base_url())).unwrap();
    Checks {
        config: &config,
        numbers,
        public_url: &public_url,
        tunnel: &stack.server.tunnel,
    }
    .run()
    .await
}

fn failure(result: Result<twilio_account::Passed, CheckFailed>) -> CheckFailed {
    match result {
        Ok(passed) => panic!("the checks passed: {:?}", passed.lines),
        Err(failed) => failed,
    }
}

#[tokio::test]
async fn a_full_account_with_its_own_caller_id_and_a_tunnel_to_this_server_passes() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let passed = check(&sim, |_| {}, &numbers(AGENT, CUSTOMER), None)
        .await
        .unwrap();
    assert_eq!(passed.kind, AccountKind::Full);
    let text = passed.lines.join("\n");
    assert!(text.contains("API key SK0123"), "{text}");
    assert!(text.contains("a number of the account"), "{text}");
    assert!(text.contains("reaches this server"), "{text}");
    // What the checks print never carries a whole number or a secret.
    for secret in [AGENT, CUSTOMER, CALLER_ID, TOKEN, KEY_SECRET] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(
        sim.contract_violations().is_empty(),
        "{:?}",
        sim.contract_violations()
    );
}

#[tokio::test]
async fn credentials_twilio_refuses_are_named() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let failed = failure(
        check(
            &sim,
            |s| {
                s.insert(vars::TWILIO_API_KEY_SECRET.into(), "wrong".into());
            },
            &numbers(AGENT, CUSTOMER),
            None,
        )
        .await,
    );
    assert_eq!(failed.check, "credentials");
    assert!(failed.fix.contains(vars::TWILIO_API_KEY_SECRET), "{failed}");
    assert!(!failed.to_string().contains("wrong"), "{failed}");
}

#[tokio::test]
async fn a_wrong_auth_token_beside_a_good_api_key_is_named_it_signs_the_webhooks() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let failed = failure(
        check(
            &sim,
            |s| {
                s.insert(vars::TWILIO_AUTH_TOKEN.into(), "stale-token".into());
            },
            &numbers(AGENT, CUSTOMER),
            None,
        )
        .await,
    );
    assert_eq!(failed.check, "auth token");
    assert!(failed.fix.contains(vars::TWILIO_AUTH_TOKEN), "{failed}");
}

#[tokio::test]
async fn the_auth_token_alone_is_accepted() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let passed = check(
        &sim,
        |s| {
            s.remove(vars::TWILIO_API_KEY_SID);
            s.remove(vars::TWILIO_API_KEY_SECRET);
        },
        &numbers(AGENT, CUSTOMER),
        None,
    )
    .await
    .unwrap();
    assert!(passed.lines[0].contains("auth token"), "{:?}", passed.lines);
}

#[tokio::test]
async fn a_trial_account_is_said_and_calls_only_verified_numbers() {
    let sim = Simulator::start(account("Trial", &[AGENT])).await.unwrap();
    let failed = failure(check(&sim, |_| {}, &numbers(AGENT, CUSTOMER), None).await);
    assert_eq!(failed.check, "trial account");
    assert!(failed.problem.contains("customer"), "{failed}");
    assert!(failed.problem.contains("0122"), "{failed}");
    assert!(failed.fix.contains("Verified Caller IDs"), "{failed}");

    let sim = Simulator::start(account("Trial", &[AGENT, CUSTOMER]))
        .await
        .unwrap();
    let passed = check(&sim, |_| {}, &numbers(AGENT, CUSTOMER), None)
        .await
        .unwrap();
    assert_eq!(passed.kind, AccountKind::Trial);
    assert!(
        passed
            .lines
            .iter()
            .any(|l| l.contains("TRIAL") && l.contains("trial message")),
        "{:?}",
        passed.lines
    );
}

#[tokio::test]
async fn a_caller_id_neither_owned_nor_verified_is_named() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let failed = failure(
        check(
            &sim,
            |s| {
                s.insert(vars::DEFAULT_CALLER_ID.into(), "+14155550199".into());
            },
            &numbers(AGENT, CUSTOMER),
            None,
        )
        .await,
    );
    assert_eq!(failed.check, "caller ID");
    assert!(failed.fix.contains(vars::DEFAULT_CALLER_ID), "{failed}");

    // A verified caller ID will do.
    let sim = Simulator::start(account("Full", &["+14155550199"]))
        .await
        .unwrap();
    let passed = check(
        &sim,
        |s| {
            s.insert(vars::DEFAULT_CALLER_ID.into(), "+14155550199".into());
        },
        &numbers(AGENT, CUSTOMER),
        None,
    )
    .await
    .unwrap();
    assert!(
        passed
            .lines
            .iter()
            .any(|l| l.contains("a verified caller ID")),
        "{:?}",
        passed.lines
    );
}

#[tokio::test]
async fn a_number_outside_the_allow_list_is_named_with_the_variable_to_change() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    // The default allow-list is the caller ID's country: +1.
    let failed = failure(check(&sim, |_| {}, &numbers(AGENT, "+442079460000"), None).await);
    assert_eq!(failed.check, "allow-list");
    assert!(failed.problem.contains("customer"), "{failed}");
    assert!(failed.fix.contains(vars::ALLOWED_DESTINATIONS), "{failed}");
    assert!(!failed.to_string().contains("+442079460000"), "{failed}");

    // Blocked prefixes too, for the agent's number as much as the customer's.
    let failed = failure(
        check(
            &sim,
            |s| {
                s.insert(vars::BLOCKED_DESTINATIONS.into(), "+1415555011".into());
            },
            &numbers(AGENT, CUSTOMER),
            None,
        )
        .await,
    );
    assert_eq!(failed.check, "allow-list");
    assert!(failed.problem.contains("agent"), "{failed}");
}

#[tokio::test]
async fn a_public_url_that_does_not_lead_to_this_server_is_named() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    // Another server answers there (a tunnel to the wrong port).
    let elsewhere = LocalStack::start(LocalOptions::default()).await.unwrap();
    let failed = failure(
        check(
            &sim,
            |_| {},
            &numbers(AGENT, CUSTOMER),
            Some(elsewhere.base_url()),
        )
        .await,
    );
    assert_eq!(failed.check, "public URL");
    assert!(
        failed.problem.contains("never reached this server"),
        "{failed}"
    );
    assert!(failed.fix.contains("--public-url"), "{failed}");

    // Nothing answers there (the tunnel is down).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let failed = failure(check(&sim, |_| {}, &numbers(AGENT, CUSTOMER), Some(closed)).await);
    assert_eq!(failed.check, "public URL");
    assert!(failed.problem.contains("cannot be reached"), "{failed}");
}

#[test]
fn settings_come_from_the_file_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("wt-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("twilio.env");
    std::fs::write(
        &file,
        "# mine\nTWILIO_ACCOUNT_SID=ACfromfile\nexport TWILIO_AUTH_TOKEN=\"quoted\"\nDEFAULT_CALLER_ID=+14155550100\n",
    )
    .unwrap();
    let env: HashMap<String, String> = [(vars::TWILIO_ACCOUNT_SID, "ACfromenv"), ("HOME", "/x")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let read = read_settings(&env, &file).unwrap();
    assert_eq!(read[vars::TWILIO_ACCOUNT_SID], "ACfromenv");
    assert_eq!(read[vars::TWILIO_AUTH_TOKEN], "quoted");
    assert_eq!(read[vars::DEFAULT_CALLER_ID], "+14155550100");
    assert!(
        !read.contains_key("HOME"),
        "only Twilio's settings are taken"
    );
    std::fs::write(&file, "not a setting\n").unwrap();
    assert!(read_settings(&env, &file).unwrap_err().contains("line 1"));
    let _ = std::fs::remove_dir_all(&dir);
    // No file: the environment alone.
    let read = read_settings(&env, &dir.join("absent.env")).unwrap();
    assert_eq!(read.len(), 1);
}

#[test]
fn the_checks_requests_are_twilios() {
    let openapi = OpenApi::load(warm_transfer_dev::paths::twilio_openapi()).unwrap();
    let number = PhoneNumber::parse(CALLER_ID).unwrap();
    for spec in [
        twilio_account::fetch_account(ACCOUNT),
        twilio_account::list_incoming_numbers(ACCOUNT, &number),
        twilio_account::list_outgoing_caller_ids(ACCOUNT, &number),
    ] {
        let violations =
            openapi.check_request(spec.method.as_str(), &spec.path, &spec.query, &spec.form);
        assert!(violations.is_empty(), "{}: {violations:?}", spec.path);
    }
}

/// A free port, for a stack whose public URL must be known before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_guard_places_calls_only_to_confirmed_numbers_after_the_checks_and_ends_them_all() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let settings = settings(&sim);
    let guard = CallGuard::start(
        &sim.base_url(),
        [AGENT.to_owned(), CUSTOMER.to_owned()],
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let port = free_port();
    let public_url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let stack = LocalStack::start(LocalOptions {
        port,
        twilio: Some(RealTwilio {
            settings: settings.clone(),
            public_url: public_url.clone(),
            api_base_url: guard.base_url(),
            agents: vec![LocalAgent::new("alice@example.com", &[AGENT], false)],
            confirmed: vec![AGENT.to_owned(), CUSTOMER.to_owned()],
        }),
        ..LocalOptions::default()
    })
    .await
    .unwrap();
    let start = |customer: &'static str| {
        let (base, token) = (stack.base_url(), stack.token("alice"));
        async move {
            reqwest::Client::new()
                .post(format!("{base}/calls"))
                .bearer_auth(token)
                .json(&json!({ "agentNumber": AGENT, "customerNumber": customer }))
                .send()
                .await
                .unwrap()
        }
    };

    // Through the tunnel (a proxy's X-Forwarded-For) only Twilio's webhooks
    // are served: no sign-in, no console, no API.
    let http = reqwest::Client::new();
    for path in [
        "/local-idp/dev-token?agent=alice",
        "/console",
        "/calls/CA00000000000000000000000000000001",
    ] {
        let through = http
            .get(format!("{}{path}", stack.base_url()))
            .header("X-Forwarded-For", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(through.status(), reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    let webhook = http
        .post(format!("{}/twiml/dial-customer", stack.base_url()))
        .header("X-Forwarded-For", "203.0.113.7")
        .form(&[("CallSid", "CA00000000000000000000000000000001")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        webhook.status(),
        reqwest::StatusCode::FORBIDDEN,
        "unsigned, but served"
    );

    // Before the checks pass, nothing is dialed.
    let refused = start(CUSTOMER).await;
    assert!(!refused.status().is_success(), "{}", refused.status());
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());

    let config = config(&settings);
    Checks {
        config: &config,
        numbers: &numbers(AGENT, CUSTOMER),
        public_url: &public_url,
        tunnel: &stack.server.tunnel,
    }
    .run()
    .await
    .unwrap();
    guard.arm();

    // A number the user did not confirm (allowed by their allow-list) is
    // refused by the product: the customer is dialed by TwiML, which the
    // guard never sees.
    let refused = start("+14155550133").await;
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());

    // The confirmed call goes through the real handlers, webhooks signed
    // with the user's token against the public URL.
    let started = start(CUSTOMER).await;
    assert!(started.status().is_success(), "{}", started.status());
    assert!(
        sim.wait_for(Duration::from_secs(10), |s| s.status_of(CUSTOMER)
            == Some(LegStatus::InProgress))
            .await,
        "{}",
        sim.timeline_text()
    );
    assert_eq!(guard.created().len(), 1);
    assert!(
        sim.application_errors().is_empty(),
        "{:?}",
        sim.application_errors()
    );

    // Stopping ends the call and the customer's leg it dialed.
    let twilio = TwilioClient::from_config(&config).unwrap();
    let ended = guard.end_all(&twilio).await;
    assert!(ended.iter().all(|e| e.outcome.is_ok()), "{ended:?}");
    assert!(ended.len() >= 2, "{ended:?}");
    assert!(
        sim.wait_for(Duration::from_secs(5), |s| s
            .calls()
            .iter()
            .all(|c| c.status.is_final()))
            .await,
        "{:?}",
        sim.calls()
    );
    assert!(
        sim.contract_violations().is_empty(),
        "{:?}",
        sim.contract_violations()
    );
    // Ended once: a second stop finds nothing live.
    assert!(guard.end_all(&twilio).await.is_empty());
}

#[tokio::test]
async fn the_guard_ends_a_call_after_the_maximum_length() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let settings = settings(&sim);
    let guard = CallGuard::start(&sim.base_url(), [AGENT.to_owned()], Duration::ZERO)
        .await
        .unwrap();
    guard.arm();
    let config = config(&settings);
    // The call as the product creates it, through the guard.
    let mut through_guard = settings.clone();
    through_guard.insert(vars::TWILIO_API_BASE_URL.into(), guard.base_url());
    let product = TwilioClient::from_config(&self::config(&through_guard)).unwrap();
    let call = warm_transfer_core::twilio::CreateCall::new(
        PhoneNumber::parse(AGENT).unwrap(),
        PhoneNumber::parse(CALLER_ID).unwrap(),
        "http://127.0.0.1:9/twiml",
    );
    let created = product.create_call(&call).await.unwrap();
    // The guard itself lets no call through to a number not confirmed.
    let unconfirmed = warm_transfer_core::twilio::CreateCall::new(
        PhoneNumber::parse(CUSTOMER).unwrap(),
        PhoneNumber::parse(CALLER_ID).unwrap(),
        "http://127.0.0.1:9/twiml",
    );
    let refused = product.create_call(&unconfirmed).await.unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    assert_eq!(sim.calls_to(CUSTOMER), 0);
    let twilio = TwilioClient::from_config(&config).unwrap();
    let ended = guard.end_overdue(&twilio).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].sid, created.sid);
    assert!(guard.end_overdue(&twilio).await.is_empty());
}

/// The whole `run-local.sh --twilio` (its binary) against the stand-in
/// account: checks, a call, then SIGTERM ends the call with a line.
#[tokio::test]
async fn the_run_checks_then_on_sigterm_ends_every_call_it_placed_and_says_so() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_warm-transfer-local"));
    command
        .args([
            "--twilio",
            "--yes",
            "--public-url",
            &base,
            "--port",
            &port.to_string(),
        ])
        .args(["--agent", AGENT, "--customer", CUSTOMER])
        .envs(settings(&sim))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = warm_transfer_dev::process::die_with_parent(&mut command)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let up = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let console = line.starts_with("console:");
            output.push(line);
            if console {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(up, Ok(true), "{}", output.join("\n"));
    assert!(
        output.iter().any(|l| l.contains("ok  public URL")),
        "{}",
        output.join("\n")
    );

    let http = reqwest::Client::new();
    let token = http
        .get(format!("{base}/local-idp/dev-token?agent=alice"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = http
        .post(format!("{base}/calls"))
        .bearer_auth(token)
        .json(&json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::CREATED);
    assert!(
        sim.wait_for(Duration::from_secs(10), |s| s.status_of(CUSTOMER)
            == Some(LegStatus::InProgress))
            .await,
        "{}",
        sim.timeline_text()
    );

    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: signals the child this test started, by its id.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let exited = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            output.push(line);
        }
        child.wait().await.unwrap()
    })
    .await
    .unwrap();
    let text = output.join("\n");
    assert!(exited.success(), "{text}");
    assert!(text.contains("stopping: call CA"), "{text}");
    assert!(
        text.contains("stopped: ended 2 live call leg(s) of the 1 call(s) this run placed"),
        "{text}"
    );
    assert!(
        sim.calls().iter().all(|c| c.status.is_final()),
        "{:?}",
        sim.calls()
    );
    for secret in [AGENT, CUSTOMER, CALLER_ID, TOKEN, KEY_SECRET] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn through_the_public_host_only_twilios_webhooks_are_served() {
    let sim = Simulator::start(account("Full", &[])).await.unwrap();
    let stack = LocalStack::start(LocalOptions {
        twilio: Some(RealTwilio {
            settings: settings(&sim),
            public_url: url::Url::parse("https://words-of-a-tunnel.example.com").unwrap(),
            api_base_url: sim.base_url(),
            agents: vec![LocalAgent::new("alice@example.com", &[AGENT], false)],
            confirmed: vec![AGENT.to_owned(), CUSTOMER.to_owned()],
        }),
        ..LocalOptions::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let get = |host: Option<&'static str>, path: &'static str| {
        let mut request = http.get(format!("{}{path}", stack.base_url()));
        if let Some(host) = host {
            request = request.header("Host", host);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // On this machine, the console and the sign-in as ever.
    assert_eq!(get(None, "/console").await, 200);
    assert_eq!(get(None, "/local-idp/dev-token?agent=alice").await, 200);
    // Through the tunnel's host, whatever its case and port: neither.
    for host in [
        "words-of-a-tunnel.example.com",
        "Words-Of-A-Tunnel.example.com:443",
    ] {
        assert_eq!(get(Some(host), "/console").await, 404, "{host}");
        assert_eq!(
            get(Some(host), "/local-idp/dev-token?agent=alice").await,
            404,
            "{host}"
        );
    }
    let webhook = http
        .post(format!("{}/events/agent", stack.base_url()))
        .header("Host", "words-of-a-tunnel.example.com")
        .form(&[("CallSid", "CA00000000000000000000000000000001")])
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status().as_u16(), 403, "unsigned, but served");
}
