//! What a stranger on the internet can make the product do: the Twilio
//! routes refuse anonymous and oversized requests before doing any work.

use warm_transfer_core::signature::sign_form;
use warm_transfer_dev::local::LOCAL_AUTH_TOKEN;

use crate::access::stack;

/// Posts `body` to a Twilio route, signed over `params` when asked.
async fn post_webhook(base: &str, body: Vec<u8>, signed_over: Option<&[(String, String)]>) -> u16 {
    let url = format!("{base}/events/call-status?session=CA00000000000000000000000000000001");
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(params) = signed_over {
        request = request.header(
            "X-Twilio-Signature",
            sign_form(LOCAL_AUTH_TOKEN, &url, params),
        );
    }
    request.body(body).send().await.unwrap().status().as_u16()
}

fn fields(n: usize) -> (Vec<(String, String)>, Vec<u8>) {
    let params: Vec<(String, String)> = (0..n).map(|i| (format!("F{i}"), "1".to_owned())).collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
        .into_bytes();
    (params, body)
}

#[tokio::test]
async fn anonymous_and_oversized_webhooks_are_refused_before_work() {
    let stack = stack().await;
    let base = stack.base_url();
    // No signature: 403 whatever the body, even one far over the caps (the
    // header is looked at first).
    assert_eq!(
        post_webhook(&base, b"a&".repeat(2_900_000), None).await,
        403
    );
    // Signed, but larger than any request Twilio sends this product.
    let (params, body) = fields(20_000);
    assert!(body.len() > 32 * 1024);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 413);
    // Signed, small, but with more fields than Twilio ever sends.
    let empty: Vec<(String, String)> = Vec::new();
    assert_eq!(
        post_webhook(&base, b"&".repeat(5_000), Some(&empty)).await,
        400
    );
    let (params, body) = fields(150);
    assert!(body.len() < 32 * 1024);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 400);
    // A signed request of Twilio's size is still answered.
    let (params, body) = fields(60);
    assert_eq!(post_webhook(&base, body, Some(&params)).await, 200);
}

/// A long history costs a refused reader nothing, and the call's reader a
/// bounded page at a time, every entry reachable by paging back.
#[tokio::test]
async fn get_call_checks_access_first_and_pages_a_long_history() {
    use futures::StreamExt;
    use reqwest::Method;
    use warm_transfer_core::domain::{EventSource, HistoryEvent};
    use warm_transfer_core::ids::CallSid;
    use warm_transfer_core::store::CallStore;

    use crate::access::{ALICE, CUSTOMER, as_agent, start_call};

    const ENTRIES: usize = 1_000;
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let call = CallSid::parse(&sid).unwrap();
    let start = time::OffsetDateTime::now_utc();
    let store = &warm_transfer_core::store::DynamoStore::new(
        stack.dynalite.client(),
        stack.app.config().table_name.clone(),
        std::time::Duration::from_secs(3600),
    );
    futures::stream::iter(0..ENTRIES)
        .for_each_concurrent(16, |i| {
            let call = call.clone();
            async move {
                let event = HistoryEvent {
                    at: start + time::Duration::milliseconds(i as i64),
                    source: EventSource::Twilio,
                    kind: format!("filler {i:04}"),
                    detail: None,
                    recording: None,
                    actor: None,
                };
                store.append_event(&call, &event).await.unwrap();
            }
        })
        .await;

    let ops = &stack.dynamo_ops.0;
    ops.reset();
    let (status, body) = as_agent(&stack, "bob", Method::GET, &format!("/calls/{sid}"), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(ops.get("Query"), 0, "history read for a refused request");

    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &before {
            Some(cursor) => format!("/calls/{sid}?historyBefore={}", urlencode(cursor)),
            None => format!("/calls/{sid}"),
        };
        let (status, body) = as_agent(&stack, "alice", Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().unwrap();
        assert!(events.len() <= 100, "a page of {}", events.len());
        let kinds: Vec<String> = events
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        seen.splice(0..0, kinds);
        pages += 1;
        match body["historyBefore"].as_str() {
            Some(cursor) => before = Some(cursor.to_owned()),
            None => break,
        }
    }
    let fillers: Vec<&String> = seen.iter().filter(|k| k.starts_with("filler")).collect();
    assert_eq!(fillers.len(), ENTRIES, "every entry reachable by paging");
    assert!(
        fillers.windows(2).all(|w| w[0] < w[1]),
        "oldest first, in order"
    );
    assert!(pages > ENTRIES / 100, "{pages} pages");

    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::GET,
        &format!("/calls/{sid}?historyBefore=EVENT%23x"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "historyBefore");
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Each function's Lambda timeout in the template is the one its work is
/// cut to (`Endpoint::timeout`, less `time_budget::MARGIN`), and the
/// longest single step a function waits on fits in what is left.
#[test]
fn every_function_works_to_a_deadline_inside_its_lambda_timeout() {
    use warm_transfer_core::endpoint::Endpoint;
    use warm_transfer_core::time_budget::MARGIN;

    let path = warm_transfer_dev::paths::workspace().join("template.yaml");
    let template: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    for endpoint in Endpoint::ALL {
        let code_uri = format!("target/lambda/{}/", endpoint.function_name());
        let function = resources
            .values()
            .find(|r| r["Properties"]["CodeUri"].as_str() == Some(code_uri.as_str()))
            .unwrap_or_else(|| panic!("{code_uri} in the template"));
        let timeout = function["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{} has its own Timeout", endpoint.function_name()));
        assert_eq!(
            std::time::Duration::from_secs(timeout),
            endpoint.timeout(),
            "{}",
            endpoint.function_name()
        );
        // One DynamoDB request with the SDK's retries fits in the work time
        // of every function that reads the table (all but the console page).
        if endpoint != Endpoint::Console {
            assert!(
                endpoint.timeout() - MARGIN >= warm_transfer_core::store::OPERATION_TIMEOUT,
                "{}",
                endpoint.function_name()
            );
        }
    }
}

/// Toll fraud: by default only the caller ID's country (+1 here) is dialed,
/// never a premium-rate code, and only a caller ID of that country shown;
/// nothing reaches Twilio for a refused number.
#[tokio::test]
async fn foreign_and_premium_rate_numbers_are_never_dialed() {
    use reqwest::Method;
    use serde_json::json;

    use crate::access::{ALICE, CUSTOMER, as_agent, start_call};

    let stack = stack().await;
    for (field, body) in [
        (
            "customerNumber",
            json!({ "agentNumber": ALICE, "customerNumber": "+19005550123" }),
        ),
        (
            "customerNumber",
            json!({ "agentNumber": ALICE, "customerNumber": "+442079460958" }),
        ),
        (
            "callerId",
            json!({ "agentNumber": ALICE, "customerNumber": CUSTOMER, "callerId": "+442079460958" }),
        ),
    ] {
        let (status, answer) = as_agent(&stack, "alice", Method::POST, "/calls", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(!answer.to_string().contains("2079460958"), "{answer}");
    }
    assert_eq!(stack.sim.calls_to(ALICE), 0, "nothing was dialed");

    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    for target in ["+19765550123", "+8821234567"] {
        let (status, answer) = as_agent(
            &stack,
            "alice",
            Method::POST,
            &format!("/calls/{sid}/transfer"),
            Some(json!({ "to": target })),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["field"], "to");
        assert_eq!(stack.sim.calls_to(target), 0);
    }
}

/// A stolen sign-in cannot dial faster than a person: past the agent's
/// allowance for the minute, calls are refused with 429 and never placed.
#[tokio::test]
async fn an_agent_over_the_per_minute_limit_is_refused() {
    use reqwest::Method;
    use serde_json::json;

    use crate::access::{ALICE, as_agent};

    let stack = stack().await;
    let limit = stack.app.config().agent_dials_per_minute as usize;
    let mut placed = 0;
    let mut refused = false;
    // Twice the limit and one: a minute boundary crossed on the way resets
    // the count once at most.
    for i in 0..=2 * limit {
        let customer = format!("+1555030{i:04}");
        let (status, answer) = as_agent(
            &stack,
            "alice",
            Method::POST,
            "/calls",
            Some(json!({ "agentNumber": ALICE, "customerNumber": customer })),
        )
        .await;
        match status {
            201 => placed += 1,
            429 => {
                assert!(
                    answer["error"].as_str().unwrap().contains("a minute"),
                    "{answer}"
                );
                refused = true;
                break;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    assert!(refused, "the limit was reached");
    assert!(placed >= limit, "{placed} placed before the first refusal");
    assert_eq!(
        stack.sim.calls_to(ALICE),
        placed,
        "the refused call was never placed"
    );
    let _ = refused;
}

/// The allowance is one conditional update: of simultaneous requests,
/// exactly the limit win, whatever the interleaving.
#[tokio::test]
async fn simultaneous_dials_take_exactly_the_allowance() {
    use warm_transfer_core::store::{CallStore, DynamoStore};

    let dynalite = warm_transfer_dev::dynalite::Dynalite::start()
        .await
        .unwrap();
    dynalite.create_table("calls-allowance").await.unwrap();
    let store = DynamoStore::new(
        dynalite.client(),
        "calls-allowance",
        std::time::Duration::from_secs(3600),
    );
    // A minute's start (Unix seconds, a multiple of 60).
    let minute = 1_800_000_000;
    let takes = (0..20).map(|_| store.take_allowance("alice", minute, 6));
    let granted = futures::future::join_all(takes)
        .await
        .into_iter()
        .filter(|taken| *taken.as_ref().unwrap())
        .count();
    assert_eq!(granted, 6);
    assert!(
        store.take_allowance("alice", minute + 60, 6).await.unwrap(),
        "a new minute"
    );
    assert!(
        store.take_allowance("bob", minute, 6).await.unwrap(),
        "per agent"
    );
}
