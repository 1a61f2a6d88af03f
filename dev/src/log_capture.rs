//! The product's log lines, kept in memory for a test to read: the same
//! JSON lines, at the same level, that CloudWatch receives from a function.
//! One subscriber per process (nextest runs each test in a process of its
//! own), so what a test reads is what its own stack logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The crate whose lines are the product's; the simulator's and the
/// development tools' own lines are not.
const PRODUCT_TARGET: &str = "warm_transfer_core";

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static CAPTURED: OnceLock<Option<Lines>> = OnceLock::new();

/// Starts keeping the product's log lines. Call before the stack starts;
/// false when another subscriber was installed first.
pub fn install() -> bool {
    CAPTURED
        .get_or_init(|| {
            let lines = Lines::default();
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .without_time()
                .with_writer(lines.clone())
                .with_filter(LevelFilter::INFO)
                .with_filter(filter_fn(|meta| meta.target().starts_with(PRODUCT_TARGET)));
            tracing_subscriber::registry()
                .with(layer)
                .try_init()
                .ok()
                .map(|()| lines)
        })
        .is_some()
}

/// Every line kept so far.
pub fn lines() -> Vec<String> {
    let Some(Some(lines)) = CAPTURED.get() else {
        return Vec::new();
    };
    let bytes = lines.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}
