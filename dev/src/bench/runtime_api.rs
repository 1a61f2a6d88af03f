//! The smallest Lambda Runtime API that runs a function binary: it hands
//! out events and records when each response arrives. Used to time a cold
//! start (exec to first response) and to load a warm function.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Default)]
struct State {
    events_left: usize,
    /// The time each invocation is given (`lambda-runtime-deadline-ms`).
    timeout: std::time::Duration,
    served: usize,
    /// When each event was handed out, by invocation.
    handed_out: Vec<Instant>,
    responses: Vec<(Instant, u16)>,
    /// From handing an event out to its response: the duration Lambda bills.
    durations: Vec<std::time::Duration>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    answered: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Serves `event` (an API Gateway event) `count` times, each with 30 s
    /// to answer.
    pub async fn start(event: String, count: usize) -> std::io::Result<Self> {
        Self::start_with_timeout(event, count, std::time::Duration::from_secs(30)).await
    }

    /// The same, each invocation given `timeout` (its deadline from when it
    /// is handed out).
    pub async fn start_with_timeout(
        event: String,
        count: usize,
        timeout: std::time::Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            events_left: count,
            timeout,
            ..State::default()
        }));
        let answered = Arc::new(Notify::new());
        let event = Bytes::from(event);
        let (task_state, task_answered) = (state.clone(), answered.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, answered, event) =
                    (task_state.clone(), task_answered.clone(), event.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (state, answered, event) =
                            (state.clone(), answered.clone(), event.clone());
                        async move { Ok::<_, Infallible>(serve(req, &state, &answered, event).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            answered,
            task,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn responses(&self) -> Vec<(Instant, u16)> {
        self.state
            .lock()
            .map(|s| s.responses.clone())
            .unwrap_or_default()
    }

    /// Each invocation's duration, from the event handed out (`/next`
    /// answered) to its response received, in order.
    pub fn durations(&self) -> Vec<std::time::Duration> {
        self.state
            .lock()
            .map(|s| s.durations.clone())
            .unwrap_or_default()
    }

    /// Waits until `n` responses arrived.
    pub async fn wait_for(&self, n: usize) {
        loop {
            let notified = self.answered.notified();
            if self.responses().len() >= n {
                return;
            }
            notified.await;
        }
    }
}

async fn serve(
    req: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    answered: &Notify,
    event: Bytes,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let next = state.lock().ok().and_then(|mut s| {
            (s.events_left > 0).then(|| {
                s.events_left -= 1;
                s.served += 1;
                s.handed_out.push(Instant::now());
                (s.served, s.timeout)
            })
        });
        let Some((id, timeout)) = next else {
            // No more work: the function waits here until it is killed.
            std::future::pending::<()>().await;
            return empty(500);
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d + timeout).as_millis())
            .unwrap_or_default();
        return hyper::Response::builder()
            .header("lambda-runtime-aws-request-id", format!("bench-{id}"))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(event))
            .unwrap_or_default();
    }
    // A function that fails to start reports to /runtime/init/error.
    if path.ends_with("/response") || path.ends_with("/error") {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let status = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["statusCode"].as_u64())
            .unwrap_or(if path.ends_with("/error") { 599 } else { 0 }) as u16;
        if let Ok(mut s) = state.lock() {
            let now = Instant::now();
            // One invocation at a time, as Lambda runs a function instance.
            if let Some(out) = s.handed_out.get(s.responses.len()).copied() {
                s.durations.push(now.duration_since(out));
            }
            s.responses.push((now, status));
        }
        answered.notify_waiters();
        return empty(202);
    }
    empty(404)
}

fn empty(status: u16) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}
