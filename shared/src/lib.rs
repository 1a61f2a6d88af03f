//! Shared crate of the warm-transfer Lambda functions.
//!
//! Layers, from the inside out:
//! - [`ids`] and [`domain`]: phone numbers, call SIDs and the transfer state
//!   machine, free of HTTP and AWS types;
//! - [`twiml`], [`signature`], [`public_url`]: what a Twilio webhook speaks;
//! - [`twilio`], [`store`] and [`secrets`]: adapters for Twilio's REST API,
//!   DynamoDB and Secrets Manager, over the HTTPS clients of [`https`];
//! - [`handlers`]: one function per Lambda, mapping HTTP to the domain.

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
pub mod handlers;
pub mod https;
pub mod ids;
pub mod jwks;
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
