//! Push end to end: the local stack's WebSocket endpoint runs the same
//! `$connect`/`$disconnect` handlers as the functions, and its stream (made
//! from the store's writes) feeds the same publisher, which posts through
//! the AWS SDK's management client. Also the `events/` files of the three
//! push functions through their handlers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use warm_transfer_core::endpoint::{Endpoint, PushEndpoint};
use warm_transfer_core::ids::CallSid;
use warm_transfer_core::jwks::{HttpKeySource, KEYS_TTL, Keys, REFETCH_AFTER};
use warm_transfer_core::push::PushApp;
use warm_transfer_core::push::connections::ApiGatewayConnections;
use warm_transfer_core::push::websocket::SUBPROTOCOL;
use warm_transfer_core::store::{CallStore, DynamoStore, DynamoSubscriptions, Subscriptions};
use warm_transfer_core::token::Refused;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::events::{self, CONNECTION_ID, EVENTS_WS_TOKEN, SESSION};
use warm_transfer_dev::idp::{LOCAL_CLIENT_ID, LocalIssuer, local_agents};
use warm_transfer_dev::local::{LocalStack, eventually};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::access::{ALICE, BOB, CUSTOMER, NOBODY, as_agent, stack, start_call};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Subscribes `agent` to `sid`; the HTTP status when `$connect` refuses.
async fn subscribe(stack: &LocalStack, agent: &str, sid: &str) -> Result<Socket, u16> {
    subscribe_with(stack, &stack.token(agent), sid).await
}

/// Subscribes with this token to `sid`, offering it as the console does:
/// a subprotocol beside `warm-transfer`, never in the URL.
async fn subscribe_with(stack: &LocalStack, token: &str, sid: &str) -> Result<Socket, u16> {
    connect_with(stack, token, &format!("callSid={sid}")).await
}

/// Connects with this token and query (`callSid=...` or `directory=1`).
async fn connect_with(stack: &LocalStack, token: &str, query: &str) -> Result<Socket, u16> {
    let url = format!("{}?{query}", stack.ws_url());
    let mut request = url.into_client_request().unwrap();
    let offered = format!("{SUBPROTOCOL}, {token}");
    request.headers_mut().insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        offered.parse().unwrap(),
    );
    match connect_async(request).await {
        Ok((socket, response)) => {
            // The answer names the subprotocol chosen, as browsers require,
            // and never echoes the token.
            assert_eq!(
                response.headers()[http::header::SEC_WEBSOCKET_PROTOCOL],
                SUBPROTOCOL
            );
            Ok(socket)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("{other}"),
    }
}

/// Everything a socket receives, gathered in the background.
fn gather(
    socket: Socket,
) -> (
    Arc<std::sync::Mutex<Vec<Value>>>,
    tokio::task::JoinHandle<()>,
) {
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = frames.clone();
    let task = tokio::spawn(async move {
        let (_write, mut read) = socket.split();
        while let Some(Ok(message)) = read.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                into.lock().unwrap().push(frame);
            }
        }
    });
    (frames, task)
}

fn snapshot(frames: &Arc<std::sync::Mutex<Vec<Value>>>) -> Vec<Value> {
    frames.lock().unwrap().clone()
}

/// Waits until a frame satisfies `check`.
async fn heard(
    frames: &Arc<std::sync::Mutex<Vec<Value>>>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) {
    let found = eventually(Duration::from_secs(20), async || {
        snapshot(frames).iter().any(&check).then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "never heard {what}: {:#?}",
        snapshot(frames)
    );
}

fn transfer_state(frame: &Value) -> Option<&str> {
    frame["call"]["transfer"]["state"].as_str()
}

#[tokio::test]
async fn the_current_agent_hears_the_transfer_and_nobody_else_hears_a_thing() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;

    // Bob may not follow alice's call: refused before any connection exists.
    assert_eq!(subscribe(&stack, "bob", &sid).await.err(), Some(403));
    // Bob listens to a call of his own meanwhile.
    let (status, bobs) = as_agent(
        &stack,
        "bob",
        Method::POST,
        "/calls",
        Some(json!({ "agentNumber": "+15550200003", "customerNumber": "+15550200002" })),
    )
    .await;
    assert_eq!(status, 201, "{bobs}");
    let bobs_sid = bobs["callSid"].as_str().unwrap().to_owned();
    let (bob_frames, _bob) = gather(subscribe(&stack, "bob", &bobs_sid).await.unwrap());
    let (alice_frames, _alice) = gather(subscribe(&stack, "alice", &sid).await.unwrap());
    let (sam_frames, _sam) = gather(subscribe(&stack, "sam", &sid).await.unwrap());

    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("/calls/{sid}/transfer"),
        Some(json!({ "to": BOB })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    heard(&alice_frames, "the ringing", |f| {
        transfer_state(f) == Some("target-ringing")
    })
    .await;
    heard(&alice_frames, "the answer", |f| {
        transfer_state(f) == Some("target-answered")
    })
    .await;
    heard(&alice_frames, "the history entry", |f| {
        f["type"] == "events"
            && f["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "warm transfer requested"))
    })
    .await;
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("/calls/{sid}/leave"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The handover: the supervisor sees it, alice is told she may no longer follow.
    heard(&sam_frames, "the handover", |f| {
        transfer_state(f) == Some("first-agent-left")
    })
    .await;
    heard(&alice_frames, "the revocation", |f| {
        f["type"] == "revoked" && f["reason"] == "handed-over"
    })
    .await;

    let alice_heard = snapshot(&alice_frames);
    // Versions only grow, and each change came once.
    let versions: Vec<u64> = alice_heard
        .iter()
        .filter_map(|f| f["version"].as_u64())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    // After the revocation alice heard nothing more about the call.
    let revoked_at = alice_heard
        .iter()
        .position(|f| f["type"] == "revoked")
        .unwrap();
    assert_eq!(revoked_at, alice_heard.len() - 1, "{alice_heard:#?}");
    assert!(
        !alice_heard
            .iter()
            .any(|f| transfer_state(f) == Some("first-agent-left")),
        "alice may not see the call once it is bob's"
    );

    // Bob heard about his own call only: never alice's call, nor her numbers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob_heard = snapshot(&bob_frames);
    assert!(!bob_heard.is_empty(), "bob's own call was pushed to him");
    for frame in &bob_heard {
        let text = frame.to_string();
        assert!(!text.contains(&sid), "{text}");
        assert!(!text.contains(CUSTOMER) && !text.contains(ALICE), "{text}");
        assert_eq!(
            frame["callSid"]
                .as_str()
                .or(frame["call"]["callSid"].as_str()),
            Some(bobs_sid.as_str())
        );
    }
    // Now the call is his, bob may follow it.
    assert!(subscribe(&stack, "bob", &sid).await.is_ok());
}

/// Issue 26, finding 2, on the WebSocket API: `$connect` reads the groups
/// of the token it verified as JSON, so a group merely named like the
/// supervisors' follows nobody else's call.
#[tokio::test]
async fn a_group_named_like_the_supervisors_follows_no_other_call() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let issuer = &stack.issuer;
    for groups in [json!(["Night supervisors"]), json!(["x,supervisors"])] {
        let mut claims = issuer.claims_for(issuer.agent("bob").unwrap());
        claims["cognito:groups"] = groups.clone();
        let refused = subscribe_with(&stack, &issuer.sign(&claims), &sid).await;
        assert_eq!(refused.err(), Some(403), "{groups}");
    }
    assert!(subscribe(&stack, "sam", &sid).await.is_ok());
}

/// Issue 26, finding 5: the token never rides in the URL (proxies, access
/// logs and HAR exports record URLs), and `$connect` refuses a token the
/// HTTP API's authorizer refuses, with no extra minute past `exp`.
#[tokio::test]
async fn the_token_rides_as_a_subprotocol_and_expires_as_on_the_http_api() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let token = stack.token("alice");
    // In the URL it is not even read.
    let url = format!("{}?callSid={sid}&token={token}", stack.ws_url());
    match connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!(
            "a token in the URL was accepted: {:?}",
            other.map(|(_, r)| r)
        ),
    }
    // Offered without the console's subprotocol, or beside another token: no.
    for offered in [token.clone(), format!("{SUBPROTOCOL}, {token}, {token}x")] {
        let mut request = format!("{}?callSid={sid}", stack.ws_url())
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            offered.parse().unwrap(),
        );
        match connect_async(request).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("accepted: {:?}", other.map(|(_, r)| r)),
        }
    }
    assert!(subscribe(&stack, "alice", &sid).await.is_ok());

    // 30 s past its expiry: the HTTP API refuses it, and so does $connect.
    let issuer = &stack.issuer;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = issuer.claims_for(issuer.agent("alice").unwrap());
    claims["iat"] = json!(now - 3630);
    claims["exp"] = json!(now - 30);
    let expired = issuer.sign(&claims);
    assert_eq!(
        subscribe_with(&stack, &expired, &sid).await.err(),
        Some(401)
    );
    let (status, _) = reqwest::Client::new()
        .get(format!("{}/calls/{sid}", stack.base_url()))
        .bearer_auth(&expired)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
}

/// Issue 26, finding 5: `$connect` read the issuer's keys once per cold
/// start, so a routine key rotation refused every console until the
/// function happened to restart. Now a token signed with a key not held
/// reads the keys again (at most once per `REFETCH_AFTER`), and keys are
/// read again after `KEYS_TTL` anyway. The issuer's JWKS is a local stub.
#[tokio::test]
async fn keys_are_read_again_on_rotation_but_never_flooded() {
    let jwks_server = MockServer::start().await;
    let base = "http://127.0.0.1:9";
    let old = LocalIssuer::new(base, local_agents()).unwrap();
    let new = LocalIssuer::new(base, local_agents()).unwrap();
    let serve = async |issuer: &LocalIssuer| {
        jwks_server.reset().await;
        Mock::given(method("GET"))
            .and(path("/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(issuer.jwks()))
            .mount(&jwks_server)
            .await;
    };
    let reads = async || jwks_server.received_requests().await.unwrap().len();
    serve(&old).await;
    let url = url::Url::parse(&format!("{}/jwks.json", jwks_server.uri())).unwrap();
    let start = std::time::Instant::now();
    let elapsed = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let clock = elapsed.clone();
    let keys = Keys::new(
        old.issuer(),
        LOCAL_CLIENT_ID,
        Arc::new(HttpKeySource::new(url).unwrap()),
    )
    .with_clock(move || start + *clock.lock().unwrap());
    let advance = |by: Duration| *elapsed.lock().unwrap() += by;
    let alice = |issuer: &LocalIssuer| issuer.token_for(issuer.agent("alice").unwrap());

    // The first token reads the keys; the next ones use them.
    assert!(keys.verify(&alice(&old)).await.is_ok());
    assert!(keys.verify(&alice(&old)).await.is_ok());
    assert_eq!(reads().await, 1);

    // The issuer rotates: the new key is published and signs tokens.
    serve(&new).await;
    advance(REFETCH_AFTER);
    assert!(
        keys.verify(&alice(&new)).await.is_ok(),
        "the new key was read on sight"
    );
    assert_eq!(reads().await, 1, "one read (the stub was reset)");

    // A flood of tokens naming keys nobody has: one read per interval.
    advance(REFETCH_AFTER);
    let stranger = LocalIssuer::new(base, local_agents()).unwrap();
    for _ in 0..50 {
        assert_eq!(
            keys.verify(&alice(&stranger)).await,
            Err(Refused::UnknownKey)
        );
    }
    assert_eq!(reads().await, 2, "fifty unknown keys, one read");
    assert!(keys.verify(&alice(&new)).await.is_ok(), "still served");
    advance(REFETCH_AFTER - Duration::from_secs(1));
    assert!(keys.verify(&alice(&stranger)).await.is_err());
    assert_eq!(reads().await, 2, "not before the interval is over");

    // Keys held too long are read again, even if every token knows them;
    // a failed read keeps the keys held.
    advance(KEYS_TTL);
    jwks_server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&jwks_server)
        .await;
    assert!(keys.verify(&alice(&new)).await.is_ok());
    assert_eq!(reads().await, 1, "read again once the keys were old");
    assert!(keys.verify(&alice(&new)).await.is_ok());
    assert_eq!(reads().await, 1, "a failed read is not retried at once");
}

#[tokio::test]
async fn a_closed_connection_unsubscribes_and_a_lost_one_goes_on_410() {
    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let call = CallSid::parse(&sid).unwrap();
    let listeners = async || stack.subscriptions.subscribers(&call).await.unwrap().len();

    // A console that closes its socket: $disconnect removes its subscription.
    let mut socket = subscribe(&stack, "alice", &sid).await.unwrap();
    assert_eq!(listeners().await, 1);
    socket.close(None).await.unwrap();
    let gone = eventually(Duration::from_secs(5), async || {
        (listeners().await == 0).then_some(())
    })
    .await;
    assert!(gone.is_some(), "$disconnect removed the subscription");

    // A connection whose $disconnect was lost stays subscribed until a post
    // answers 410 Gone. Within the time its $connect may take, a 410 means
    // the connection is still opening (API Gateway answers so until
    // $connect returns): the subscription stays, or that console would
    // hear nothing more.
    let _socket = subscribe(&stack, "alice", &sid).await.unwrap();
    let subscribed = tokio::time::Instant::now();
    stack.push.lose_connections();
    assert_eq!(stack.push.open_connections(), 0);
    assert_eq!(listeners().await, 1, "nothing removed it yet");
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("/calls/{sid}/transfer"),
        Some(json!({ "to": NOBODY })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let posted = eventually(Duration::from_secs(3), async || {
        (stack.push_counts.connecting() > 0).then_some(())
    })
    .await;
    assert!(posted.is_some(), "the transfer was posted and answered 410");
    assert_eq!(listeners().await, 1, "kept while it may still be opening");
    // Once $connect has surely returned, a 410 means gone.
    tokio::time::sleep_until(subscribed + Endpoint::WsConnect.timeout()).await;
    let (status, body) = as_agent(
        &stack,
        "alice",
        Method::POST,
        &format!("/calls/{sid}/transfer/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let gone = eventually(Duration::from_secs(10), async || {
        (listeners().await == 0).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the 410 removed the subscription");

    // The push functions, and the others this ran, stayed within what
    // their roles grant (handlers/needs.rs, which the template equals).
    assert_eq!(stack.dynamo_ops.outside_permissions(), Vec::<String>::new());
    let seen = stack.dynamo_ops.functions_seen();
    for function in [
        "ws-connect",
        "ws-disconnect",
        "stream-publisher",
        "start-call",
    ] {
        assert!(
            seen.contains(function),
            "{function} made no request: {seen:?}"
        );
    }
}

/// `events/ws-connect.json`, `ws-disconnect.json` and
/// `stream-publisher.json` through their handlers, against dynalite and a
/// management API that records what is posted (410 for a lost connection).
#[tokio::test]
async fn push_event_files_run_through_their_handlers() {
    const TABLE: &str = "push-events";
    let dynalite = Dynalite::start().await.unwrap();
    dynalite.create_table(TABLE).await.unwrap();
    let store = Arc::new(DynamoStore::new(
        dynalite.client(),
        TABLE,
        Duration::from_secs(3600),
    ));
    let subscriptions = Arc::new(DynamoSubscriptions::new(dynalite.client(), TABLE));
    let (_, session) = events::stream_session();
    store.create_session(&session).await.unwrap();
    let issuer = LocalIssuer::new("http://127.0.0.1:9", local_agents()).unwrap();
    let management = MockServer::start().await;
    let url = url::Url::parse(&management.uri()).unwrap();
    let app = PushApp::new(Default::default(), store.clone(), subscriptions.clone())
        .with_verifier(issuer.verifier())
        .with_connections(Arc::new(ApiGatewayConnections::new(&url, true).await));
    let file = |endpoint: Endpoint| -> Value {
        let path = warm_transfer_dev::paths::workspace().join(events::file_name(endpoint));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let call = CallSid::parse(SESSION).unwrap();

    // The file's token is a stand-in that does not verify: 401.
    let connect = file(Endpoint::WsConnect);
    let refused = app
        .handle_websocket(
            PushEndpoint::WsConnect,
            &serde_json::from_value(connect.clone()).unwrap(),
        )
        .await;
    assert_eq!(refused.status_code, 401);
    // With alice's fresh token in its place (the file's agent number is hers): 200.
    let alice = issuer.token_for(issuer.agent("alice").unwrap());
    let signed_in = connect.to_string().replace(EVENTS_WS_TOKEN, &alice);
    let admitted = app
        .handle_websocket(
            PushEndpoint::WsConnect,
            &serde_json::from_str(&signed_in).unwrap(),
        )
        .await;
    assert_eq!(admitted.status_code, 200);
    // Bob, not on this call, is refused with the API's reason.
    let bob = issuer.token_for(issuer.agent("bob").unwrap());
    let as_bob = connect
        .to_string()
        .replace(EVENTS_WS_TOKEN, &bob)
        .replace(CONNECTION_ID, "bobs-connection=");
    let denied = app
        .handle_websocket(
            PushEndpoint::WsConnect,
            &serde_json::from_str(&as_bob).unwrap(),
        )
        .await;
    assert_eq!(denied.status_code, 403);
    let listeners = subscriptions.subscribers(&call).await.unwrap();
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0].connection_id, CONNECTION_ID);
    assert_eq!(listeners[0].actor.id, "alice@example.com");

    // A second listener whose connection, open for a while, is gone: the
    // post answers 410.
    let mut lost = listeners[0].clone();
    lost.connection_id = "lost-connection=".into();
    lost.since = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    subscriptions.subscribe(&call, &lost).await.unwrap();
    Mock::given(method("POST"))
        // The SDK percent-encodes the id in the path.
        .and(path("/@connections/lost-connection%3D"))
        .respond_with(
            ResponseTemplate::new(410)
                .insert_header("x-amzn-errortype", "GoneException")
                .set_body_json(json!({ "message": "Gone" })),
        )
        .mount(&management)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/@connections/{}",
            CONNECTION_ID.replace('=', "%3D")
        )))
        .respond_with(ResponseTemplate::new(200))
        .mount(&management)
        .await;

    let report = app
        .publish(&serde_json::from_value(file(Endpoint::StreamPublisher)).unwrap())
        .await;
    assert_eq!((report.records, report.calls), (3, 1), "{report:?}");
    assert_eq!(
        (report.sent, report.gone, report.failed),
        (2, 1, 0),
        "{report:?}"
    );
    let posted: Vec<Value> = management
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with(&CONNECTION_ID.replace('=', "%3D")))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    // The history entry, then the session as changed; the claim that
    // changed no version (the third record) sent nothing.
    assert_eq!(posted.len(), 2, "{posted:#?}");
    assert_eq!(posted[0]["type"], "events");
    assert_eq!(posted[0]["events"][0]["kind"], "transfer requested");
    assert_eq!(posted[1]["type"], "call");
    assert_eq!(posted[1]["version"], 4);
    assert_eq!(posted[1]["call"]["transfer"]["state"], "requested");
    let left: Vec<String> = subscriptions
        .subscribers(&call)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.connection_id)
        .collect();
    assert_eq!(
        left,
        vec![CONNECTION_ID.to_owned()],
        "the gone listener was dropped"
    );

    let closed = app
        .handle_websocket(
            PushEndpoint::WsDisconnect,
            &serde_json::from_value(file(Endpoint::WsDisconnect)).unwrap(),
        )
        .await;
    assert_eq!(closed.status_code, 200);
    assert!(subscriptions.subscribers(&call).await.unwrap().is_empty());
}

/// However many sockets one agent opens on one call, the publisher's work
/// per change is bounded: past the cap `$connect` refuses with 429, and a
/// closed one makes room again. Another agent (a supervisor) has a cap of
/// their own.
#[tokio::test]
async fn an_agent_follows_one_call_over_a_bounded_number_of_connections() {
    use warm_transfer_core::push::websocket::MAX_SUBSCRIPTIONS_PER_AGENT;

    let stack = stack().await;
    let sid = start_call(&stack, ALICE, CUSTOMER).await;
    let mut sockets = Vec::new();
    for _ in 0..MAX_SUBSCRIPTIONS_PER_AGENT {
        sockets.push(subscribe(&stack, "alice", &sid).await.unwrap());
    }
    assert_eq!(subscribe(&stack, "alice", &sid).await.err(), Some(429));
    assert!(
        subscribe(&stack, "sam", &sid).await.is_ok(),
        "the supervisor's own"
    );

    let call = CallSid::parse(&sid).unwrap();
    let mut closing = sockets.pop().unwrap();
    closing.close(None).await.unwrap();
    let room = eventually(Duration::from_secs(5), async || {
        let theirs = stack.subscriptions.subscribers(&call).await.unwrap();
        (theirs
            .iter()
            .filter(|s| s.actor.numbers.iter().any(|n| n.as_str() == ALICE))
            .count()
            < MAX_SUBSCRIPTIONS_PER_AGENT)
            .then_some(())
    })
    .await;
    assert!(room.is_some(), "$disconnect freed a place");
    assert!(subscribe(&stack, "alice", &sid).await.is_ok());
    assert_eq!(stack.dynamo_ops.outside_permissions(), Vec::<String>::new());
}

/// A console following the directory hears that someone's presence
/// changed (the switch, a call starting and ending), and nothing for a
/// heartbeat that changes nothing anyone sees.
#[tokio::test]
async fn the_directory_is_pushed_when_presence_changes_and_not_for_a_heartbeat() {
    let stack = stack().await;
    for agent in ["alice", "bob"] {
        let (status, body) = as_agent(
            &stack,
            agent,
            Method::POST,
            "/presence",
            Some(json!({"status": "available"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let socket = connect_with(&stack, &stack.token("alice"), "directory=1")
        .await
        .unwrap();
    let (frames, _task) = gather(socket);
    let nudges = || {
        snapshot(&frames)
            .iter()
            .filter(|f| f["type"] == "directory")
            .count()
    };
    // The check-ins above may still be on their way through the stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = nudges();
    // A bare heartbeat: nothing to tell.
    let (status, _) = as_agent(
        &stack,
        "bob",
        Method::POST,
        "/presence",
        Some(json!({"status": "available"})),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(nudges(), settled, "{:#?}", snapshot(&frames));
    // Bob steps away: everyone following the directory hears it.
    let (status, _) = as_agent(
        &stack,
        "bob",
        Method::POST,
        "/presence",
        Some(json!({"status": "away"})),
    )
    .await;
    assert_eq!(status, 200);
    let away = eventually(Duration::from_secs(20), async || {
        (nudges() > settled).then_some(())
    })
    .await;
    assert!(away.is_some(), "bob away: {:#?}", snapshot(&frames));
    let before = nudges();
    // Alice starts a call: she is busy, which is news too.
    start_call(&stack, ALICE, CUSTOMER).await;
    let more = eventually(Duration::from_secs(20), async || {
        (nudges() > before).then_some(())
    })
    .await;
    assert!(more.is_some(), "{:#?}", snapshot(&frames));
    // Frames carry the directory itself, never anyone's numbers.
    let frames_now = snapshot(&frames);
    assert!(frames_now.iter().all(|f| f["type"] == "directory"));
    assert!(
        frames_now.iter().all(|f| !f.to_string().contains("+1555")),
        "{frames_now:#?}"
    );
    let bob_away = frames_now.iter().any(|f| {
        f["directory"]["agents"].as_array().is_some_and(|agents| {
            agents
                .iter()
                .any(|a| a["name"] == "Bob" && a["availability"] == "away")
        })
    });
    assert!(bob_away, "{frames_now:#?}");
    // Neither a token nor a call: refused.
    assert_eq!(
        connect_with(&stack, "not-a-token", "directory=1")
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        connect_with(&stack, &stack.token("alice"), "directory=0")
            .await
            .err(),
        Some(400)
    );
}

#[tokio::test]
async fn supervisors_following_the_directory_are_nudged_when_the_board_changes() {
    let stack = stack().await;
    let sam = connect_with(&stack, &stack.token("sam"), "directory=1")
        .await
        .unwrap();
    let alice = connect_with(&stack, &stack.token("alice"), "directory=1")
        .await
        .unwrap();
    let (sam_frames, _sam) = gather(sam);
    let (alice_frames, _alice) = gather(alice);
    // A call begins: a line of the board.
    start_call(&stack, ALICE, CUSTOMER).await;
    heard(&sam_frames, "a board nudge", |f| f["type"] == "board").await;
    // The nudge carries nothing, and only supervisors get it.
    let nudge = snapshot(&sam_frames)
        .into_iter()
        .find(|f| f["type"] == "board")
        .unwrap();
    assert_eq!(nudge, json!({"type": "board"}));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        snapshot(&alice_frames).iter().all(|f| f["type"] != "board"),
        "{:#?}",
        snapshot(&alice_frames)
    );
}
