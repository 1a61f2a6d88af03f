//! The endpoints: one Lambda function each, with the route API Gateway (and
//! the development server) mounts it at.

mod needs;

use http::Method;

pub use needs::{Needs, TableAction};

/// The endpoint table: every function of the product with its binary's
/// name in `functions/` (also its `events/` file), method, route in API
/// Gateway's syntax (`{name}` marks a path parameter) and caller. The SAM
/// template, the `functions/` crates, the `events/` fixtures and the
/// development server are all checked against it; the dispatch in
/// `App::handle` (`handlers`) matches on it without a wildcard.
macro_rules! endpoints {
    ($($(#[$doc:meta])* $variant:ident => ($function:literal, $method:ident, $route:literal, $caller:ident)),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint { $($(#[$doc])* $variant),+ }

        impl Endpoint {
            pub const ALL: [Endpoint; [$($function),+].len()] = [$(Endpoint::$variant),+];

            /// This endpoint's row of the table.
            pub const fn spec(self) -> EndpointSpec {
                match self {
                    $(Endpoint::$variant => EndpointSpec {
                        function: $function,
                        method: Method::$method,
                        route: $route,
                        caller: Caller::$caller,
                    }),+
                }
            }
        }
    };
}

endpoints! {
    StartCall => ("start-call", POST, "/calls", FrontEnd),
    GetCall => ("get-call", GET, "/calls/{callSid}", FrontEnd),
    StartTransfer => ("start-transfer", POST, "/calls/{callSid}/transfer", FrontEnd),
    CancelTransfer => ("cancel-transfer", POST, "/calls/{callSid}/transfer/cancel", FrontEnd),
    LeaveCall => ("leave-call", POST, "/calls/{callSid}/leave", FrontEnd),
    HoldCustomer => ("hold-customer", POST, "/calls/{callSid}/hold", FrontEnd),
    DialCustomer => ("dial-customer", POST, "/twiml/dial-customer", Twilio),
    AgentDialEnded => ("agent-dial-ended", POST, "/twiml/agent-dial-ended", Twilio),
    ConferenceTwiml => ("conference-twiml", POST, "/twiml/conference", Twilio),
    FallbackTwiml => ("fallback-twiml", POST, "/twiml/fallback", Twilio),
    HoldTwiml => ("hold-twiml", POST, "/twiml/hold", Twilio),
    StatusCallback => ("status-callback", POST, "/events/{leg}", Twilio),
    Console => ("console", GET, "/console", Public),
    /// Not HTTP: runs on an EventBridge schedule; `resolve` never answers with it.
    Reconciler => ("reconciler", POST, "", Schedule),
    /// The WebSocket API's routes (see `push`): a console subscribes to a call.
    WsConnect => ("ws-connect", GET, "$connect", WebSocket),
    WsDisconnect => ("ws-disconnect", GET, "$disconnect", WebSocket),
    /// Not HTTP: reads the table's DynamoDB Stream and pushes the changes.
    StreamPublisher => ("stream-publisher", POST, "", Stream),
}

/// One row of the endpoint table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The binary's name in `functions/` (and its events file's name).
    pub function: &'static str,
    pub method: Method,
    /// The route in API Gateway's syntax (`{name}` marks a path parameter).
    pub route: &'static str,
    pub caller: Caller,
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
    /// A browser's WebSocket, through the WebSocket API (`$connect`,
    /// `$disconnect`): the token is in the query string.
    WebSocket,
    /// No caller: the table's DynamoDB Stream invokes it; it has no route.
    Stream,
}

impl Caller {
    /// Served by the HTTP API (and `Endpoint::resolve`).
    pub fn is_http(self) -> bool {
        matches!(self, Caller::FrontEnd | Caller::Twilio | Caller::Public)
    }
}

impl Endpoint {
    /// The binary's name in `functions/`.
    pub fn function_name(self) -> &'static str {
        self.spec().function
    }

    pub fn method(self) -> Method {
        self.spec().method
    }

    /// The route in API Gateway's syntax (`{name}` marks a path parameter).
    pub fn route(self) -> &'static str {
        self.spec().route
    }

    pub fn caller(self) -> Caller {
        self.spec().caller
    }

    /// The function's Lambda timeout (template.yaml's `Timeout`, checked by
    /// the deployment test): each invocation works to a deadline a margin
    /// before it (`time_budget`). Front-end actions may make a few Twilio
    /// requests in a row (each retried within `TWILIO_TIMEOUT_MS`), webhooks
    /// a store write and its follow-ups; the reconciler keeps checking for
    /// most of its schedule's minute; the stream publisher posts a batch.
    pub const fn timeout(self) -> std::time::Duration {
        let secs = match self {
            Endpoint::StartCall
            | Endpoint::StartTransfer
            | Endpoint::CancelTransfer
            | Endpoint::LeaveCall
            | Endpoint::HoldCustomer => 10,
            Endpoint::GetCall
            | Endpoint::DialCustomer
            | Endpoint::AgentDialEnded
            | Endpoint::ConferenceTwiml
            | Endpoint::FallbackTwiml
            | Endpoint::HoldTwiml
            | Endpoint::StatusCallback
            | Endpoint::WsConnect
            | Endpoint::WsDisconnect => 5,
            Endpoint::Console => 3,
            Endpoint::Reconciler => 75,
            Endpoint::StreamPublisher => 30,
        };
        std::time::Duration::from_secs(secs)
    }

    /// The deadline of an invocation of this function that starts now
    /// (`time_budget::deadline`), given Lambda's own (milliseconds since the
    /// Unix epoch, from the invocation's context) when there is one.
    pub fn deadline(self, lambda_deadline_ms: Option<u64>) -> tokio::time::Instant {
        crate::time_budget::deadline(self.timeout(), lambda_deadline_ms)
    }
}
