//! The workspace's integration tests, in one binary: each test binary links
//! the AWS SDK, so one link instead of ten saves minutes on a small machine.
//! Files they read are found at run time (see `warm_transfer_dev::paths`).

mod access;
mod browser;
mod deployment;
mod events;
mod hardening;
mod inbound;
mod layers;
mod metrics;
mod push;
mod reconciler;
mod scale;
mod scenarios;
mod secrets;
mod simulator;
mod smoke;
mod store_dynalite;
mod store_open_sessions;
mod supervisor;
mod teams;
mod twilio_account;
mod twilio_client;
mod twilio_contract;

/// A Twilio response body recorded from Twilio's documentation examples.
fn twilio_fixture(name: &str) -> String {
    let path = warm_transfer_dev::paths::dev()
        .join("fixtures/twilio")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The capacity arithmetic docs/operations.md states (its `capacity:`
/// comment), which the template's reservations and throttles and the
/// scenarios check.
struct Capacity {
    agents: u64,
    handle_secs: u64,
    twiml_per_call: u64,
    callbacks_per_call: u64,
    /// Headroom over the traffic worked out, for Twilio's routes.
    margin: u64,
    /// How long a webhook may take, on average, in the sizing.
    webhook_ms: u64,
    front_end_per_sec: u64,
    front_end_ms: u64,
    anonymous_per_sec: u64,
    anonymous_ms: u64,
    /// The reconciler's and the stream publisher's reservation.
    background: u64,
}

/// Where the capacity arithmetic is written out for operators.
fn operations_doc() -> std::path::PathBuf {
    warm_transfer_dev::paths::workspace().join("docs/operations.md")
}

impl Capacity {
    fn from_docs() -> Self {
        let doc = std::fs::read_to_string(operations_doc()).unwrap();
        let line = doc
            .lines()
            .find(|l| l.starts_with("<!-- capacity:"))
            .expect("docs/operations.md states its capacity arithmetic");
        let value = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        Capacity {
            agents: value("agents"),
            handle_secs: value("handle_secs"),
            twiml_per_call: value("twiml_per_call"),
            callbacks_per_call: value("callbacks_per_call"),
            margin: value("margin"),
            webhook_ms: value("webhook_ms"),
            front_end_per_sec: value("front_end_per_sec"),
            front_end_ms: value("front_end_ms"),
            anonymous_per_sec: value("anonymous_per_sec"),
            anonymous_ms: value("anonymous_ms"),
            background: value("background"),
        }
    }

    fn calls_per_sec(&self) -> f64 {
        self.agents as f64 / self.handle_secs as f64
    }

    /// Webhook requests per second from Twilio, TwiML and callbacks together.
    fn twilio_requests_per_sec(&self) -> f64 {
        self.calls_per_sec() * (self.twiml_per_call + self.callbacks_per_call) as f64
    }

    /// Concurrency that serves `margin` times a route taking `per_call`
    /// requests a call: requests/s x seconds each, rounded up.
    fn webhook_concurrency(&self, per_call: u64) -> u64 {
        (self.margin * self.agents * per_call * self.webhook_ms).div_ceil(self.handle_secs * 1000)
    }

    fn front_end_concurrency(&self) -> u64 {
        (self.front_end_per_sec * self.front_end_ms).div_ceil(1000)
    }

    fn anonymous_concurrency(&self) -> u64 {
        (self.anonymous_per_sec * self.anonymous_ms).div_ceil(1000)
    }
}

/// A leg's status as a callback reports it, now.
fn leg_now(
    call: &warm_transfer_core::ids::CallSid,
    status: warm_transfer_core::domain::LegStatus,
    sequence: u32,
) -> warm_transfer_core::domain::LegObservation {
    warm_transfer_core::domain::LegObservation {
        call_sid: call.clone(),
        status,
        sequence: Some(sequence),
        at: time::OffsetDateTime::now_utc(),
    }
}

/// Stores a new call whose first agent and customer have both answered, as
/// their callbacks leave it, and returns it as stored.
async fn store_connected_call(
    store: &dyn warm_transfer_core::store::CallStore,
    agent_leg: &warm_transfer_core::ids::CallSid,
    customer_leg: &warm_transfer_core::ids::CallSid,
) -> warm_transfer_core::domain::CallSession {
    use warm_transfer_core::domain::{CallSession, LegStatus, Observation};
    use warm_transfer_core::ids::PhoneNumber;
    let phone = |n: &str| PhoneNumber::parse(n).unwrap();
    let session = CallSession::start(
        agent_leg.clone(),
        phone("+15550100001"),
        phone("+15550100002"),
        phone("+15005550006"),
        time::OffsetDateTime::now_utc(),
    );
    store.create_session(&session).await.unwrap();
    for observation in [
        Observation::AgentLeg(leg_now(agent_leg, LegStatus::InProgress, 2)),
        Observation::CustomerLeg(leg_now(customer_leg, LegStatus::InProgress, 2)),
    ] {
        store.observe(agent_leg, observation).await.unwrap();
    }
    store.get_session(agent_leg).await.unwrap().unwrap()
}
