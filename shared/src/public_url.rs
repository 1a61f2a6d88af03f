//! The public URL Twilio requested, rebuilt from what API Gateway hands the
//! function: Twilio signs that exact URL (scheme, host, stage prefix, path,
//! query), so the signature check needs it byte for byte.
//!
//! - HTTP API (v2) events keep the raw query string; the stage prefix is part
//!   of the URL on `*.execute-api.*` hosts unless the stage is `$default`.
//! - REST API (v1) events lose the raw query string; it is rebuilt with the
//!   parameters sorted by name, which is how the product writes every query
//!   string it hands to Twilio (see `handlers::callbacks`).
//! - Behind a custom domain with a base path, or any proxy, configure
//!   `PUBLIC_BASE_URL` and the URL is that base + the route path + the query.
//! - Without an API Gateway context (development server) the Host header and
//!   `X-Forwarded-Proto` (default http) are used.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicUrlError {
    #[error("the request names no host to rebuild its public URL from")]
    NoHost,
}

/// The stage prefix of the public URL, if API Gateway's default domain is used.
fn stage_prefix(domain: Option<&str>, stage: Option<&str>) -> Option<String> {
    let stage = stage.filter(|s| !s.is_empty() && *s != "$default")?;
    // Custom domains map the API at their own (configured) base path.
    let on_default_domain = domain.is_none_or(|d| d.contains(".execute-api."));
    on_default_domain.then(|| format!("/{stage}"))
}

/// The request's path relative to the API's root: what the routes are written
/// against, without any stage prefix.
pub fn route_path(req: &Request) -> String {
    let raw = match req.raw_http_path() {
        "" => req.uri().path(),
        raw => raw,
    };
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let path = match stage.filter(|s| s != "$default") {
        Some(stage) => {
            let prefix = format!("/{stage}");
            match raw.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                _ => raw,
            }
        }
        None => raw,
    };
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

/// The query string exactly as Twilio sent it (v2 and local), or rebuilt
/// with names sorted (v1, whose events only carry the parsed parameters).
fn query(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV1(_)) = req.request_context_ref() {
        let mut pairs: Vec<(String, String)> = req
            .query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .flat_map(|(k, _)| {
                        q.all(k)
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |v| (k.to_owned(), v.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        pairs.sort();
        pairs.dedup();
        return form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
    }
    req.uri().query().unwrap_or("").to_owned()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The full URL Twilio requested and signed.
pub fn signed_url(req: &Request, public_base: Option<&Url>) -> Result<String, PublicUrlError> {
    let path = route_path(req);
    let base = match public_base {
        Some(base) => base.as_str().trim_end_matches('/').to_owned(),
        None => {
            let (domain, stage, default_scheme) = match req.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(ctx)) => {
                    (ctx.domain_name.clone(), ctx.stage.clone(), "https")
                }
                Some(RequestContext::ApiGatewayV1(ctx)) => {
                    (ctx.domain_name.clone(), ctx.stage.clone(), "https")
                }
                _ => (None, None, "http"),
            };
            let host = header(req, "host")
                .map(str::to_owned)
                .or_else(|| domain.clone())
                .or_else(|| req.uri().authority().map(|a| a.to_string()))
                .ok_or(PublicUrlError::NoHost)?;
            // A proxy chain lists every hop's protocol; the first is the client's.
            let scheme = header(req, "x-forwarded-proto")
                .and_then(|list| list.split(',').next())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_scheme);
            let prefix = stage_prefix(Some(domain.as_deref().unwrap_or(&host)), stage.as_deref())
                .unwrap_or_default();
            format!("{scheme}://{host}{prefix}")
        }
    };
    let query = query(req);
    Ok(if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(domain: &str, stage: &str, raw_path: &str, raw_query: &str) -> Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /events/{leg}",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": { "host": domain, "x-forwarded-proto": "https", "content-type": "application/x-www-form-urlencoded" },
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123", "domainName": domain,
                "domainPrefix": "abc123",
                "http": { "method": "POST", "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "54.172.60.1", "userAgent": "TwilioProxy/1.1" },
                "requestId": "id", "routeKey": "POST /events/{leg}", "stage": stage,
                "time": "25/Nov/2026:07:00:00 +0000", "timeEpoch": 1795676400000u64
            },
            "body": "CallSid=CA1", "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    fn v1(domain: &str, stage: &str, path: &str, query: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "resource": "/events/{leg}", "path": path, "httpMethod": "POST",
            "headers": { "Host": domain, "X-Forwarded-Proto": "https" },
            "multiValueHeaders": { "Host": [domain], "X-Forwarded-Proto": ["https"] },
            "queryStringParameters": query.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v[0].clone())).collect::<serde_json::Map<_, _>>()),
            "multiValueQueryStringParameters": query,
            "pathParameters": { "leg": "participant" }, "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012", "resourceId": "r1", "stage": stage, "requestId": "id",
                "domainName": domain, "identity": { "sourceIp": "54.172.60.1" },
                "resourcePath": "/events/{leg}", "httpMethod": "POST", "apiId": "abc123",
                "path": format!("/{stage}{path}")
            },
            "body": "CallSid=CA1", "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn http_api_default_stage() {
        let req = v2(
            "abc123.execute-api.us-east-1.amazonaws.com",
            "$default",
            "/twiml/dial-customer",
            "to=%2B14155550100&callerId=%2B15005550006",
        );
        assert_eq!(route_path(&req), "/twiml/dial-customer");
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "https://abc123.execute-api.us-east-1.amazonaws.com/twiml/dial-customer?to=%2B14155550100&callerId=%2B15005550006"
        );
    }

    #[test]
    fn http_api_named_stage_keeps_its_prefix_and_raw_query() {
        let req = v2(
            "abc123.execute-api.us-east-1.amazonaws.com",
            "prod",
            "/prod/events/participant",
            "session=CA1&attempt=2&x=a%20b+c",
        );
        assert_eq!(route_path(&req), "/events/participant");
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/events/participant?session=CA1&attempt=2&x=a%20b+c"
        );
    }

    #[test]
    fn custom_domain_has_no_stage_prefix() {
        let req = v2("calls.example.com", "prod", "/events/conference", "");
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "https://calls.example.com/events/conference"
        );
    }

    #[test]
    fn configured_base_wins() {
        let req = v2(
            "abc123.execute-api.us-east-1.amazonaws.com",
            "prod",
            "/prod/events/conference",
            "a=1",
        );
        let base = Url::parse("https://calls.example.com/api/").unwrap();
        assert_eq!(
            signed_url(&req, Some(&base)).unwrap(),
            "https://calls.example.com/api/events/conference?a=1"
        );
    }

    #[test]
    fn rest_api_adds_stage_and_rebuilds_sorted_query() {
        let req = v1(
            "abc123.execute-api.us-east-1.amazonaws.com",
            "prod",
            "/events/participant",
            serde_json::json!({ "session": ["CA1"], "attempt": ["2"] }),
        );
        assert_eq!(route_path(&req), "/events/participant");
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/events/participant?attempt=2&session=CA1"
        );
    }

    #[test]
    fn rest_api_on_a_custom_domain_has_no_stage_prefix() {
        let req = v1(
            "calls.example.com",
            "prod",
            "/events/participant",
            serde_json::json!({ "to": ["+14155550100"] }),
        );
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "https://calls.example.com/events/participant?to=%2B14155550100"
        );
    }

    #[test]
    fn local_requests_use_the_host_header() {
        let req: Request = http::Request::builder()
            .uri("/twiml/conference?room=wt-CA1&role=customer")
            .header("host", "127.0.0.1:3000")
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert_eq!(route_path(&req), "/twiml/conference");
        assert_eq!(
            signed_url(&req, None).unwrap(),
            "http://127.0.0.1:3000/twiml/conference?room=wt-CA1&role=customer"
        );
        let no_host: Request = http::Request::builder()
            .uri("/x")
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert_eq!(signed_url(&no_host, None), Err(PublicUrlError::NoHost));
        let proxied: Request = http::Request::builder()
            .uri("/twiml/hangup")
            .header("host", "calls.example.com")
            .header("x-forwarded-proto", "https, http")
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert_eq!(
            signed_url(&proxied, None).unwrap(),
            "https://calls.example.com/twiml/hangup"
        );
    }
}
