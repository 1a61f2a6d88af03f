//! Structured logs for CloudWatch.
//!
//! One JSON object per line; the Lambda runtime opens a span per invocation
//! carrying the request id, and `with_current_span` copies it into every
//! line. Phone numbers are logged through `PhoneNumber`'s masked `Display`,
//! secrets through `Secret`, whose `Debug` hides them.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Safe to call more than once (tests do).
pub fn init() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
