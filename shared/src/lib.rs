//! Shared crate of the warm-transfer Lambda functions.
//!
//! Layers, from the inside out; a module imports only from its own layer
//! or those above it in this list, and no two modules import each other
//! (`dev/tests/integration/layers.rs` checks both):
//! 1. [`ids`], [`time_budget`], [`logging`], [`https`]: the vocabulary and
//!    the plumbing every layer shares;
//! 2. [`domain`]: the call and its transfers as a state machine, free of
//!    HTTP and AWS types; it decides what is allowed;
//! 3. [`endpoint`]: the table of functions, routes and permissions;
//! 4. [`twiml`], [`signature`], [`public_url`], [`token`], [`jwks`],
//!    [`auth`], [`metrics`]: the formats at the edges;
//! 5. [`config`]: the settings, read once per cold start;
//! 6. [`store`], [`twilio`], [`secrets`]: adapters for DynamoDB, Twilio's
//!    REST API and Secrets Manager;
//! 7. [`usecases`]: what is done with a call, through those adapters;
//! 8. [`web`]: what the HTTP entry points share;
//! 9. [`handlers`] (HTTP) and [`push`] (WebSocket and stream): the entry
//!    points;
//! 10. [`lambda`]: a function binary's `main`, by the endpoint's kind.

/// A closed set of strings on the wire (a TwiML attribute value, a Twilio
/// form field, a stored state): a Rust enum, its `ALL` values, their text
/// and the parse back. `serde` attributes on the enum pass through.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(value: &str) -> Option<Self> {
                match value { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl $crate::WireText for $name {
            fn from_wire(value: &str) -> Option<Self> {
                Self::parse(value)
            }
        }
    };
}

/// A closed set of strings on the wire, read back (see `wire_enum!`).
pub trait WireText: Sized {
    fn from_wire(value: &str) -> Option<Self>;
}

pub mod auth;
pub mod config;
pub mod domain;
pub mod endpoint;
pub mod handlers;
pub mod https;
pub mod ids;
pub mod jwks;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod public_url;
pub mod push;
pub mod secrets;
pub mod signature;
pub mod store;
pub mod time_budget;
pub mod token;
pub mod twilio;
pub mod twiml;
pub mod usecases;
pub mod web;
