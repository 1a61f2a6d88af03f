//! Push: the console hears about changes as they happen instead of polling.
//!
//! The table's DynamoDB Stream carries every write of a session or a
//! history entry, whichever function made it; the `stream-publisher`
//! function reads it ([`stream`]) and posts each change ([`messages`]) over
//! API Gateway's WebSocket API ([`connections`]) to the connections that
//! subscribed to that call and may see it ([`publisher`]). `ws-connect` and
//! `ws-disconnect` ([`websocket`]) keep the subscriptions
//! ([`crate::store::Subscriptions`]). Locally, the development server plays
//! API Gateway and the stream (see `dev/`).

pub mod config;
pub mod connections;
pub mod messages;
pub mod publisher;
pub mod stream;
pub mod websocket;

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

use crate::auth::AgentRules;
use crate::config::{ConfigError, vars};
use crate::endpoint::PushEndpoint;
use crate::jwks::{HttpKeySource, Keys};
use crate::store::{CallStore, Directory, DynamoStore, DynamoSubscriptions, Subscriptions};
use crate::time_budget;
use crate::token::Verifier;
use config::PushConfig;
use connections::{ApiGatewayConnections, Connections};

/// Everything a push function needs, built once per cold start.
#[derive(Clone)]
pub struct PushApp {
    pub(crate) agents: Arc<AgentRules>,
    pub(crate) store: Arc<dyn CallStore>,
    /// The publisher sends the directory with presence in its frame.
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) subscriptions: Arc<dyn Subscriptions>,
    /// `$connect` only: the issuer's keys, to verify the token.
    pub(crate) keys: Option<Arc<Keys>>,
    /// The publisher only: posts to the connections.
    pub(crate) connections: Option<Arc<dyn Connections>>,
}

/// Why a push function could not start; Lambda shows it in the init error.
#[derive(Debug, thiserror::Error)]
pub enum PushStartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no client for the token issuer's keys at {url}: {reason}")]
    Keys { url: String, reason: String },
}

impl PushApp {
    /// What `endpoint` needs, from the environment: the issuer's keys for
    /// `$connect`, the management API for the publisher.
    pub async fn from_env(endpoint: PushEndpoint) -> Result<Self, PushStartupError> {
        crate::logging::init();
        let env: HashMap<String, String> = std::env::vars().collect();
        let config = PushConfig::from_map(&env)?;
        let client = DynamoStore::client_for(config.dynamodb_endpoint.as_ref()).await;
        let store = DynamoStore::new(
            client.clone(),
            config.table_name.clone(),
            std::time::Duration::from_secs(72 * 3600),
        );
        let subscriptions = DynamoSubscriptions::new(client, config.table_name.clone());
        let mut app = Self::new(
            config.agents.clone(),
            Arc::new(store),
            Arc::new(subscriptions),
        );
        match endpoint {
            PushEndpoint::WsConnect => {
                let url = config.jwks_url()?;
                let issuer = config
                    .issuer
                    .clone()
                    .ok_or(ConfigError::Missing(vars::JWT_ISSUER))?;
                let audience = config
                    .audience
                    .clone()
                    .ok_or(ConfigError::Missing(vars::JWT_AUDIENCE))?;
                // Read when the first token needs them, then kept fresh
                // (see `jwks`): an issuer slow at a cold start fails no init.
                let source =
                    HttpKeySource::new(url.clone()).map_err(|reason| PushStartupError::Keys {
                        url: url.to_string(),
                        reason,
                    })?;
                app.keys = Some(Arc::new(Keys::new(&issuer, &audience, Arc::new(source))));
            }
            PushEndpoint::StreamPublisher => {
                let url = config
                    .management_url
                    .clone()
                    .ok_or(ConfigError::Missing(vars::WEBSOCKET_MANAGEMENT_URL))?;
                let local = config.dynamodb_endpoint.is_some();
                app.connections = Some(Arc::new(ApiGatewayConnections::new(&url, local).await));
            }
            PushEndpoint::WsDisconnect => {}
        }
        Ok(app)
    }

    /// A push app over `store`, which keeps the calls and the directory
    /// alike (one table).
    pub fn new<S>(agents: AgentRules, store: Arc<S>, subscriptions: Arc<dyn Subscriptions>) -> Self
    where
        S: CallStore + Directory + 'static,
    {
        let directory: Arc<dyn Directory> = store.clone();
        Self {
            agents: Arc::new(agents),
            store,
            directory,
            subscriptions,
            keys: None,
            connections: None,
        }
    }

    /// Fixed keys (a local issuer's).
    pub fn with_verifier(self, verifier: Verifier) -> Self {
        self.with_keys(Keys::fixed(verifier))
    }

    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    pub fn with_connections(mut self, connections: Arc<dyn Connections>) -> Self {
        self.connections = Some(connections);
        self
    }

    /// Answers `$connect` or `$disconnect`.
    pub async fn handle_websocket(
        &self,
        endpoint: PushEndpoint,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> aws_lambda_events::apigw::ApiGatewayProxyResponse {
        // The span follows the future across its awaits (an entered guard
        // held over an `.await` would tag whatever else the thread runs).
        let name = endpoint.endpoint().function_name();
        let span = tracing::info_span!("request", endpoint = name);
        async {
            if endpoint == PushEndpoint::WsDisconnect {
                websocket::disconnect(self, event).await
            } else {
                websocket::connect(self, event).await
            }
        }
        .instrument(span)
        .await
    }

    /// Publishes one batch of the table's stream.
    pub async fn publish(&self, event: &Event) -> publisher::PublishReport {
        publisher::publish(self, event).await
    }

    /// Runs the Lambda runtime loop for one push function.
    pub async fn serve(self, endpoint: PushEndpoint) -> Result<(), lambda_runtime::Error> {
        match endpoint {
            // Each invocation works to a deadline before its Lambda timeout
            // (`time_budget`), as the HTTP functions do.
            PushEndpoint::StreamPublisher => {
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
                    let app = self.clone();
                    async move {
                        let deadline = endpoint.endpoint().deadline(Some(event.context.deadline));
                        let records = event.payload.records.len();
                        let report = time_budget::within(deadline, app.publish(&event.payload))
                            .await
                            .unwrap_or_else(|| {
                                // Not retried (frames would be sent twice): the
                                // consoles read their call when nothing comes.
                                tracing::warn!(records, "batch cut at its time budget");
                                publisher::PublishReport {
                                    records,
                                    ..publisher::PublishReport::default()
                                }
                            });
                        Ok::<_, std::convert::Infallible>(report)
                    }
                }))
                .await
            }
            PushEndpoint::WsConnect | PushEndpoint::WsDisconnect => {
                lambda_runtime::run(service_fn(
                    move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
                        let app = self.clone();
                        async move {
                            let deadline =
                                endpoint.endpoint().deadline(Some(event.context.deadline));
                            let work = app.handle_websocket(endpoint, &event.payload);
                            let response = time_budget::within(deadline, work)
                                .await
                                .unwrap_or_else(|| {
                                    tracing::warn!("out of time; the connection is refused");
                                    websocket::out_of_time()
                                });
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                ))
                .await
            }
        }
    }
}
