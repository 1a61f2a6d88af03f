//! The workspace's integration tests, in one binary: each test binary links
//! the AWS SDK, so one link instead of ten saves minutes on a small machine.
//! Files they read are found at run time (see `warm_transfer_dev::paths`).

mod browser;
mod deployment;
mod events;
mod metrics;
mod reconciler;
mod scenarios;
mod secrets;
mod simulator;
mod store_dynalite;
mod store_open_sessions;
mod twilio_client;
mod twilio_contract;

/// A Twilio response body recorded from Twilio's documentation examples.
fn twilio_fixture(name: &str) -> String {
    let path = warm_transfer_dev::paths::dev()
        .join("fixtures/twilio")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
