//! Configuration, read once per cold start from the environment.
//!
//! A missing or malformed variable stops start-up with an error naming it,
//! so a misconfigured stack fails at deploy time rather than on a live call.
//! Secrets are wrapped in [`Secret`], whose `Debug` never shows the value.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use url::Url;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::auth::{AgentRules, ConsoleSignIn};
use crate::domain::{DialPolicy, NumberPrefix, TeamName};
use crate::ids::PhoneNumber;

/// Every environment variable the functions read, in one place so the SAM
/// template can be checked against it.
pub mod vars {
    pub const TWILIO_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
    pub const TWILIO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
    pub const TWILIO_AUTH_TOKEN_SECONDARY: &str = "TWILIO_AUTH_TOKEN_SECONDARY";
    pub const TWILIO_API_KEY_SID: &str = "TWILIO_API_KEY_SID";
    pub const TWILIO_API_KEY_SECRET: &str = "TWILIO_API_KEY_SECRET";
    pub const TWILIO_API_BASE_URL: &str = "TWILIO_API_BASE_URL";
    pub const TWILIO_TIMEOUT_MS: &str = "TWILIO_TIMEOUT_MS";
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const DYNAMODB_ENDPOINT: &str = "DYNAMODB_ENDPOINT";
    pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
    pub const DEFAULT_CALLER_ID: &str = "DEFAULT_CALLER_ID";
    pub const CORS_ALLOW_ORIGIN: &str = "CORS_ALLOW_ORIGIN";
    pub const TRANSFER_RING_TIMEOUT_SECS: &str = "TRANSFER_RING_TIMEOUT_SECS";
    pub const SESSION_TTL_HOURS: &str = "SESSION_TTL_HOURS";
    /// How long a call's history (its audit trail) is kept.
    pub const HISTORY_TTL_DAYS: &str = "HISTORY_TTL_DAYS";
    pub const HOLD_MUSIC_URL: &str = "HOLD_MUSIC_URL";
    pub const CUSTOMER_FALLBACK: &str = "CUSTOMER_FALLBACK";
    /// The Secrets Manager secret holding the secret values (see `secrets`).
    pub const SECRET_ARN: &str = "SECRET_ARN";
    /// CloudWatch namespace of the functions' EMF metrics.
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    pub const RECORDING: &str = "RECORDING";
    pub const AGENT_ID_CLAIM: &str = "AGENT_ID_CLAIM";
    pub const AGENT_NUMBERS_CLAIM: &str = "AGENT_NUMBERS_CLAIM";
    pub const AGENT_GROUPS_CLAIM: &str = "AGENT_GROUPS_CLAIM";
    pub const SUPERVISOR_GROUP: &str = "SUPERVISOR_GROUP";
    pub const AGENT_NUMBERS: &str = "AGENT_NUMBERS";
    /// Teams: the groups with this prefix, and a static mapping.
    pub const TEAM_GROUP_PREFIX: &str = "TEAM_GROUP_PREFIX";
    pub const TEAMS: &str = "TEAMS";
    /// A team transfer's limits: members rung, seconds spent.
    pub const TEAM_MAX_MEMBERS: &str = "TEAM_MAX_MEMBERS";
    pub const TEAM_MAX_SECONDS: &str = "TEAM_MAX_SECONDS";
    /// Customers calling in: which team each of the centre's numbers
    /// reaches, what they hear first, how long they wait, and where they
    /// go when nobody answers in time.
    pub const INBOUND_NUMBERS: &str = "INBOUND_NUMBERS";
    pub const INBOUND_GREETING: &str = "INBOUND_GREETING";
    pub const INBOUND_MAX_WAIT_SECS: &str = "INBOUND_MAX_WAIT_SECS";
    pub const INBOUND_FALLBACK: &str = "INBOUND_FALLBACK";
    pub const CONSOLE_CLIENT_ID: &str = "CONSOLE_CLIENT_ID";
    pub const CONSOLE_AUTHORIZE_URL: &str = "CONSOLE_AUTHORIZE_URL";
    pub const CONSOLE_TOKEN_URL: &str = "CONSOLE_TOKEN_URL";
    /// The WebSocket API's URL the console subscribes at (`wss://...`).
    pub const CONSOLE_PUSH_URL: &str = "CONSOLE_PUSH_URL";
    /// The push functions' own (see `push::config`).
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    pub const JWKS_URL: &str = "JWKS_URL";
    pub const WEBSOCKET_MANAGEMENT_URL: &str = "WEBSOCKET_MANAGEMENT_URL";
    /// The toll-fraud guard (`domain::DialPolicy`).
    pub const ALLOWED_DESTINATIONS: &str = "ALLOWED_DESTINATIONS";
    pub const BLOCKED_DESTINATIONS: &str = "BLOCKED_DESTINATIONS";
    pub const ALLOWED_CALLER_IDS: &str = "ALLOWED_CALLER_IDS";
    pub const AGENT_DIALS_PER_MINUTE: &str = "AGENT_DIALS_PER_MINUTE";

    /// All of them, for the template consistency test.
    pub const ALL: &[&str] = &[
        TWILIO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN,
        TWILIO_AUTH_TOKEN_SECONDARY,
        TWILIO_API_KEY_SID,
        TWILIO_API_KEY_SECRET,
        TWILIO_API_BASE_URL,
        TWILIO_TIMEOUT_MS,
        TABLE_NAME,
        DYNAMODB_ENDPOINT,
        PUBLIC_BASE_URL,
        DEFAULT_CALLER_ID,
        CORS_ALLOW_ORIGIN,
        TRANSFER_RING_TIMEOUT_SECS,
        SESSION_TTL_HOURS,
        HISTORY_TTL_DAYS,
        HOLD_MUSIC_URL,
        CUSTOMER_FALLBACK,
        SECRET_ARN,
        METRICS_NAMESPACE,
        RECORDING,
        AGENT_ID_CLAIM,
        AGENT_NUMBERS_CLAIM,
        AGENT_GROUPS_CLAIM,
        SUPERVISOR_GROUP,
        AGENT_NUMBERS,
        TEAM_GROUP_PREFIX,
        TEAMS,
        TEAM_MAX_MEMBERS,
        TEAM_MAX_SECONDS,
        INBOUND_NUMBERS,
        INBOUND_GREETING,
        INBOUND_MAX_WAIT_SECS,
        INBOUND_FALLBACK,
        CONSOLE_CLIENT_ID,
        CONSOLE_AUTHORIZE_URL,
        CONSOLE_TOKEN_URL,
        CONSOLE_PUSH_URL,
        JWT_ISSUER,
        JWT_AUDIENCE,
        JWKS_URL,
        WEBSOCKET_MANAGEMENT_URL,
        ALLOWED_DESTINATIONS,
        BLOCKED_DESTINATIONS,
        ALLOWED_CALLER_IDS,
        AGENT_DIALS_PER_MINUTE,
    ];

    /// Read by the console function only: the sign-in it offers.
    pub const CONSOLE_ONLY: &[&str] = &[
        CONSOLE_CLIENT_ID,
        CONSOLE_AUTHORIZE_URL,
        CONSOLE_TOKEN_URL,
        CONSOLE_PUSH_URL,
    ];

    /// Read by the push functions only: `$connect` verifies the token itself
    /// (a WebSocket API has no JWT authorizer), the publisher posts to the
    /// connections.
    pub const PUSH_ONLY: &[&str] = &[JWT_ISSUER, JWT_AUDIENCE, JWKS_URL, WEBSOCKET_MANAGEMENT_URL];
}

/// A secret string: usable, never printed, wiped from memory when dropped
/// (`secrecy`).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself, for signing and authentication only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// In constant time: a comparison's duration says nothing of the secret.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a customer goes when no agent is left for them, or when a TwiML
/// webhook fails: never silence, never Twilio's recorded error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CustomerFallback {
    /// A short spoken message, then hang up.
    #[default]
    Goodbye,
    /// Dial this number (a queue, a voicemail line).
    Number(PhoneNumber),
    /// Hand the call to this TwiML (another application).
    Twiml(Url),
}

/// How the REST client authenticates to Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioCredentials {
    /// Account SID and auth token.
    AuthToken,
    /// An API key SID and its secret (recommended: revocable on its own).
    ApiKey { sid: String, secret: Secret },
}

/// How long a call's history is kept when `HISTORY_TTL_DAYS` is not set:
/// 400 days, a year and a month. A year is what audit rules commonly ask of
/// an audit trail (PCI DSS 10.5.1 keeps one for at least twelve months), and
/// the month lets a dispute raised at the year's end still find the call.
/// The template's `HistoryRetentionDays` has the same default.
pub const DEFAULT_HISTORY_TTL_DAYS: u64 = 400;

#[derive(Debug, Clone)]
pub struct Config {
    pub twilio_account_sid: String,
    /// Signs webhooks, and authenticates REST calls unless an API key is set.
    /// This and the other secrets are the values read at start; a warm
    /// function's current ones are in its `SecretKeeper`.
    pub twilio_auth_token: Secret,
    /// The next token during a rotation: webhooks signed with it pass too.
    pub twilio_auth_token_secondary: Option<Secret>,
    pub twilio_credentials: TwilioCredentials,
    pub twilio_api_base_url: Url,
    pub twilio_timeout: Duration,
    pub table_name: String,
    /// Only for local runs against dynalite; unset in AWS.
    pub dynamodb_endpoint: Option<Url>,
    /// The URL Twilio reaches this API at. When unset it is rebuilt from each
    /// API Gateway request (host and stage).
    pub public_base_url: Option<Url>,
    pub default_caller_id: PhoneNumber,
    pub cors_allow_origin: Option<String>,
    /// How long the second agent's phone rings before Twilio gives up.
    pub transfer_ring_timeout_secs: u32,
    /// How long a session, its subscriptions and connections live before
    /// DynamoDB's TTL removes them.
    pub session_ttl: Duration,
    /// How long a history entry lives: the only audit trail of who did
    /// what on a call, so kept far longer than the session.
    pub history_ttl: Duration,
    /// Music for a participant waiting alone in a room; silence when unset.
    pub hold_music_url: Option<Url>,
    pub customer_fallback: CustomerFallback,
    /// Where the EMF metrics go (`metrics`); one namespace per stack.
    pub metrics_namespace: String,
    /// Whether the customer's conversation is recorded (`RECORDING=on`);
    /// off unless asked for, since recordings hold personal data.
    pub recording: bool,
    /// How verified claims name an agent, their numbers and groups.
    pub agents: AgentRules,
    /// The console's sign-in; None when not configured (the page says so).
    pub console_sign_in: Option<ConsoleSignIn>,
    /// Where the console subscribes to changes (`ws://` or `wss://`); None:
    /// the console polls.
    pub console_push_url: Option<Url>,
    /// Which numbers may be dialed and shown as caller ID.
    pub dial_policy: DialPolicy,
    /// Calls and transfers one agent may start in a minute.
    pub agent_dials_per_minute: u32,
    /// A team transfer rings at most this many members...
    pub team_max_members: u32,
    /// ...and none after this long.
    pub team_max_wait: Duration,
    /// Customers calling in (`inbound`).
    pub inbound: InboundRules,
}

/// How calls to the centre's numbers are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRules {
    /// The team each number reaches; a number not listed is not answered.
    pub numbers: HashMap<PhoneNumber, TeamName>,
    /// Said once, before the caller starts waiting.
    pub greeting: String,
    /// The caller waits no longer for an agent.
    pub max_wait: Duration,
    /// Where a caller nobody answered in time goes.
    pub fallback: CustomerFallback,
}

/// What a caller hears first when `INBOUND_GREETING` is not set.
pub const DEFAULT_GREETING: &str =
    "Thank you for calling. Please hold for the next available agent.";

impl InboundRules {
    /// `+15005550006=billing,+15005550007=support`.
    fn parse_numbers(raw: &str) -> Result<HashMap<PhoneNumber, TeamName>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (number, team) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not NUMBER=TEAM"))?;
                let number = PhoneNumber::parse(number.trim()).map_err(|e| e.to_string())?;
                let team = TeamName::parse(team.trim()).map_err(|e| e.to_string())?;
                Ok((number, team))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

/// How claims name agents (`AGENT_*`, `SUPERVISOR_GROUP`): read by every
/// function that decides who may see a call.
pub(crate) fn agent_rules(env: &HashMap<String, String>) -> Result<AgentRules, ConfigError> {
    use vars::*;
    let get = |name: &'static str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let defaults = AgentRules::default();
    let named = |name: &'static str, default: String| get(name).map_or(default, str::to_owned);
    Ok(AgentRules {
        id_claim: get(AGENT_ID_CLAIM)
            .map(str::parse)
            .transpose()
            .map_err(|reason| ConfigError::Malformed {
                name: AGENT_ID_CLAIM,
                reason,
            })?
            .unwrap_or(defaults.id_claim),
        numbers_claim: named(AGENT_NUMBERS_CLAIM, defaults.numbers_claim),
        groups_claim: named(AGENT_GROUPS_CLAIM, defaults.groups_claim),
        supervisor_group: named(SUPERVISOR_GROUP, defaults.supervisor_group),
        numbers: AgentRules::parse_numbers(get(AGENT_NUMBERS).unwrap_or("")).map_err(|reason| {
            ConfigError::Malformed {
                name: AGENT_NUMBERS,
                reason,
            }
        })?,
        team_prefix: named(TEAM_GROUP_PREFIX, defaults.team_prefix),
        teams: AgentRules::parse_teams(get(TEAMS).unwrap_or("")).map_err(|reason| {
            ConfigError::Malformed {
                name: TEAMS,
                reason,
            }
        })?,
    })
}

impl Config {
    /// Reads configuration from a map of variables: the process environment,
    /// with the secret's fields added in AWS (`secrets::merge_into_env`);
    /// tests pass their own.
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(env, true)
    }

    /// The configuration of a function that neither verifies Twilio's
    /// signatures nor calls its REST API (`Endpoint::reads_secret`): no
    /// secret is read, and the token it holds is empty, which signs
    /// nothing (`Secrets::signing_tokens` leaves it out).
    pub fn from_map_without_secrets(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(env, false)
    }

    fn read(env: &HashMap<String, String>, with_secrets: bool) -> Result<Self, ConfigError> {
        use vars::*;
        let get = |name: &'static str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let malformed = |name: &'static str, reason: &str| ConfigError::Malformed {
            name,
            reason: reason.to_owned(),
        };
        let url = |name: &'static str, value: &str| {
            let parsed = Url::parse(value).map_err(|e| malformed(name, &e.to_string()))?;
            if matches!(parsed.scheme(), "http" | "https") {
                Ok(parsed)
            } else {
                Err(malformed(name, "must be an http or https URL"))
            }
        };
        // An E.164 number to dial, or a TwiML URL; a spoken goodbye if unset.
        let fallback = |name: &'static str| -> Result<CustomerFallback, ConfigError> {
            match get(name) {
                None => Ok(CustomerFallback::Goodbye),
                Some(number) if number.starts_with('+') => PhoneNumber::parse(number)
                    .map(CustomerFallback::Number)
                    .map_err(|e| malformed(name, &e.to_string())),
                Some(twiml) => url(name, twiml).map(CustomerFallback::Twiml),
            }
        };
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        malformed(
                            name,
                            &format!(
                                "must be a whole number from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    }),
            }
        };

        let account_sid = required(TWILIO_ACCOUNT_SID)?;
        let is_sid = |v: &str, prefix: &str| {
            v.len() == 34 && v.starts_with(prefix) && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !is_sid(account_sid, "AC") {
            return Err(malformed(
                TWILIO_ACCOUNT_SID,
                "must be AC followed by 32 hexadecimal digits",
            ));
        }
        let get_secret = |name: &'static str| get(name).filter(|_| with_secrets);
        let auth_token = match with_secrets {
            true => Secret::new(required(TWILIO_AUTH_TOKEN)?),
            false => Secret::new(""),
        };
        let credentials = match (
            get_secret(TWILIO_API_KEY_SID),
            get_secret(TWILIO_API_KEY_SECRET),
        ) {
            (None, None) => TwilioCredentials::AuthToken,
            (Some(sid), Some(secret)) if is_sid(sid, "SK") => TwilioCredentials::ApiKey {
                sid: sid.to_owned(),
                secret: Secret::new(secret),
            },
            (Some(_), Some(_)) => {
                return Err(malformed(
                    TWILIO_API_KEY_SID,
                    "must be SK followed by 32 hexadecimal digits",
                ));
            }
            (Some(_), None) => return Err(ConfigError::Missing(TWILIO_API_KEY_SECRET)),
            (None, Some(_)) => return Err(ConfigError::Missing(TWILIO_API_KEY_SID)),
        };
        let api_base = get(TWILIO_API_BASE_URL).unwrap_or("https://api.twilio.com");
        let public_base_url = get(PUBLIC_BASE_URL)
            .map(|v| url(PUBLIC_BASE_URL, v))
            .transpose()?;
        let default_caller_id = PhoneNumber::parse(required(DEFAULT_CALLER_ID)?)
            .map_err(|e| malformed(DEFAULT_CALLER_ID, &e.to_string()))?;
        let agents = agent_rules(env)?;
        let prefixes = |name: &'static str| {
            get(name)
                .map(|raw| {
                    NumberPrefix::parse_list(raw).ok_or_else(|| {
                        malformed(
                            name,
                            "must be E.164 prefixes (+ and digits), comma-separated",
                        )
                    })
                })
                .transpose()
        };
        let country = DialPolicy::country_of(&default_caller_id);
        let dial_policy = DialPolicy {
            destinations: prefixes(ALLOWED_DESTINATIONS)?.unwrap_or(country.destinations),
            blocked: prefixes(BLOCKED_DESTINATIONS)?.unwrap_or(country.blocked),
            caller_ids: prefixes(ALLOWED_CALLER_IDS)?.unwrap_or(country.caller_ids),
        };
        // All three or none: half a sign-in configuration is a mistake.
        let console_sign_in = match (
            get(CONSOLE_CLIENT_ID),
            get(CONSOLE_AUTHORIZE_URL),
            get(CONSOLE_TOKEN_URL),
        ) {
            (None, None, None) => None,
            (Some(client_id), Some(authorize), Some(token)) => Some(ConsoleSignIn {
                client_id: client_id.to_owned(),
                authorize_url: url(CONSOLE_AUTHORIZE_URL, authorize)?.to_string(),
                token_url: url(CONSOLE_TOKEN_URL, token)?.to_string(),
            }),
            (None, _, _) => return Err(ConfigError::Missing(CONSOLE_CLIENT_ID)),
            (_, None, _) => return Err(ConfigError::Missing(CONSOLE_AUTHORIZE_URL)),
            (_, _, None) => return Err(ConfigError::Missing(CONSOLE_TOKEN_URL)),
        };

        Ok(Self {
            twilio_account_sid: account_sid.to_owned(),
            twilio_auth_token: auth_token,
            twilio_auth_token_secondary: get_secret(TWILIO_AUTH_TOKEN_SECONDARY).map(Secret::new),
            twilio_credentials: credentials,
            twilio_api_base_url: url(TWILIO_API_BASE_URL, api_base)?,
            twilio_timeout: Duration::from_millis(number(TWILIO_TIMEOUT_MS, 5_000, 100..=60_000)?),
            table_name: required(TABLE_NAME)?.to_owned(),
            dynamodb_endpoint: get(DYNAMODB_ENDPOINT)
                .map(|v| url(DYNAMODB_ENDPOINT, v))
                .transpose()?,
            public_base_url,
            default_caller_id,
            cors_allow_origin: get(CORS_ALLOW_ORIGIN).map(str::to_owned),
            transfer_ring_timeout_secs: number(TRANSFER_RING_TIMEOUT_SECS, 30, 5..=600)? as u32,
            session_ttl: Duration::from_secs(3600 * number(SESSION_TTL_HOURS, 72, 1..=24 * 365)?),
            history_ttl: Duration::from_secs(
                86_400 * number(HISTORY_TTL_DAYS, DEFAULT_HISTORY_TTL_DAYS, 1..=3650)?,
            ),
            hold_music_url: get(HOLD_MUSIC_URL)
                .map(|v| url(HOLD_MUSIC_URL, v))
                .transpose()?,
            customer_fallback: fallback(CUSTOMER_FALLBACK)?,
            inbound: InboundRules {
                numbers: InboundRules::parse_numbers(get(INBOUND_NUMBERS).unwrap_or(""))
                    .map_err(|reason| malformed(INBOUND_NUMBERS, &reason))?,
                greeting: get(INBOUND_GREETING).unwrap_or(DEFAULT_GREETING).to_owned(),
                max_wait: Duration::from_secs(number(INBOUND_MAX_WAIT_SECS, 300, 30..=3600)?),
                fallback: fallback(INBOUND_FALLBACK)?,
            },
            metrics_namespace: get(METRICS_NAMESPACE)
                .unwrap_or(crate::metrics::DEFAULT_NAMESPACE)
                .to_owned(),
            recording: match get(RECORDING) {
                None | Some("off") => false,
                Some("on") => true,
                Some(_) => return Err(malformed(RECORDING, "must be on or off")),
            },
            agents,
            dial_policy,
            agent_dials_per_minute: number(AGENT_DIALS_PER_MINUTE, 6, 1..=1000)? as u32,
            team_max_members: number(TEAM_MAX_MEMBERS, 5, 1..=50)? as u32,
            team_max_wait: Duration::from_secs(number(TEAM_MAX_SECONDS, 120, 10..=3600)?),
            console_sign_in,
            console_push_url: get(CONSOLE_PUSH_URL)
                .map(|raw| {
                    Url::parse(raw)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "ws" | "wss"))
                        .ok_or_else(|| malformed(CONSOLE_PUSH_URL, "must be a ws or wss URL"))
                })
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn minimal() -> HashMap<String, String> {
        [
            (
                vars::TWILIO_ACCOUNT_SID,
                "AC00000000000000000000000000000000",
            ),
            (vars::TWILIO_AUTH_TOKEN, "token-that-must-not-leak"),
            (vars::TABLE_NAME, "warm-transfer"),
            (vars::DEFAULT_CALLER_ID, "+15005550006"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn customer_fallback_is_a_number_a_url_or_the_goodbye() {
        let config = Config::from_map(&minimal()).unwrap();
        assert_eq!(config.customer_fallback, CustomerFallback::Goodbye);
        for (value, expected) in [
            (
                "+14155550199",
                Ok(CustomerFallback::Number(
                    PhoneNumber::parse("+14155550199").unwrap(),
                )),
            ),
            (
                "https://example.com/queue",
                Ok(CustomerFallback::Twiml(
                    Url::parse("https://example.com/queue").unwrap(),
                )),
            ),
            ("ftp://example.com/x", Err(())),
            ("+1", Err(())),
            ("voicemail", Err(())),
        ] {
            let mut vars = minimal();
            vars.insert(vars::CUSTOMER_FALLBACK.into(), value.into());
            let loaded = Config::from_map(&vars);
            match expected {
                Ok(fallback) => assert_eq!(loaded.unwrap().customer_fallback, fallback),
                Err(()) => assert!(
                    loaded
                        .unwrap_err()
                        .to_string()
                        .contains(vars::CUSTOMER_FALLBACK),
                    "{value}"
                ),
            }
        }
    }

    #[test]
    fn loads_minimal_configuration_with_defaults() {
        let config = Config::from_map(&minimal()).unwrap();
        assert_eq!(config.twilio_credentials, TwilioCredentials::AuthToken);
        assert_eq!(
            config.twilio_api_base_url.as_str(),
            "https://api.twilio.com/"
        );
        assert_eq!(config.twilio_timeout, Duration::from_secs(5));
        assert_eq!(config.transfer_ring_timeout_secs, 30);
        assert_eq!(config.session_ttl, Duration::from_secs(72 * 3600));
        assert!(config.public_base_url.is_none());
        assert!(!config.recording, "recording is off unless asked for");
    }

    #[test]
    fn recording_is_on_or_off() {
        for (value, expected) in [("on", Some(true)), ("off", Some(false)), ("yes", None)] {
            let mut env = minimal();
            env.insert(vars::RECORDING.into(), value.into());
            match (Config::from_map(&env), expected) {
                (Ok(config), Some(on)) => assert_eq!(config.recording, on, "{value}"),
                (Err(ConfigError::Malformed { name, .. }), None) => {
                    assert_eq!(name, vars::RECORDING)
                }
                (other, _) => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for name in [
            vars::TWILIO_ACCOUNT_SID,
            vars::TWILIO_AUTH_TOKEN,
            vars::TABLE_NAME,
            vars::DEFAULT_CALLER_ID,
        ] {
            let mut env = minimal();
            env.remove(name);
            let err = Config::from_map(&env).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn malformed_variables_are_named() {
        for (name, value) in [
            (vars::TWILIO_ACCOUNT_SID, "AC123"),
            (vars::DEFAULT_CALLER_ID, "555-0100"),
            (vars::PUBLIC_BASE_URL, "not a url"),
            (vars::PUBLIC_BASE_URL, "ftp://example.com"),
            (vars::TWILIO_TIMEOUT_MS, "soon"),
            (vars::TRANSFER_RING_TIMEOUT_SECS, "1"),
            (vars::SESSION_TTL_HOURS, "0"),
        ] {
            let mut env = minimal();
            env.insert(name.to_owned(), value.to_owned());
            match Config::from_map(&env).unwrap_err() {
                ConfigError::Malformed { name: got, .. } => assert_eq!(got, name, "{value}"),
                other => panic!("{name}={value}: {other}"),
            }
        }
    }

    #[test]
    fn agent_rules_and_console_sign_in_are_read() {
        let config = Config::from_map(&minimal()).unwrap();
        assert_eq!(config.agents, AgentRules::default());
        assert_eq!(config.console_sign_in, None);
        let mut env = minimal();
        env.insert(vars::AGENT_ID_CLAIM.into(), "oid".into());
        env.insert(vars::AGENT_NUMBERS.into(), "ann=+15550100001".into());
        env.insert(vars::CONSOLE_CLIENT_ID.into(), "console".into());
        env.insert(
            vars::CONSOLE_AUTHORIZE_URL.into(),
            "https://idp.example.com/authorize".into(),
        );
        let missing = Config::from_map(&env).unwrap_err();
        assert_eq!(missing, ConfigError::Missing(vars::CONSOLE_TOKEN_URL));
        env.insert(
            vars::CONSOLE_TOKEN_URL.into(),
            "https://idp.example.com/token".into(),
        );
        let config = Config::from_map(&env).unwrap();
        assert_eq!(config.agents.id_claim, crate::auth::IdClaim::Oid);
        assert_eq!(config.agents.numbers["ann"].len(), 1);
        assert_eq!(config.console_sign_in.unwrap().client_id, "console");
        // A name the user can change would let them take another's numbers.
        env.insert(vars::AGENT_ID_CLAIM.into(), "preferred_username".into());
        assert!(matches!(
            Config::from_map(&env).unwrap_err(),
            ConfigError::Malformed {
                name: vars::AGENT_ID_CLAIM,
                ..
            }
        ));
        env.insert(vars::AGENT_ID_CLAIM.into(), "sub".into());
        env.insert(vars::AGENT_NUMBERS.into(), "ann=0100".into());
        assert!(matches!(
            Config::from_map(&env).unwrap_err(),
            ConfigError::Malformed {
                name: vars::AGENT_NUMBERS,
                ..
            }
        ));
    }

    #[test]
    fn api_key_needs_both_halves() {
        let mut env = minimal();
        env.insert(
            vars::TWILIO_API_KEY_SID.into(),
            "SK00000000000000000000000000000000".into(),
        );
        assert_eq!(
            Config::from_map(&env).unwrap_err(),
            ConfigError::Missing(vars::TWILIO_API_KEY_SECRET)
        );
        env.insert(vars::TWILIO_API_KEY_SECRET.into(), "key-secret".into());
        let config = Config::from_map(&env).unwrap();
        assert!(matches!(
            config.twilio_credentials,
            TwilioCredentials::ApiKey { .. }
        ));
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let mut env = minimal();
        env.insert(
            vars::TWILIO_API_KEY_SID.into(),
            "SK00000000000000000000000000000000".into(),
        );
        env.insert(
            vars::TWILIO_API_KEY_SECRET.into(),
            "key-secret-value".into(),
        );
        let printed = format!("{:?}", Config::from_map(&env).unwrap());
        for secret in ["token-that-must-not-leak", "key-secret-value"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(!printed.contains("5005550006"), "caller ID must be masked");
    }

    #[test]
    fn history_is_kept_apart_from_the_session_for_as_long_as_asked() {
        let config = Config::from_map(&minimal()).unwrap();
        assert_eq!(config.session_ttl, Duration::from_secs(72 * 3600));
        assert_eq!(config.history_ttl, Duration::from_secs(400 * 86_400));
        let mut env = minimal();
        env.insert(vars::HISTORY_TTL_DAYS.into(), "2555".into());
        let config = Config::from_map(&env).unwrap();
        assert_eq!(config.history_ttl, Duration::from_secs(2555 * 86_400));
        for bad in ["0", "3651", "a year"] {
            env.insert(vars::HISTORY_TTL_DAYS.into(), bad.into());
            assert!(
                matches!(
                    Config::from_map(&env),
                    Err(ConfigError::Malformed {
                        name: vars::HISTORY_TTL_DAYS,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_function_without_the_secret_starts_with_none_and_ignores_any_given() {
        let mut env = minimal();
        env.remove(vars::TWILIO_AUTH_TOKEN);
        assert_eq!(
            Config::from_map(&env).unwrap_err(),
            ConfigError::Missing(vars::TWILIO_AUTH_TOKEN)
        );
        env.insert(vars::TWILIO_AUTH_TOKEN_SECONDARY.into(), "second".into());
        let config = Config::from_map_without_secrets(&env).unwrap();
        assert_eq!(config.twilio_auth_token.expose(), "");
        assert_eq!(config.twilio_auth_token_secondary, None);
        assert_eq!(config.twilio_credentials, TwilioCredentials::AuthToken);
        // Nothing can be signed with what it holds.
        let secrets = crate::secrets::Secrets::from_config(&config);
        assert!(secrets.signing_tokens().is_empty());
    }
}
