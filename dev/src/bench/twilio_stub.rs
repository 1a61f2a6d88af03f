//! Twilio answering instantly with canned resources: the benchmarks measure
//! the product's own work and round trips, not the simulator's. For the push
//! functions it also plays the identity provider's JWKS (`/jwks.json`) and
//! the WebSocket API's management endpoint (`/@connections/{id}`: every
//! connection open).

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
        Self::serving_jwks(String::from(r#"{"keys":[]}"#)).await
    }

    /// The same, answering `GET /jwks.json` with `jwks`.
    pub async fn serving_jwks(jwks: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let jwks = Bytes::from(jwks);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let jwks = jwks.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let path = req.uri().path();
                        let (status, body) = if path.ends_with("/Participants.json") {
                            (201, Bytes::from_static(PARTICIPANT.as_bytes()))
                        } else if path.ends_with("/Calls.json") {
                            (201, Bytes::from_static(CALL.as_bytes()))
                        } else if path == "/jwks.json" {
                            (200, jwks.clone())
                        } else if path.starts_with("/@connections/") {
                            (200, Bytes::new())
                        } else {
                            (200, Bytes::from_static(CALL.as_bytes()))
                        };
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(body))
                                    .unwrap_or_default(),
                            )
                        }
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
