//! Operational metrics in CloudWatch Embedded Metric Format (EMF): one JSON
//! line on stdout per event, which CloudWatch Logs turns into a metric as it
//! ingests the function's log. No API call, nothing added to a request.
//!
//! Every metric is a count published twice: with no dimension (what the
//! alarms and the dashboard's totals read) and, where it has one, by its
//! dimension (a reason, a kind of error). Dimension values are fixed words:
//! never a phone number or a call SID, which would also make one metric per
//! call.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::domain::{CallSession, Milestone};

/// The namespace when the configuration names none (local runs, tests).
pub const DEFAULT_NAMESPACE: &str = "WarmTransfer";

wire_enum!(
    /// The metrics, by their CloudWatch names.
    Metric {
        TransfersRequested => "TransfersRequested",
        TransfersAnswered => "TransfersAnswered",
        TransfersHandedOver => "TransfersHandedOver",
        /// Dimension `Reason` (busy, no-answer, ...; see `FailReason`).
        TransfersFailed => "TransfersFailed",
        TransfersCancelled => "TransfersCancelled",
        /// The "never left alone" guarantee broke for a customer (the
        /// product then sends them to the fallback).
        CustomersLeftAlone => "CustomersLeftAlone",
        /// Webhooks refused before their handler ran: a missing or wrong
        /// `X-Twilio-Signature`, or a body over the caps (`request.rs`),
        /// which Twilio never sends.
        SignatureRefusals => "SignatureRefusals",
        /// Webhooks that passed with the secondary auth token (a rotation
        /// under way: Twilio has promoted it, or the secret has swapped them).
        SecondaryTokenSignatures => "SecondaryTokenSignatures",
        /// Failed attempts of a Twilio REST request; dimension `Kind`.
        TwilioErrors => "TwilioErrors",
        /// Twilio REST requests sent again after a failed attempt.
        TwilioRetries => "TwilioRetries",
        /// What the reconciler repaired; dimension `Repair`.
        ReconcilerRepairs => "ReconcilerRepairs",
        /// A warm function could not re-read its secret (it keeps the values
        /// in force).
        SecretRefreshFailures => "SecretRefreshFailures",
        /// A versioned session write lost a race with another writer; the
        /// session is read again and the change re-applied.
        StoreConflicts => "StoreConflicts",
        /// Transfers to a number that is not one of the deployment's agents
        /// (`AGENT_NUMBERS`): an outside party, or toll fraud.
        TransfersOutside => "TransfersOutside",
        /// Calls and transfers refused over an agent's per-minute limit.
        AgentLimitRefusals => "AgentLimitRefusals",
    }
);

wire_enum!(
    /// What the reconciler repaired.
    Repair {
        /// A callback Twilio sent was lost; what it said is applied now.
        LostCallback => "lost-callback",
        /// A leg nobody needed any more was hung up.
        LegHungUp => "leg-hung-up",
        /// The second agent was made the room's anchor.
        RoomAnchored => "room-anchored",
        /// An agent transferring the call on stopped ending the room on leaving.
        AnchorLifted => "anchor-lifted",
        /// A customer stranded alone in the room was sent to the fallback.
        CustomerReleased => "customer-released",
        /// A customer left on hold after a consult ended was taken off hold.
        CustomerResumed => "customer-resumed",
        /// A team transfer whose next member was never rung (the callback
        /// that should have rung them was lost) was ended as a failed one.
        RouteEnded => "route-ended",
        /// A caller's maximum wait passed with no turn of their wait loop
        /// to see it: it was ended (and they sent to the fallback).
        WaitEnded => "wait-ended",
    }
);

static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Where the metric lines go instead of the log: a development harness
/// (tests of what a handler counts) puts one in place with [`set_sink`].
pub trait Sink: Send + Sync {
    fn emit(&self, line: String);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Sends every metric line from now on to `sink`. Once per process: false
/// if a sink is in place already.
pub fn set_sink(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Sets the namespace once per process (at start-up, from the configuration).
pub fn set_namespace(namespace: &str) {
    let _ = NAMESPACE.set(namespace.to_owned());
}

/// Counts one event of `metric`, with its dimension if it has one.
pub fn count(metric: Metric, dimension: Option<(&'static str, &'static str)>) {
    let namespace = NAMESPACE.get().map_or(DEFAULT_NAMESPACE, String::as_str);
    let at = OffsetDateTime::now_utc();
    emit(line(namespace, at, metric, dimension));
}

/// The milestones of one committed change of a session.
pub fn session_changed(before: &CallSession, after: &CallSession) {
    for milestone in Milestone::between(before, after) {
        let (metric, dimension) = match milestone {
            Milestone::TransferRequested => (Metric::TransfersRequested, None),
            Milestone::TransferAnswered => (Metric::TransfersAnswered, None),
            Milestone::TransferHandedOver => (Metric::TransfersHandedOver, None),
            Milestone::TransferFailed(reason) => {
                (Metric::TransfersFailed, Some(("Reason", reason.as_str())))
            }
            Milestone::TransferCancelled => (Metric::TransfersCancelled, None),
            Milestone::CustomerLeftAlone => (Metric::CustomersLeftAlone, None),
        };
        count(metric, dimension);
    }
}

pub fn repair(repair: Repair) {
    count(Metric::ReconcilerRepairs, Some(("Repair", repair.as_str())));
}

/// The EMF document of one count: the metric's value at the root, its
/// dimension too, and the directive that tells CloudWatch which is which.
pub fn line(
    namespace: &str,
    at: OffsetDateTime,
    metric: Metric,
    dimension: Option<(&str, &str)>,
) -> String {
    let mut dimension_sets = vec![Vec::<&str>::new()];
    let mut root = Map::new();
    if let Some((name, value)) = dimension {
        dimension_sets.push(vec![name]);
        root.insert(name.to_owned(), value.into());
    }
    root.insert(metric.as_str().to_owned(), 1.into());
    root.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": (at.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": [{ "Name": metric.as_str(), "Unit": "Count" }],
            }],
        }),
    );
    Value::Object(root).to_string()
}

fn emit(line: String) {
    static IN_LAMBDA: OnceLock<bool> = OnceLock::new();
    if let Some(sink) = SINK.get() {
        sink.emit(line);
    } else if *IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()) {
        // One write per line: CloudWatch reads each line as one log event.
        println!("{line}")
    } else {
        // The local stack's own output stays readable (RUST_LOG=debug shows them).
        tracing::debug!(metric = %line, "metric")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a line the way CloudWatch does: a JSON object whose `_aws`
    /// directive names metrics and dimensions found at the root, with the
    /// limits of the EMF specification.
    fn parse_emf(line: &str) -> Vec<(String, Vec<Vec<String>>, String)> {
        let root: Value = serde_json::from_str(line).expect("one JSON object");
        let aws = &root["_aws"];
        assert!(
            aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000,
            "epoch ms"
        );
        let mut out = Vec::new();
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            let namespace = directive["Namespace"].as_str().unwrap();
            assert!(!namespace.is_empty() && namespace.len() <= 1024);
            let sets: Vec<Vec<String>> = directive["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| {
                    let keys: Vec<String> = set
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap().to_owned())
                        .collect();
                    assert!(keys.len() <= 30);
                    for key in &keys {
                        assert!(root[key].is_string(), "dimension {key} at the root");
                    }
                    keys
                })
                .collect();
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(root[name].is_number(), "value of {name} at the root");
                assert_eq!(metric["Unit"], "Count");
                out.push((namespace.to_owned(), sets.clone(), name.to_owned()));
            }
        }
        out
    }

    #[test]
    fn every_metric_line_parses_as_emf() {
        let at = OffsetDateTime::now_utc();
        for metric in Metric::ALL {
            let plain = line("WarmTransfer/prod", at, metric, None);
            assert_eq!(
                parse_emf(&plain),
                [(
                    "WarmTransfer/prod".to_owned(),
                    vec![vec![]],
                    metric.as_str().to_owned()
                )]
            );
            let with = line("WarmTransfer/prod", at, metric, Some(("Reason", "busy")));
            let parsed = parse_emf(&with);
            assert_eq!(parsed[0].1, vec![vec![], vec!["Reason".to_owned()]]);
            assert!(with.contains(r#""Reason":"busy""#), "{with}");
            assert!(!with.contains('\n'));
        }
    }

    /// Keeps the lines of this test process.
    struct Kept(std::sync::Mutex<Vec<String>>);

    impl Sink for &'static Kept {
        fn emit(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
    }

    #[test]
    fn handlers_count_through_the_sink() {
        static KEPT: Kept = Kept(std::sync::Mutex::new(Vec::new()));
        set_sink(Box::new(&KEPT));
        repair(Repair::CustomerReleased);
        let error = crate::twilio::TwilioError::Api {
            status: 503,
            code: None,
            message: "+14155550100 unavailable".into(),
            more_info: None,
        };
        count(Metric::TwilioErrors, Some(("Kind", error.kind())));
        let lines = std::mem::take(&mut *KEPT.0.lock().unwrap());
        let names: Vec<String> = lines
            .iter()
            .flat_map(|l| parse_emf(l))
            .map(|(_, _, name)| name)
            .collect();
        assert!(names.contains(&"ReconcilerRepairs".to_owned()), "{lines:?}");
        assert!(names.contains(&"TwilioErrors".to_owned()), "{lines:?}");
        let joined = lines.join("\n");
        assert!(joined.contains(r#""Kind":"server-error""#));
        assert!(
            !joined.contains("4155550100"),
            "a message never becomes a dimension"
        );
    }
}
