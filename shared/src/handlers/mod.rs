//! The entrypoints layer: maps HTTP requests (API Gateway events, or the
//! development server) to the domain, the store and the Twilio client.

pub mod callbacks;
pub mod endpoint;
pub mod http;

pub use endpoint::{Caller, Endpoint};
