//! Sign-in and who may do what, end to end: the development server verifies
//! tokens from the local issuer as API Gateway's JWT authorizer does, the
//! handlers apply the domain's access rule. Agent A is alice, agent B bob,
//! the supervisor sam (see `warm_transfer_dev::idp::local_agents`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use warm_transfer_dev::local::{LocalOptions, LocalStack, eventually};

pub(super) const ALICE: &str = "+15550100001";
pub(super) const BOB: &str = "+15550100003";
pub(super) const CUSTOMER: &str = "+15550100002";
/// The local simulator never answers numbers ending 0404: a transfer to it
/// rings until cancelled.
pub(super) const NOBODY: &str = "+15550200404";

pub(super) async fn stack() -> LocalStack {
    LocalStack::start(LocalOptions {
        port: 0,
        time_scale: 0.1,
        ring_timeout_secs: 60,
        ..LocalOptions::default()
    })
    .await
    .unwrap()
}

/// A front-end request with this bearer token (None: no header at all).
async fn call_api(
    stack: &LocalStack,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", stack.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(super) async fn as_agent(
    stack: &LocalStack,
    agent: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_api(stack, Some(&stack.token(agent)), method, path, body).await
}

pub(super) async fn start_call(stack: &LocalStack, from: &str, customer: &str) -> String {
    let (status, call) = as_agent(
        stack,
        "alice",
        Method::POST,
        "/calls",
        Some(json!({ "agentNumber": from, "customerNumber": customer })),
    )
    .await;
    assert_eq!(status, 201, "{call}");
    let sid = call["callSid"].as_str().unwrap().to_owned();
    wait_for(stack, "alice", &sid, |c| c["state"] == "connected").await;
    sid
}

pub(super) async fn wait_for(
    stack: &LocalStack,
    agent: &str,
    sid: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/calls/{sid}");
    eventually(Duration::from_secs(20), async || {
        let (status, call) = as_agent(stack, agent, Method::GET, &path, None).await;
        (status == 200 && check(&call)).then_some(call)
    })
    .await
    .unwrap_or_else(|| panic!("{sid} never reached the state wanted"))
}

fn forbidden(answer: &(u16, Value), reason: &str) {
    assert_eq!(answer.0, 403, "{}", answer.1);
    assert_eq!(answer.1["reason"], reason, "{}", answer.1);
    assert!(answer.1["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn missing_expired_foreign_unsigned_and_tampered_tokens_are_refused() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let path = format!("/calls/{sid}");
    let issuer = &stack.issuer;
    let alice = issuer.agent("alice").unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = issuer.claims_for(alice);
        change(&mut claims);
        issuer.sign(&claims)
    };
    let good = issuer.token_for(alice);
    let parts: Vec<&str> = good.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["cognito:groups"] = json!(["supervisors"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let refused = [
        ("expired", with(&|c| c["exp"] = json!(now - 600))),
        ("wrong audience", with(&|c| c["aud"] = json!("another-app"))),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://idp.example.com")),
        ),
        ("unsigned", format!("{none_header}.{}.", parts[1])),
        ("tampered", tampered),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in &refused {
        for (method, route, body) in [
            (Method::GET, path.clone(), None),
            (
                Method::POST,
                "/calls".to_owned(),
                Some(json!({ "agentNumber": ALICE, "customerNumber": "+15550100022" })),
            ),
            (
                Method::POST,
                format!("{path}/transfer"),
                Some(json!({ "to": BOB })),
            ),
        ] {
            let (status, body) = call_api(&stack, Some(token), method, &route, body).await;
            assert_eq!(status, 401, "{what} {route}: {body}");
            assert!(body["error"].is_string(), "{what}: {body}");
        }
    }
    let (status, _) = call_api(&stack, None, Method::GET, &path, None).await;
    assert_eq!(status, 401, "no token");
    // Nothing refused reached the call: the same valid token still works,
    // and the transfer was never requested.
    let (status, call) = call_api(&stack, Some(&good), Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert!(call["transfer"].is_null(), "{call}");
}

#[tokio::test]
async fn each_agent_acts_only_on_their_own_calls_until_a_handover() {
    let stack = stack().await;
    // B may not start a call that rings A's phone.
    let (status, body) = as_agent(
        &stack,
        "bob",
        Method::POST,
        "/calls",
        Some(json!({ "agentNumber": ALICE, "customerNumber": CUSTOMER })),
    )
    .await;
    forbidden(&(status, body), "not-your-number");

    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let path = format!("/calls/{sid}");
    let bob_tries = async |what: &str| {
        let transfer = Some(json!({ "to": "+15550200003" }));
        for (method, route, body) in [
            (Method::GET, path.clone(), None),
            (Method::POST, format!("{path}/transfer"), transfer),
            (Method::POST, format!("{path}/transfer/cancel"), None),
            (
                Method::POST,
                format!("{path}/hold"),
                Some(json!({ "held": true })),
            ),
            (Method::POST, format!("{path}/leave"), None),
        ] {
            let answer = as_agent(&stack, "bob", method, &route, body).await;
            assert_eq!(answer.0, 403, "{what}: bob {route}: {}", answer.1);
            forbidden(&answer, "not-your-call");
        }
    };
    bob_tries("before any transfer").await;

    // A transfers the call to B; B's phone answers, A is still on the call.
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("{path}/transfer"),
        Some(json!({ "to": BOB })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait_for(&stack, "alice", &sid, |c| {
        c["transfer"]["state"] == "target-answered"
    })
    .await;
    bob_tries("ringing and answered, before the handover").await;

    // A leaves: the call is B's now, and no longer A's.
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("{path}/leave"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = wait_for(&stack, "bob", &sid, |c| {
        c["transfer"]["state"] == "first-agent-left"
    })
    .await;
    assert_eq!(call["state"], "transferred");
    let answer = as_agent(&stack, "alice", Method::GET, &path, None).await;
    forbidden(&answer, "handed-over");
    assert!(
        answer.1["error"].as_str().unwrap().contains("second agent"),
        "{}",
        answer.1
    );
    let answer = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("{path}/transfer"),
        Some(json!({ "to": "+15550200003" })),
    )
    .await;
    forbidden(&answer, "handed-over");
    // The supervisor may read it too.
    let (status, _) = as_agent(&stack, "sam", Method::GET, &path, None).await;
    assert_eq!(status, 200);

    // The history names who did each front-end action, and only those done.
    let actions: Vec<(String, String)> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "api")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap_or("nobody").to_owned(),
            )
        })
        .collect();
    let alice = "alice@example.com".to_owned();
    assert_eq!(
        actions,
        vec![
            ("call started".to_owned(), alice.clone()),
            ("warm transfer requested".to_owned(), alice.clone()),
            ("first agent left".to_owned(), alice),
        ]
    );
    for event in call["events"].as_array().unwrap() {
        if event["source"] != "api" {
            assert!(event["actor"].is_null(), "{event}");
        }
    }
}

#[tokio::test]
async fn a_supervisor_acts_on_any_call_and_is_named_for_it() {
    let stack = stack().await;
    let sid = start_call(&stack, "+15550200001", "+15550200002").await;
    let path = format!("/calls/{sid}");
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("{path}/transfer"),
        Some(json!({ "to": NOBODY })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = as_agent(
        &stack,
        "sam",
        Method::POST,
        &format!("{path}/transfer/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = wait_for(&stack, "sam", &sid, |c| {
        c["transfer"]["state"] == "cancelled"
    })
    .await;
    let cancelled = history_entry(&call, "transfer cancelled");
    assert_eq!(cancelled["actor"], "sam@example.com", "{call}");
    assert_eq!(cancelled["source"], "api");
    // The call is still alice's: the supervisor acted on it, took nothing.
    let (status, _) = as_agent(&stack, "alice", Method::GET, &path, None).await;
    assert_eq!(status, 200);
}

/// Issue 26, finding 2: API Gateway flattens a groups array to `[a b]`, and
/// the old parser split it on spaces, commas, brackets and quotes, so a
/// group named `Night supervisors` made its members supervisors.
#[tokio::test]
async fn a_group_merely_named_like_the_supervisors_grants_nothing() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let path = format!("/calls/{sid}");
    let issuer = &stack.issuer;
    let bob = issuer.agent("bob").unwrap();
    for groups in [
        json!(["Night supervisors"]),
        json!(["x,supervisors"]),
        json!(["[supervisors]"]),
        json!(["\"supervisors\""]),
        json!("Night supervisors"),
    ] {
        let mut claims = issuer.claims_for(bob);
        claims["cognito:groups"] = groups.clone();
        let token = issuer.sign(&claims);
        let read = call_api(&stack, Some(&token), Method::GET, &path, None).await;
        forbidden(&read, "not-your-call");
        let transfer = call_api(
            &stack,
            Some(&token),
            Method::POST,
            &format!("{path}/transfer"),
            Some(json!({ "to": "+15550200003" })),
        )
        .await;
        assert_eq!(transfer.0, 403, "{groups}: {}", transfer.1);
    }
    // The real group, exactly, still makes a supervisor.
    let mut claims = issuer.claims_for(bob);
    claims["cognito:groups"] = json!(["agents", "supervisors"]);
    let (status, body) = call_api(
        &stack,
        Some(&issuer.sign(&claims)),
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// An address the provider did not verify names nobody: bob setting
/// alice's e-mail on his account is known by his `sub`, and gets neither
/// her calls nor the numbers the deployment maps to her address.
#[tokio::test]
async fn an_unverified_email_is_not_who_the_agent_is() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let issuer = &stack.issuer;
    let mut claims = issuer.claims_for(issuer.agent("bob").unwrap());
    claims["email"] = json!("alice@example.com");
    claims["email_verified"] = json!(false);
    let token = issuer.sign(&claims);
    let read = call_api(
        &stack,
        Some(&token),
        Method::GET,
        &format!("/calls/{sid}"),
        None,
    )
    .await;
    forbidden(&read, "not-your-call");
    // Acting on his own call, he is named by his subject, not her address.
    let (status, call) = call_api(
        &stack,
        Some(&token),
        Method::POST,
        "/calls",
        Some(json!({ "agentNumber": "+15550200003", "customerNumber": "+15550200002" })),
    )
    .await;
    assert_eq!(status, 201, "{call}");
    let sid = call["callSid"].as_str().unwrap();
    let (_, call) = call_api(
        &stack,
        Some(&token),
        Method::GET,
        &format!("/calls/{sid}"),
        None,
    )
    .await;
    let started = history_entry(&call, "call started");
    assert_eq!(started["actor"], "local-bob", "{call}");
}

/// The first history entry of this kind in a call as the API shows it
/// (null when there is none).
fn history_entry(call: &Value, kind: &str) -> Value {
    call["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}
