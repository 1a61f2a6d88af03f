//! What the functions count, as EMF lines: each committed session change
//! through the real store (dynalite), webhook signature refusals and
//! secondary-token signatures through the real handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::domain::*;
use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_core::endpoint::HttpEndpoint;
use warm_transfer_core::handlers::App;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, DynamoStore};
use warm_transfer_core::twilio::TwilioClient;
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::events::{self, EVENTS_ACCOUNT_SID, EVENTS_AUTH_TOKEN};
use warm_transfer_dev::store_ext::RequestTransfer;

const AGENT: &str = "CA00000000000000000000000000000001";
const CUSTOMER: &str = "CA00000000000000000000000000000002";
const TARGET: &str = "CA00000000000000000000000000000003";

/// (metric name, its dimension's value if any) of each captured line, after
/// checking each is an EMF document whose directive matches its root.
fn counted() -> Vec<(String, Option<String>)> {
    warm_transfer_dev::metrics_capture::take_captured()
        .iter()
        .map(|line| {
            let root: Value = serde_json::from_str(line).unwrap();
            let directive = &root["_aws"]["CloudWatchMetrics"][0];
            assert!(directive["Namespace"].is_string(), "{line}");
            let name = directive["Metrics"][0]["Name"].as_str().unwrap().to_owned();
            assert_eq!(root[&name], 1, "{line}");
            let dimension = directive["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|set| set.as_array().unwrap())
                .map(|key| root[key.as_str().unwrap()].as_str().unwrap().to_owned())
                .next();
            (name, dimension)
        })
        .collect()
}

fn leg(call: &str, status: LegStatus, sequence: u32) -> LegObservation {
    LegObservation {
        call_sid: CallSid::parse(call).unwrap(),
        status,
        sequence: Some(sequence),
        at: OffsetDateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn a_transfer_through_the_store_is_counted_once_per_milestone() {
    let dynalite = Dynalite::start().await.unwrap();
    dynalite.create_table("calls-metrics").await.unwrap();
    // As every App holds it: the milestones counted over the store.
    let store =
        warm_transfer_core::usecases::metered::Metered::new(std::sync::Arc::new(DynamoStore::new(
            dynalite.client(),
            "calls-metrics",
            Duration::from_secs(3600),
        )));
    let phone = |n| PhoneNumber::parse(n).unwrap();
    let id = CallSid::parse(AGENT).unwrap();
    let now = OffsetDateTime::now_utc();
    let session = CallSession::start(
        id.clone(),
        phone("+15550100001"),
        phone("+15550100002"),
        phone("+15005550006"),
        now,
    );
    store.create_session(&session).await.unwrap();
    for observation in [
        Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)),
        Observation::CustomerLeg(leg(CUSTOMER, LegStatus::InProgress, 2)),
    ] {
        store.observe(&id, observation).await.unwrap();
    }
    warm_transfer_dev::metrics_capture::capture();
    store
        .request_transfer(
            &id,
            phone("+15550100003"),
            TransferKind::Warm,
            Some("k1".into()),
            now,
        )
        .await
        .unwrap();
    // The same request again (the console retried): no second count.
    store
        .request_transfer(
            &id,
            phone("+15550100003"),
            TransferKind::Warm,
            Some("k1".into()),
            now,
        )
        .await
        .unwrap();
    let target = |status, sequence| Observation::TargetLeg {
        attempt: 1,
        observation: leg(TARGET, status, sequence),
    };
    store
        .observe(&id, target(LegStatus::Ringing, 1))
        .await
        .unwrap();
    store
        .observe(&id, target(LegStatus::NoAnswer, 2))
        .await
        .unwrap();
    // A duplicated callback changes nothing and counts nothing.
    store
        .observe(&id, target(LegStatus::NoAnswer, 2))
        .await
        .unwrap();
    assert_eq!(
        counted(),
        [
            ("TransfersRequested".to_owned(), None),
            ("TransfersFailed".to_owned(), Some("no-answer".to_owned())),
        ]
    );
    let line = warm_transfer_dev::metrics_capture::take_captured().join("");
    assert!(!line.contains("0100003") && !line.contains(TARGET));
}

fn app(primary: &str, secondary: Option<&str>) -> App {
    let mut env: HashMap<String, String> = [
        (vars::TWILIO_ACCOUNT_SID, EVENTS_ACCOUNT_SID),
        (vars::TWILIO_AUTH_TOKEN, primary),
        (vars::TABLE_NAME, "calls-metrics"),
        (vars::DYNAMODB_ENDPOINT, "http://127.0.0.1:9"),
        (vars::DEFAULT_CALLER_ID, "+15005550006"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(secondary) = secondary {
        env.insert(vars::TWILIO_AUTH_TOKEN_SECONDARY.into(), secondary.into());
    }
    let config = Config::from_map(&env).unwrap();
    let twilio = TwilioClient::from_config(&config).unwrap();
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .http_client(warm_transfer_core::https::aws_http_client())
                .build(),
        ),
        "calls-metrics",
        Duration::from_secs(3600),
    ));
    App::new(config, store, twilio)
}

#[tokio::test]
async fn webhook_signatures_refused_or_passed_with_the_secondary_token_are_counted() {
    warm_transfer_dev::metrics_capture::capture();
    let event = events::event(Endpoint::DialCustomer).to_string();
    let invoke = async |app: App| {
        let request = lambda_http::request::from_str(&event).unwrap();
        app.handle(HttpEndpoint::DialCustomer, request)
            .await
            .status()
    };
    assert_eq!(invoke(app("another-token", None)).await, 403);
    assert_eq!(
        invoke(app("next-token", Some(EVENTS_AUTH_TOKEN))).await,
        200
    );
    assert_eq!(invoke(app(EVENTS_AUTH_TOKEN, None)).await, 200);
    assert_eq!(
        counted(),
        [
            ("SignatureRefusals".to_owned(), None),
            ("SecondaryTokenSignatures".to_owned(), None),
        ]
    );
}
