//! The development server: every Lambda handler mounted at the path API
//! Gateway gives it, on loopback. Requests are turned into the same
//! `lambda_http::Request` the functions see in AWS (path and query parameters
//! filled in), so the handlers run unchanged. It stands in for API Gateway's
//! JWT authorizer too: a front-end request's token is verified against the
//! local issuer (served here under `/local-idp`) and its claims put in the
//! request context where the authorizer puts them. With a [`LocalPush`] it
//! also plays the WebSocket API (see `push`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warm_transfer_core::endpoint::Caller;
use warm_transfer_core::handlers::App;

use crate::counting::{Counts, Invocations};
use crate::idp::{LocalIssuer, Verifier, verify};
use crate::push::LocalPush;

/// A running development server; stops when dropped.
pub struct DevServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    /// Requests handed to each function (one Lambda invocation each in AWS).
    pub invocations: Counts,
    /// Each of those runs: its function, wall time and DynamoDB requests.
    pub handled: Invocations,
    /// The tunnel in front of it, if any: its probes and public host.
    pub tunnel: Arc<Tunnel>,
    /// The simulated phones behind it, when the local stack has them.
    pub phones: Arc<LocalPhones>,
}

/// Development only, never deployed: `POST /local-sim/call-in?from=NUMBER`
/// has the simulator place a customer's call to the centre's number, and
/// `POST /local-sim/hang-up?number=NUMBER` hangs that person up, so the
/// console (and its browser tests) can be offered a call. Refused through
/// a tunnel, like everything that is not one of Twilio's webhooks.
pub const LOCAL_PHONES_PATH: &str = "/local-sim/";

/// What [`LOCAL_PHONES_PATH`] does, set by the local stack once its
/// simulator runs: a customer's call in (its SID), a hang-up.
#[derive(Default)]
pub struct LocalPhones {
    call_in: std::sync::OnceLock<PhoneAction>,
    hang_up: std::sync::OnceLock<PhoneAction>,
}

type PhoneAction = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl LocalPhones {
    pub fn set(
        &self,
        call_in: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        hang_up: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) {
        let _ = self.call_in.set(Box::new(call_in));
        let _ = self.hang_up.set(Box::new(hang_up));
    }

    fn serve(
        &self,
        method: &http::Method,
        path: &str,
        query: &str,
    ) -> Option<http::Response<Full<Bytes>>> {
        let action = path.strip_prefix(LOCAL_PHONES_PATH)?;
        if method != http::Method::POST {
            return Some(plain(http::StatusCode::METHOD_NOT_ALLOWED, "POST only"));
        }
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let (handler, param) = match action {
            "call-in" => (self.call_in.get(), "from"),
            "hang-up" => (self.hang_up.get(), "number"),
            _ => return Some(plain(http::StatusCode::NOT_FOUND, "no route")),
        };
        let (Some(handler), Some(number)) = (handler, params.get(param)) else {
            return Some(plain(
                http::StatusCode::NOT_FOUND,
                "no simulated phones here",
            ));
        };
        Some(match handler(number) {
            Some(sid) => {
                let mut answer = http::Response::new(Full::new(Bytes::from(sid)));
                *answer.status_mut() = http::StatusCode::OK;
                answer
            }
            None => plain(http::StatusCode::NOT_FOUND, "no such call"),
        })
    }
}

/// What the server knows of a tunnel in front of it (`run-local.sh
/// --twilio`). A request to [`PROBE_PATH`] carrying an expected nonce is
/// noted: proof that the public URL leads to this very server (only nonces
/// this process asked for are answered, each once). Through the tunnel
/// only Twilio's webhooks and the probe are served: a stranger who finds
/// the URL cannot sign in as a local agent or read a call.
#[derive(Debug, Default)]
pub struct Tunnel {
    expected: std::sync::Mutex<HashMap<String, bool>>,
    /// The public URL's host, lower case; None: no tunnel.
    public_host: std::sync::RwLock<Option<String>>,
}

/// Development server only: no such route exists in AWS.
pub const PROBE_PATH: &str = "/local-probe/";

impl Tunnel {
    /// A fresh nonce to send through the URL being checked.
    pub fn expect(&self) -> String {
        let nonce = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut expected) = self.expected.lock() {
            expected.insert(nonce.clone(), false);
        }
        nonce
    }

    /// Whether the nonce reached this server.
    pub fn arrived(&self, nonce: &str) -> bool {
        self.expected
            .lock()
            .is_ok_and(|expected| expected.get(nonce) == Some(&true))
    }

    /// Notes an arrival; false for a nonce not expected or already seen.
    fn arrive(&self, nonce: &str) -> bool {
        let Ok(mut expected) = self.expected.lock() else {
            return false;
        };
        match expected.get_mut(nonce) {
            Some(seen @ false) => {
                *seen = true;
                true
            }
            _ => false,
        }
    }

    /// Requests whose `Host` is this one came through the tunnel.
    pub fn set_public_host(&self, host: &str) {
        if let Ok(mut public) = self.public_host.write() {
            *public = Some(host.to_ascii_lowercase());
        }
    }

    /// Whether a request came through the tunnel: it names the public host
    /// (unless that is this machine's own name), or a proxy forwarded it
    /// (a browser on this machine sends neither).
    fn carried(&self, headers: &http::HeaderMap) -> bool {
        let Ok(public) = self.public_host.read() else {
            return true;
        };
        let Some(public) = public.as_deref() else {
            return false;
        };
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| {
                h.rsplit_once(':')
                    .map_or(h, |(name, _)| name)
                    .to_ascii_lowercase()
            });
        let loopback = matches!(public, "127.0.0.1" | "localhost" | "[::1]");
        (!loopback && host.as_deref() == Some(public)) || headers.contains_key("x-forwarded-for")
    }

    /// Through the tunnel: a 404 for anything but Twilio's webhooks and the probe.
    fn refuse(&self, req: &http::Request<Incoming>) -> Option<http::Response<Full<Bytes>>> {
        if !self.carried(req.headers()) || req.uri().path().starts_with(PROBE_PATH) {
            return None;
        }
        let twilio = crate::routes::resolve(req.method(), req.uri().path())
            .is_some_and(|(endpoint, _)| endpoint.endpoint().caller() == Caller::Twilio);
        (!twilio).then(|| plain(http::StatusCode::NOT_FOUND, "no route"))
    }

    /// The answer to a probe request, or None for any other path.
    fn serve(&self, path: &str) -> Option<http::Response<Full<Bytes>>> {
        let nonce = path.strip_prefix(PROBE_PATH)?;
        Some(if self.arrive(nonce) {
            plain(http::StatusCode::NO_CONTENT, "")
        } else {
            plain(http::StatusCode::NOT_FOUND, "no route")
        })
    }
}

impl DevServer {
    /// Serves `app` on an already bound listener (bind `127.0.0.1:0` for a
    /// free port, then configure `PUBLIC_BASE_URL` with its address).
    pub fn start(
        app: App,
        listener: TcpListener,
        issuer: Arc<LocalIssuer>,
        push: Option<Arc<LocalPush>>,
    ) -> std::io::Result<Self> {
        Self::start_on(
            &tokio::runtime::Handle::current(),
            app,
            listener,
            issuer,
            push,
        )
    }

    /// The same, serving on the given runtime.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        app: App,
        listener: TcpListener,
        issuer: Arc<LocalIssuer>,
        push: Option<Arc<LocalPush>>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let invocations = Counts::default();
        let handled = Invocations::default();
        // The listener was made on the caller's runtime: hand it over as a
        // std socket so the other runtime's reactor drives it.
        let listener = listener.into_std()?;
        let counts = invocations.clone();
        let tunnel = Arc::new(Tunnel::default());
        let phones = Arc::new(LocalPhones::default());
        let served = Served {
            issuer,
            push,
            invocations: counts,
            handled: handled.clone(),
            tunnel: tunnel.clone(),
            phones: phones.clone(),
        };
        let task = runtime.spawn(async move {
            if let Ok(listener) = TcpListener::from_std(listener) {
                accept_loop(app, listener, served).await;
            }
        });
        Ok(Self {
            addr,
            task,
            invocations,
            handled,
            tunnel,
            phones,
        })
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

/// What the server serves besides the handlers.
struct Served {
    issuer: Arc<LocalIssuer>,
    push: Option<Arc<LocalPush>>,
    invocations: Counts,
    handled: Invocations,
    tunnel: Arc<Tunnel>,
    phones: Arc<LocalPhones>,
}

async fn accept_loop(app: App, listener: TcpListener, served: Served) {
    let Served {
        issuer,
        push,
        invocations,
        handled,
        tunnel,
        phones,
    } = served;
    let verifier = Arc::new(issuer.verifier());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let issuer = issuer.clone();
        let verifier = verifier.clone();
        let push = push.clone();
        let invocations = invocations.clone();
        let handled = handled.clone();
        let tunnel = tunnel.clone();
        let phones = phones.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<Incoming>| {
                let (app, issuer, verifier) = (app.clone(), issuer.clone(), verifier.clone());
                let push = push.clone();
                let handled = handled.clone();
                let probed = tunnel
                    .refuse(&req)
                    .or_else(|| {
                        (req.method() == http::Method::GET)
                            .then(|| tunnel.serve(req.uri().path()))
                            .flatten()
                    })
                    .or_else(|| {
                        let query = req.uri().query().unwrap_or("");
                        phones.serve(req.method(), req.uri().path(), query)
                    });
                if let Some((endpoint, _)) = crate::routes::resolve(req.method(), req.uri().path())
                {
                    invocations.add(endpoint.endpoint().function_name());
                }
                async move {
                    if let Some(answer) = probed {
                        return Ok::<_, Infallible>(answer);
                    }
                    if let Some(push) = push.filter(|_| LocalPush::serves(req.uri().path())) {
                        return Ok::<_, Infallible>(push.serve(req).await);
                    }
                    Ok::<_, Infallible>(route(&app, &issuer, &verifier, &handled, req).await)
                }
            });
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Finds the endpoint like API Gateway would and hands the request to its handler.
pub async fn route(
    app: &App,
    issuer: &LocalIssuer,
    verifier: &Verifier,
    handled: &Invocations,
    req: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(http::StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("");
    if let Some(answer) = issuer.serve(&parts.method, &path, raw_query, &body) {
        return answer;
    }
    // A CORS preflight goes to the endpoint of the same path, whatever its method.
    let resolved = if parts.method == http::Method::OPTIONS {
        [http::Method::GET, http::Method::POST]
            .iter()
            .find_map(|method| crate::routes::resolve(method, &path))
    } else {
        crate::routes::resolve(&parts.method, &path)
    };
    let Some((endpoint, params)) = resolved else {
        return plain(http::StatusCode::NOT_FOUND, "no route");
    };
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let authorized = (endpoint.endpoint().caller() == Caller::FrontEnd
        && parts.method != http::Method::OPTIONS)
        .then(|| authorize(verifier, &parts.headers))
        .flatten();
    let mut request =
        lambda_http::Request::from_parts(parts, lambda_http::Body::from(body.to_vec()))
            .with_path_parameters(params.into_iter().collect::<HashMap<_, _>>())
            .with_query_string_parameters(query);
    if let Some(context) = authorized {
        request = request.with_request_context(context);
    }
    let response = crate::counting::serving_logged(
        endpoint.endpoint(),
        handled,
        app.handle(endpoint, request),
    )
    .await;
    let (parts, body) = response.into_parts();
    http::Response::from_parts(parts, Full::new(Bytes::copy_from_slice(body.as_ref())))
}

/// What API Gateway's JWT authorizer does: verify the bearer token and hand
/// its claims on in the request context. A refused token gets no context,
/// and the handler answers 401 as it would to any request without one.
fn authorize(verifier: &Verifier, headers: &http::HeaderMap) -> Option<RequestContext> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match verify::bearer(header).and_then(|token| verifier.verify(token)) {
        Ok(claims) => claims,
        Err(refused) => {
            // The reason only: a token is never logged.
            tracing::info!(%refused, "token refused");
            return None;
        }
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = Some(authorizer);
    Some(RequestContext::ApiGatewayV2(context))
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
