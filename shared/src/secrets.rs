//! The secret values: the Twilio auth token (and during a rotation the
//! secondary one), the API key (SID and secret, kept together so a new key
//! replaces the old one at once). Agents sign in instead of sharing a token.
//!
//! In AWS they are the fields of one Secrets Manager secret, a JSON object
//! whose keys are the names in [`FIELDS`], named by `SECRET_ARN`. It is read
//! at cold start, where a missing or malformed secret stops start-up, and
//! again once [`REFRESH_AFTER`] has passed, so that a rotated token reaches
//! warm functions without a redeploy.
//!
//! Local runs and tests have no AWS account: with no `SECRET_ARN` the same
//! names are read from the environment (local only). With `SECRET_ARN` set,
//! any of them in the environment is refused, so a deployed function never
//! takes a secret from its configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use crate::config::{Config, Secret, TwilioCredentials, vars};

/// The secret's fields: the same names as the local environment variables.
pub const FIELDS: &[&str] = &[
    vars::TWILIO_AUTH_TOKEN,
    vars::TWILIO_AUTH_TOKEN_SECONDARY,
    vars::TWILIO_API_KEY_SID,
    vars::TWILIO_API_KEY_SECRET,
];

/// Fields a secret must have.
const REQUIRED: &[&str] = &[vars::TWILIO_AUTH_TOKEN];

/// How long a warm function trusts what it read: the longest a rotation
/// waits between updating the secret and promoting the token at Twilio.
pub const REFRESH_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id} could not be read: {reason}")]
    Unreadable { id: String, reason: String },
    #[error("secret {id} is malformed: {reason}")]
    Malformed { id: String, reason: String },
    #[error(
        "{name} is set in the environment while SECRET_ARN is set: deployed functions read secrets from the secret only (the variable is for local runs)"
    )]
    InEnvironment { name: &'static str },
}

/// The values in force. `Debug` shows none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub twilio_auth_token: Secret,
    /// Present during a rotation: webhooks signed with it are accepted too.
    pub twilio_auth_token_secondary: Option<Secret>,
    /// REST credentials when an API key is used: its SID and secret.
    pub twilio_api_key: Option<(String, Secret)>,
}

impl Secrets {
    /// The values a configuration was loaded with.
    pub fn from_config(config: &Config) -> Self {
        Self {
            twilio_auth_token: config.twilio_auth_token.clone(),
            twilio_auth_token_secondary: config.twilio_auth_token_secondary.clone(),
            twilio_api_key: match &config.twilio_credentials {
                TwilioCredentials::ApiKey { sid, secret } => Some((sid.clone(), secret.clone())),
                TwilioCredentials::AuthToken => None,
            },
        }
    }

    /// The tokens a webhook's signature may be made with, primary first.
    /// An empty token is none: anyone can sign with it (a function that
    /// reads no secret holds one, `Config::from_map_without_secrets`).
    pub fn signing_tokens(&self) -> Vec<&str> {
        std::iter::once(&self.twilio_auth_token)
            .chain(&self.twilio_auth_token_secondary)
            .map(Secret::expose)
            .filter(|token| !token.is_empty())
            .collect()
    }

    /// User and password for Twilio's REST API: the API key when there is
    /// one, else the account SID and the auth token.
    pub fn rest_credentials(&self, account_sid: &str) -> (String, Secret) {
        match &self.twilio_api_key {
            Some((sid, secret)) => (sid.clone(), secret.clone()),
            None => (account_sid.to_owned(), self.twilio_auth_token.clone()),
        }
    }

    /// From fields [`parse`] accepted.
    fn from_fields(fields: &HashMap<String, String>) -> Self {
        let get = |name: &str| fields.get(name).map(Secret::new);
        let required = |name: &str| get(name).unwrap_or_else(|| Secret::new(""));
        Self {
            twilio_auth_token: required(vars::TWILIO_AUTH_TOKEN),
            twilio_auth_token_secondary: get(vars::TWILIO_AUTH_TOKEN_SECONDARY),
            twilio_api_key: fields
                .get(vars::TWILIO_API_KEY_SID)
                .cloned()
                .zip(get(vars::TWILIO_API_KEY_SECRET)),
        }
    }
}

/// Checks a secret's text: a JSON object of non-empty strings, known names
/// only, the required ones present. Returns its fields.
pub fn parse(id: &str, text: &str) -> Result<HashMap<String, String>, SecretError> {
    let malformed = |reason: String| SecretError::Malformed {
        id: id.to_owned(),
        reason,
    };
    // serde_json's message gives the position only, never the text.
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| malformed(format!("not a JSON object of strings ({e})")))?;
    let mut fields = HashMap::new();
    for (name, value) in object {
        if !FIELDS.contains(&name.as_str()) {
            return Err(malformed(format!(
                "unknown field {name} (expected {})",
                FIELDS.join(", ")
            )));
        }
        let value = value
            .as_str()
            .map(str::trim)
            .ok_or_else(|| malformed(format!("field {name} is not a string")))?;
        if !value.is_empty() {
            fields.insert(name, value.to_owned());
        }
    }
    for name in REQUIRED {
        if !fields.contains_key(*name) {
            return Err(malformed(format!("field {name} is missing or empty")));
        }
    }
    let key_sid = fields.get(vars::TWILIO_API_KEY_SID);
    match (key_sid, fields.get(vars::TWILIO_API_KEY_SECRET)) {
        (Some(sid), Some(_)) if !is_api_key_sid(sid) => Err(malformed(format!(
            "field {} must be SK followed by 32 hexadecimal digits",
            vars::TWILIO_API_KEY_SID
        ))),
        (Some(_), None) | (None, Some(_)) => Err(malformed(format!(
            "fields {} and {} go together",
            vars::TWILIO_API_KEY_SID,
            vars::TWILIO_API_KEY_SECRET
        ))),
        _ => Ok(fields),
    }
}

fn is_api_key_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("SK") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The secret named by `SECRET_ARN`, in Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
    id: String,
}

impl SecretsManagerSource {
    pub fn new(client: Client, id: impl Into<String>) -> Self {
        Self {
            client,
            id: id.into(),
        }
    }

    /// A client from the shared AWS configuration, with short timeouts so a
    /// cold start never hangs on Secrets Manager.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, id: impl Into<String>) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_secs(3))
            .build();
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self::new(Client::from_conf(config), id)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The HTTP client the reads go through, for the other AWS clients of
    /// the process to share.
    pub fn http_client(&self) -> Option<aws_sdk_secretsmanager::config::SharedHttpClient> {
        self.client.config().http_client()
    }

    /// One `GetSecretValue` of the current version, checked by [`parse`].
    pub async fn read(&self) -> Result<HashMap<String, String>, SecretError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.id)
            .send()
            .await
            .map_err(|e| SecretError::Unreadable {
                id: self.id.clone(),
                // The service's own code and message (AccessDenied names the
                // missing permission); the whole chain for a network failure.
                reason: match e.as_service_error() {
                    Some(service) => format!(
                        "{}: {}",
                        service.code().unwrap_or("error"),
                        service.message().unwrap_or("no message")
                    ),
                    None => aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                },
            })?;
        let text = answer
            .secret_string()
            .ok_or_else(|| SecretError::Malformed {
                id: self.id.clone(),
                reason: "it holds binary data, not a JSON string".to_owned(),
            })?;
        parse(&self.id, text)
    }
}

/// The secret `SECRET_ARN` names in a function's environment, if any.
pub fn secret_id(env: &HashMap<String, String>) -> Option<&str> {
    env.get(vars::SECRET_ARN)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Adds the secret's fields to a function's environment, refusing secret
/// variables already there, so the configuration reads one set of names
/// wherever the values come from.
pub async fn merge_into_env(
    env: &mut HashMap<String, String>,
    source: &SecretsManagerSource,
) -> Result<(), SecretError> {
    if let Some(name) = FIELDS
        .iter()
        .find(|name| env.get(**name).is_some_and(|v| !v.trim().is_empty()))
    {
        return Err(SecretError::InEnvironment { name });
    }
    env.extend(source.read().await?);
    Ok(())
}

/// The secrets in force for a warm function, re-read from their source once
/// [`REFRESH_AFTER`] has passed. A failed re-read keeps the values in force
/// (they were valid at cold start) and is tried again after the same wait.
pub struct SecretKeeper {
    current: RwLock<Arc<Secrets>>,
    refresh: Option<Refresh>,
}

struct Refresh {
    source: SecretsManagerSource,
    refresh_after: Duration,
    due: Mutex<Instant>,
}

impl SecretKeeper {
    /// Values that never change (local runs, tests).
    pub fn fixed(secrets: Secrets) -> Self {
        Self {
            current: RwLock::new(Arc::new(secrets)),
            refresh: None,
        }
    }

    /// Values read from `source` at start, re-read every `refresh_after`
    /// ([`REFRESH_AFTER`] in the functions).
    pub fn refreshed(
        source: SecretsManagerSource,
        config: &Config,
        refresh_after: Duration,
    ) -> Self {
        Self {
            current: RwLock::new(Arc::new(Secrets::from_config(config))),
            refresh: Some(Refresh {
                source,
                refresh_after,
                due: Mutex::new(Instant::now() + refresh_after),
            }),
        }
    }

    pub fn current(&self) -> Arc<Secrets> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the secret if it is due; returns the new values when they
    /// changed.
    pub async fn refresh_if_due(&self) -> Option<Arc<Secrets>> {
        let refresh = self.refresh.as_ref()?;
        {
            let mut due = refresh.due.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if now < *due {
                return None;
            }
            *due = now + refresh.refresh_after;
        }
        let fields = match refresh.source.read().await {
            Ok(fields) => fields,
            Err(error) => {
                crate::metrics::count(crate::metrics::Metric::SecretRefreshFailures, None);
                tracing::warn!(%error, "secret not refreshed; the values read before stay in force");
                return None;
            }
        };
        let fresh = Secrets::from_fields(&fields);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if **current == fresh {
            return None;
        }
        tracing::info!(
            secret = refresh.source.id(),
            "secret changed; new values in force"
        );
        *current = Arc::new(fresh);
        Some(current.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_what_is_wrong_and_never_the_value() {
        let ok = r#"{"TWILIO_AUTH_TOKEN":"t1","TWILIO_API_KEY_SECRET":"k","TWILIO_API_KEY_SID":"SK00000000000000000000000000000000","TWILIO_AUTH_TOKEN_SECONDARY":""}"#;
        let fields = parse("s", ok).unwrap();
        assert_eq!(fields.len(), 3, "empty fields count as absent");
        for (text, expected) in [
            ("not json secret-text", "not a JSON object"),
            (r#"["TWILIO_AUTH_TOKEN"]"#, "not a JSON object"),
            (
                r#"{"TWILIO_AUTH_TOKEN_SECONDARY":"a"}"#,
                "TWILIO_AUTH_TOKEN is missing",
            ),
            (
                r#"{"TWILIO_AUTH_TOKEN":"t","TWILIO_AUTH_TOKEN_SECONDARY":1}"#,
                "TWILIO_AUTH_TOKEN_SECONDARY is not a string",
            ),
            // The shared front-end token is gone: agents sign in.
            (
                r#"{"TWILIO_AUTH_TOKEN":"t","API_TOKEN":"a"}"#,
                "unknown field API_TOKEN",
            ),
            (
                r#"{"TWILIO_AUTH_TOKEN":"t","OTHER":"x"}"#,
                "unknown field OTHER",
            ),
            (
                r#"{"TWILIO_AUTH_TOKEN":"t","TWILIO_API_KEY_SID":"SK00000000000000000000000000000000"}"#,
                "go together",
            ),
            (
                r#"{"TWILIO_AUTH_TOKEN":"t","TWILIO_API_KEY_SID":"SK1","TWILIO_API_KEY_SECRET":"secret-text"}"#,
                "must be SK followed by 32",
            ),
        ] {
            let error = parse("arn:secret", text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("arn:secret"), "{error}");
            assert!(!error.contains("secret-text"), "{error}");
        }
    }

    #[test]
    fn secondary_token_signs_after_the_primary() {
        let secrets = Secrets {
            twilio_auth_token: Secret::new("one"),
            twilio_auth_token_secondary: Some(Secret::new("two")),
            twilio_api_key: None,
        };
        assert_eq!(secrets.signing_tokens(), ["one", "two"]);
        assert!(!format!("{secrets:?}").contains("two"));
    }
}
