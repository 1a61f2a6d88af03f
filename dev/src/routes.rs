//! API Gateway's routing, as the development server plays it: which
//! endpoint a method and path reach, with the path's parameters.

use http::Method;
use warm_transfer_core::endpoint::{Endpoint, HttpEndpoint, Kind};

/// Finds the endpoint serving `method path`, with its path parameters:
/// API Gateway's routing, for the development server and tests.
pub fn resolve(method: &Method, path: &str) -> Option<(HttpEndpoint, Vec<(String, String)>)> {
    Endpoint::ALL.into_iter().find_map(|endpoint| {
        let Kind::Http(http) = endpoint.kind() else {
            return None;
        };
        if endpoint.method() != *method {
            return None;
        }
        match_route(endpoint.route(), path).map(|params| (http, params))
    })
}

/// Matches a path against a route template segment by segment.
fn match_route(route: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut route_segments = route.trim_matches('/').split('/');
    let mut path_segments = path.trim_matches('/').split('/');
    let mut params = Vec::new();
    loop {
        match (route_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(template), Some(segment)) => {
                if let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if segment.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), segment.to_owned()));
                } else if template != segment {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;
    use warm_transfer_core::handlers::webhook_urls::{RoomRole, WebhookUrls};
    use warm_transfer_core::ids::{CallSid, PhoneNumber};

    #[test]
    fn every_endpoint_resolves_from_its_own_route() {
        for endpoint in Endpoint::ALL {
            if endpoint.http().is_none() {
                assert!(resolve(&endpoint.method(), endpoint.route()).is_none());
                continue;
            }
            let path = endpoint
                .route()
                .replace("{callSid}", "CA0123456789abcdef0123456789abcdef")
                .replace("{leg}", "customer-leg");
            let (found, _) = resolve(&endpoint.method(), &path)
                .unwrap_or_else(|| panic!("{}", endpoint.route()));
            assert_eq!(found.endpoint(), endpoint);
        }
    }

    #[test]
    fn path_parameters_are_extracted_and_unknown_routes_refused() {
        let (endpoint, params) = resolve(&Method::POST, "/calls/CA1/transfer/cancel").unwrap();
        assert_eq!(endpoint, HttpEndpoint::CancelTransfer);
        assert_eq!(params, vec![("callSid".to_owned(), "CA1".to_owned())]);
        assert!(resolve(&Method::GET, "/calls").is_none());
        assert!(resolve(&Method::POST, "/calls/CA1/transfer/other").is_none());
        assert!(resolve(&Method::POST, "/twiml").is_none());
    }

    fn urls(base: &str) -> WebhookUrls {
        WebhookUrls::new(&Url::parse(base).unwrap())
    }

    fn endpoint_of(url: &str, base: &str) -> Endpoint {
        let rest = url.strip_prefix(base).unwrap();
        let path = rest.split(['?', '#']).next().unwrap();
        resolve(&Method::POST, path).unwrap().0.endpoint()
    }

    #[test]
    fn every_callback_resolves_to_the_endpoint_that_serves_it() {
        let base = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";
        let c = urls(&format!("{base}/"));
        let sid = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        let customer = PhoneNumber::parse("+14155550100").unwrap();
        let caller = PhoneNumber::parse("+15005550006").unwrap();
        for (url, expected) in [
            (c.dial_customer(&customer, &caller), Endpoint::DialCustomer),
            (c.agent_dial_ended(), Endpoint::AgentDialEnded),
            (
                c.conference(&sid.room(), RoomRole::Customer),
                Endpoint::ConferenceTwiml,
            ),
            (c.agent_leg_events(), Endpoint::StatusCallback),
            (c.customer_leg_events(), Endpoint::StatusCallback),
            (c.participant_events(&sid, 2), Endpoint::StatusCallback),
            (c.conference_events(), Endpoint::StatusCallback),
            (c.recording_events(&sid), Endpoint::StatusCallback),
            (c.fallback(RoomRole::Customer), Endpoint::FallbackTwiml),
        ] {
            assert_eq!(endpoint_of(&url, base), expected, "{url}");
        }
    }
}
