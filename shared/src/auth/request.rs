//! Reading a front-end request's claims. API Gateway's JWT authorizer has
//! verified the bearer token in the `Authorization` header (the identity
//! source in `template.yaml`) before the function runs, and put its claims
//! in the request context flattened to strings. The function reads the
//! same token's payload for the claims' real JSON values, without checking
//! its signature again, but only when the authorizer's claims are there,
//! and only if the payload agrees with every one of them: a header that is
//! not the token the authorizer verified gives nobody.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use super::{Claims, ClaimsError};
use crate::token;

/// The verified claims of a front-end request: the bearer token's payload
/// when it agrees with the authorizer's claims, else (no token on the
/// request) the authorizer's claims, each as one string value.
pub fn claims(req: &Request) -> Result<Claims, ClaimsError> {
    let verified = authorizer_claims(req).ok_or(ClaimsError::Missing)?;
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| ClaimsError::Mismatch));
    match header {
        None => Ok(Claims::from_flattened(verified)),
        Some(header) => {
            let header = header?.trim();
            // The identity source may hold the token alone or after `Bearer`.
            let raw = token::bearer(Some(header)).unwrap_or(header);
            let payload = token::unverified_payload(raw).map_err(|_| ClaimsError::Mismatch)?;
            agree(verified, &payload)?;
            Ok(Claims::from_json(payload))
        }
    }
}

/// The claims API Gateway's JWT authorizer verified, from the request
/// context. None when the request did not come through the authorizer.
fn authorizer_claims(req: &Request) -> Option<&HashMap<String, String>> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            Some(&context.authorizer.as_ref()?.jwt.as_ref()?.claims)
        }
        _ => None,
    }
}

/// Every claim the authorizer passed is in the payload with the same value
/// as API Gateway renders it (numbers compared as numbers, since its text
/// for them may differ from JSON's), and the payload has no claim the
/// authorizer did not pass. Objects and nulls are not compared: their
/// rendering is API Gateway's own, and no claim read here is one.
fn agree(
    verified: &HashMap<String, String>,
    payload: &serde_json::Map<String, Value>,
) -> Result<(), ClaimsError> {
    if !verified.contains_key("sub") {
        return Err(ClaimsError::Mismatch);
    }
    for (name, text) in verified {
        let same = match payload.get(name) {
            None => false,
            Some(Value::Number(number)) => {
                let parsed = text.trim().parse::<f64>().ok();
                parsed.is_some() && parsed == number.as_f64()
            }
            Some(Value::Object(_) | Value::Null) => true,
            Some(value) => token::as_api_gateway_string(value) == *text,
        };
        if !same {
            tracing::info!(claim = %name, "the bearer token is not the one the authorizer verified");
            return Err(ClaimsError::Mismatch);
        }
    }
    let unverified = payload.iter().find(|(name, value)| {
        !matches!(value, Value::Object(_) | Value::Null) && !verified.contains_key(*name)
    });
    if let Some((name, _)) = unverified {
        tracing::info!(claim = %name, "the bearer token has a claim the authorizer did not pass");
        return Err(ClaimsError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use serde_json::json;

    use super::*;

    /// An unsigned stand-in: nothing here checks signatures.
    fn token_of(claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            part(&json!({"alg": "RS256", "kid": "k"})),
            part(claims)
        )
    }

    fn flattened(claims: &Value) -> HashMap<String, String> {
        claims
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), token::as_api_gateway_string(v)))
            .collect()
    }

    fn request(verified: Option<HashMap<String, String>>, header: Option<&str>) -> Request {
        let mut builder = http::Request::builder().uri("https://api.example.com/calls");
        if let Some(header) = header {
            builder = builder.header(http::header::AUTHORIZATION, header);
        }
        let req: Request = builder.body(lambda_http::Body::Empty).unwrap();
        match verified {
            None => req,
            Some(claims) => {
                let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
                jwt.claims = claims;
                let mut authorizer = ApiGatewayRequestAuthorizer::default();
                authorizer.jwt = Some(jwt);
                let mut context = ApiGatewayV2httpRequestContext::default();
                context.authorizer = Some(authorizer);
                req.with_request_context(RequestContext::ApiGatewayV2(context))
            }
        }
    }

    fn alice() -> Value {
        json!({
            "sub": "0f3c", "iss": "https://idp.example.com", "exp": 1_900_000_000u64,
            "iat": 1_899_996_400u64, "email": "alice@example.com", "email_verified": true,
            "cognito:groups": ["Night supervisors", "agents"],
            "address": { "country": "GB" },
        })
    }

    #[test]
    fn the_verified_token_gives_its_arrays_whole() {
        let token = token_of(&alice());
        for header in [format!("Bearer {token}"), token.clone()] {
            let claims = claims(&request(Some(flattened(&alice())), Some(&header))).unwrap();
            assert_eq!(
                claims.get("cognito:groups"),
                Some(&json!(["Night supervisors", "agents"]))
            );
            assert!(!claims.holds("cognito:groups", "supervisors"));
        }
        // API Gateway may write a number its own way.
        let mut verified = flattened(&alice());
        verified.insert("exp".into(), "1.9e+09".into());
        assert!(claims(&request(Some(verified), Some(&token))).is_ok());
    }

    #[test]
    fn a_token_other_than_the_verified_one_gives_nobody() {
        let verified = flattened(&alice());
        let mut forged = alice();
        forged["cognito:groups"] = json!(["supervisors"]);
        let mut later = alice();
        later["iat"] = json!(1_899_996_401u64);
        let mut fewer = alice();
        fewer.as_object_mut().unwrap().remove("email");
        let mut more = alice();
        more["custom:agent_numbers"] = json!("+15550100003");
        for header in [
            format!("Bearer {}", token_of(&forged)),
            token_of(&later),
            token_of(&fewer),
            token_of(&more),
            "Bearer not-a-token".to_owned(),
            "Basic YWxpY2U6cGFzcw==".to_owned(),
        ] {
            assert_eq!(
                claims(&request(Some(verified.clone()), Some(&header))),
                Err(ClaimsError::Mismatch),
                "{header}"
            );
        }
        // The token alone, without the authorizer's word, is nothing.
        assert_eq!(
            claims(&request(None, Some(&token_of(&alice())))),
            Err(ClaimsError::Missing)
        );
    }

    #[test]
    fn without_the_token_each_claim_is_one_value() {
        let claims = claims(&request(Some(flattened(&alice())), None)).unwrap();
        assert_eq!(
            claims.get("cognito:groups"),
            Some(&json!("[Night supervisors agents]"))
        );
        assert!(!claims.holds("cognito:groups", "supervisors"));
        assert!(claims.flag("email_verified"));
    }
}
