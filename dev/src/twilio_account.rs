//! A real Twilio account for the local stack (`run-local.sh --twilio`):
//! the settings, read from the environment or a git-ignored file, and the
//! start-up checks run before any call is placed. Each check that fails
//! says what to fix.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use url::Url;
use warm_transfer_core::config::{Config, TwilioCredentials, vars};
use warm_transfer_core::ids::{PhoneNumber, mask_numbers_in};
use warm_transfer_core::twilio::requests::{Repeat, RequestSpec};
use warm_transfer_core::twilio::{TwilioClient, TwilioClientConfig, TwilioError};

use crate::server::{PROBE_PATH, Tunnel};

/// Where the settings may be kept instead of the environment (git-ignored).
pub const SETTINGS_FILE: &str = "dev/twilio.env";

/// The variables a local run with a real account reads; the others are
/// the local stack's own.
pub const SETTINGS: &[&str] = &[
    vars::TWILIO_ACCOUNT_SID,
    vars::TWILIO_AUTH_TOKEN,
    vars::TWILIO_API_KEY_SID,
    vars::TWILIO_API_KEY_SECRET,
    vars::TWILIO_API_BASE_URL,
    vars::DEFAULT_CALLER_ID,
    vars::ALLOWED_DESTINATIONS,
    vars::BLOCKED_DESTINATIONS,
    vars::ALLOWED_CALLER_IDS,
];

/// The settings from `file` (`NAME=value` lines, `#` comments), then the
/// environment, which wins. Values are secrets: never printed.
pub fn read_settings(
    env: &HashMap<String, String>,
    file: &Path,
) -> Result<HashMap<String, String>, String> {
    let mut settings = HashMap::new();
    match std::fs::read_to_string(file) {
        Ok(text) => {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let Some((name, value)) = line.split_once('=') else {
                    return Err(format!(
                        "{} line {}: expected NAME=value",
                        file.display(),
                        n + 1
                    ));
                };
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                settings.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(format!("{}: {error}", file.display())),
    }
    for name in SETTINGS {
        if let Some(value) = env.get(*name).filter(|v| !v.trim().is_empty()) {
            settings.insert((*name).to_owned(), value.clone());
        }
    }
    Ok(settings)
}

/// A start-up check that failed: which, what is wrong, what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check} check failed: {problem}\n  fix: {fix}")]
pub struct CheckFailed {
    pub check: &'static str,
    pub problem: String,
    pub fix: String,
}

fn failed(check: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> CheckFailed {
    CheckFailed {
        check,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// `Trial` or `Full`, as the account resource says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Trial,
    Full,
}

/// What the checks found, for the run to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub kind: AccountKind,
    /// One line per check.
    pub lines: Vec<String>,
}

/// A number a call will be placed to, and whose it is (`agent`, `customer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub role: &'static str,
    pub number: PhoneNumber,
}

/// What the checks look at.
pub struct Checks<'a> {
    /// The user's configuration: credentials, caller ID, allow-list.
    pub config: &'a Config,
    pub numbers: &'a [Confirmed],
    /// The URL Twilio is to reach this server at.
    pub public_url: &'a Url,
    /// This server's side of the tunnel (see [`Tunnel`]).
    pub tunnel: &'a Tunnel,
}

pub fn fetch_account(account_sid: &str) -> RequestSpec {
    read(format!("/2010-04-01/Accounts/{account_sid}.json"), vec![])
}

pub fn list_incoming_numbers(account_sid: &str, number: &PhoneNumber) -> RequestSpec {
    let query = vec![("PhoneNumber".to_owned(), number.as_str().to_owned())];
    read(
        format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json"),
        query,
    )
}

pub fn list_outgoing_caller_ids(account_sid: &str, number: &PhoneNumber) -> RequestSpec {
    let query = vec![("PhoneNumber".to_owned(), number.as_str().to_owned())];
    read(
        format!("/2010-04-01/Accounts/{account_sid}/OutgoingCallerIds.json"),
        query,
    )
}

fn read(path: String, query: Vec<(String, String)>) -> RequestSpec {
    RequestSpec {
        method: Method::GET,
        path,
        query,
        form: Vec::new(),
        repeat: Repeat::Safe,
    }
}

#[derive(Deserialize)]
struct Account {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    friendly_name: Option<String>,
}

#[derive(Deserialize)]
struct Numbers {
    #[serde(alias = "incoming_phone_numbers", alias = "outgoing_caller_ids")]
    numbers: Vec<Value>,
}

type Value = serde_json::Value;

/// A client for the checks only: one quick attempt, no retries.
fn client(
    config: &Config,
    user: &str,
    password: warm_transfer_core::config::Secret,
) -> Result<TwilioClient, TwilioError> {
    let mut settings = TwilioClientConfig::from_config(config);
    settings.username = user.to_owned();
    settings.password = password;
    settings.timeout = Duration::from_secs(10);
    settings.retry.max_attempts = 1;
    TwilioClient::new(settings)
}

impl Checks<'_> {
    /// Every check in order; the first that fails stops the run.
    pub async fn run(&self) -> Result<Passed, CheckFailed> {
        let mut lines = Vec::new();
        let config = self.config;
        let sid = &config.twilio_account_sid;
        let rest = self.rest_client()?;

        // Credentials: the REST ones, then the auth token that signs webhooks.
        let account = self.fetch(&rest, sid, "credentials").await?;
        let name = account.friendly_name.clone().unwrap_or_default();
        match &config.twilio_credentials {
            TwilioCredentials::ApiKey { sid: key, .. } => {
                let token = self.token_client()?;
                self.fetch(&token, sid, "auth token").await?;
                lines.push(format!(
                    "credentials: API key {}… and the auth token accepted (account \"{name}\")",
                    &key[..6.min(key.len())]
                ));
            }
            TwilioCredentials::AuthToken => lines.push(format!(
                "credentials: auth token accepted (account \"{name}\"); an API key is preferred for REST: TWILIO_API_KEY_SID, TWILIO_API_KEY_SECRET"
            )),
        }
        if account.status.as_deref().is_some_and(|s| s != "active") {
            return Err(failed(
                "account",
                format!("the account is {}", account.status.unwrap_or_default()),
                "use an active account (Twilio Console, Account > General settings)",
            ));
        }

        let kind = match account.kind.as_deref() {
            Some("Trial") => AccountKind::Trial,
            _ => AccountKind::Full,
        };
        if kind == AccountKind::Trial {
            lines.push(
                "account: TRIAL. Twilio places calls only to numbers verified on the account, \
                 and plays a short trial message before each call: press a key to hear the call"
                    .to_owned(),
            );
        } else {
            lines.push("account: full (upgraded)".to_owned());
        }

        // The caller ID: a number of the account, or one verified on it.
        let caller = &config.default_caller_id;
        if self.owns(&rest, caller).await? {
            lines.push(format!(
                "caller ID {}: a number of the account",
                caller.masked()
            ));
        } else if self.verified(&rest, caller).await? {
            lines.push(format!(
                "caller ID {}: a verified caller ID",
                caller.masked()
            ));
        } else {
            return Err(failed(
                "caller ID",
                format!(
                    "{} ({}) is neither a number of this account nor a verified caller ID",
                    caller.masked(),
                    vars::DEFAULT_CALLER_ID
                ),
                format!(
                    "set {} to a number you bought (Phone Numbers > Manage > Active numbers) \
                     or verified (Verified Caller IDs) in the Twilio Console",
                    vars::DEFAULT_CALLER_ID
                ),
            ));
        }

        // The toll-fraud allow-list, as the product will apply it.
        for confirmed in self.numbers {
            if let Err(refused) = config.dial_policy.may_dial(&confirmed.number) {
                return Err(failed(
                    "allow-list",
                    format!("the {} number: {refused}", confirmed.role),
                    format!(
                        "add its country code (or the number) to {} (now {}), or remove it from {}",
                        vars::ALLOWED_DESTINATIONS,
                        prefixes(&config.dial_policy.destinations),
                        vars::BLOCKED_DESTINATIONS
                    ),
                ));
            }
        }
        lines.push(format!(
            "allow-list ({}): {} allowed",
            prefixes(&config.dial_policy.destinations),
            self.roles()
        ));

        // A trial account calls verified numbers only.
        if kind == AccountKind::Trial {
            for confirmed in self.numbers {
                let number = &confirmed.number;
                if !self.verified(&rest, number).await? && !self.owns(&rest, number).await? {
                    return Err(failed(
                        "trial account",
                        format!(
                            "the {} number {} is not verified on this trial account",
                            confirmed.role,
                            number.masked()
                        ),
                        "verify it in the Twilio Console (Phone Numbers > Manage > Verified Caller IDs), \
                         or upgrade the account",
                    ));
                }
            }
            lines.push(format!("trial account: {} verified", self.roles()));
        }

        self.reach().await?;
        lines.push(format!(
            "public URL {}: reaches this server",
            self.public_url.as_str().trim_end_matches('/')
        ));
        Ok(Passed { kind, lines })
    }

    fn roles(&self) -> String {
        let roles: Vec<String> = self
            .numbers
            .iter()
            .map(|c| format!("{} {}", c.role, c.number.masked()))
            .collect();
        roles.join(", ")
    }

    fn rest_client(&self) -> Result<TwilioClient, CheckFailed> {
        let config = self.config;
        let (user, password) = match &config.twilio_credentials {
            TwilioCredentials::ApiKey { sid, secret } => (sid.clone(), secret.clone()),
            TwilioCredentials::AuthToken => (
                config.twilio_account_sid.clone(),
                config.twilio_auth_token.clone(),
            ),
        };
        client(config, &user, password)
            .map_err(|e| failed("credentials", e.to_string(), "see the error"))
    }

    fn token_client(&self) -> Result<TwilioClient, CheckFailed> {
        let config = self.config;
        client(
            config,
            &config.twilio_account_sid,
            config.twilio_auth_token.clone(),
        )
        .map_err(|e| failed("auth token", e.to_string(), "see the error"))
    }

    async fn fetch(
        &self,
        client: &TwilioClient,
        sid: &str,
        check: &'static str,
    ) -> Result<Account, CheckFailed> {
        let fix = match check {
            "auth token" => format!(
                "set {} to the account's auth token (Twilio Console, Account > API keys & tokens): \
                 Twilio signs webhooks with it",
                vars::TWILIO_AUTH_TOKEN
            ),
            _ => format!(
                "check {} and {} (an API key of this account), or {}",
                vars::TWILIO_API_KEY_SID,
                vars::TWILIO_API_KEY_SECRET,
                vars::TWILIO_AUTH_TOKEN
            ),
        };
        match client.send(&fetch_account(sid)).await {
            Ok(body) => serde_json::from_slice(&body)
                .map_err(|e| failed(check, format!("unexpected answer: {e}"), "try again")),
            Err(TwilioError::Api {
                status: 401 | 403, ..
            }) => Err(failed(
                check,
                format!("Twilio refused them for account {} (401)", sid),
                fix,
            )),
            Err(TwilioError::Api { status: 404, .. }) => Err(failed(
                check,
                format!("no account {sid} for these credentials (404)"),
                format!(
                    "check {} (Twilio Console, Account info)",
                    vars::TWILIO_ACCOUNT_SID
                ),
            )),
            Err(other) => Err(failed(
                check,
                other.to_string(),
                format!(
                    "check the network to Twilio ({})",
                    vars::TWILIO_API_BASE_URL
                ),
            )),
        }
    }

    async fn owns(&self, client: &TwilioClient, number: &PhoneNumber) -> Result<bool, CheckFailed> {
        let spec = list_incoming_numbers(&self.config.twilio_account_sid, number);
        self.any(client, spec).await
    }

    async fn verified(
        &self,
        client: &TwilioClient,
        number: &PhoneNumber,
    ) -> Result<bool, CheckFailed> {
        let spec = list_outgoing_caller_ids(&self.config.twilio_account_sid, number);
        self.any(client, spec).await
    }

    async fn any(&self, client: &TwilioClient, spec: RequestSpec) -> Result<bool, CheckFailed> {
        let body = client
            .send(&spec)
            .await
            .map_err(|e| failed("numbers", e.to_string(), "try again"))?;
        let listed: Numbers = serde_json::from_slice(&body)
            .map_err(|e| failed("numbers", format!("unexpected answer: {e}"), "try again"))?;
        Ok(!listed.numbers.is_empty())
    }

    /// A request through the public URL carrying a one-time nonce must
    /// arrive here: the tunnel leads to this very server.
    async fn reach(&self) -> Result<(), CheckFailed> {
        let nonce = self.tunnel.expect();
        let url = format!(
            "{}{PROBE_PATH}{nonce}",
            self.public_url.as_str().trim_end_matches('/')
        );
        let fix = "start the tunnel to this server's port and pass its https URL as --public-url \
                   (docs/try-with-twilio.md, \"The tunnel\")";
        let answer = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| failed("public URL", e.to_string(), fix))?
            .get(&url)
            .send()
            .await;
        let shown = self.public_url.as_str().trim_end_matches('/');
        match answer {
            Ok(_) if self.tunnel.arrived(&nonce) => Ok(()),
            Ok(response) => Err(failed(
                "public URL",
                format!(
                    "{shown} answered {} but the request never reached this server",
                    response.status()
                ),
                fix,
            )),
            Err(error) => Err(failed(
                "public URL",
                format!("{shown} cannot be reached: {}", error.without_url()),
                fix,
            )),
        }
    }
}

fn prefixes(list: &[warm_transfer_core::domain::NumberPrefix]) -> String {
    // A prefix may be a whole number: masked like one.
    let shown: Vec<String> = list
        .iter()
        .map(|p| mask_numbers_in(p.as_str()).into_owned())
        .collect();
    shown.join(",")
}
