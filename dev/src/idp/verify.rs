//! Verifies agents' tokens the way API Gateway's JWT authorizer does, for
//! the development server: RS256 signature by a key of the issuer's JWKS
//! (`kid`), issuer, audience (`aud`, or `client_id` as in Cognito access
//! tokens), expiry and not-before. Unsigned (`alg: none`) and HMAC tokens
//! are refused. The claims come out as API Gateway hands them to a function.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no bearer token")]
    Missing,
    #[error("malformed or unsupported token: {0}")]
    Malformed(String),
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
}

/// One issuer's keys, issuer and audience.
pub struct Verifier {
    issuer: String,
    audience: String,
    keys: HashMap<String, DecodingKey>,
}

impl Verifier {
    pub fn new(issuer: &str, audience: &str, jwks: &JwkSet) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect();
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
        }
    }

    /// The claims of a valid token, each a string as API Gateway passes it.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, Refused> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| Refused::Malformed(error.to_string()))?;
        // Only RSA signatures, like the authorizer; `none` does not even parse.
        if header.alg != Algorithm::RS256 {
            return Err(Refused::Malformed(format!(
                "{:?} is not accepted",
                header.alg
            )));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(Refused::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_nbf = true;
        // Checked below: `aud`, or `client_id` when there is no `aud`.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<HashMap<String, Value>>(token, key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => Refused::Signature,
                ErrorKind::ExpiredSignature => Refused::Expired,
                ErrorKind::ImmatureSignature => Refused::NotYetValid,
                ErrorKind::InvalidIssuer => Refused::Issuer,
                _ => Refused::Malformed(error.to_string()),
            })?;
        let claims = data.claims;
        let audience_ok = match (claims.get("aud"), claims.get("client_id")) {
            (Some(Value::String(aud)), _) => *aud == self.audience,
            (Some(Value::Array(auds)), _) => auds.iter().any(|a| *a == *self.audience),
            (None, Some(Value::String(client))) => *client == self.audience,
            _ => false,
        };
        if !audience_ok {
            return Err(Refused::Audience);
        }
        Ok(claims
            .into_iter()
            .map(|(name, value)| (name, as_api_gateway_string(&value)))
            .collect())
    }
}

/// A claim as API Gateway's JWT authorizer renders it: strings as they are,
/// arrays as `[a b]`, anything else as its JSON text.
fn as_api_gateway_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(as_api_gateway_string).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, Refused> {
    let (scheme, token) = header
        .ok_or(Refused::Missing)?
        .trim()
        .split_once(' ')
        .ok_or(Refused::Missing)?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Ok(token.trim())
    } else {
        Err(Refused::Missing)
    }
}
