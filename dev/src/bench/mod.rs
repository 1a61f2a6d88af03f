//! Benchmark tools: a loopback proxy that adds a fixed delay per request
//! (so an endpoint's latency counts its sequential round trips), a canned
//! Twilio, a load generator, and a minimal Lambda Runtime API for cold starts.

pub mod cost;
pub mod cpu;
pub mod delay_proxy;
pub mod flood;
pub mod follow;
pub mod load;
pub mod prices;
pub mod push_costs;
pub mod runtime_api;
pub mod scale;
pub mod twilio_stub;

/// p-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
