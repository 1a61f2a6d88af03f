//! The application: the configuration and clients built once per cold
//! start, which every handler is given (the dispatch is in `router`).

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::Request;

use super::webhook_urls::WebhookUrls;
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::metrics::{self};
use crate::public_url;
use crate::secrets::{self, SecretKeeper, Secrets, SecretsManagerSource};
use crate::store::{CallStore, Directory, DynamoStore};
use crate::twilio::TwilioClient;
use crate::usecases::Services;
use crate::usecases::metered::Metered;
use crate::web::ApiError;

/// Everything a handler needs, shared by all invocations of a warm Lambda.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) services: Services,
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
        let Some(source) = &secret else {
            return Self::started(Config::from_map(&env)?, None).await;
        };
        // The DynamoDB client needs nothing from the secret: it is built
        // while the secret is read, its set-up (the SDK parses its endpoint
        // rules at the first client, milliseconds of CPU) in the time the
        // read waits on the network, over the secret's HTTP client (one TLS
        // set-up for both). A configuration that does not parse is reported
        // below, as without a secret.
        let early = Config::from_map_without_secrets(&env).ok().map(|config| {
            let endpoint = config.dynamodb_endpoint;
            let (built, http) = (endpoint.clone(), source.http_client());
            let client = tokio::spawn(async move {
                match http {
                    Some(http) => DynamoStore::client_over(built.as_ref(), http).await,
                    None => DynamoStore::client_for(built.as_ref()).await,
                }
            });
            (endpoint, client)
        });
        secrets::merge_into_env(&mut env, source).await?;
        let config = Config::from_map(&env)?;
        let dynamodb = match early {
            Some((endpoint, client)) if endpoint == config.dynamodb_endpoint => client.await.ok(),
            _ => None,
        };
        Self::started_with(config, dynamodb, secret).await
    }

    async fn started(
        config: Config,
        secret: Option<SecretsManagerSource>,
    ) -> Result<Self, StartupError> {
        Self::started_with(config, None, secret).await
    }

    /// With the DynamoDB client, when it was built already.
    async fn started_with(
        config: Config,
        dynamodb: Option<aws_sdk_dynamodb::Client>,
        secret: Option<SecretsManagerSource>,
    ) -> Result<Self, StartupError> {
        metrics::set_namespace(&config.metrics_namespace);
        let dynamodb = match dynamodb {
            Some(client) => client,
            None => DynamoStore::client_from_config(&config).await,
        };
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

    /// The application over `store`, which keeps the calls and the
    /// directory alike (one table).
    pub fn new<S>(config: Config, store: Arc<S>, twilio: TwilioClient) -> Self
    where
        S: CallStore + Directory + 'static,
    {
        let directory: Arc<dyn Directory> = store.clone();
        Self {
            secrets: Arc::new(SecretKeeper::fixed(Secrets::from_config(&config))),
            config: Arc::new(config),
            // Every change's milestones counted once, whichever store.
            services: Services {
                store: Arc::new(Metered::new(store)),
                directory,
                twilio,
            },
        }
    }

    /// Puts a re-read secret in force once it is due (see `secrets`).
    pub async fn refresh_secrets(&self) {
        if let Some(fresh) = self.secrets.refresh_if_due().await {
            let (user, password) = fresh.rest_credentials(&self.config.twilio_account_sid);
            self.services.twilio.set_credentials(user, password);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store and Twilio client the use cases act through.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The call `sid` as stored, or the API's 404.
    pub(crate) async fn stored_call(
        &self,
        sid: &crate::ids::CallSid,
    ) -> Result<crate::domain::CallSession, ApiError> {
        self.services
            .store
            .get_session(sid)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no call {sid}")))
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

    pub(super) fn urls_from_signed(&self, req: &Request, signed_url: &str) -> WebhookUrls {
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
