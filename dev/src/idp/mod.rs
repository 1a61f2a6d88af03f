//! A local OpenID Connect issuer, so the local stack and the tests sign
//! agents in without any account: an RS256 key made fresh for each run, its
//! JWKS, ID tokens shaped like a Cognito user pool's (the deployment's
//! default claim names), and the authorization-code + PKCE flow the console
//! uses (`oidc`). The development server verifies its tokens exactly as API
//! Gateway's JWT authorizer verifies the real ones (`verify`).

pub mod oidc;
/// Lives in the shared crate: the WebSocket API's `$connect` verifies with it too.
pub use warm_transfer_core::token as verify;

use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub use verify::{Refused, Verifier};

/// The console's client id at the local issuer (the token's audience).
pub const LOCAL_CLIENT_ID: &str = "warm-transfer-console";
/// Where the local issuer lives on the development server.
pub const ISSUER_PATH: &str = "/local-idp";
/// How long a local token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A person the local issuer signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAgent {
    /// Also their e-mail: the id the history names them by.
    pub email: String,
    pub numbers: Vec<String>,
    pub supervisor: bool,
    /// Teams, as groups named `team-<name>` (the deployment's default prefix).
    pub teams: Vec<String>,
}

impl LocalAgent {
    pub fn new(email: &str, numbers: &[&str], supervisor: bool) -> Self {
        Self {
            email: email.to_owned(),
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            supervisor,
            teams: Vec::new(),
        }
    }

    /// The same agent, a member of `teams`.
    pub fn in_teams(mut self, teams: &[&str]) -> Self {
        self.teams = teams.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// How colleagues see them: the name before the `@`, capitalised.
    pub fn display_name(&self) -> String {
        let name = self.username();
        let mut chars = name.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    }

    /// The name before the `@`, for the sign-in page and `?agent=`.
    pub fn username(&self) -> &str {
        self.email.split('@').next().unwrap_or(&self.email)
    }
}

/// The agents of the local stack (docs/development.md, "Sign in locally"): the demo's first and
/// second agent, and a supervisor.
pub fn local_agents() -> Vec<LocalAgent> {
    vec![
        LocalAgent::new(
            "alice@example.com",
            &["+15550100001", "+15550200001", "+15550300001"],
            false,
        )
        .in_teams(&["support"]),
        LocalAgent::new("bob@example.com", &["+15550100003", "+15550200003"], false)
            .in_teams(&["billing"]),
        LocalAgent::new("carol@example.com", &["+15550100004"], false).in_teams(&["billing"]),
        LocalAgent::new("dave@example.com", &["+15550100005"], false).in_teams(&["billing"]),
        LocalAgent::new("sam@example.com", &["+15550100009"], true),
    ]
}

#[derive(Debug, thiserror::Error)]
#[error("local signing key: {0}")]
pub struct KeyError(String);

/// The issuer: its URL, key and agents.
pub struct LocalIssuer {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwks: JwkSet,
    agents: Vec<LocalAgent>,
    codes: oidc::Codes,
}

impl LocalIssuer {
    /// An issuer at `base_url` + [`ISSUER_PATH`], with a new 2048-bit key.
    pub fn new(base_url: &str, agents: Vec<LocalAgent>) -> Result<Self, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| KeyError(e.to_string()))?;
        let pkcs8 = pair.as_der().map_err(|e| KeyError(e.to_string()))?;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let kid = format!("local-{:08x}", rand::random::<u32>());
        let jwks: JwkSet = serde_json::from_value(json!({
            "keys": [{ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e }]
        }))
        .map_err(|e| KeyError(e.to_string()))?;
        Ok(Self {
            issuer: format!("{}{ISSUER_PATH}", base_url.trim_end_matches('/')),
            kid,
            key,
            jwks,
            agents,
            codes: oidc::Codes::default(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn agents(&self) -> &[LocalAgent] {
        &self.agents
    }

    pub fn agent(&self, username_or_email: &str) -> Option<&LocalAgent> {
        self.agents
            .iter()
            .find(|a| a.email == username_or_email || a.username() == username_or_email)
    }

    /// Verifies tokens as API Gateway's authorizer would for this issuer.
    pub fn verifier(&self) -> Verifier {
        // The keys as the issuer serves them (`jwks.json`), read like any issuer's.
        let jwks = serde_json::to_value(&self.jwks)
            .ok()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or(warm_transfer_core::token::Jwks { keys: Vec::new() });
        Verifier::new(&self.issuer, LOCAL_CLIENT_ID, &jwks)
    }

    /// The claims of an ID token for `agent`, as a Cognito user pool
    /// issues them (`cognito:groups`, `custom:agent_numbers`).
    pub fn claims_for(&self, agent: &LocalAgent) -> Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": LOCAL_CLIENT_ID,
            "sub": format!("local-{}", agent.username()),
            "email": agent.email,
            "email_verified": true,
            "cognito:username": agent.username(),
            "name": agent.display_name(),
            "custom:agent_numbers": agent.numbers.join(","),
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + TOKEN_LIFETIME.as_secs() as i64,
        });
        let mut groups: Vec<String> = agent.teams.iter().map(|t| format!("team-{t}")).collect();
        if agent.supervisor {
            groups.push("supervisors".into());
        }
        if !groups.is_empty() {
            claims["cognito:groups"] = json!(groups);
        }
        claims
    }

    /// Signs any claims with the issuer's key (tests shape bad ones with it).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        // Our own key and a JSON value: signing cannot fail short of a bug.
        jsonwebtoken::encode(&header, claims, &self.key).unwrap_or_default()
    }

    /// A valid ID token for `agent`.
    pub fn token_for(&self, agent: &LocalAgent) -> String {
        self.sign(&self.claims_for(agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> LocalIssuer {
        LocalIssuer::new("http://127.0.0.1:3000", local_agents()).unwrap()
    }

    fn alice(issuer: &LocalIssuer) -> Value {
        issuer.claims_for(issuer.agent("alice").unwrap())
    }

    #[test]
    fn a_valid_token_gives_its_claims_as_api_gateway_does() {
        let issuer = issuer();
        let sam = issuer.agent("sam@example.com").unwrap();
        let claims = issuer.verifier().verify(&issuer.token_for(sam)).unwrap();
        assert_eq!(claims["email"], "sam@example.com");
        assert_eq!(claims["cognito:groups"], "[supervisors]");
        assert_eq!(claims["custom:agent_numbers"], "+15550100009");
        assert_eq!(claims["email_verified"], "true");
        assert_eq!(claims["iss"], "http://127.0.0.1:3000/local-idp");
    }

    #[test]
    fn expired_and_premature_tokens_are_refused() {
        let issuer = issuer();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = alice(&issuer);
        claims["exp"] = json!(now - 3600);
        let verifier = issuer.verifier();
        assert_eq!(
            verifier.verify(&issuer.sign(&claims)),
            Err(Refused::Expired)
        );
        let mut claims = alice(&issuer);
        claims["nbf"] = json!(now + 3600);
        assert_eq!(
            verifier.verify(&issuer.sign(&claims)),
            Err(Refused::NotYetValid)
        );
        let mut claims = alice(&issuer);
        claims.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            verifier.verify(&issuer.sign(&claims)),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let issuer = issuer();
        let verifier = issuer.verifier();
        for aud in [json!("another-app"), json!(["another-app"]), Value::Null] {
            let mut claims = alice(&issuer);
            claims["aud"] = aud.clone();
            if aud.is_null() {
                claims.as_object_mut().unwrap().remove("aud");
            }
            assert_eq!(
                verifier.verify(&issuer.sign(&claims)),
                Err(Refused::Audience),
                "{aud}"
            );
        }
        // A Cognito access token names its client instead.
        let mut claims = alice(&issuer);
        claims.as_object_mut().unwrap().remove("aud");
        claims["client_id"] = json!(LOCAL_CLIENT_ID);
        assert!(verifier.verify(&issuer.sign(&claims)).is_ok());

        let mut claims = alice(&issuer);
        claims["iss"] = json!("https://idp.example.com");
        assert_eq!(verifier.verify(&issuer.sign(&claims)), Err(Refused::Issuer));
        // Another issuer's key, even with the right claims and kid.
        let other = LocalIssuer::new("http://127.0.0.1:3000", local_agents()).unwrap();
        let forged = other.sign(&alice(&issuer));
        assert_eq!(verifier.verify(&forged), Err(Refused::UnknownKey));
    }

    #[test]
    fn unsigned_and_tampered_tokens_are_refused() {
        let issuer = issuer();
        let verifier = issuer.verifier();
        let token = issuer.token_for(issuer.agent("alice").unwrap());
        let parts: Vec<&str> = token.split('.').collect();

        // alg: none, with and without a signature part.
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        for unsigned in [
            format!("{none}.{}.", parts[1]),
            format!("{none}.{}", parts[1]),
        ] {
            assert!(
                matches!(verifier.verify(&unsigned), Err(Refused::Malformed(_))),
                "{unsigned}"
            );
        }
        // HS256 "signed" with the public key: the classic confusion attack.
        let hs = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": issuer.kid}).to_string());
        assert!(matches!(
            verifier.verify(&format!("{hs}.{}.{}", parts[1], parts[2])),
            Err(Refused::Malformed(_))
        ));

        // The payload changed after signing: now a supervisor with bob's number.
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["cognito:groups"] = json!(["supervisors"]);
        claims["custom:agent_numbers"] = json!("+15550100003");
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(verifier.verify(&tampered), Err(Refused::Signature));
        // A flipped bit in the signature.
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let flipped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(verifier.verify(&flipped), Err(Refused::Signature));
        assert!(
            verifier.verify(&token).is_ok(),
            "the original still verifies"
        );
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(verify::bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(verify::bearer(Some("bearer  abc ")), Ok("abc"));
        for bad in [None, Some("Basic abc"), Some("Bearer "), Some("abc")] {
            assert_eq!(verify::bearer(bad), Err(Refused::Missing), "{bad:?}");
        }
    }
}
