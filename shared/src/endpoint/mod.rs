//! The endpoints: one Lambda function each, with the route API Gateway (and
//! the development server) mounts it at.

mod needs;

use http::Method;

pub use needs::{Needs, TableAction};

/// The endpoint table: every function of the product with its binary's
/// name in `functions/` (also its `events/` file), method, route in API
/// Gateway's syntax (`{name}` marks a path parameter) and caller, grouped
/// by how Lambda invokes it. The SAM template, the `functions/` crates,
/// the `events/` fixtures and the development server are all checked
/// against it. Each kind is an enum of its own ([`HttpEndpoint`],
/// [`ScheduledEndpoint`], [`PushEndpoint`]): a kind's `serve` takes only
/// its own, and its dispatch is one `match` without a wildcard.
macro_rules! endpoints {
    ($(
        $(#[$kind_doc:meta])* $kind:ident($kind_enum:ident) {
            $($(#[$doc:meta])* $variant:ident => ($function:literal, $method:ident, $route:literal, $caller:ident)),+ $(,)?
        }
    )+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint { $($($(#[$doc])* $variant),+),+ }

        /// How Lambda invokes a function, with the function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind { $($(#[$kind_doc])* $kind($kind_enum)),+ }

        $(
            $(#[$kind_doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum $kind_enum { $($(#[$doc])* $variant),+ }

            impl From<$kind_enum> for Endpoint {
                fn from(endpoint: $kind_enum) -> Self {
                    match endpoint { $($kind_enum::$variant => Endpoint::$variant),+ }
                }
            }

            impl $kind_enum {
                /// Its row of the endpoint table.
                pub fn endpoint(self) -> Endpoint {
                    self.into()
                }
            }
        )+

        impl Endpoint {
            pub const ALL: [Endpoint; [$($($function),+),+].len()] = [$($(Endpoint::$variant),+),+];

            /// This endpoint's row of the table.
            pub const fn spec(self) -> EndpointSpec {
                match self {
                    $($(Endpoint::$variant => EndpointSpec {
                        function: $function,
                        method: Method::$method,
                        route: $route,
                        caller: Caller::$caller,
                    }),+),+
                }
            }

            /// How Lambda invokes it.
            pub const fn kind(self) -> Kind {
                match self {
                    $($(Endpoint::$variant => Kind::$kind($kind_enum::$variant)),+),+
                }
            }
        }
    };
}

endpoints! {
    /// Behind the HTTP API: the console's requests, Twilio's webhooks, the page.
    Http(HttpEndpoint) {
        StartCall => ("start-call", POST, "/calls", FrontEnd),
        GetCall => ("get-call", GET, "/calls/{callSid}", FrontEnd),
        StartTransfer => ("start-transfer", POST, "/calls/{callSid}/transfer", FrontEnd),
        CancelTransfer => ("cancel-transfer", POST, "/calls/{callSid}/transfer/cancel", FrontEnd),
        LeaveCall => ("leave-call", POST, "/calls/{callSid}/leave", FrontEnd),
        HoldCustomer => ("hold-customer", POST, "/calls/{callSid}/hold", FrontEnd),
        SuperviseCall => ("supervise-call", POST, "/calls/{callSid}/supervisor", FrontEnd),
        AskForHelp => ("ask-for-help", POST, "/calls/{callSid}/help", FrontEnd),
        GetBoard => ("get-board", GET, "/board", FrontEnd),
        OutsideParty => ("outside-party", POST, "/calls/{callSid}/party", FrontEnd),
        GetDirectory => ("get-directory", GET, "/directory", FrontEnd),
        SetPresence => ("set-presence", POST, "/presence", FrontEnd),
        DialCustomer => ("dial-customer", POST, "/twiml/dial-customer", Twilio),
        AgentDialEnded => ("agent-dial-ended", POST, "/twiml/agent-dial-ended", Twilio),
        ConferenceTwiml => ("conference-twiml", POST, "/twiml/conference", Twilio),
        FallbackTwiml => ("fallback-twiml", POST, "/twiml/fallback", Twilio),
        HoldTwiml => ("hold-twiml", POST, "/twiml/hold", Twilio),
        StatusCallback => ("status-callback", POST, "/events/{leg}", Twilio),
        InboundCall => ("inbound-call", POST, "/twiml/inbound", Twilio),
        QueueTwiml => ("queue-twiml", POST, "/twiml/queue", Twilio),
        Console => ("console", GET, "/console", Public),
    }
    /// On an EventBridge schedule; no route.
    Scheduled(ScheduledEndpoint) {
        Reconciler => ("reconciler", POST, "", Schedule),
    }
    /// Push (see `push`): the WebSocket API's routes, by which a console
    /// subscribes to a call, and the table's DynamoDB Stream (no route).
    Push(PushEndpoint) {
        WsConnect => ("ws-connect", GET, "$connect", WebSocket),
        WsDisconnect => ("ws-disconnect", GET, "$disconnect", WebSocket),
        StreamPublisher => ("stream-publisher", POST, "", Stream),
    }
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

impl Endpoint {
    /// The HTTP endpoint it is, if it is one.
    pub fn http(self) -> Option<HttpEndpoint> {
        match self.kind() {
            Kind::Http(http) => Some(http),
            Kind::Scheduled(_) | Kind::Push(_) => None,
        }
    }

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
            | Endpoint::HoldCustomer
            | Endpoint::SuperviseCall
            | Endpoint::OutsideParty
            | Endpoint::StatusCallback => 10,
            // The wait loop may reserve a member and ring them before it
            // answers (Twilio waits up to 15 s for a webhook).
            Endpoint::QueueTwiml => 10,
            Endpoint::GetCall
            | Endpoint::AskForHelp
            | Endpoint::GetBoard
            | Endpoint::GetDirectory
            | Endpoint::SetPresence
            | Endpoint::DialCustomer
            | Endpoint::AgentDialEnded
            | Endpoint::ConferenceTwiml
            | Endpoint::FallbackTwiml
            | Endpoint::HoldTwiml
            | Endpoint::InboundCall
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
