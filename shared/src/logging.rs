//! Structured logs for CloudWatch.
//!
//! One JSON object per line; the Lambda runtime opens a span per invocation
//! carrying the request id, and `with_current_span` copies it into every
//! line. Phone numbers are logged through `PhoneNumber`'s masked `Display`,
//! secrets through `Secret`, whose `Debug` hides them.

use tracing_subscriber::filter::LevelFilter;

/// Installs the JSON subscriber. Safe to call more than once (tests do).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level(std::env::var("RUST_LOG").ok().as_deref()))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// `RUST_LOG` names one level (`error`, `warn`, `info`, `debug`, `trace` or
/// `off`); anything else, or nothing, is `info`. A level, not per-module
/// directives: the directive parser (`env-filter`, with its regex engine) was
/// a tenth of a clean build of the functions.
fn level(setting: Option<&str>) -> LevelFilter {
    setting
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_comes_from_rust_log_and_defaults_to_info() {
        assert_eq!(level(Some("debug")), LevelFilter::DEBUG);
        assert_eq!(level(Some(" WARN ")), LevelFilter::WARN);
        assert_eq!(level(Some("off")), LevelFilter::OFF);
        assert_eq!(level(Some("warm_transfer=debug")), LevelFilter::INFO);
        assert_eq!(level(None), LevelFilter::INFO);
    }
}
