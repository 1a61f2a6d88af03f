//! The HTTP client: built once per cold start, shared by every invocation.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use super::error::TwilioError;
use super::requests::{self, Repeat, RequestSpec};
use super::types::*;
use crate::config::{Config, Secret, TwilioCredentials};
use crate::ids::CallSid;

/// The shortest time worth starting a retry in: a Twilio request takes
/// 100-300 ms when all is well.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// Bounded retries with full-jitter exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay);
        // Twilio's Retry-After is honoured, within our own bound.
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        ceiling.mul_f64(rand::random::<f64>())
    }
}

#[derive(Debug, Clone)]
pub struct TwilioClientConfig {
    pub api_base_url: Url,
    pub account_sid: String,
    /// Basic-auth user and password: account SID + auth token, or API key + secret.
    pub username: String,
    pub password: Secret,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl TwilioClientConfig {
    pub fn from_config(config: &Config) -> Self {
        let (username, password) = match &config.twilio_credentials {
            TwilioCredentials::AuthToken => (
                config.twilio_account_sid.clone(),
                config.twilio_auth_token.clone(),
            ),
            TwilioCredentials::ApiKey { sid, secret } => (sid.clone(), secret.clone()),
        };
        Self {
            api_base_url: config.twilio_api_base_url.clone(),
            account_sid: config.twilio_account_sid.clone(),
            username,
            password,
            timeout: config.twilio_timeout,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct TwilioClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: TwilioClientConfig,
    base: String,
    /// `config.username` and `password` until a rotated secret replaces them.
    credentials: std::sync::RwLock<(String, Secret)>,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base", &self.inner.base)
            .field("account_sid", &self.inner.config.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    pub fn new(config: TwilioClientConfig) -> Result<Self, TwilioError> {
        crate::https::install_crypto_provider();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::https::reqwest_tls())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("warm-transfer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Config(e.to_string()))?;
        let base = config
            .api_base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                credentials: std::sync::RwLock::new((
                    config.username.clone(),
                    config.password.clone(),
                )),
                config,
                base,
            }),
        })
    }

    pub fn from_config(config: &Config) -> Result<Self, TwilioError> {
        Self::new(TwilioClientConfig::from_config(config))
    }

    /// REST credentials from a re-read secret, for every clone of this client.
    pub fn set_credentials(&self, username: String, password: Secret) {
        *self
            .inner
            .credentials
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (username, password);
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.config.account_sid
    }

    /// Sends one request, retrying only where that cannot cause a second effect.
    pub async fn send(&self, spec: &RequestSpec) -> Result<Vec<u8>, TwilioError> {
        let policy = self.inner.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (result, retry_after, reached_twilio) = self.send_once(spec).await;
            let error = match result {
                Ok(body) => return Ok(body),
                Err(error) => error,
            };
            // One failed attempt, by kind.
            crate::metrics::count(
                crate::metrics::Metric::TwilioErrors,
                Some(("Kind", error.kind())),
            );
            let may_repeat = match spec.repeat {
                Repeat::Safe => error.is_retryable(),
                // A dial that may have reached Twilio is never sent again.
                Repeat::Once => !reached_twilio,
            };
            if !may_repeat || attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = policy.delay(attempt - 1, retry_after);
            // A retry that cannot finish before the invocation's deadline
            // is not started (see `time_budget`).
            if crate::time_budget::too_late_for(delay + MIN_ATTEMPT) {
                return Err(error);
            }
            crate::metrics::count(crate::metrics::Metric::TwilioRetries, None);
            tracing::warn!(%error, attempt, ?delay, path = %spec.path, "retrying Twilio request");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: the outcome, Twilio's Retry-After, and whether the request
    /// may have reached Twilio.
    async fn send_once(
        &self,
        spec: &RequestSpec,
    ) -> (Result<Vec<u8>, TwilioError>, Option<Duration>, bool) {
        let inner = &self.inner;
        let (username, password) = inner
            .credentials
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut request = inner
            .http
            .request(spec.method.clone(), format!("{}{}", inner.base, spec.path))
            .timeout(crate::time_budget::capped(inner.config.timeout))
            .basic_auth(&username, Some(password.expose()));
        if !spec.query.is_empty() {
            request = request.query(&spec.query);
        }
        if !spec.form.is_empty() || spec.method == http::Method::POST {
            request = request.form(&spec.form);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let reached = !error.is_connect();
                let error = if error.is_timeout() {
                    TwilioError::Timeout(inner.config.timeout)
                } else {
                    TwilioError::Connection(without_url(&error))
                };
                return (Err(error), None, reached);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(error) if error.is_timeout() => {
                return (Err(TwilioError::Timeout(inner.config.timeout)), None, true);
            }
            Err(error) => {
                return (
                    Err(TwilioError::Connection(without_url(&error))),
                    None,
                    true,
                );
            }
        };
        if status.is_success() {
            (Ok(body), None, true)
        } else {
            (
                Err(TwilioError::from_response(status.as_u16(), &body)),
                retry_after,
                true,
            )
        }
    }

    async fn json<T: DeserializeOwned>(&self, spec: RequestSpec) -> Result<T, TwilioError> {
        let body = self.send(&spec).await?;
        serde_json::from_slice(&body).map_err(TwilioError::decode)
    }

    pub async fn create_call(&self, call: &CreateCall) -> Result<Call, TwilioError> {
        self.json(requests::create_call(self.account_sid(), call))
            .await
    }

    pub async fn update_call(
        &self,
        sid: &CallSid,
        update: &UpdateCall,
    ) -> Result<Call, TwilioError> {
        self.json(requests::update_call(self.account_sid(), sid, update))
            .await
    }

    /// Moves a live call to new TwiML.
    pub async fn redirect_call(&self, sid: &CallSid, url: &str) -> Result<Call, TwilioError> {
        let update = UpdateCall {
            url: Some(url.to_owned()),
            method: Some(HttpMethod::Post),
            ..UpdateCall::default()
        };
        self.update_call(sid, &update).await
    }

    /// Hangs up a call in progress (`Status=completed`).
    pub async fn hang_up_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let update = UpdateCall {
            status: Some(UpdateCallStatus::Completed),
            ..UpdateCall::default()
        };
        self.update_call(sid, &update).await
    }

    /// Cancels a call still queued or ringing (`Status=canceled`).
    pub async fn cancel_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let update = UpdateCall {
            status: Some(UpdateCallStatus::Canceled),
            ..UpdateCall::default()
        };
        self.update_call(sid, &update).await
    }

    /// Ends a call whatever its state: cancel (ringing), then hang up (answered).
    pub async fn end_call(&self, sid: &CallSid) -> Result<(), TwilioError> {
        let cancelled = self.cancel_call(sid).await;
        match self.hang_up_call(sid).await {
            Ok(_) => Ok(()),
            Err(_) if cancelled.is_ok() => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.json(requests::fetch_call(self.account_sid(), sid))
            .await
    }

    pub async fn list_calls(&self, filter: &ListCalls) -> Result<Vec<Call>, TwilioError> {
        let page: CallPage = self
            .json(requests::list_calls(self.account_sid(), filter))
            .await?;
        Ok(page.calls)
    }

    pub async fn create_participant(
        &self,
        conference: &ConferenceRef,
        participant: &CreateParticipant,
    ) -> Result<Participant, TwilioError> {
        self.json(requests::create_participant(
            self.account_sid(),
            conference,
            participant,
        ))
        .await
    }

    pub async fn update_participant(
        &self,
        conference_sid: &str,
        participant: &str,
        update: &UpdateParticipant,
    ) -> Result<Participant, TwilioError> {
        self.json(requests::update_participant(
            self.account_sid(),
            conference_sid,
            participant,
            update,
        ))
        .await
    }

    pub async fn fetch_participant(
        &self,
        conference_sid: &str,
        participant: &str,
    ) -> Result<Participant, TwilioError> {
        self.json(requests::fetch_participant(
            self.account_sid(),
            conference_sid,
            participant,
        ))
        .await
    }

    /// Everyone in a room now, ringing participants included (one page of
    /// up to `PageSize`; a room of this product holds at most four).
    pub async fn list_participants(
        &self,
        conference_sid: &str,
    ) -> Result<Vec<Participant>, TwilioError> {
        let page: ParticipantPage = self
            .json(requests::list_participants(
                self.account_sid(),
                conference_sid,
                Some(50),
            ))
            .await?;
        Ok(page.participants)
    }

    pub async fn end_conference(&self, conference_sid: &str) -> Result<(), TwilioError> {
        self.send(&requests::end_conference(
            self.account_sid(),
            conference_sid,
        ))
        .await
        .map(|_| ())
    }

    pub async fn list_conferences(
        &self,
        filter: &ListConferences,
    ) -> Result<Vec<Conference>, TwilioError> {
        let page: ConferencePage = self
            .json(requests::list_conferences(self.account_sid(), filter))
            .await?;
        Ok(page.conferences)
    }
}

/// reqwest's message without the URL (which may name the account).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<twilio>");
    }
    text
}
