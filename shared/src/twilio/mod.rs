//! Twilio's 2010-04-01 REST API: the operations this product uses, typed
//! requests and responses, bounded retries where repeating is safe, and a
//! checker of requests against Twilio's own OpenAPI description.

mod client;
mod error;
pub mod requests;
mod types;

pub use client::{RetryPolicy, TwilioClient, TwilioClientConfig};
pub use error::TwilioError;
pub use requests::RequestSpec;
pub use types::*;
