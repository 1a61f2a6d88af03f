//! The entrypoints layer: maps HTTP requests (API Gateway events, or the
//! development server) to the domain, the store and the Twilio client.

mod app;
pub mod callbacks;
mod console;
pub mod endpoint;
mod follow_up;
mod front_end;
pub mod http;
pub mod reconciler;
mod views;
pub mod webhooks;

pub use app::{App, StartupError};
pub use endpoint::{Caller, Endpoint};
