//! Push on one machine: the development server plays API Gateway's
//! WebSocket API and the table's DynamoDB Stream, and runs the same
//! handlers the `ws-connect`, `ws-disconnect` and `stream-publisher`
//! functions run in AWS.
//!
//! - `GET /ws?callSid=` (the token offered as a subprotocol) upgrades to a
//!   WebSocket after `$connect` answered 200 (its refusal is the upgrade's
//!   answer), answering with the subprotocol `$connect` chose; a close runs
//!   `$disconnect`. Both get the event the WebSocket API would send.
//! - `POST /@connections/{id}` is the management API's PostToConnection
//!   (410 for a connection that is gone): the publisher posts with the
//!   AWS SDK's own client, pointed here.
//! - dynalite has no streams, so [`LocalStream`] makes DynamoDB Stream
//!   records (NEW_AND_OLD_IMAGES, DynamoDB JSON) from the store's writes
//!   and hands them to the publisher in batches, as Lambda does.
//! - `POST /local-push/down` and `/local-push/up` take the push channel
//!   away (open connections closed, new ones refused with 503) and back,
//!   for the console's fallback to be seen and tested.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use warm_transfer_core::endpoint::{Endpoint, PushEndpoint};
use warm_transfer_core::push::PushApp;
use warm_transfer_core::push::websocket::SUBPROTOCOL;

use crate::events::websocket_event;
use crate::write_tap::WriteObserver;

/// The WebSocket endpoint's path on the development server.
pub const WS_PATH: &str = "/ws";
/// How long the local stream gathers records into one batch after the
/// first (Lambda polls a shard about four times a second).
const BATCH_WINDOW: Duration = Duration::from_millis(50);
const MAX_BATCH: usize = 100;

/// What push has done, for tests and the benchmark.
#[derive(Debug, Default)]
pub struct PushCounts {
    /// `$connect` and `$disconnect` invocations.
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    /// Publisher invocations (batches) and the records in them.
    pub batches: AtomicU64,
    pub records: AtomicU64,
    /// Frames posted to connections.
    pub frames: AtomicU64,
    /// Listeners the publisher kept though their connection answered 410:
    /// it was still opening.
    pub connecting: AtomicU64,
    /// Each `$connect`, `$disconnect` and publisher run: wall time and
    /// DynamoDB requests.
    pub handled: crate::counting::Invocations,
}

impl PushCounts {
    pub fn connecting(&self) -> u64 {
        self.connecting.load(Ordering::Relaxed)
    }
}

/// The local WebSocket API: open connections, and whether push is up.
pub struct LocalPush {
    gate: PushApp,
    connections: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    /// Connections dropped without their `$disconnect` (as when API Gateway
    /// loses one): only a post's 410 can clean them up.
    lost: Mutex<std::collections::HashSet<String>>,
    up: AtomicBool,
    next_id: AtomicU64,
    pub counts: Arc<PushCounts>,
}

type Answer = http::Response<Full<Bytes>>;

/// What `$connect` is told of the upgrade request.
struct Upgrade {
    query: HashMap<String, String>,
    headers: http::HeaderMap,
}

fn answer(status: http::StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

impl LocalPush {
    /// `gate` answers `$connect` and `$disconnect` (it holds the verifier).
    pub fn new(gate: PushApp, counts: Arc<PushCounts>) -> Arc<Self> {
        Arc::new(Self {
            gate,
            connections: Mutex::new(HashMap::new()),
            lost: Mutex::new(std::collections::HashSet::new()),
            up: AtomicBool::new(true),
            next_id: AtomicU64::new(1),
            counts,
        })
    }

    /// Whether this request is push's: the WebSocket endpoint, the
    /// management API or the switch.
    pub fn serves(path: &str) -> bool {
        path == WS_PATH || path.starts_with("/@connections/") || path.starts_with("/local-push/")
    }

    pub async fn serve(self: &Arc<Self>, req: http::Request<Incoming>) -> Answer {
        let path = req.uri().path().to_owned();
        if path == WS_PATH {
            return self.upgrade(req).await;
        }
        if let Some(id) = path.strip_prefix("/@connections/") {
            let id = percent_decode(id);
            return self.management(req, &id).await;
        }
        match (req.method().clone(), path.as_str()) {
            (http::Method::POST, "/local-push/down") => {
                self.set_up(false);
                answer(http::StatusCode::NO_CONTENT, "")
            }
            (http::Method::POST, "/local-push/up") => {
                self.set_up(true);
                answer(http::StatusCode::NO_CONTENT, "")
            }
            _ => answer(http::StatusCode::NOT_FOUND, r#"{"error":"no route"}"#),
        }
    }

    /// Down: every open connection is closed and new ones are refused.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            let open: Vec<_> = self.lock().drain().collect();
            for (_, sender) in open {
                let _ = sender.send(Message::Close(None));
            }
        }
    }

    /// Drops every open connection as if its `$disconnect` never ran: the
    /// subscriptions stay until a post answers 410.
    pub fn lose_connections(&self) {
        let open: Vec<_> = self.lock().drain().collect();
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        for (id, sender) in open {
            lost.insert(id);
            let _ = sender.send(Message::Close(None));
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Message>>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// PostToConnection: the frame goes to the connection, or 410.
    async fn management(&self, req: http::Request<Incoming>, id: &str) -> Answer {
        let method = req.method().clone();
        let body = match req.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return answer(http::StatusCode::BAD_REQUEST, r#"{"message":"unreadable"}"#),
        };
        let gone = || {
            let mut response = answer(http::StatusCode::GONE, r#"{"message":"Gone"}"#);
            response.headers_mut().insert(
                "x-amzn-errortype",
                http::HeaderValue::from_static("GoneException"),
            );
            response
        };
        match method {
            http::Method::POST => {
                let sent = self.lock().get(id).is_some_and(|sender| {
                    sender
                        .send(Message::Text(
                            String::from_utf8_lossy(&body).into_owned().into(),
                        ))
                        .is_ok()
                });
                if sent {
                    self.counts.frames.fetch_add(1, Ordering::Relaxed);
                    answer(http::StatusCode::OK, "")
                } else {
                    gone()
                }
            }
            http::Method::DELETE => match self.lock().remove(id) {
                Some(sender) => {
                    let _ = sender.send(Message::Close(None));
                    answer(http::StatusCode::NO_CONTENT, "")
                }
                None => gone(),
            },
            _ => answer(http::StatusCode::METHOD_NOT_ALLOWED, ""),
        }
    }

    /// The event API Gateway sends the connection's route: `$connect` gets
    /// the upgrade request's query and headers (the offered subprotocols
    /// among them).
    fn event(&self, endpoint: Endpoint, id: &str, request: Option<&Upgrade>) -> Value {
        let mut event = websocket_event(endpoint);
        event["requestContext"]["connectionId"] = json!(id);
        event["requestContext"]["domainName"] = json!("127.0.0.1");
        if let Some(Upgrade { query, headers }) = request {
            event["queryStringParameters"] = json!(query);
            event["multiValueQueryStringParameters"] = query
                .iter()
                .map(|(k, v)| (k.clone(), json!([v])))
                .collect::<serde_json::Map<_, _>>()
                .into();
            let mut single = serde_json::Map::new();
            let mut multi = serde_json::Map::new();
            for name in headers.keys() {
                let values: Vec<&str> = headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                single.insert(name.as_str().to_owned(), json!(values.join(", ")));
                multi.insert(name.as_str().to_owned(), json!(values));
            }
            event["headers"] = single.into();
            event["multiValueHeaders"] = multi.into();
        }
        event
    }

    /// Runs `$connect` or `$disconnect`: the status, the body and, for
    /// `$connect`, the subprotocol it chose (API Gateway answers the
    /// upgrade with it).
    async fn run_route(
        &self,
        endpoint: PushEndpoint,
        id: &str,
        request: Option<&Upgrade>,
    ) -> (u16, String, Option<http::HeaderValue>) {
        let event = self.event(endpoint.endpoint(), id, request);
        let counter = if endpoint == PushEndpoint::WsConnect {
            &self.counts.connects
        } else {
            &self.counts.disconnects
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match serde_json::from_value(event) {
            Ok(request) => {
                let response = crate::counting::serving_logged(
                    endpoint.endpoint(),
                    &self.counts.handled,
                    self.gate.handle_websocket(endpoint, &request),
                )
                .await;
                let body = match response.body {
                    Some(aws_lambda_events::encodings::Body::Text(text)) => text,
                    _ => String::new(),
                };
                let protocol = response
                    .headers
                    .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                    .cloned();
                (
                    u16::try_from(response.status_code).unwrap_or(500),
                    body,
                    protocol,
                )
            }
            Err(error) => (500, json!({ "error": error.to_string() }).to_string(), None),
        }
    }

    async fn upgrade(self: &Arc<Self>, mut req: http::Request<Incoming>) -> Answer {
        if !self.up.load(Ordering::SeqCst) {
            return answer(
                http::StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"push is down (local switch)"}"#,
            );
        }
        let key = req
            .headers()
            .get(http::header::SEC_WEBSOCKET_KEY)
            .map(|k| k.as_bytes().to_vec());
        let upgrade = req
            .headers()
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let Some(key) = key.filter(|_| upgrade) else {
            return answer(
                http::StatusCode::BAD_REQUEST,
                r#"{"error":"a WebSocket upgrade is expected"}"#,
            );
        };
        let upgrade = Upgrade {
            query: form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
            headers: req.headers().clone(),
        };
        let id = format!("local{:08}=", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (status, body, protocol) = self
            .run_route(PushEndpoint::WsConnect, &id, Some(&upgrade))
            .await;
        if status != 200 {
            return answer(
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN),
                body,
            );
        }
        let (sender, mut outgoing) = mpsc::unbounded_channel::<Message>();
        self.lock().insert(id.clone(), sender);
        let on_upgrade = hyper::upgrade::on(&mut req);
        let push = self.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                push.closed(&id).await;
                return;
            };
            let socket =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            let (mut write, mut read) = socket.split();
            loop {
                tokio::select! {
                    frame = outgoing.recv() => match frame {
                        Some(Message::Close(frame)) => {
                            let _ = write.send(Message::Close(frame)).await;
                            break;
                        }
                        Some(frame) => {
                            if write.send(frame).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    incoming = read.next() => match incoming {
                        // The console sends nothing; pings are answered by tungstenite.
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
            push.closed(&id).await;
        });
        let mut response = answer(http::StatusCode::SWITCHING_PROTOCOLS, "");
        let headers = response.headers_mut();
        headers.remove(http::header::CONTENT_TYPE);
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        if let Ok(accept) = http::HeaderValue::from_str(&derive_accept_key(&key)) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        // Only what `$connect` chose, as API Gateway does: never the token.
        if let Some(protocol) = protocol {
            headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }

    /// A connection ended, from either side: `$disconnect`, as API Gateway does.
    async fn closed(&self, id: &str) {
        self.lock().remove(id);
        if self
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            return;
        }
        let (status, body, _) = self.run_route(PushEndpoint::WsDisconnect, id, None).await;
        if status != 200 {
            eprintln!("$disconnect answered {status}: {body}");
        }
    }
}

/// The upgrade request a console makes to follow a call: `url` (query
/// included), the token offered as a subprotocol beside the console's own.
pub fn subscribe_request(
    url: &str,
    token: &str,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::client::Request,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    let offered = format!("{SUBPROTOCOL}, {token}");
    let offered = http::HeaderValue::from_str(&offered)
        .map_err(|e| tokio_tungstenite::tungstenite::Error::HttpFormat(e.into()))?;
    request
        .headers_mut()
        .insert(http::header::SEC_WEBSOCKET_PROTOCOL, offered);
    Ok(request)
}

fn percent_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The table's stream, made locally from the store's writes: each written
/// session or history item becomes a record with its keys, new image and
/// (the item as last written here) old image; a task hands the records to
/// the publisher in batches, in order, as Lambda's stream poller does.
pub struct LocalStream {
    records: mpsc::UnboundedSender<Value>,
    last: Mutex<HashMap<(String, String), Value>>,
    sequence: AtomicU64,
}

impl LocalStream {
    pub fn start(publisher: PushApp, counts: Arc<PushCounts>) -> Arc<Self> {
        let (records, mut pending) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                let window = tokio::time::sleep(BATCH_WINDOW);
                tokio::pin!(window);
                while batch.len() < MAX_BATCH {
                    tokio::select! {
                        next = pending.recv() => match next {
                            Some(record) => batch.push(record),
                            None => break,
                        },
                        _ = &mut window => break,
                    }
                }
                counts.batches.fetch_add(1, Ordering::Relaxed);
                counts
                    .records
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                match serde_json::from_value(json!({ "Records": batch })) {
                    Ok(event) => {
                        let report = crate::counting::serving_logged(
                            Endpoint::StreamPublisher,
                            &counts.handled,
                            publisher.publish(&event),
                        )
                        .await;
                        counts
                            .connecting
                            .fetch_add(report.connecting as u64, Ordering::Relaxed);
                    }
                    Err(error) => eprintln!("local stream: unreadable batch: {error}"),
                }
            }
        });
        Arc::new(Self {
            records,
            last: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(1),
        })
    }
}

impl WriteObserver for LocalStream {
    fn written(&self, item: &Value) {
        let new = item.clone();
        let key = |name: &str| {
            new.get(name)
                .and_then(|v| v.get("S"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (pk, sk) = (key("pk"), key("sk"));
        let old = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((pk, sk), new.clone());
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut change = json!({
            "ApproximateCreationDateTime": time::OffsetDateTime::now_utc().unix_timestamp(),
            "Keys": { "pk": new["pk"], "sk": new["sk"] },
            "NewImage": new,
            "SequenceNumber": format!("{sequence:021}"),
            "SizeBytes": new.to_string().len(),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        let name = if let Some(old) = old {
            change["OldImage"] = old;
            "MODIFY"
        } else {
            "INSERT"
        };
        let _ = self.records.send(json!({
            "eventID": format!("local-{sequence}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/warm-transfer-local/stream/local",
        }));
    }
}
