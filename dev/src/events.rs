//! The API Gateway (HTTP API, payload 2.0) events in `events/`: one
//! realistic request per function, Twilio's signed with [`EVENTS_AUTH_TOKEN`].
//! `cargo run -p warm-transfer-dev --bin make-events` rewrites them.

use base64::Engine;
use serde_json::{Value, json};
use warm_transfer_core::endpoint::{Caller, Endpoint};
use warm_transfer_core::push::websocket::SUBPROTOCOL;
use warm_transfer_core::signature::sign_form;

/// The Twilio auth token the events are signed with. A test value, public on purpose.
pub const EVENTS_AUTH_TOKEN: &str = "events-test-auth-token";
/// Who signed in, in the front-end events: the first agent, whose number is
/// [`AGENT`]. API Gateway's JWT authorizer verified the token; the function
/// reads these claims from the request context.
pub const EVENTS_AGENT_EMAIL: &str = "alice@example.com";
pub const EVENTS_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const HOST: &str = "abc123.execute-api.us-east-1.amazonaws.com";
/// Leg 1 (the session), the customer's leg and the second agent's leg.
pub const SESSION: &str = "CA00000000000000000000000000000001";
pub const CUSTOMER_LEG: &str = "CA00000000000000000000000000000002";
pub const TARGET_LEG: &str = "CA00000000000000000000000000000003";
pub const AGENT: &str = "+15550100001";
pub const CUSTOMER: &str = "+14155550100";
pub const TARGET: &str = "+15550100003";
pub const CALLER_ID: &str = "+15005550006";

struct Spec {
    method: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    path_parameters: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    None,
    Json(Value),
    /// Twilio's form fields; the event is signed over them.
    Form(Vec<(&'static str, String)>),
}

fn front_end(method: &'static str, path: String, body: Option<Value>) -> Spec {
    Spec {
        method,
        path,
        query: Vec::new(),
        path_parameters: vec![("callSid", SESSION.to_owned())],
        headers: vec![
            // The token API Gateway verified (its signature a stand-in):
            // the function reads its claims, which must agree with the
            // authorizer's in the request context.
            ("authorization", format!("Bearer {}", events_token())),
            ("origin", "https://console.example.com".to_owned()),
        ],
        body: body.map_or(Body::None, Body::Json),
    }
}

fn twilio(path: &str, query: Vec<(&'static str, String)>, form: Vec<(&'static str, &str)>) -> Spec {
    let mut fields = vec![
        ("AccountSid", EVENTS_ACCOUNT_SID.to_owned()),
        ("ApiVersion", "2010-04-01".to_owned()),
    ];
    fields.extend(form.into_iter().map(|(k, v)| (k, v.to_owned())));
    Spec {
        method: "POST",
        path: path.to_owned(),
        query,
        path_parameters: Vec::new(),
        headers: vec![(
            "i-twilio-idempotency-token",
            "00000000-0000-0000-0000-000000000000".to_owned(),
        )],
        body: Body::Form(fields),
    }
}

fn spec(endpoint: Endpoint) -> Spec {
    let call_path = |rest: &str| format!("/calls/{SESSION}{rest}");
    match endpoint {
        Endpoint::StartCall => {
            let mut spec = front_end(
                "POST",
                "/calls".into(),
                Some(json!({ "agentNumber": AGENT, "customerNumber": CUSTOMER })),
            );
            spec.path_parameters.clear();
            spec
        }
        Endpoint::GetCall => front_end("GET", call_path(""), None),
        Endpoint::StartTransfer => {
            let mut spec = front_end(
                "POST",
                call_path("/transfer"),
                Some(json!({ "to": TARGET })),
            );
            spec.headers
                .push(("idempotency-key", "2f6c1d1e-console-transfer-1".into()));
            spec
        }
        Endpoint::CancelTransfer => front_end("POST", call_path("/transfer/cancel"), None),
        Endpoint::LeaveCall => front_end("POST", call_path("/leave"), None),
        Endpoint::HoldCustomer => {
            front_end("POST", call_path("/hold"), Some(json!({ "held": true })))
        }
        Endpoint::SuperviseCall => front_end(
            "POST",
            call_path("/supervisor"),
            Some(json!({ "mode": "listen" })),
        ),
        Endpoint::AskForHelp => front_end("POST", call_path("/help"), None),
        Endpoint::OutsideParty => front_end(
            "POST",
            call_path("/party"),
            Some(json!({ "number": "+14155550199" })),
        ),
        Endpoint::GetBoard => {
            let mut spec = front_end("GET", "/board".into(), None);
            spec.path_parameters.clear();
            spec
        }
        Endpoint::GetDirectory => {
            let mut spec = front_end("GET", "/directory".into(), None);
            spec.path_parameters.clear();
            spec
        }
        Endpoint::SetPresence => {
            let mut spec = front_end(
                "POST",
                "/presence".into(),
                Some(json!({ "status": "available" })),
            );
            spec.path_parameters.clear();
            spec
        }
        Endpoint::DialCustomer => twilio(
            "/twiml/dial-customer",
            vec![("callerId", CALLER_ID.into()), ("to", CUSTOMER.into())],
            vec![
                ("CallSid", SESSION),
                ("CallStatus", "in-progress"),
                ("Direction", "outbound-api"),
                ("From", CALLER_ID),
                ("To", AGENT),
            ],
        ),
        Endpoint::AgentDialEnded => twilio(
            "/twiml/agent-dial-ended",
            Vec::new(),
            vec![
                ("CallSid", SESSION),
                ("CallStatus", "in-progress"),
                ("DialCallSid", CUSTOMER_LEG),
                ("DialCallStatus", "completed"),
                ("DialCallDuration", "42"),
                ("Direction", "outbound-api"),
                ("From", CALLER_ID),
                ("To", AGENT),
            ],
        ),
        Endpoint::ConferenceTwiml => twilio(
            "/twiml/conference",
            vec![
                ("role", "customer".into()),
                ("room", format!("wt-{SESSION}")),
            ],
            customer_leg_request(),
        ),
        Endpoint::FallbackTwiml => twilio(
            "/twiml/fallback",
            vec![("role", "customer".into())],
            customer_leg_request(),
        ),
        Endpoint::HoldTwiml => twilio(
            "/twiml/hold",
            vec![("for", "hold".into())],
            customer_leg_request(),
        ),
        Endpoint::StatusCallback => {
            let mut spec = twilio(
                "/events/participant",
                vec![("attempt", "1".into()), ("session", SESSION.into())],
                vec![
                    ("CallSid", TARGET_LEG),
                    ("CallStatus", "in-progress"),
                    ("CallbackSource", "call-progress-events"),
                    ("Direction", "outbound-api"),
                    ("From", CALLER_ID),
                    ("To", TARGET),
                    ("SequenceNumber", "2"),
                    ("Timestamp", "Wed, 25 Nov 2026 07:00:05 +0000"),
                ],
            );
            spec.path_parameters.push(("leg", "participant".into()));
            spec
        }
        // A customer dialling the centre's number (the caller ID, which
        // the local and test configurations route to team billing).
        Endpoint::InboundCall => twilio(
            "/twiml/inbound",
            Vec::new(),
            vec![
                ("CallSid", SESSION),
                ("CallStatus", "ringing"),
                ("CallToken", "%7B%22parentCallInfoToken%22%3A%22eyJ%22%7D"),
                ("Direction", "inbound"),
                ("From", CUSTOMER),
                ("To", CALLER_ID),
            ],
        ),
        Endpoint::QueueTwiml => twilio(
            "/twiml/queue",
            vec![("session", SESSION.into())],
            vec![
                ("CallSid", SESSION),
                ("CallStatus", "in-progress"),
                ("ConferenceSid", "CF00000000000000000000000000000001"),
                ("Direction", "inbound"),
                ("From", CUSTOMER),
                ("To", CALLER_ID),
            ],
        ),
        // Not HTTP: `event` answers with their own events.
        Endpoint::Reconciler
        | Endpoint::WsConnect
        | Endpoint::WsDisconnect
        | Endpoint::StreamPublisher => unreachable!("not routed by the HTTP API"),
        Endpoint::Console => Spec {
            method: "GET",
            path: "/console".into(),
            query: Vec::new(),
            path_parameters: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
        },
    }
}

/// The form Twilio posts for the customer's leg (a TwiML request).
fn customer_leg_request() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CallSid", CUSTOMER_LEG),
        ("ParentCallSid", SESSION),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
        ("From", CALLER_ID),
        ("To", CUSTOMER),
    ]
}

/// The event API Gateway hands the function for this endpoint's sample request.
/// The front-end events' ID token claims, as a Cognito user pool issues them.
fn events_claims() -> Value {
    json!({
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
        "aud": "4example0client0id0000000",
        "sub": "00000000-0000-0000-0000-0000000a11ce",
        "email": EVENTS_AGENT_EMAIL,
        "email_verified": true,
        "cognito:username": "alice",
        "cognito:groups": ["agents"],
        "custom:agent_numbers": AGENT,
        "token_use": "id",
        "auth_time": 1795589400,
        "iat": 1795589400,
        "exp": 1795593000,
    })
}

/// That token; its signature is a stand-in (API Gateway checked the real one).
fn events_token() -> String {
    let part = |value: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string().as_bytes())
    };
    format!(
        "{}.{}.c2lnbmVkLWJ5LXRoZS1pc3N1ZXI",
        part(json!({ "alg": "RS256", "kid": "example" })),
        part(events_claims())
    )
}

/// What API Gateway's JWT authorizer adds to the request context: the
/// verified ID token's claims, every value a string (arrays as `[a b]`).
fn authorizer_context() -> Value {
    let claims: serde_json::Map<String, Value> = events_claims()
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let text = warm_transfer_core::token::as_api_gateway_string(value);
            (name.clone(), Value::String(text))
        })
        .collect();
    json!({ "jwt": { "claims": claims, "scopes": null } })
}

pub fn event(endpoint: Endpoint) -> Value {
    match endpoint {
        Endpoint::Reconciler => return scheduled_event(),
        Endpoint::WsConnect | Endpoint::WsDisconnect => return websocket_event(endpoint),
        Endpoint::StreamPublisher => return stream_event(),
        _ => {}
    }
    let spec = spec(endpoint);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(spec.query.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let mut headers = serde_json::Map::new();
    headers.insert("host".into(), HOST.into());
    headers.insert("x-forwarded-proto".into(), "https".into());
    headers.insert("x-forwarded-port".into(), "443".into());
    let (body, encoded) = match &spec.body {
        Body::None => (Value::Null, false),
        Body::Json(value) => {
            headers.insert("content-type".into(), "application/json".into());
            (Value::String(value.to_string()), false)
        }
        Body::Form(fields) => {
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let url = if query.is_empty() {
                format!("https://{HOST}{}", spec.path)
            } else {
                format!("https://{HOST}{}?{query}", spec.path)
            };
            let params: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            headers.insert(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            );
            headers.insert(
                "x-twilio-signature".into(),
                sign_form(EVENTS_AUTH_TOKEN, &url, &params).into(),
            );
            headers.insert("user-agent".into(), "TwilioProxy/1.1".into());
            // HTTP APIs hand form bodies over base64-encoded.
            let encoded = base64::engine::general_purpose::STANDARD.encode(form);
            (Value::String(encoded), true)
        }
    };
    for (name, value) in &spec.headers {
        headers.insert((*name).into(), value.clone().into());
    }
    let route_key = format!("{} {}", endpoint.method(), endpoint.route());
    let front_end = endpoint.caller() == Caller::FrontEnd;
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": spec.path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "domainPrefix": "abc123",
            "http": {
                "method": spec.method,
                "path": spec.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": headers_user_agent(&spec),
            },
            "requestId": format!("{}-request-id", endpoint.function_name()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "25/Nov/2026:07:00:00 +0000",
            "timeEpoch": 1_795_590_000_000u64,
        },
        "isBase64Encoded": encoded,
    });
    if front_end {
        event["requestContext"]["authorizer"] = authorizer_context();
    }
    if !spec.query.is_empty() {
        event["queryStringParameters"] = spec
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if !spec.path_parameters.is_empty() {
        event["pathParameters"] = spec
            .path_parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

fn headers_user_agent(spec: &Spec) -> &'static str {
    match spec.body {
        Body::Form(_) => "TwilioProxy/1.1",
        _ => "Mozilla/5.0 (agent console)",
    }
}

/// Where the event of an endpoint lives, relative to the workspace.
/// The EventBridge event that the reconciler's schedule delivers.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T07:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/warm-transfer-reconciler"],
        "detail": {}
    })
}

pub fn file_name(endpoint: Endpoint) -> String {
    format!("events/{}.json", endpoint.function_name())
}

/// The WebSocket API's host in the events.
pub const WS_HOST: &str = "ws0123.execute-api.us-east-1.amazonaws.com";
/// The connection the WebSocket events are about.
pub const CONNECTION_ID: &str = "L0SM9cOFvHcCIhw=";
/// A stand-in for the ID token in `events/ws-connect.json`: it does not
/// verify (the test puts a freshly signed one in its place).
pub const EVENTS_WS_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImV2ZW50cyJ9.c3RhbmQtaW4.c2ln";

/// What the WebSocket API hands `$connect` (a console following the
/// session) or `$disconnect`.
pub fn websocket_event(endpoint: Endpoint) -> Value {
    let connect = endpoint == Endpoint::WsConnect;
    let (event_type, route) = if connect {
        ("CONNECT", "$connect")
    } else {
        ("DISCONNECT", "$disconnect")
    };
    let mut event = json!({
        "headers": {
            "Host": WS_HOST,
            "Origin": "https://console.example.com",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-Proto": "https",
        },
        "multiValueHeaders": {},
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": format!("{}-request-id", endpoint.function_name()),
            "requestTime": "25/Nov/2026:07:00:00 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 1_795_590_000_000u64,
            "requestTimeEpoch": 1_795_590_000_000u64,
            "identity": { "sourceIp": "203.0.113.10", "userAgent": "Mozilla/5.0 (agent console)" },
            "requestId": format!("{}-request-id", endpoint.function_name()),
            "domainName": WS_HOST,
            "connectionId": CONNECTION_ID,
            "apiId": "ws0123",
        },
        "isBase64Encoded": false,
    });
    if connect {
        // The token offered as a subprotocol, never in the URL.
        let offered = format!("{SUBPROTOCOL}, {EVENTS_WS_TOKEN}");
        event["headers"]["Sec-WebSocket-Protocol"] = json!(offered);
        event["multiValueHeaders"] = json!({ "Sec-WebSocket-Protocol": [offered] });
        event["queryStringParameters"] = json!({ "callSid": SESSION });
        event["multiValueQueryStringParameters"] = json!({ "callSid": [SESSION] });
    } else {
        event["requestContext"]["disconnectStatusCode"] = json!(1001);
        event["requestContext"]["disconnectReason"] = json!("Going away");
    }
    event
}

/// The session of the stream event: connected, then a transfer requested.
pub fn stream_session() -> (
    warm_transfer_core::domain::CallSession,
    warm_transfer_core::domain::CallSession,
) {
    use time::macros::datetime;
    use warm_transfer_core::domain::{
        CallSession, LegObservation, LegStatus, Observation, TransferKind,
    };
    use warm_transfer_core::ids::{CallSid, PhoneNumber};
    let phone = |n: &str| PhoneNumber::parse(n).expect("a valid number");
    let sid = |s: &str| CallSid::parse(s).expect("a valid SID");
    let at = datetime!(2026-11-25 07:00:00 UTC);
    let leg = |call: &str, sequence| LegObservation {
        call_sid: sid(call),
        status: LegStatus::InProgress,
        sequence: Some(sequence),
        at,
    };
    let mut before = CallSession::start(
        sid(SESSION),
        phone(AGENT),
        phone(CUSTOMER),
        phone(CALLER_ID),
        at,
    );
    before.observe(Observation::AgentLeg(leg(SESSION, 2)));
    before.observe(Observation::CustomerLeg(leg(CUSTOMER_LEG, 2)));
    before.version = 3;
    let mut after = before.clone();
    // A fixed example: the transfer is recorded whatever the domain says.
    let _ = after.request_transfer(phone(TARGET), TransferKind::Warm, None, at);
    after.version = 4;
    (before, after)
}

/// What the table's stream hands the publisher (NEW_AND_OLD_IMAGES): the
/// session changed by a transfer request, its history entry, and a
/// reconciler's claim that changed no version (left out).
pub fn stream_event() -> Value {
    use time::macros::datetime;
    use warm_transfer_core::domain::{Actor, HistoryEvent};
    use warm_transfer_core::store::dynamodb_json::item_to_json;
    use warm_transfer_core::store::{ItemMeta, event_item, session_item};
    let at = datetime!(2026-11-25 07:00:05 UTC);
    let meta = ItemMeta {
        expires_at: 1_795_849_200,
        check_lease: None,
    };
    let (before, after) = stream_session();
    let old = item_to_json(&session_item(&before, meta, at));
    let new = item_to_json(&session_item(&after, meta, at));
    let alice = Actor {
        id: EVENTS_AGENT_EMAIL.to_owned(),
        numbers: Vec::new(),
        supervisor: false,
    };
    let mut entry = item_to_json(&event_item(
        &after.id,
        &HistoryEvent::api(&alice, at, "transfer requested", Some("to ...0003".into())),
        1_795_849_200,
    ));
    // The sort key's random tail, fixed so the file is the same every time.
    entry["sk"] = json!({ "S": "EVENT#01795590005000000000#5e55104f" });
    let keys = |item: &Value| json!({ "pk": item["pk"], "sk": item["sk"] });
    let record = |n: u32, name: &str, keys: Value, new: &Value, old: Option<&Value>| {
        let mut change = json!({
            "ApproximateCreationDateTime": 1_795_590_005,
            "Keys": keys,
            "NewImage": new,
            "SequenceNumber": format!("1234567890000000000000000{n}"),
            "SizeBytes": 1024,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if let Some(old) = old {
            change["OldImage"] = old.clone();
        }
        json!({
            "eventID": format!("c81e728d9d4c2f636f067f89cc14862{n}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/warm-transfer-calls/stream/2026-11-25T00:00:00.000",
        })
    };
    json!({
        "Records": [
            record(1, "MODIFY", keys(&new), &new, Some(&old)),
            record(2, "INSERT", keys(&entry), &entry, None),
            record(3, "MODIFY", keys(&new), &new, Some(&new)),
        ]
    })
}
