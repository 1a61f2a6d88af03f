//! Verifies agents' tokens the way API Gateway's JWT authorizer does: RS256 signature by a key of the issuer's JWKS
//! (`kid`), issuer, audience (`aud`, or `client_id` as in Cognito access
//! tokens), expiry, not-before and issued-at, with no leeway. Unsigned (`alg: none`) and HMAC tokens
//! are refused. The claims come out as API Gateway hands them to a function.
//! The development server verifies HTTP requests with it; the WebSocket
//! API's `$connect` (which has no JWT authorizer) verifies its token with it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// An issuer's JSON Web Key Set, as its `jwks_uri` serves it. Only RSA keys
/// with a `kid` are used.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
}

/// One issuer's keys, issuer and audience. RSA signatures are checked with
/// *ring*, the crypto the functions' TLS already uses (no AWS-LC).
pub struct Verifier {
    issuer: String,
    audience: String,
    /// Modulus and exponent, big-endian, by key id.
    keys: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

fn part(text: &str, what: &str) -> Result<Vec<u8>, Refused> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Refused::Malformed(format!("the {what} is not base64url")))
}

impl Verifier {
    pub fn new(issuer: &str, audience: &str, jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|jwk| jwk.kty == "RSA")
            .filter_map(|jwk| {
                let n = URL_SAFE_NO_PAD.decode(jwk.n.as_deref()?).ok()?;
                let e = URL_SAFE_NO_PAD.decode(jwk.e.as_deref()?).ok()?;
                Some((jwk.kid.clone()?, (n, e)))
            })
            .collect();
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
        }
    }

    /// Whether this key id is one of the issuer's keys.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The claims of a valid token, each a string as API Gateway's JWT
    /// authorizer passes them to a function (the development server's
    /// stand-in for it hands them on so).
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, Refused> {
        Ok(self
            .verify_json(token)?
            .into_iter()
            .map(|(name, value)| (name, as_api_gateway_string(&value)))
            .collect())
    }

    /// The claims of a valid token as their JSON values: arrays stay arrays.
    pub fn verify_json(&self, token: &str) -> Result<Map<String, Value>, Refused> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(Refused::Malformed("not three parts".into()));
        };
        let kid = kid_of(header)?;
        let (n, e) = self.keys.get(&kid).ok_or(Refused::UnknownKey)?;
        let signed = &token[..token.len() - signature.len() - 1];
        RsaPublicKeyComponents { n, e }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &part(signature, "signature")?,
            )
            .map_err(|_| Refused::Signature)?;
        let claims = payload_of(payload)?;
        for required in ["exp", "iss", "sub"] {
            if !claims.contains_key(required) {
                return Err(Refused::Malformed(format!("no {required} claim")));
            }
        }
        // The authorizer's rule, with no leeway: `exp` after now, `nbf` and
        // `iat` not after it. A token the HTTP API refuses opens no socket.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let seconds = |name: &str| claims.get(name).map(|v| v.as_i64());
        match seconds("exp") {
            Some(Some(exp)) if exp > now => {}
            Some(Some(_)) => return Err(Refused::Expired),
            _ => return Err(Refused::Malformed("exp is not a number".into())),
        }
        for name in ["nbf", "iat"] {
            match seconds(name) {
                None => {}
                Some(Some(at)) if at <= now => {}
                Some(Some(_)) => return Err(Refused::NotYetValid),
                Some(None) => return Err(Refused::Malformed(format!("{name} is not a number"))),
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Refused::Issuer);
        }
        let audience_ok = match (claims.get("aud"), claims.get("client_id")) {
            (Some(Value::String(aud)), _) => *aud == self.audience,
            (Some(Value::Array(auds)), _) => auds.iter().any(|a| *a == *self.audience),
            (None, Some(Value::String(client))) => *client == self.audience,
            _ => false,
        };
        if !audience_ok {
            return Err(Refused::Audience);
        }
        Ok(claims)
    }
}

/// The key id of a token's header, if it is a signature the authorizer
/// accepts: RSA only, so `none` and HMAC are refused.
fn kid_of(header: &str) -> Result<String, Refused> {
    let header: Value = serde_json::from_slice(&part(header, "header")?)
        .map_err(|_| Refused::Malformed("the header is not JSON".into()))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" {
        return Err(Refused::Malformed(format!("{alg:?} is not accepted")));
    }
    header["kid"]
        .as_str()
        .map(str::to_owned)
        .ok_or(Refused::UnknownKey)
}

/// The key a token says it was signed with (unchecked: for finding the key).
pub fn key_id(token: &str) -> Result<String, Refused> {
    let header = token.split('.').next().unwrap_or_default();
    kid_of(header)
}

fn payload_of(payload: &str) -> Result<Map<String, Value>, Refused> {
    serde_json::from_slice(&part(payload, "payload")?)
        .map_err(|_| Refused::Malformed("the payload is not a JSON object".into()))
}

/// The payload of a token WITHOUT checking its signature: only for a token
/// something else has verified (API Gateway's JWT authorizer, for the
/// bearer token of a front-end request), to read its claims as JSON.
pub fn unverified_payload(token: &str) -> Result<Map<String, Value>, Refused> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_, payload, _] = parts[..] else {
        return Err(Refused::Malformed("not three parts".into()));
    };
    payload_of(payload)
}

/// A claim as API Gateway's JWT authorizer renders it: strings as they are,
/// arrays as `[a b]`, anything else as its JSON text.
pub fn as_api_gateway_string(value: &Value) -> String {
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
