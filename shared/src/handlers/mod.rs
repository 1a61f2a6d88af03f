//! The entrypoints layer: maps HTTP requests (API Gateway events, or the
//! development server) to the domain, the store and the Twilio client.

mod api_error;
mod app;
mod console;
mod cors;
pub mod endpoint;
mod follow_up;
mod front_end;
mod history;
pub mod needs;
pub mod reconciler;
mod recordings;
mod request;
mod responses;
pub(crate) mod views;
pub mod webhook_urls;
mod webhooks;

pub use api_error::ApiError;
pub use app::{App, StartupError};
pub use endpoint::{Caller, Endpoint};
pub use needs::{Needs, TableAction};
