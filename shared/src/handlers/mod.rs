//! The HTTP entry points: maps API Gateway requests (or the development
//! server's) to the use cases, checking who asks (a signed-in agent, or
//! Twilio's signature) and answering in the caller's language (JSON, TwiML).

mod app;
mod board;
mod console;
mod directory;
mod front_end;
mod hook;
mod inbound;
mod input;
mod party;
mod placement;
mod recordings;
mod request;
mod router;
mod routing;
mod supervise;
pub mod webhook_urls;
mod webhooks;

pub use app::{App, StartupError};
