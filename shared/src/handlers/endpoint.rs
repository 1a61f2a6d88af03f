//! The endpoints: one Lambda function each, with the route API Gateway (and
//! the development server) mounts it at.

use http::Method;

/// Every function of the product. The SAM template, the `functions/` crates,
/// the `events/` fixtures and the development server are all checked against
/// this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    StartCall,
    GetCall,
    StartTransfer,
    CancelTransfer,
    LeaveCall,
    DialCustomer,
    AgentDialEnded,
    ConferenceTwiml,
    FallbackTwiml,
    StatusCallback,
    Console,
    /// Not HTTP: runs on an EventBridge schedule.
    Reconciler,
}

/// Who calls an endpoint, which decides how it authenticates and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The agent console: bearer token, JSON in and out, CORS.
    FrontEnd,
    /// Twilio: `X-Twilio-Signature`, form in, TwiML out.
    Twilio,
    /// Anyone: the console page, which holds no secret.
    Public,
    /// No caller: an EventBridge schedule invokes it; it has no route.
    Schedule,
}

impl Endpoint {
    pub const ALL: [Endpoint; 12] = [
        Endpoint::StartCall,
        Endpoint::GetCall,
        Endpoint::StartTransfer,
        Endpoint::CancelTransfer,
        Endpoint::LeaveCall,
        Endpoint::DialCustomer,
        Endpoint::AgentDialEnded,
        Endpoint::ConferenceTwiml,
        Endpoint::FallbackTwiml,
        Endpoint::StatusCallback,
        Endpoint::Console,
        Endpoint::Reconciler,
    ];

    /// The binary's name in `functions/`.
    pub fn function_name(self) -> &'static str {
        match self {
            Endpoint::StartCall => "start-call",
            Endpoint::GetCall => "get-call",
            Endpoint::StartTransfer => "start-transfer",
            Endpoint::CancelTransfer => "cancel-transfer",
            Endpoint::LeaveCall => "leave-call",
            Endpoint::DialCustomer => "dial-customer",
            Endpoint::AgentDialEnded => "agent-dial-ended",
            Endpoint::ConferenceTwiml => "conference-twiml",
            Endpoint::FallbackTwiml => "fallback-twiml",
            Endpoint::StatusCallback => "status-callback",
            Endpoint::Console => "console",
            Endpoint::Reconciler => "reconciler",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Endpoint::GetCall | Endpoint::Console => Method::GET,
            _ => Method::POST,
        }
    }

    /// The route in API Gateway's syntax (`{name}` marks a path parameter).
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::StartCall => "/calls",
            Endpoint::GetCall => "/calls/{callSid}",
            Endpoint::StartTransfer => "/calls/{callSid}/transfer",
            Endpoint::CancelTransfer => "/calls/{callSid}/transfer/cancel",
            Endpoint::LeaveCall => "/calls/{callSid}/leave",
            Endpoint::DialCustomer => "/twiml/dial-customer",
            Endpoint::AgentDialEnded => "/twiml/agent-dial-ended",
            Endpoint::ConferenceTwiml => "/twiml/conference",
            Endpoint::FallbackTwiml => "/twiml/fallback",
            Endpoint::StatusCallback => "/events/{leg}",
            Endpoint::Console => "/console",
            // Never resolved: see `resolve`.
            Endpoint::Reconciler => "",
        }
    }

    pub fn caller(self) -> Caller {
        match self {
            Endpoint::StartCall
            | Endpoint::GetCall
            | Endpoint::StartTransfer
            | Endpoint::CancelTransfer
            | Endpoint::LeaveCall => Caller::FrontEnd,
            Endpoint::DialCustomer
            | Endpoint::AgentDialEnded
            | Endpoint::ConferenceTwiml
            | Endpoint::FallbackTwiml
            | Endpoint::StatusCallback => Caller::Twilio,
            Endpoint::Console => Caller::Public,
            Endpoint::Reconciler => Caller::Schedule,
        }
    }

    /// Finds the endpoint serving `method path`, with its path parameters.
    /// API Gateway does this in AWS; the development server and tests use it.
    pub fn resolve(method: &Method, path: &str) -> Option<(Endpoint, Vec<(String, String)>)> {
        Endpoint::ALL.into_iter().find_map(|endpoint| {
            if endpoint.method() != *method || endpoint.caller() == Caller::Schedule {
                return None;
            }
            match_route(endpoint.route(), path).map(|params| (endpoint, params))
        })
    }
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

    #[test]
    fn every_endpoint_resolves_from_its_own_route() {
        for endpoint in Endpoint::ALL {
            if endpoint.caller() == Caller::Schedule {
                assert!(Endpoint::resolve(&endpoint.method(), endpoint.route()).is_none());
                continue;
            }
            let path = endpoint
                .route()
                .replace("{callSid}", "CA0123456789abcdef0123456789abcdef")
                .replace("{leg}", "customer-leg");
            let (found, _) = Endpoint::resolve(&endpoint.method(), &path)
                .unwrap_or_else(|| panic!("{}", endpoint.route()));
            assert_eq!(found, endpoint);
        }
    }

    #[test]
    fn path_parameters_are_extracted_and_unknown_routes_refused() {
        let (endpoint, params) =
            Endpoint::resolve(&Method::POST, "/calls/CA1/transfer/cancel").unwrap();
        assert_eq!(endpoint, Endpoint::CancelTransfer);
        assert_eq!(params, vec![("callSid".to_owned(), "CA1".to_owned())]);
        assert!(Endpoint::resolve(&Method::GET, "/calls").is_none());
        assert!(Endpoint::resolve(&Method::POST, "/calls/CA1/transfer/other").is_none());
        assert!(Endpoint::resolve(&Method::POST, "/twiml").is_none());
    }
}
