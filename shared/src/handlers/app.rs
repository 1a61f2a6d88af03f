//! The application: clients built once per cold start, and the dispatch of
//! one request to the endpoint's handler.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};
use tracing::Instrument;

use super::callbacks::Callbacks;
use super::http::{self as web, ApiError};
use super::{Caller, Endpoint, front_end, webhooks};
use crate::config::Config;
use crate::public_url;
use crate::signature;
use crate::store::{CallStore, DynamoStore};
use crate::twilio::TwilioClient;

/// Everything a handler needs, shared by all invocations of a warm Lambda.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) twilio: TwilioClient,
}

/// Why a function could not start; Lambda shows it in the init error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("Twilio client: {0}")]
    Twilio(#[from] crate::twilio::TwilioError),
}

impl App {
    /// Reads the configuration and builds the DynamoDB and Twilio clients:
    /// once per cold start, reused by every invocation.
    pub async fn from_env() -> Result<Self, StartupError> {
        crate::logging::init();
        let config = Config::from_env()?;
        let dynamodb = DynamoStore::client_from_config(&config).await;
        let store = DynamoStore::new(dynamodb, config.table_name.clone(), config.session_ttl);
        let twilio = TwilioClient::from_config(&config)?;
        Ok(Self::new(config, Arc::new(store), twilio))
    }

    pub fn new(config: Config, store: Arc<dyn CallStore>, twilio: TwilioClient) -> Self {
        Self {
            config: Arc::new(config),
            store,
            twilio,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the Lambda runtime loop for one endpoint.
    pub async fn serve(self, endpoint: Endpoint) -> Result<(), lambda_http::Error> {
        lambda_http::run(service_fn(move |req: Request| {
            let app = self.clone();
            async move { Ok::<_, Infallible>(app.handle(endpoint, req).await) }
        }))
        .await
    }

    /// Answers one request. Never fails: every error becomes a response the
    /// caller understands (JSON for the console, TwiML for Twilio).
    pub async fn handle(&self, endpoint: Endpoint, req: Request) -> Response<Body> {
        let span = tracing::info_span!(
            "request",
            request_id = %web::request_id(&req),
            endpoint = endpoint.function_name(),
        );
        async {
            let response = match endpoint.caller() {
                Caller::FrontEnd => self.front_end(endpoint, req).await,
                Caller::Twilio => self.webhook(endpoint, req).await,
                Caller::Public => super::console::page(),
                // Scheduled, not HTTP: its binary runs `serve_scheduled`.
                Caller::Schedule => {
                    ApiError::NotFound("not an HTTP endpoint".into()).into_response()
                }
            };
            tracing::info!(status = response.status().as_u16(), "answered");
            response
        }
        .instrument(span)
        .await
    }

    async fn front_end(&self, endpoint: Endpoint, req: Request) -> Response<Body> {
        let origin = self.config.cors_allow_origin.as_deref();
        if req.method() == http::Method::OPTIONS {
            return web::preflight(origin);
        }
        let result = match web::check_bearer(req.headers(), self.config.api_token.expose()) {
            Err(error) => Err(error),
            Ok(()) => match endpoint {
                Endpoint::StartCall => front_end::start_call(self, &req).await,
                Endpoint::GetCall => front_end::get_call(self, &req).await,
                Endpoint::StartTransfer => front_end::start_transfer(self, &req).await,
                Endpoint::CancelTransfer => front_end::cancel_transfer(self, &req).await,
                Endpoint::LeaveCall => front_end::leave_call(self, &req).await,
                _ => Err(ApiError::NotFound("no such endpoint".into())),
            },
        };
        let mut response = result.unwrap_or_else(|error| {
            tracing::info!(%error, "request refused");
            error.into_response()
        });
        web::add_cors(&mut response, origin);
        response
    }

    async fn webhook(&self, endpoint: Endpoint, req: Request) -> Response<Body> {
        let signed_url = match public_url::signed_url(&req, self.config.public_base_url.as_ref()) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(%error, "cannot rebuild the URL Twilio signed");
                return web::forbidden();
            }
        };
        let params = web::form_params(&req);
        let header = req
            .headers()
            .get("x-twilio-signature")
            .and_then(|value| value.to_str().ok());
        if let Err(error) = signature::validate_form(
            self.config.twilio_auth_token.expose(),
            &signed_url,
            &params,
            header,
        ) {
            tracing::warn!(%error, "webhook signature rejected");
            return web::forbidden();
        }
        let callbacks = self.callbacks_from_signed(&req, &signed_url);
        let xml = match endpoint {
            Endpoint::DialCustomer => webhooks::dial_customer(self, &req, &params, &callbacks),
            Endpoint::AgentDialEnded => webhooks::agent_dial_ended(self, &params, &callbacks).await,
            Endpoint::ConferenceTwiml => webhooks::conference(self, &req, &params, &callbacks),
            Endpoint::FallbackTwiml => webhooks::fallback(self, &req, &params, &callbacks),
            Endpoint::StatusCallback => {
                match webhooks::status_callback(self, &req, &params, &callbacks).await {
                    Ok(xml) => xml,
                    Err(webhooks::NotRecorded) => return web::retry_later(webhooks::empty()),
                }
            }
            _ => webhooks::empty(),
        };
        web::twiml(xml)
    }

    /// Callback URLs for a front-end request: the configured public base, or
    /// the API's own address as this request reached it.
    pub(crate) fn callbacks(&self, req: &Request) -> Result<Callbacks, ApiError> {
        if let Some(base) = &self.config.public_base_url {
            return Ok(Callbacks::new(base));
        }
        let signed = public_url::signed_url(req, None)
            .map_err(|error| ApiError::bad_request("host", error.to_string()))?;
        Ok(self.callbacks_from_signed(req, &signed))
    }

    fn callbacks_from_signed(&self, req: &Request, signed_url: &str) -> Callbacks {
        if let Some(base) = &self.config.public_base_url {
            return Callbacks::new(base);
        }
        let without_query = signed_url.split(['?', '#']).next().unwrap_or(signed_url);
        let route = public_url::route_path(req);
        let base = without_query
            .strip_suffix(route.trim_end_matches('/'))
            .unwrap_or(without_query);
        Callbacks::from_base(base)
    }
}
