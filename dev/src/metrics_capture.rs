//! The metric lines a test or benchmark keeps instead of logging: the
//! product's metrics sink (`metrics::set_sink`) for the development harness.

use std::sync::{Mutex, Once, PoisonError};

use warm_transfer_core::metrics::{self, Sink};

/// Lines kept since [`capture`]; none kept before it.
static KEPT: Mutex<Option<Vec<String>>> = Mutex::new(None);

struct Keeper;

impl Sink for Keeper {
    fn emit(&self, line: String) {
        let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        match kept.as_mut() {
            Some(lines) => lines.push(line),
            None => tracing::debug!(metric = %line, "metric"),
        }
    }
}

/// Keeps the lines emitted from now on, until [`take_captured`].
pub fn capture() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        metrics::set_sink(Box::new(Keeper));
    });
    *KEPT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
}

/// The lines kept since [`capture`] (capture goes on).
pub fn take_captured() -> Vec<String> {
    KEPT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}
