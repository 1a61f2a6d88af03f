//! One request to the endpoint's handler: who may ask (a signed-in agent,
//! Twilio's signature), within the function's time budget, answered in the
//! caller's language.

use std::convert::Infallible;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::Instrument;

use super::app::App;
use super::hook::{self, Reply, Webhook};
use super::{board, console, directory, front_end, inbound, party, request, supervise, webhooks};
use crate::auth;
use crate::domain::Actor;
use crate::endpoint::{Caller, HttpEndpoint};
use crate::metrics::{self, Metric};
use crate::public_url;
use crate::signature;
use crate::time_budget;
use crate::web::{ApiError, cors, responses};

impl App {
    /// Runs the Lambda runtime loop for one endpoint.
    pub async fn serve(self, endpoint: HttpEndpoint) -> Result<(), lambda_http::Error> {
        lambda_http::run(service_fn(move |req: Request| {
            let app = self.clone();
            async move { Ok::<_, Infallible>(app.handle(endpoint, req).await) }
        }))
        .await
    }

    /// Answers one request, within the function's time budget. Never fails:
    /// every error becomes a response the caller understands (JSON for the
    /// console, TwiML for Twilio).
    pub async fn handle(&self, endpoint: HttpEndpoint, req: Request) -> Response<Body> {
        let span = tracing::info_span!(
            "request",
            request_id = %request::request_id(&req),
            endpoint = endpoint.endpoint().function_name(),
        );
        // Lambda's own deadline for this invocation, when there is one.
        let lambda_deadline = req.lambda_context_ref().map(|c| c.deadline);
        let deadline = endpoint.endpoint().deadline(lambda_deadline);
        async {
            let req = &req;
            let work = self.dispatch(endpoint, req);
            let response = time_budget::within(deadline, work)
                .await
                .unwrap_or_else(|| {
                    tracing::error!("out of time; the work was cut before Lambda's timeout");
                    let spent = ApiError::Unavailable("out of time, try again".into());
                    match endpoint.endpoint().caller() {
                        Caller::Twilio => responses::retry_later(hook::empty()),
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
    /// endpoint without a handler does not compile. Each handler's future
    /// is boxed: unboxed, this future would be as large as the largest of
    /// them (the DynamoDB ones, kilobytes), and every move of it on its way
    /// to the runtime copied all of that, a third of a TwiML webhook's CPU
    /// (BENCHMARKS.md, "Side by side").
    async fn dispatch(&self, endpoint: HttpEndpoint, req: &Request) -> Response<Body> {
        self.refresh_secrets().await;
        match endpoint {
            HttpEndpoint::StartCall => Box::pin(self.api(req, front_end::start_call)).await,
            HttpEndpoint::GetCall => Box::pin(self.api(req, front_end::get_call)).await,
            HttpEndpoint::StartTransfer => Box::pin(self.api(req, front_end::start_transfer)).await,
            HttpEndpoint::CancelTransfer => {
                Box::pin(self.api(req, front_end::cancel_transfer)).await
            }
            HttpEndpoint::LeaveCall => Box::pin(self.api(req, front_end::leave_call)).await,
            HttpEndpoint::HoldCustomer => Box::pin(self.api(req, front_end::hold_customer)).await,
            HttpEndpoint::SuperviseCall => Box::pin(self.api(req, supervise::supervise_call)).await,
            HttpEndpoint::AskForHelp => Box::pin(self.api(req, board::ask_for_help)).await,
            HttpEndpoint::GetBoard => Box::pin(self.api(req, board::get_board)).await,
            HttpEndpoint::OutsideParty => Box::pin(self.api(req, party::outside_party)).await,
            HttpEndpoint::GetDirectory => Box::pin(self.api(req, directory::get_directory)).await,
            HttpEndpoint::SetPresence => Box::pin(self.api(req, directory::set_presence)).await,
            HttpEndpoint::DialCustomer => {
                Box::pin(self.webhook(req, webhooks::dial_customer)).await
            }
            HttpEndpoint::AgentDialEnded => {
                Box::pin(self.webhook(req, webhooks::agent_dial_ended)).await
            }
            HttpEndpoint::ConferenceTwiml => {
                Box::pin(self.webhook(req, webhooks::conference)).await
            }
            HttpEndpoint::FallbackTwiml => Box::pin(self.webhook(req, webhooks::fallback)).await,
            HttpEndpoint::HoldTwiml => Box::pin(self.webhook(req, webhooks::hold_audio)).await,
            HttpEndpoint::StatusCallback => {
                Box::pin(self.webhook(req, webhooks::status_callback)).await
            }
            HttpEndpoint::InboundCall => Box::pin(self.webhook(req, inbound::inbound_call)).await,
            HttpEndpoint::QueueTwiml => Box::pin(self.webhook(req, inbound::queue)).await,
            HttpEndpoint::Console => console::page(
                self.config.console_sign_in.as_ref(),
                self.config.console_push_url.as_ref(),
            ),
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
                return responses::refused_webhook(refusal.status(), hook::empty());
            }
        };
        let secrets = self.secrets.current();
        match signature::validate_form_any(&secrets.signing_tokens(), &signed_url, &params, header)
        {
            Ok(0) => {}
            // A rotation under way (docs/deploy.md, "Rotating a token").
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
            Reply::RetryLater => responses::retry_later(hook::empty()),
        }
    }
}
