//! The development server: every Lambda handler mounted at the path API
//! Gateway gives it, on loopback. Requests are turned into the same
//! `lambda_http::Request` the functions see in AWS (path and query parameters
//! filled in), so the handlers run unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warm_transfer_core::handlers::{App, Endpoint};

/// A running development server; stops when dropped.
pub struct DevServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DevServer {
    /// Serves `app` on an already bound listener (bind `127.0.0.1:0` for a
    /// free port, then configure `PUBLIC_BASE_URL` with its address).
    pub fn start(app: App, listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(app, listener));
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(app: App, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(&app, req).await) }
            });
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Finds the endpoint like API Gateway would and hands the request to its handler.
pub async fn route(app: &App, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(http::StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let path = parts.uri.path().to_owned();
    // A CORS preflight goes to the endpoint of the same path, whatever its method.
    let resolved = if parts.method == http::Method::OPTIONS {
        [http::Method::GET, http::Method::POST]
            .iter()
            .find_map(|method| Endpoint::resolve(method, &path))
    } else {
        Endpoint::resolve(&parts.method, &path)
    };
    let Some((endpoint, params)) = resolved else {
        return plain(http::StatusCode::NOT_FOUND, "no route");
    };
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let request = lambda_http::Request::from_parts(parts, lambda_http::Body::from(body.to_vec()))
        .with_path_parameters(params.into_iter().collect::<HashMap<_, _>>())
        .with_query_string_parameters(query);
    let response = app.handle(endpoint, request).await;
    let (parts, body) = response.into_parts();
    http::Response::from_parts(parts, Full::new(Bytes::copy_from_slice(body.as_ref())))
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
