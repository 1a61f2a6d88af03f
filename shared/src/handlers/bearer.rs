//! The front-end API's shared bearer token.

use http::HeaderMap;
use http::header;
use subtle::ConstantTimeEq;

use super::api_error::ApiError;

/// Checks `Authorization: Bearer <token>` in constant time, so the answer's
/// timing tells nothing about how much of a guess was right.
pub fn check_bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(value) = auth {
            map.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(check_bearer(&headers(Some("Bearer s3cret-token")), "s3cret-token").is_ok());
        assert!(check_bearer(&headers(Some("bearer  s3cret-token ")), "s3cret-token").is_ok());
        for bad in [
            None,
            Some("Bearer s3cret-tokeN"),
            Some("Bearer s3cret"),
            Some("Bearer s3cret-token-and-more"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
            Some("Bearer "),
        ] {
            assert_eq!(
                check_bearer(&headers(bad), "s3cret-token"),
                Err(ApiError::Unauthorized),
                "{bad:?}"
            );
        }
    }
}
