//! Who is asking. API Gateway's JWT authorizer verifies the agent's token
//! (signature, issuer, audience, expiry) and hands the function its claims
//! in the request context; the development server verifies the same tokens
//! and fills in the same context. Either way [`claims`] is the one place a
//! handler reads them, and [`AgentRules::actor`] the one place they become
//! an [`Actor`].

use std::collections::{BTreeMap, HashMap};

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::domain::Actor;
use crate::ids::PhoneNumber;

/// How claims name an agent, their phones and their groups. Defaults suit a
/// Cognito user pool's ID token; an external OIDC provider sets its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRules {
    /// Names the actor in the history (falls back to `sub` when absent).
    pub id_claim: String,
    /// Holds the agent's phone number(s).
    pub numbers_claim: String,
    /// Holds the agent's groups.
    pub groups_claim: String,
    /// Members may read and act on every call.
    pub supervisor_group: String,
    /// Numbers the deployment assigns by agent id, on top of the claim's.
    pub numbers: BTreeMap<String, Vec<PhoneNumber>>,
}

impl Default for AgentRules {
    fn default() -> Self {
        Self {
            id_claim: "email".into(),
            numbers_claim: "custom:agent_numbers".into(),
            groups_claim: "cognito:groups".into(),
            supervisor_group: "supervisors".into(),
            numbers: BTreeMap::new(),
        }
    }
}

/// Why a request's claims name nobody (the API answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("no verified sign-in on the request")]
    Missing,
    #[error("the token names no subject")]
    NoSubject,
}

impl AgentRules {
    /// Parses the number mapping: `id=+14155550100 +14155550101;other=+1...`
    /// (numbers separated by spaces or commas, agents by `;`).
    pub fn parse_numbers(text: &str) -> Result<BTreeMap<String, Vec<PhoneNumber>>, String> {
        let mut map = BTreeMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, numbers) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}` must be id=number[,number...]"))?;
            let numbers = values(numbers)
                .into_iter()
                .map(|n| PhoneNumber::parse(n).map_err(|e| format!("{}: {e}", id.trim())))
                .collect::<Result<Vec<_>, _>>()?;
            if numbers.is_empty() {
                return Err(format!("{} has no number", id.trim()));
            }
            map.entry(id.trim().to_owned())
                .or_insert_with(Vec::new)
                .extend(numbers);
        }
        Ok(map)
    }

    /// The actor the verified claims describe.
    pub fn actor(&self, claims: &HashMap<String, String>) -> Result<Actor, ClaimsError> {
        let present = |name: &str| claims.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let id = present(&self.id_claim)
            .or_else(|| present("sub"))
            .ok_or(ClaimsError::NoSubject)?
            .to_owned();
        let mut numbers: Vec<PhoneNumber> = present(&self.numbers_claim)
            .map(values)
            .unwrap_or_default()
            .into_iter()
            // A malformed number in the directory gives no access, and no error.
            .filter_map(|n| PhoneNumber::parse(n).ok())
            .collect();
        for number in self.numbers.get(&id).into_iter().flatten() {
            if !numbers.contains(number) {
                numbers.push(number.clone());
            }
        }
        let supervisor = present(&self.groups_claim)
            .map(values)
            .unwrap_or_default()
            .contains(&self.supervisor_group.as_str());
        Ok(Actor {
            id,
            numbers,
            supervisor,
        })
    }
}

/// The claims API Gateway's JWT authorizer verified, from the request
/// context. None when the request did not come through the authorizer.
pub fn claims(req: &Request) -> Option<&HashMap<String, String>> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            Some(&context.authorizer.as_ref()?.jwt.as_ref()?.claims)
        }
        _ => None,
    }
}

/// The values of a multi-valued claim. API Gateway hands every claim over
/// as a string, an array as `[a b]`; a JSON array or a comma- or
/// space-separated list reads the same.
pub fn values(raw: &str) -> Vec<&str> {
    raw.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|v| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
        .collect()
}

/// How the agent console signs in: authorization code with PKCE against the
/// identity provider, as a public client (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSignIn {
    pub client_id: String,
    pub authorize_url: String,
    pub token_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn multi_valued_claims_read_in_every_shape() {
        for raw in [
            "[supervisors agents]",
            "[\"supervisors\",\"agents\"]",
            "supervisors,agents",
            " supervisors agents ",
        ] {
            assert_eq!(values(raw), vec!["supervisors", "agents"], "{raw}");
        }
        assert_eq!(values("[]"), Vec::<&str>::new());
    }

    #[test]
    fn claims_name_the_actor_their_numbers_and_groups() {
        let rules = AgentRules::default();
        let actor = rules
            .actor(&claims(&[
                ("sub", "0f3c"),
                ("email", "alice@example.com"),
                ("custom:agent_numbers", "+15550100001,+15550100009"),
                ("cognito:groups", "[agents supervisors]"),
            ]))
            .unwrap();
        assert_eq!(actor.id, "alice@example.com");
        assert_eq!(
            actor.numbers,
            vec![
                PhoneNumber::parse("+15550100001").unwrap(),
                PhoneNumber::parse("+15550100009").unwrap()
            ]
        );
        assert!(actor.supervisor);

        let plain = rules
            .actor(&claims(&[
                ("sub", "0f3c"),
                ("custom:agent_numbers", "not-a-number"),
                ("cognito:groups", "[agents supervisors-east]"),
            ]))
            .unwrap();
        assert_eq!(plain.id, "0f3c", "falls back to the subject");
        assert!(plain.numbers.is_empty(), "a malformed number gives nothing");
        assert!(!plain.supervisor, "group names match whole");

        assert_eq!(rules.actor(&claims(&[])), Err(ClaimsError::NoSubject));
    }

    #[test]
    fn the_deployment_mapping_adds_numbers() {
        let rules = AgentRules {
            numbers: AgentRules::parse_numbers(
                "bob@example.com=+15550100003 +15550100004; carol@example.com=+15550100005",
            )
            .unwrap(),
            ..AgentRules::default()
        };
        let bob = rules
            .actor(&claims(&[("sub", "1"), ("email", "bob@example.com")]))
            .unwrap();
        assert_eq!(bob.numbers.len(), 2);
        let dave = rules
            .actor(&claims(&[("sub", "2"), ("email", "dave@example.com")]))
            .unwrap();
        assert!(dave.numbers.is_empty());
        for bad in ["bob@example.com", "bob=555-0100", "bob="] {
            assert!(AgentRules::parse_numbers(bad).is_err(), "{bad}");
        }
    }
}
