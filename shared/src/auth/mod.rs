//! Who is asking. API Gateway's JWT authorizer verifies the agent's token
//! (signature, issuer, audience, expiry) and hands the function its claims
//! in the request context; the development server verifies the same tokens
//! and fills in the same context. Either way [`claims`] is the one place a
//! handler reads them (`request`), as their real JSON values ([`Claims`]),
//! and [`AgentRules::actor`] the one place they become an [`Actor`].

mod claims;
mod request;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use claims::Claims;
pub use request::claims;

use crate::domain::{Actor, AgentId, AgentProfile, TeamName};
use crate::ids::PhoneNumber;

/// The claim an agent is known by: in the history, and as the key of
/// `AGENT_NUMBERS`. Only claims a user cannot change: a mutable name would
/// let someone take another agent's numbers by renaming themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdClaim {
    /// The issuer's subject: immutable everywhere.
    Sub,
    /// Entra ID's object id: immutable, the same across its applications.
    Oid,
    /// The e-mail address, only when the token says the provider verified
    /// it (`email_verified`); otherwise the agent is known by `sub`.
    /// Cognito's default: administrators set it, agents cannot write it.
    Email,
}

impl IdClaim {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sub => "sub",
            Self::Oid => "oid",
            Self::Email => "email",
        }
    }
}

impl fmt::Display for IdClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IdClaim {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "sub" => Ok(Self::Sub),
            "oid" => Ok(Self::Oid),
            "email" => Ok(Self::Email),
            other => Err(format!(
                "`{other}` is not one of sub, oid, email: an agent is known by a claim they cannot change"
            )),
        }
    }
}

/// How claims name an agent, their phones and their groups. Defaults suit a
/// Cognito user pool's ID token; an external OIDC provider sets its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRules {
    /// Names the actor in the history (falls back to `sub`).
    pub id_claim: IdClaim,
    /// Holds the agent's phone number(s).
    pub numbers_claim: String,
    /// Holds the agent's groups.
    pub groups_claim: String,
    /// Members may read and act on every call.
    pub supervisor_group: String,
    /// Numbers the deployment assigns by agent id, on top of the claim's.
    pub numbers: BTreeMap<String, Vec<PhoneNumber>>,
    /// A group named with this prefix is a team (`team-billing`: `billing`).
    pub team_prefix: String,
    /// Teams the deployment assigns by agent id, for providers without
    /// groups, on top of the groups'.
    pub teams: BTreeMap<String, Vec<TeamName>>,
}

impl Default for AgentRules {
    fn default() -> Self {
        Self {
            id_claim: IdClaim::Email,
            numbers_claim: "custom:agent_numbers".into(),
            groups_claim: "cognito:groups".into(),
            supervisor_group: "supervisors".into(),
            numbers: BTreeMap::new(),
            team_prefix: "team-".into(),
            teams: BTreeMap::new(),
        }
    }
}

/// Why a request's claims name nobody (the API answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("no verified sign-in on the request")]
    Missing,
    #[error("the bearer token is not the one the authorizer verified")]
    Mismatch,
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
            let numbers = claims::number_list(numbers)
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

    /// Parses the static team mapping: `billing=ann@example.com,bob@example.com;support=...`
    /// (agents by the id the history names them by, separated by commas or
    /// spaces; teams by `;`), read as agent id -> teams.
    pub fn parse_teams(text: &str) -> Result<BTreeMap<String, Vec<TeamName>>, String> {
        let mut map: BTreeMap<String, Vec<TeamName>> = BTreeMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (team, agents) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}` must be team=agent[,agent...]"))?;
            let team = TeamName::parse(team.trim()).map_err(|e| format!("{}: {e}", team.trim()))?;
            for agent in claims::number_list(agents) {
                map.entry(agent.to_owned()).or_default().push(team.clone());
            }
        }
        Ok(map)
    }

    /// Who the verified claims say the agent is, for the directory: keyed
    /// by the immutable subject, named by their `name` claim (or their id),
    /// in the teams their groups and the static mapping give them.
    pub fn profile(&self, claims: &Claims, actor: &Actor) -> Result<AgentProfile, ClaimsError> {
        let id = claims
            .string("sub")
            .and_then(|sub| AgentId::parse(sub).ok())
            .ok_or(ClaimsError::NoSubject)?;
        let name = claims
            .string("name")
            .unwrap_or(actor.id.as_str())
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let mut teams: Vec<TeamName> = claims
            .strings(&self.groups_claim)
            .into_iter()
            .filter_map(|group| group.strip_prefix(self.team_prefix.as_str()))
            .filter_map(|team| TeamName::parse(team).ok())
            .collect();
        for team in self.teams.get(&actor.id).into_iter().flatten() {
            if !teams.contains(team) {
                teams.push(team.clone());
            }
        }
        teams.sort();
        Ok(AgentProfile {
            id,
            name,
            numbers: actor.numbers.clone(),
            teams,
        })
    }

    /// The actor the verified claims describe.
    pub fn actor(&self, claims: &Claims) -> Result<Actor, ClaimsError> {
        let id = match self.id_claim {
            IdClaim::Email if claims.flag("email_verified") => claims.string("email"),
            IdClaim::Email => None,
            other => claims.string(other.name()),
        }
        .or_else(|| claims.string("sub"))
        .ok_or(ClaimsError::NoSubject)?
        .to_owned();
        let mut numbers = claims.numbers(&self.numbers_claim);
        for number in self.numbers.get(&id).into_iter().flatten() {
            if !numbers.contains(number) {
                numbers.push(number.clone());
            }
        }
        let supervisor = claims.holds(&self.groups_claim, &self.supervisor_group);
        Ok(Actor {
            id,
            numbers,
            supervisor,
        })
    }
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
    use serde_json::{Value, json};

    use super::*;

    use super::claims::tests::json as claims;

    #[test]
    fn claims_name_the_actor_their_numbers_and_groups() {
        let rules = AgentRules::default();
        let actor = rules
            .actor(&claims(json!({
                "sub": "0f3c",
                "email": "alice@example.com",
                "email_verified": true,
                "custom:agent_numbers": "+15550100001,+15550100009",
                "cognito:groups": ["agents", "supervisors"],
            })))
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
            .actor(&claims(json!({
                "sub": "0f3c",
                "custom:agent_numbers": "not-a-number",
                "cognito:groups": ["agents", "supervisors-east"],
            })))
            .unwrap();
        assert_eq!(plain.id, "0f3c", "falls back to the subject");
        assert!(plain.numbers.is_empty(), "a malformed number gives nothing");
        assert!(!plain.supervisor, "group names match whole");

        assert_eq!(rules.actor(&claims(json!({}))), Err(ClaimsError::NoSubject));
    }

    #[test]
    fn no_group_name_holding_the_supervisors_name_makes_a_supervisor() {
        let rules = AgentRules::default();
        for group in [
            "Night supervisors",
            "x,supervisors",
            "[supervisors]",
            "\"supervisors\"",
            "[agents supervisors]",
        ] {
            for groups in [json!([group]), json!(group)] {
                let actor = rules
                    .actor(&claims(json!({ "sub": "1", "cognito:groups": groups })))
                    .unwrap();
                assert!(!actor.supervisor, "{groups}");
            }
        }
        let sam = rules
            .actor(&claims(
                json!({ "sub": "1", "cognito:groups": ["supervisors"] }),
            ))
            .unwrap();
        assert!(sam.supervisor);
    }

    #[test]
    fn numbers_in_a_claim_are_read_exactly() {
        let rules = AgentRules::default();
        let numbers = |value: Value| {
            rules
                .actor(&claims(
                    json!({ "sub": "1", "custom:agent_numbers": value }),
                ))
                .unwrap()
                .numbers
        };
        assert_eq!(numbers(json!(["+15550100001", "+15550100003"])).len(), 2);
        assert_eq!(numbers(json!("+15550100001 +15550100003")).len(), 2);
        for bad in [
            json!("[+15550100001 +15550100003]"),
            json!(["[+15550100001]"]),
            json!(["\"+15550100001\""]),
            json!(["+15550100001,+15550100003"]),
        ] {
            assert!(numbers(bad.clone()).is_empty(), "{bad}");
        }
    }

    #[test]
    fn an_agent_is_known_by_a_claim_they_cannot_change() {
        let email = AgentRules::default();
        for unverified in [json!(false), json!("false"), Value::Null] {
            let mut token = json!({ "sub": "0f3c", "email": "bob@example.com" });
            if !unverified.is_null() {
                token["email_verified"] = unverified.clone();
            }
            let actor = email.actor(&claims(token)).unwrap();
            assert_eq!(actor.id, "0f3c", "email_verified {unverified}");
        }
        for verified in [json!(true), json!("true")] {
            let actor = email
                .actor(&claims(json!({
                    "sub": "0f3c", "email": "bob@example.com", "email_verified": verified,
                })))
                .unwrap();
            assert_eq!(actor.id, "bob@example.com");
        }
        let oid = AgentRules {
            id_claim: IdClaim::Oid,
            ..AgentRules::default()
        };
        let entra = json!({ "sub": "pairwise", "oid": "00000000-aaaa", "email": "x@example.com" });
        assert_eq!(oid.actor(&claims(entra)).unwrap().id, "00000000-aaaa");
        assert_eq!(
            oid.actor(&claims(json!({ "sub": "pairwise" }))).unwrap().id,
            "pairwise"
        );
        for name in ["sub", "oid", "email"] {
            assert_eq!(name.parse::<IdClaim>().unwrap().name(), name);
        }
        for mutable in ["preferred_username", "name", "upn", ""] {
            assert!(mutable.parse::<IdClaim>().is_err(), "{mutable}");
        }
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
        let verified = |sub: &str, email: &str| {
            claims(json!({ "sub": sub, "email": email, "email_verified": true }))
        };
        let bob = rules.actor(&verified("1", "bob@example.com")).unwrap();
        assert_eq!(bob.numbers.len(), 2);
        let dave = rules.actor(&verified("2", "dave@example.com")).unwrap();
        assert!(dave.numbers.is_empty());
        // Someone who set bob's address without proving it gets none of his.
        let posing = rules
            .actor(&claims(json!({ "sub": "3", "email": "bob@example.com" })))
            .unwrap();
        assert!(posing.numbers.is_empty());
        for bad in [
            "bob@example.com",
            "bob=555-0100",
            "bob=",
            "bob=[+15550100003]",
        ] {
            assert!(AgentRules::parse_numbers(bad).is_err(), "{bad}");
        }
    }
}
