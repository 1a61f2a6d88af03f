//! The HTTP edge: one handler per Lambda function.

pub mod endpoint;

pub use endpoint::{Caller, Endpoint};
