//! The application: clients built once per cold start, and the dispatch of
//! one request to the endpoint's handler.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::Instrument;

use super::api_error::ApiError;
use super::webhook_urls::WebhookUrls;
use super::webhooks::{Reply, Webhook};
use super::{Caller, Endpoint, console, cors, front_end, request, responses, webhooks};
use crate::auth;
use crate::config::Config;
use crate::domain::Actor;
use crate::metrics::{self, Metric};
use crate::public_url;
use crate::secrets::{self, SecretKeeper, Secrets, SecretsManagerSource};
use crate::signature;
use crate::store::{CallStore, DynamoStore};
use crate::time_budget;
use crate::twilio::TwilioClient;

/// Everything a handler needs, shared by all invocations of a warm Lambda.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) twilio: TwilioClient,
    pub(crate) secrets: Arc<SecretKeeper>,
}

/// Why a function could not start; Lambda shows it in the init error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("Twilio client: {0}")]
    Twilio(#[from] crate::twilio::TwilioError),
}

impl App {
    /// Reads the configuration and builds the DynamoDB and Twilio clients:
    /// once per cold start, reused by every invocation.
    pub async fn from_env(endpoint: Endpoint) -> Result<Self, StartupError> {
        crate::logging::init();
        let env: HashMap<String, String> = std::env::vars().collect();
        let source = match secrets::secret_id(&env).filter(|_| endpoint.reads_secret()) {
            Some(id) => {
                let sdk = crate::https::aws_config_loader().load().await;
                Some(SecretsManagerSource::from_sdk_config(&sdk, id))
            }
            None => None,
        };
        Self::start_for(endpoint, env, source).await
    }

    /// Start-up of `endpoint`'s function. One that neither verifies a
    /// webhook nor calls Twilio (`Endpoint::needs`) may not read the
    /// secret: it starts without one, and refuses any signature.
    pub async fn start_for(
        endpoint: Endpoint,
        env: HashMap<String, String>,
        secret: Option<SecretsManagerSource>,
    ) -> Result<Self, StartupError> {
        if !endpoint.reads_secret() {
            return Self::started(Config::from_map_without_secrets(&env)?, None).await;
        }
        Self::start(env, secret).await
    }

    /// Start-up from a function's environment and, in AWS, the secret it
    /// names: a missing or malformed secret or variable fails here.
    pub async fn start(
        mut env: HashMap<String, String>,
        secret: Option<SecretsManagerSource>,
    ) -> Result<Self, StartupError> {
        if let Some(source) = &secret {
            secrets::merge_into_env(&mut env, source).await?;
        }
        Self::started(Config::from_map(&env)?, secret).await
    }

    async fn started(
        config: Config,
        secret: Option<SecretsManagerSource>,
    ) -> Result<Self, StartupError> {
        metrics::set_namespace(&config.metrics_namespace);
        let dynamodb = DynamoStore::client_from_config(&config).await;
        let store = DynamoStore::from_config(dynamodb, &config);
        let twilio = TwilioClient::from_config(&config)?;
        let mut app = Self::new(config, Arc::new(store), twilio);
        if let Some(source) = secret {
            app.secrets = Arc::new(SecretKeeper::refreshed(
                source,
                &app.config,
                secrets::REFRESH_AFTER,
            ));
        }
        Ok(app)
    }

    pub fn new(config: Config, store: Arc<dyn CallStore>, twilio: TwilioClient) -> Self {
        Self {
            secrets: Arc::new(SecretKeeper::fixed(Secrets::from_config(&config))),
            config: Arc::new(config),
            store,
            twilio,
        }
    }

    /// Puts a re-read secret in force once it is due (see `secrets`).
    pub(crate) async fn refresh_secrets(&self) {
        if let Some(fresh) = self.secrets.refresh_if_due().await {
            let (user, password) = fresh.rest_credentials(&self.config.twilio_account_sid);
            self.twilio.set_credentials(user, password);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A function binary's whole `main`: the Tokio runtime `#[tokio::main]`
    /// would build, the clients once per cold start ([`App::from_env`]), then
    /// the Lambda runtime loop for `endpoint` until Lambda stops the process.
    ///
    /// Here rather than in each `main.rs`: the runtime and the futures it
    /// polls are generic code, compiled again (monomorphised) in every crate
    /// that instantiates them, which made each function crate a 15
    /// CPU-second release build of its own. Behind this one
    /// non-generic function they are compiled once, in this crate, and a
    /// function crate is a call and a link (BENCHMARKS.md, "Build time").
    pub fn run_function(endpoint: Endpoint) -> Result<(), lambda_runtime::Error> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(async {
                match endpoint.caller() {
                    Caller::Schedule => {
                        Self::from_env(endpoint)
                            .await?
                            .serve_scheduled(endpoint)
                            .await
                    }
                    Caller::WebSocket | Caller::Stream => {
                        let app = crate::push::PushApp::from_env(endpoint).await?;
                        app.serve(endpoint).await
                    }
                    Caller::FrontEnd | Caller::Twilio | Caller::Public => {
                        Self::from_env(endpoint).await?.serve(endpoint).await
                    }
                }
            })
    }

    /// Runs the Lambda runtime loop for one endpoint.
    pub async fn serve(self, endpoint: Endpoint) -> Result<(), lambda_http::Error> {
        lambda_http::run(service_fn(move |req: Request| {
            let app = self.clone();
            async move { Ok::<_, Infallible>(app.handle(endpoint, req).await) }
        }))
        .await
    }

    /// Answers one request, within the function's time budget. Never fails:
    /// every error becomes a response the caller understands (JSON for the
    /// console, TwiML for Twilio).
    pub async fn handle(&self, endpoint: Endpoint, req: Request) -> Response<Body> {
        let span = tracing::info_span!(
            "request",
            request_id = %request::request_id(&req),
            endpoint = endpoint.function_name(),
        );
        // Lambda's own deadline for this invocation, when there is one.
        let lambda_deadline = req.lambda_context_ref().map(|c| c.deadline);
        let deadline = endpoint.deadline(lambda_deadline);
        async {
            let req = &req;
            let work = self.dispatch(endpoint, req);
            let response = time_budget::within(deadline, work)
                .await
                .unwrap_or_else(|| {
                    tracing::error!("out of time; the work was cut before Lambda's timeout");
                    let spent = ApiError::Unavailable("out of time, try again".into());
                    match endpoint.caller() {
                        Caller::Twilio => responses::retry_later(webhooks::empty()),
                        Caller::FrontEnd => self.api_error(req, spent),
                        _ => spent.into_response(),
                    }
                });
            tracing::info!(status = response.status().as_u16(), "answered");
            response
        }
        .instrument(span)
        .await
    }

    /// The endpoint's handler. One arm per endpoint and no wildcard, so an
    /// endpoint without a handler does not compile.
    async fn dispatch(&self, endpoint: Endpoint, req: &Request) -> Response<Body> {
        self.refresh_secrets().await;
        match endpoint {
            Endpoint::StartCall => self.api(req, front_end::start_call).await,
            Endpoint::GetCall => self.api(req, front_end::get_call).await,
            Endpoint::StartTransfer => self.api(req, front_end::start_transfer).await,
            Endpoint::CancelTransfer => self.api(req, front_end::cancel_transfer).await,
            Endpoint::LeaveCall => self.api(req, front_end::leave_call).await,
            Endpoint::HoldCustomer => self.api(req, front_end::hold_customer).await,
            Endpoint::DialCustomer => self.webhook(req, webhooks::dial_customer).await,
            Endpoint::AgentDialEnded => self.webhook(req, webhooks::agent_dial_ended).await,
            Endpoint::ConferenceTwiml => self.webhook(req, webhooks::conference).await,
            Endpoint::FallbackTwiml => self.webhook(req, webhooks::fallback).await,
            Endpoint::HoldTwiml => self.webhook(req, webhooks::hold_audio).await,
            Endpoint::StatusCallback => self.webhook(req, webhooks::status_callback).await,
            Endpoint::Console => console::page(
                self.config.console_sign_in.as_ref(),
                self.config.console_push_url.as_ref(),
            ),
            // Not HTTP: the reconciler's binary runs it on a schedule, the
            // push functions' binaries run `push::PushApp`.
            Endpoint::Reconciler
            | Endpoint::WsConnect
            | Endpoint::WsDisconnect
            | Endpoint::StreamPublisher => {
                ApiError::NotFound("not an HTTP endpoint".into()).into_response()
            }
        }
    }

    /// A front-end API request: CORS preflight, who signed in, then the
    /// handler; its error, if any, as the JSON error body.
    async fn api(
        &self,
        req: &Request,
        handler: impl AsyncFnOnce(&App, &Request, &Actor) -> Result<Response<Body>, ApiError>,
    ) -> Response<Body> {
        let origin = self.config.cors_allow_origin.as_deref();
        if req.method() == http::Method::OPTIONS {
            return cors::preflight(origin);
        }
        let result = match self.actor(req) {
            Ok(actor) => handler(self, req, &actor).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(mut response) => {
                cors::add_cors(&mut response, origin);
                response
            }
            Err(error) => {
                tracing::info!(%error, "request refused");
                self.api_error(req, error)
            }
        }
    }

    /// A front-end request's error as the console reads it: the JSON body
    /// (a 5xx with the request id) and the CORS headers.
    fn api_error(&self, req: &Request, error: ApiError) -> Response<Body> {
        let mut response = error.into_response_for(&request::request_id(req));
        cors::add_cors(&mut response, self.config.cors_allow_origin.as_deref());
        response
    }

    /// Who signed in: the verified claims API Gateway's JWT authorizer (or
    /// the development server, standing in for it) put on the request.
    fn actor(&self, req: &Request) -> Result<Actor, ApiError> {
        let claims = auth::claims(req).map_err(|error| {
            tracing::info!(%error, "no verified claims");
            ApiError::Unauthorized
        })?;
        self.config.agents.actor(&claims).map_err(|error| {
            tracing::info!(%error, "claims name no agent");
            ApiError::Unauthorized
        })
    }

    /// A Twilio webhook: the signature over the URL Twilio used, then the
    /// handler, whose answer is always TwiML.
    async fn webhook<R: Into<Reply>>(
        &self,
        req: &Request,
        handler: impl AsyncFnOnce(&App, &Webhook<'_>) -> R,
    ) -> Response<Body> {
        let signed_url = match public_url::signed_url(req, self.config.public_base_url.as_ref()) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(%error, "cannot rebuild the URL Twilio signed");
                return responses::forbidden();
            }
        };
        // Cheapest refusals first: no header, no look at the body at all;
        // then the caps on the raw body, before a field is decoded.
        let header = req
            .headers()
            .get("x-twilio-signature")
            .and_then(|value| value.to_str().ok());
        if signature::present(header).is_none() {
            metrics::count(Metric::SignatureRefusals, None);
            tracing::warn!("webhook without X-Twilio-Signature");
            return responses::forbidden();
        }
        let params = match request::form_params(req) {
            Ok(params) => params,
            Err(refusal) => {
                metrics::count(Metric::SignatureRefusals, None);
                tracing::warn!(%refusal, "webhook body refused");
                return responses::refused_webhook(refusal.status(), webhooks::empty());
            }
        };
        let secrets = self.secrets.current();
        match signature::validate_form_any(&secrets.signing_tokens(), &signed_url, &params, header)
        {
            Ok(0) => {}
            // A rotation under way (README, "Rotating a token").
            Ok(_) => metrics::count(Metric::SecondaryTokenSignatures, None),
            Err(error) => {
                metrics::count(Metric::SignatureRefusals, None);
                tracing::warn!(%error, "webhook signature rejected");
                return responses::forbidden();
            }
        }
        let hook = Webhook {
            request: req,
            params,
            urls: self.urls_from_signed(req, &signed_url),
        };
        match handler(self, &hook).await.into() {
            Reply::Twiml(xml) => responses::twiml(xml),
            Reply::RetryLater => responses::retry_later(webhooks::empty()),
        }
    }

    /// Webhook URLs for a front-end request: the configured public base, or
    /// the API's own address as this request reached it.
    pub(crate) fn urls(&self, req: &Request) -> Result<WebhookUrls, ApiError> {
        if let Some(base) = &self.config.public_base_url {
            return Ok(WebhookUrls::new(base));
        }
        let signed = public_url::signed_url(req, None)
            .map_err(|error| ApiError::bad_request("host", error.to_string()))?;
        Ok(self.urls_from_signed(req, &signed))
    }

    fn urls_from_signed(&self, req: &Request, signed_url: &str) -> WebhookUrls {
        if let Some(base) = &self.config.public_base_url {
            return WebhookUrls::new(base);
        }
        let without_query = signed_url.split(['?', '#']).next().unwrap_or(signed_url);
        let route = public_url::route_path(req);
        let base = without_query
            .strip_suffix(route.trim_end_matches('/'))
            .unwrap_or(without_query);
        WebhookUrls::from_base(base)
    }
}
