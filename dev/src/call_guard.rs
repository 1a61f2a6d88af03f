//! What stands between the local stack and a real Twilio account
//! (`run-local.sh --twilio`): a proxy on loopback that the product's REST
//! client talks to instead of Twilio. Calls and participants are created
//! only once the start-up checks passed and only to the numbers the user
//! confirmed, each with Twilio's own `TimeLimit`; every call created is
//! noted, so the run can end it after the maximum length, and end them all
//! when it stops. The product itself is unchanged: this is a development
//! guard on top of its toll-fraud allow-list.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warm_transfer_core::ids::{CallSid, mask_phone};
use warm_transfer_core::twilio::{CallStatus, ListCalls, TwilioClient};

type Answer = http::Response<Full<Bytes>>;

/// A call the run created, and when.
#[derive(Debug, Clone)]
struct Created {
    sid: String,
    at: Instant,
    ended: bool,
}

struct State {
    /// Twilio's base URL, without the trailing slash.
    upstream: String,
    confirmed: HashSet<String>,
    armed: AtomicBool,
    max_call: Duration,
    created: Mutex<Vec<Created>>,
    http: reqwest::Client,
}

/// A running guard; stops when dropped.
pub struct CallGuard {
    state: Arc<State>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One call the guard ended, or failed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub sid: String,
    pub outcome: Result<&'static str, String>,
}

impl CallGuard {
    /// Forwards to `upstream` (`https://api.twilio.com`); calls only to
    /// `confirmed` (E.164), none before [`CallGuard::arm`].
    pub async fn start(
        upstream: &str,
        confirmed: impl IntoIterator<Item = String>,
        max_call: Duration,
    ) -> std::io::Result<Self> {
        warm_transfer_core::https::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            confirmed: confirmed.into_iter().collect(),
            armed: AtomicBool::new(false),
            max_call,
            created: Mutex::new(Vec::new()),
            http,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { state, addr, task })
    }

    /// What the product uses as `TWILIO_API_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on calls to the confirmed numbers go through.
    pub fn arm(&self) {
        self.state.armed.store(true, Ordering::SeqCst);
    }

    /// Every call created through the guard, oldest first.
    pub fn created(&self) -> Vec<String> {
        self.state
            .created
            .lock()
            .map(|c| c.iter().map(|c| c.sid.clone()).collect())
            .unwrap_or_default()
    }

    /// Ends the calls created longer ago than the maximum length (with
    /// their child legs); those ended before are not looked at again.
    pub async fn end_overdue(&self, twilio: &TwilioClient) -> Vec<Ended> {
        let overdue: Vec<String> = self
            .state
            .created
            .lock()
            .map(|created| {
                created
                    .iter()
                    .filter(|c| !c.ended && c.at.elapsed() >= self.state.max_call)
                    .map(|c| c.sid.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.end(twilio, overdue).await
    }

    /// Ends every call the run created that is still live, and its child
    /// legs (the people a call dialed).
    pub async fn end_all(&self, twilio: &TwilioClient) -> Vec<Ended> {
        self.end(twilio, self.created()).await
    }

    async fn end(&self, twilio: &TwilioClient, sids: Vec<String>) -> Vec<Ended> {
        let mut ended = Vec::new();
        for sid in sids {
            let Ok(call) = CallSid::parse(&sid) else {
                continue;
            };
            let children = twilio
                .list_calls(&ListCalls {
                    parent_call_sid: Some(call.clone()),
                    ..ListCalls::default()
                })
                .await
                .unwrap_or_default();
            // Children first: a parent's hang-up would end them anyway,
            // but one redirected out of its `<Dial>` lives on its own.
            for leg in children
                .iter()
                .map(|c| c.sid.as_str())
                .chain([sid.as_str()])
            {
                if let Some(outcome) = end_one(twilio, leg).await {
                    ended.push(Ended {
                        sid: leg.to_owned(),
                        outcome,
                    });
                }
            }
            if let Ok(mut created) = self.state.created.lock() {
                created
                    .iter_mut()
                    .filter(|c| c.sid == sid)
                    .for_each(|c| c.ended = true);
            }
        }
        ended
    }
}

/// Ends one call if it is still live: None when it was over already.
async fn end_one(twilio: &TwilioClient, sid: &str) -> Option<Result<&'static str, String>> {
    let call = CallSid::parse(sid).ok()?;
    let status = match twilio.fetch_call(&call).await {
        Ok(fetched) => fetched.status,
        Err(error) => return Some(Err(error.to_string())),
    };
    let result = match status {
        Some(CallStatus::Queued | CallStatus::Ringing) => {
            twilio.cancel_call(&call).await.map(|_| "canceled")
        }
        Some(CallStatus::InProgress) => twilio.hang_up_call(&call).await.map(|_| "hung up"),
        _ => return None,
    };
    Some(result.map_err(|e| e.to_string()))
}

fn twilio_error(status: u16, code: u32, message: &str) -> Answer {
    let body = json!({ "code": code, "message": message, "more_info": null, "status": status });
    let mut answer = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// Whether a request creates a call: a call, or a participant dialed
/// into a conference.
fn creates_call(method: &http::Method, path: &str) -> bool {
    method == http::Method::POST
        && (path.ends_with("/Calls.json") || path.ends_with("/Participants.json"))
}

async fn forward(state: Arc<State>, req: http::Request<Incoming>) -> Result<Answer, Infallible> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(twilio_error(400, 20001, "unreadable request"));
    };
    let path = parts.uri.path().to_owned();
    let creating = creates_call(&parts.method, &path);
    let mut body = body.to_vec();
    if creating {
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let to = form
            .iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if !state.armed.load(Ordering::SeqCst) {
            println!(
                "refused a call to {}: start-up checks not passed",
                mask_phone(&to)
            );
            return Ok(twilio_error(
                403,
                20403,
                "local run: no call before the start-up checks pass",
            ));
        }
        if !state.confirmed.contains(&to) {
            println!(
                "refused a call to {}: not a number confirmed for this run",
                mask_phone(&to)
            );
            return Ok(twilio_error(
                403,
                20403,
                "local run: not a number confirmed for this run",
            ));
        }
        // Twilio ends the call itself after this long, even if this
        // process is killed before it can.
        if !form.iter().any(|(k, _)| k == "TimeLimit") {
            let limit = form_urlencoded::Serializer::new(String::new())
                .append_pair("TimeLimit", &state.max_call.as_secs().to_string())
                .finish();
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(limit.as_bytes());
        }
    }
    let target = format!(
        "{}{}",
        state.upstream,
        parts
            .uri
            .path_and_query()
            .map_or(path.as_str(), |p| p.as_str())
    );
    let mut request = state.http.request(parts.method.clone(), target).body(body);
    for name in [
        http::header::AUTHORIZATION,
        http::header::CONTENT_TYPE,
        http::header::USER_AGENT,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let text = format!("cannot reach Twilio: {}", error.without_url());
            return Ok(twilio_error(502, 20502, &text));
        }
    };
    let status = response.status();
    let answer = response.bytes().await.unwrap_or_default();
    if creating && status.is_success() {
        let created: Value = serde_json::from_slice(&answer).unwrap_or_default();
        // A call's own SID, or a participant's call.
        let sid = created["sid"]
            .as_str()
            .filter(|s| s.starts_with("CA"))
            .or_else(|| created["call_sid"].as_str());
        if let (Some(sid), Ok(mut calls)) = (sid, state.created.lock()) {
            calls.push(Created {
                sid: sid.to_owned(),
                at: Instant::now(),
                ended: false,
            });
        }
    }
    let mut out = http::Response::new(Full::new(answer));
    *out.status_mut() = status;
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(out)
}
