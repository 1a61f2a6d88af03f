//! The push functions' configuration: the table, how claims name agents,
//! and (each only where needed) the token issuer and the management URL.
//! No Twilio setting and no secret: these functions never call Twilio.

use std::collections::HashMap;

use url::Url;

use crate::auth::AgentRules;
use crate::config::{ConfigError, agent_rules, vars};

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub table_name: String,
    /// Only for local runs against dynalite.
    pub dynamodb_endpoint: Option<Url>,
    pub agents: AgentRules,
    /// `$connect`: the tokens' issuer and audience, as the HTTP API's JWT
    /// authorizer checks them.
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// `$connect`: where the issuer's keys are; by default
    /// `<issuer>/.well-known/jwks.json` (Cognito's).
    pub jwks_url: Option<Url>,
    /// The publisher: the WebSocket API's management endpoint
    /// (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`).
    pub management_url: Option<Url>,
}

impl PushConfig {
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        use vars::*;
        let get = |name: &'static str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let url = |name: &'static str| -> Result<Option<Url>, ConfigError> {
            get(name)
                .map(|raw| {
                    Url::parse(raw)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or(ConfigError::Malformed {
                            name,
                            reason: "must be an http or https URL".into(),
                        })
                })
                .transpose()
        };
        Ok(Self {
            table_name: get(TABLE_NAME)
                .ok_or(ConfigError::Missing(TABLE_NAME))?
                .to_owned(),
            dynamodb_endpoint: url(DYNAMODB_ENDPOINT)?,
            agents: agent_rules(env)?,
            issuer: get(JWT_ISSUER).map(str::to_owned),
            audience: get(JWT_AUDIENCE).map(str::to_owned),
            jwks_url: url(JWKS_URL)?,
            management_url: url(WEBSOCKET_MANAGEMENT_URL)?,
        })
    }

    /// Where `$connect` fetches the issuer's keys.
    pub fn jwks_url(&self) -> Result<Url, ConfigError> {
        if let Some(url) = &self.jwks_url {
            return Ok(url.clone());
        }
        let issuer = self
            .issuer
            .as_deref()
            .ok_or(ConfigError::Missing(vars::JWT_ISSUER))?;
        Url::parse(&format!(
            "{}/.well-known/jwks.json",
            issuer.trim_end_matches('/')
        ))
        .map_err(|e| ConfigError::Malformed {
            name: vars::JWT_ISSUER,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn needs_no_twilio_setting_and_derives_the_jwks_url() {
        let config = PushConfig::from_map(&env(&[
            (vars::TABLE_NAME, "calls"),
            (
                vars::JWT_ISSUER,
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/",
            ),
        ]))
        .unwrap();
        assert_eq!(
            config.jwks_url().unwrap().as_str(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
        );
        assert_eq!(
            PushConfig::from_map(&env(&[])).unwrap_err(),
            ConfigError::Missing(vars::TABLE_NAME)
        );
        let bad = PushConfig::from_map(&env(&[
            (vars::TABLE_NAME, "calls"),
            (vars::WEBSOCKET_MANAGEMENT_URL, "wss://x"),
        ]));
        assert!(matches!(
            bad,
            Err(ConfigError::Malformed {
                name: vars::WEBSOCKET_MANAGEMENT_URL,
                ..
            })
        ));
    }
}
