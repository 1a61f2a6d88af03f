//! Twilio answering instantly with canned resources: the benchmarks measure
//! the product's own work and round trips, not the simulator's.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const CALL: &str = include_str!("../../fixtures/twilio/call.json");
const PARTICIPANT: &str = include_str!("../../fixtures/twilio/participant.json");

pub struct TwilioStub {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TwilioStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TwilioStub {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service =
                        service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            let (status, body) = if req.uri().path().ends_with("/Participants.json")
                            {
                                (201, PARTICIPANT)
                            } else if req.uri().path().ends_with("/Calls.json") {
                                (201, CALL)
                            } else {
                                (200, CALL)
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                                    .unwrap_or_default(),
                            )
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
