//! The DynamoDB store against a real DynamoDB API server: dynalite, in
//! memory, started per test on a free loopback port.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use warm_transfer_core::domain::*;
use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, DynamoStore, StoreError};
use warm_transfer_dev::counting::{DynamoOps, serving};
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::store_ext::RequestTransfer;

const TABLE: &str = "calls-test";
const TTL: Duration = Duration::from_secs(72 * 3600);
const AGENT: &str = "CA00000000000000000000000000000001";
const CUSTOMER: &str = "CA00000000000000000000000000000002";
const TARGET: &str = "CA00000000000000000000000000000003";

fn sid(s: &str) -> CallSid {
    CallSid::parse(s).unwrap()
}

fn alice() -> Actor {
    Actor {
        id: "alice@example.com".into(),
        numbers: vec![phone("+15550100001")],
        supervisor: false,
    }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

async fn store() -> (Dynalite, Arc<DynamoStore>) {
    let dynalite = Dynalite::start()
        .await
        .expect("dynalite (npm ci --prefix dev)");
    dynalite.create_table(TABLE).await.unwrap();
    let store = DynamoStore::new(dynalite.client(), TABLE, TTL);
    (dynalite, Arc::new(store))
}

fn now() -> OffsetDateTime {
    // DynamoDB keeps what we give it; whole microseconds keep comparisons exact.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

fn session() -> CallSession {
    CallSession::start(
        sid(AGENT),
        phone("+15550100001"),
        phone("+15550100002"),
        phone("+15005550006"),
        now(),
    )
}

fn leg(call: &str, status: LegStatus, seq: u32) -> LegObservation {
    LegObservation {
        call_sid: sid(call),
        status,
        sequence: Some(seq),
        at: now(),
    }
}

async fn connected(store: &DynamoStore) -> CallSession {
    store.create_session(&session()).await.unwrap();
    for observation in [
        Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)),
        Observation::CustomerLeg(leg(CUSTOMER, LegStatus::Ringing, 1)),
        Observation::CustomerLeg(leg(CUSTOMER, LegStatus::InProgress, 2)),
    ] {
        store.observe(&sid(AGENT), observation).await.unwrap();
    }
    store.get_session(&sid(AGENT)).await.unwrap().unwrap()
}

async fn raw_items(dynalite: &Dynalite) -> Vec<HashMap<String, AttributeValue>> {
    dynalite
        .client()
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

/// The agent and the customer talking, as the session alone knows it.
fn bridged() -> CallSession {
    let mut session = session();
    session.observe(Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)));
    session.observe(Observation::CustomerLeg(leg(
        CUSTOMER,
        LegStatus::InProgress,
        2,
    )));
    session
}

#[tokio::test]
async fn every_field_survives_a_round_trip() {
    let (_dynalite, store) = store().await;
    let mut full = bridged();
    full.request_transfer(
        phone("+15550100003"),
        TransferKind::Warm,
        Some("key-1".into()),
        now(),
    )
    .unwrap();
    full.observe(Observation::TargetLeg {
        attempt: 1,
        observation: leg(TARGET, LegStatus::Ringing, 1),
    });
    full.observe(Observation::Conference {
        event: ConferenceEvent::Join,
        participant: Some(RoomParticipant::Customer),
        sequence: Some(1),
        conference: None,
        at: now(),
    });
    full.fail_transfer(1, "Twilio said \"no\" & <why>".into(), true)
        .unwrap();
    store.create_session(&full).await.unwrap();
    let read = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(read, full);
    assert_eq!(store.get_session(&sid(TARGET)).await.unwrap(), None);
}

#[tokio::test]
async fn a_call_handed_on_survives_a_round_trip_with_its_owner_and_hops() {
    let (_dynalite, store) = store().await;
    let mut full = bridged();
    full.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
        .unwrap();
    full.customer_redirected(1).unwrap();
    full.observe(Observation::TargetLeg {
        attempt: 1,
        observation: leg(TARGET, LegStatus::InProgress, 2),
    });
    full.first_agent_leaves().unwrap();
    full.follow_up_done(&FollowUp::AnchorRoomOnTarget { attempt: 1 });
    full.request_transfer(phone("+15550100004"), TransferKind::Warm, None, now())
        .unwrap();
    full.follow_up_done(&FollowUp::LiftAnchor { attempt: 1 });
    full.observe(Observation::Conference {
        event: ConferenceEvent::Join,
        participant: Some(RoomParticipant::SecondAgent { attempt: 1 }),
        sequence: None,
        conference: None,
        at: now(),
    });
    assert!(full.owner.is_some() && full.hops.len() == 1, "{full:?}");
    store.create_session(&full).await.unwrap();
    let read = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(read, full);
}

#[tokio::test]
async fn a_supervised_call_survives_a_round_trip_with_its_supervisor() {
    let (_dynalite, store) = store().await;
    let mut full = bridged();
    full.ask_for_help("alice@example.com", now()).unwrap();
    let asked = full.clone();
    full.supervise(
        "sam@example.com",
        phone("+15550100009"),
        SupervisorMode::Barge,
        now(),
    )
    .unwrap();
    full.observe(Observation::SupervisorLeg {
        visit: 1,
        observation: leg(
            "CA00000000000000000000000000000009",
            LegStatus::InProgress,
            2,
        ),
    });
    full.observe(Observation::Conference {
        event: ConferenceEvent::Join,
        participant: Some(RoomParticipant::Supervisor { visit: 1 }),
        sequence: None,
        conference: None,
        at: now(),
    });
    assert!(full.stop_supervising());
    store.create_session(&full).await.unwrap();
    let read = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(read, full);
    let supervision = read.supervision.unwrap();
    assert_eq!(supervision.mode, SupervisorMode::Barge);
    assert!(supervision.leaving && supervision.presence == Presence::Joined);
    // A help request waiting survives too.
    let help_id = CallSid::parse("CA00000000000000000000000000000077").unwrap();
    let waiting = CallSession {
        id: help_id.clone(),
        ..asked
    };
    store.create_session(&waiting).await.unwrap();
    let read = store.get_session(&help_id).await.unwrap().unwrap();
    assert_eq!(
        read.help_waiting().map(|h| h.by.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(read, waiting);
    // And an outside party, dropped.
    let mut added = bridged();
    added.id = CallSid::parse("CA00000000000000000000000000000078").unwrap();
    added
        .add_party("alice@example.com", phone("+15550100007"), now())
        .unwrap();
    added.observe(Observation::PartyLeg {
        visit: 1,
        observation: leg("CA00000000000000000000000000000008", LegStatus::Ringing, 1),
    });
    assert!(added.drop_party());
    store.create_session(&added).await.unwrap();
    let read = store.get_session(&added.id).await.unwrap().unwrap();
    assert_eq!(read, added);
    assert!(read.party.unwrap().dropping);
}

/// The session lives `SESSION_TTL_HOURS`; its history, the audit trail,
/// lives `HISTORY_TTL_DAYS`, long after the session is gone.
#[tokio::test]
async fn the_session_and_its_history_expire_through_ttl_each_after_its_own_time() {
    let (dynalite, _) = store().await;
    let history_ttl = Duration::from_secs(400 * 86_400);
    let store = DynamoStore::new(dynalite.client(), TABLE, TTL).with_history_ttl(history_ttl);
    let started = OffsetDateTime::now_utc().unix_timestamp();
    connected(&store).await;
    store
        .append_event(
            &sid(AGENT),
            &HistoryEvent::api(&alice(), now(), "call started", None),
        )
        .await
        .unwrap();
    let history = store.list_events(&sid(AGENT)).await.unwrap();
    assert_eq!(history[0].actor.as_deref(), Some("alice@example.com"));
    let items = raw_items(&dynalite).await;
    assert_eq!(items.len(), 2);
    for item in items {
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        let is_history = item["sk"]
            .as_s()
            .unwrap()
            .starts_with(warm_transfer_core::store::EVENT_PREFIX);
        let ttl = if is_history { history_ttl } else { TTL }.as_secs() as i64;
        assert!(
            (started + ttl - 5..=started + ttl + 60).contains(&expires),
            "{item:?}"
        );
    }
}

#[tokio::test]
async fn a_session_is_created_once() {
    let (_dynalite, store) = store().await;
    store.create_session(&session()).await.unwrap();
    assert_eq!(
        store.create_session(&session()).await,
        Err(StoreError::AlreadyExists)
    );
}

#[tokio::test]
async fn twenty_simultaneous_transfers_make_exactly_one() {
    let (dynalite, store) = store().await;
    connected(&store).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                // Half retry the same request (same key), half are different requests.
                let key = if i % 2 == 0 {
                    "same".to_owned()
                } else {
                    format!("other-{i}")
                };
                store
                    .request_transfer(
                        &sid(AGENT),
                        phone("+15550100003"),
                        TransferKind::Warm,
                        Some(key),
                        now(),
                    )
                    .await
            })
        })
        .collect();
    let mut new = 0;
    let mut existing = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok((TransferDecision::New, _)) => new += 1,
            Ok((TransferDecision::Existing, _)) => existing += 1,
            Err(StoreError::Rejected(DomainError::TransferActive { .. })) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(new, 1, "exactly one winner");
    assert_eq!(new + existing + refused, 20);
    let session = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(session.transfer.unwrap().attempt, 1);
    // One session item: the transfer lives inside it, so there cannot be two.
    assert_eq!(raw_items(&dynalite).await.len(), 1);
}

#[tokio::test]
async fn refused_commands_carry_the_state_they_met() {
    let (_dynalite, store) = store().await;
    store.create_session(&session()).await.unwrap();
    let refused = store
        .request_transfer(
            &sid(AGENT),
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            now(),
        )
        .await;
    assert_eq!(
        refused.unwrap_err(),
        StoreError::Rejected(DomainError::NotConnected {
            state: "agent-ringing"
        })
    );
    assert_eq!(
        store
            .update(&sid(TARGET), &|s: &mut CallSession| s.cancel_transfer())
            .await,
        Err(StoreError::NotFound)
    );
}

/// Applying the same callbacks in any order, concurrently, gives the state
/// the domain computes: nothing lost, nothing moved backwards.
#[tokio::test]
async fn concurrent_out_of_order_callbacks_all_land_and_agree_with_the_domain() {
    let (_dynalite, store) = store().await;
    let mut expected = connected(&store).await;
    store
        .request_transfer(
            &sid(AGENT),
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            now(),
        )
        .await
        .unwrap();
    expected
        .request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
        .unwrap();
    let mut observations = vec![
        Observation::AgentLeg(leg(AGENT, LegStatus::Ringing, 1)),
        Observation::CustomerLeg(leg(CUSTOMER, LegStatus::Ringing, 1)),
        Observation::CustomerLeg(leg(CUSTOMER, LegStatus::InProgress, 2)),
    ];
    for (status, seq) in [
        (LegStatus::Initiated, 0),
        (LegStatus::Ringing, 1),
        (LegStatus::InProgress, 2),
    ] {
        for _ in 0..3 {
            observations.push(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, status, seq),
            });
        }
    }
    for (event, who) in [
        (ConferenceEvent::Start, None),
        (ConferenceEvent::Join, Some(RoomParticipant::Customer)),
        (ConferenceEvent::Join, Some(RoomParticipant::FirstAgent)),
        (
            ConferenceEvent::Join,
            Some(RoomParticipant::SecondAgent { attempt: 1 }),
        ),
        (
            ConferenceEvent::Join,
            Some(RoomParticipant::SecondAgent { attempt: 7 }),
        ),
    ] {
        observations.push(Observation::Conference {
            event,
            participant: who,
            sequence: None,
            conference: None,
            at: now(),
        });
    }
    // Reverse order: the newest callbacks arrive first.
    observations.reverse();
    for observation in observations.clone() {
        expected.observe(observation);
    }
    let tasks: Vec<_> = observations
        .into_iter()
        .map(|observation| {
            let store = store.clone();
            tokio::spawn(async move { store.observe(&sid(AGENT), observation).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut stored = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    stored.version = expected.version;
    // Leg timestamps differ per write; compare what the state machine uses.
    assert_eq!(stored.transfer_state(), Some(TransferState::TargetAnswered));
    assert_eq!(stored.transfer_state(), expected.transfer_state());
    assert_eq!(stored.state(), expected.state());
    assert_eq!(stored.customer_presence, Presence::Joined);
    assert_eq!(stored.first_agent_presence, Presence::Joined);
    assert_eq!(
        stored.transfer.as_ref().unwrap().target_presence,
        Presence::Joined
    );
    let target_leg = stored.transfer.unwrap().target_leg.unwrap();
    assert_eq!(target_leg.status, LegStatus::InProgress);
    assert_eq!(target_leg.sequence, Some(2));
}

#[tokio::test]
async fn duplicate_and_stale_callbacks_are_ignored_in_one_write() {
    let (_dynalite, store) = store().await;
    let before = connected(&store).await;
    let stale = Observation::CustomerLeg(leg(CUSTOMER, LegStatus::Ringing, 1));
    let duplicate = Observation::CustomerLeg(leg(CUSTOMER, LegStatus::InProgress, 2));
    let stranger = Observation::CustomerLeg(leg(TARGET, LegStatus::Completed, 9));
    for observation in [stale, duplicate, stranger] {
        let (observed, session) = store.observe(&sid(AGENT), observation).await.unwrap();
        assert_eq!(observed, Observed::Ignored);
        assert_eq!(session.as_ref(), Some(&before), "the session as it is");
    }
    let after = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(after, before, "not even the version moved");
    let (observed, session) = store
        .observe(
            &sid(AGENT),
            Observation::CustomerLeg(leg(CUSTOMER, LegStatus::Completed, 3)),
        )
        .await
        .unwrap();
    assert_eq!(observed, Observed::Applied);
    assert_eq!(session.unwrap().state(), SessionState::Ended);
    // A callback for a call the store never saw is ignored, not an error.
    let (observed, _) = store
        .observe(
            &sid(TARGET),
            Observation::AgentLeg(leg(TARGET, LegStatus::Ringing, 1)),
        )
        .await
        .unwrap();
    assert_eq!(observed, Observed::Ignored);
}

#[tokio::test]
async fn commands_retry_after_losing_a_race() {
    let (_dynalite, store) = store().await;
    connected(&store).await;
    store
        .request_transfer(
            &sid(AGENT),
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            now(),
        )
        .await
        .unwrap();
    // Cancel and a stream of callbacks race; the cancel must land anyway.
    let cancel = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .update(&sid(AGENT), &|s: &mut CallSession| s.cancel_transfer())
                .await
        })
    };
    let callbacks: Vec<_> = (0..10u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let who = if i % 2 == 0 {
                    RoomParticipant::Customer
                } else {
                    RoomParticipant::FirstAgent
                };
                store
                    .observe(
                        &sid(AGENT),
                        Observation::Conference {
                            event: ConferenceEvent::Join,
                            participant: Some(who),
                            sequence: Some(i),
                            conference: None,
                            at: now(),
                        },
                    )
                    .await
            })
        })
        .collect();
    for task in callbacks {
        task.await.unwrap().unwrap();
    }
    let cancelled = cancel.await.unwrap().unwrap();
    assert_eq!(cancelled.transfer_state(), Some(TransferState::Cancelled));
    let stored = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(stored.transfer_state(), Some(TransferState::Cancelled));
    assert_eq!(stored.first_agent_presence, Presence::Joined);
}

#[tokio::test]
async fn history_is_append_only_and_in_order() {
    let (_dynalite, store) = store().await;
    let base = now();
    let kinds = ["call started", "first agent ringing", "customer ringing"];
    // Written out of order, with one timestamp shared by two entries.
    for (offset, kind) in [
        (2, kinds[2]),
        (0, kinds[0]),
        (1, kinds[1]),
        (1, "same moment"),
    ] {
        store
            .append_event(
                &sid(AGENT),
                &HistoryEvent::twilio(
                    base + time::Duration::milliseconds(offset),
                    kind,
                    Some("…0002".into()),
                ),
            )
            .await
            .unwrap();
    }
    let events = store.list_events(&sid(AGENT)).await.unwrap();
    assert_eq!(events.len(), 4, "nothing overwritten");
    assert_eq!(events[0].kind, "call started");
    assert_eq!(events[3].kind, "customer ringing");
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(events[0].source, EventSource::Twilio);
    assert_eq!(events[0].detail.as_deref(), Some("…0002"));
    assert!(store.list_events(&sid(TARGET)).await.unwrap().is_empty());
}

/// A store whose client talks to `127.0.0.1:port`, without SDK retries.
fn store_at(port: u16) -> DynamoStore {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(warm_transfer_core::https::aws_http_client())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), TABLE, TTL)
}

/// A server that answers every request with `status` and `body`, the way
/// DynamoDB reports errors; returns its port.
async fn canned_server(status: u16, body: String) -> u16 {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/x-amz-json-1.0")
                                .body(Full::new(bytes::Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn an_unreachable_database_is_a_typed_error() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = store_at(port);
    assert!(matches!(
        store.get_session(&sid(AGENT)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.list_events(&sid(AGENT)).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn throttling_is_a_typed_error() {
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let body = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"slow down"}}"#
        );
        let port = canned_server(400, body).await;
        let store = store_at(port);
        assert_eq!(
            store.get_session(&sid(AGENT)).await,
            Err(StoreError::Throttled),
            "{code}"
        );
        assert_eq!(
            store.create_session(&session()).await,
            Err(StoreError::Throttled),
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_server_error_is_unavailable() {
    let port = canned_server(503, r#"{"message":"down for maintenance"}"#.to_owned()).await;
    let store = store_at(port);
    assert!(matches!(
        store.get_session(&sid(AGENT)).await,
        Err(StoreError::Unavailable(_))
    ));
    let observed = store
        .observe(
            &sid(AGENT),
            Observation::AgentLeg(leg(AGENT, LegStatus::Ringing, 1)),
        )
        .await;
    assert!(
        matches!(observed, Err(StoreError::Unavailable(_))),
        "{observed:?}"
    );
}

/// The one-write transfer path encodes the domain's rule as a DynamoDB
/// condition: in every state the stored outcome must equal the domain's.
#[tokio::test]
async fn transfer_requests_agree_with_the_domain_in_every_state() {
    let (_dynalite, store) = store().await;
    let key = || Some("k-1".to_owned());
    type Setup = fn(&mut CallSession);
    let cases: Vec<(&str, Setup)> = vec![
        ("agent ringing", |_| {}),
        ("customer ringing", |s| {
            s.observe(Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)));
            s.observe(Observation::CustomerLeg(leg(
                CUSTOMER,
                LegStatus::Ringing,
                1,
            )));
        }),
        ("connected", |_| {}),
        ("transfer ringing", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::Ringing, 1),
            });
        }),
        ("same key again", |s| {
            s.request_transfer(
                phone("+15550100003"),
                TransferKind::Warm,
                Some("k-1".into()),
                now(),
            )
            .unwrap();
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::Busy, 2),
            });
        }),
        ("target busy", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::Busy, 2),
            });
        }),
        ("target left", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::InProgress, 2),
            });
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::Completed, 3),
            });
        }),
        ("failed after the redirect", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.fail_transfer(1, "no".into(), true).unwrap();
        }),
        ("cancelled", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.cancel_transfer().unwrap();
        }),
        ("handed over", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.observe(Observation::TargetLeg {
                attempt: 1,
                observation: leg(TARGET, LegStatus::InProgress, 2),
            });
            s.first_agent_leaves().unwrap();
        }),
        ("customer hung up", |s| {
            s.observe(Observation::CustomerLeg(leg(
                CUSTOMER,
                LegStatus::Completed,
                3,
            )));
        }),
        ("agent hung up the bridge", |s| {
            s.observe(Observation::AgentLeg(leg(AGENT, LegStatus::Completed, 3)));
        }),
        ("room closed", |s| {
            s.request_transfer(phone("+15550100003"), TransferKind::Warm, None, now())
                .unwrap();
            s.fail_transfer(1, "no".into(), true).unwrap();
            s.observe(Observation::Conference {
                event: ConferenceEvent::Join,
                participant: Some(RoomParticipant::Customer),
                sequence: None,
                conference: None,
                at: now(),
            });
            s.observe(Observation::Conference {
                event: ConferenceEvent::End,
                participant: None,
                sequence: None,
                conference: None,
                at: now(),
            });
        }),
    ];
    for (i, (name, setup)) in cases.into_iter().enumerate() {
        let id = sid(&format!("CA{:032x}", 0x100 + i));
        let mut session = CallSession::start(
            id.clone(),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            now(),
        );
        if name != "agent ringing" && name != "customer ringing" {
            session.observe(Observation::AgentLeg(LegObservation {
                call_sid: id.clone(),
                ..leg(AGENT, LegStatus::InProgress, 2)
            }));
            session.observe(Observation::CustomerLeg(leg(
                CUSTOMER,
                LegStatus::InProgress,
                2,
            )));
        }
        if name == "agent hung up the bridge" {
            session.observe(Observation::AgentLeg(LegObservation {
                call_sid: id.clone(),
                ..leg(AGENT, LegStatus::Completed, 3)
            }));
        } else {
            setup(&mut session);
        }
        store.create_session(&session).await.unwrap();
        let mut expected = session.clone();
        let domain =
            expected.request_transfer(phone("+15550100004"), TransferKind::Warm, key(), now());
        let stored = store
            .request_transfer(&id, phone("+15550100004"), TransferKind::Warm, key(), now())
            .await;
        match (domain, stored) {
            (Ok(decision), Ok((made, after))) => {
                assert_eq!(made, decision, "{name}");
                assert_eq!(
                    after.customer_in_room(),
                    expected.customer_in_room(),
                    "{name}"
                );
                assert_eq!(after.transfer_state(), expected.transfer_state(), "{name}");
                let (t, e) = (after.transfer.unwrap(), expected.transfer.unwrap());
                assert_eq!(
                    (
                        t.attempt,
                        t.target,
                        t.idempotency_key,
                        t.target_leg,
                        t.outcome
                    ),
                    (
                        e.attempt,
                        e.target,
                        e.idempotency_key,
                        e.target_leg,
                        e.outcome
                    ),
                    "{name}"
                );
            }
            (Err(refusal), Err(StoreError::Rejected(stored))) => {
                assert_eq!(stored, refusal, "{name}")
            }
            (domain, stored) => panic!("{name}: domain {domain:?}, store {stored:?}"),
        }
    }
}

/// A loopback proxy to dynalite that passes every request on at once but
/// holds the answers of chosen `PutItem`s (by their order) for `hold`.
async fn late_answers(target: u16, held: &'static [usize], hold: Duration) -> u16 {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let puts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let puts = puts.clone();
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", target))
                    .await
                    .unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let late = Arc::new(AtomicBool::new(false));
                let mark = late.clone();
                let upstream = async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                        let chunk = &buffer[..n];
                        if chunk.windows(25).any(|w| w == b"DynamoDB_20120810.PutItem") {
                            let index = puts.fetch_add(1, Ordering::SeqCst);
                            mark.store(held.contains(&index), Ordering::SeqCst);
                        }
                        if server_write.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                };
                let downstream = async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
                        if late.swap(false, Ordering::SeqCst) {
                            tokio::time::sleep(hold).await;
                        }
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::join!(upstream, downstream);
            });
        }
    });
    port
}

#[tokio::test]
async fn a_write_whose_answer_came_after_the_timeout_is_known_as_ours() {
    let (dynalite, _) = store().await;
    let dynalite_port: u16 = dynalite
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // PutItem 0 is the create's first attempt; 1 the first agent's callback,
    // written on top of it meanwhile; 2 the create's retry; 3 the customer's
    // callback; 4 the transfer's write, 5 its retry. The answers of 0 and 4
    // come after the client's 1 s attempt timeout, though dynalite applied
    // both at once.
    let port = late_answers(dynalite_port, &[0, 4], Duration::from_millis(1500)).await;
    let env: HashMap<String, String> = [
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("TABLE_NAME", TABLE),
        ("DYNAMODB_ENDPOINT", &format!("http://127.0.0.1:{port}")),
        ("DEFAULT_CALLER_ID", "+15005550006"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = warm_transfer_core::config::Config::from_map(&env).unwrap();
    // The product's own client: its timeouts and the SDK's retries. The
    // stream (the observer the local stack feeds its publisher from) must
    // see every session version written, the two whose answers were late too.
    let stream = Arc::new(SessionVersions::default());
    let ops = DynamoOps::default();
    let client = ops.wrap(&DynamoStore::client_from_config(&config).await);
    let client = warm_transfer_dev::write_tap::tapped(&client, stream.clone());
    let store = DynamoStore::new(client, TABLE, TTL);
    // The retry meets the session the first attempt stored, with a
    // callback's write on top: still ours, not "exists".
    let callback = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .observe(
                &sid(AGENT),
                Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)),
            )
            .await
    };
    let created = session();
    let (created, observed) = tokio::join!(
        serving(Endpoint::StartCall, store.create_session(&created)),
        serving(Endpoint::StatusCallback, callback)
    );
    created.unwrap();
    assert_eq!(observed.unwrap().0, Observed::Applied);
    // To know the item it met as its own, start-call read it back: a
    // GetItem its role must allow (issue 26: it did not, and the agent's
    // call was hung up with AccessDenied in the answer).
    assert!(
        ops.1.get("start-call GetItem") >= 1,
        "{:?}",
        ops.1.snapshot()
    );
    assert_eq!(ops.outside_permissions(), Vec::<String>::new());
    store
        .observe(
            &sid(AGENT),
            Observation::CustomerLeg(leg(CUSTOMER, LegStatus::InProgress, 2)),
        )
        .await
        .unwrap();
    // Nor is the transfer refused as already under way by its own retry.
    let decision = store
        .request_transfer(
            &sid(AGENT),
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(decision.0, TransferDecision::New, "{decision:?}");
    let stored = store.get_session(&sid(AGENT)).await.unwrap().unwrap();
    assert_eq!(stored.transfer.map(|t| t.attempt), Some(1));
    // A stream delivers after the write: the late answers' writes are told
    // when those answers arrive.
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = stream.0.lock().unwrap().clone();
        if seen.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3], "session versions in the stream");
}

/// The versions of the session items written, as the local stream sees them.
#[derive(Default)]
struct SessionVersions(std::sync::Mutex<Vec<u64>>);

impl warm_transfer_dev::write_tap::WriteObserver for SessionVersions {
    fn written(&self, item: &serde_json::Value) {
        let is_session = item["sk"]["S"] == warm_transfer_core::store::SESSION_SK;
        let version = item["version"]["N"].as_str().and_then(|n| n.parse().ok());
        if let (true, Some(version)) = (is_session, version) {
            self.0.lock().unwrap().push(version);
        }
    }
}

/// The check the scenarios make: a request a function's row of the
/// permissions table does not name is reported, by function and operation.
#[tokio::test]
async fn a_request_beyond_a_functions_permissions_is_reported() {
    let (dynalite, _) = store().await;
    let ops = DynamoOps::default();
    let store = DynamoStore::new(ops.wrap(&dynalite.client()), TABLE, TTL);
    serving(Endpoint::GetCall, store.get_session(&sid(AGENT)))
        .await
        .unwrap();
    assert_eq!(ops.outside_permissions(), Vec::<String>::new());
    // The console page reads nothing: its role may not.
    serving(Endpoint::Console, store.get_session(&sid(AGENT)))
        .await
        .unwrap();
    // Nor may get-call write.
    serving(Endpoint::GetCall, store.create_session(&session()))
        .await
        .unwrap();
    assert_eq!(
        ops.outside_permissions(),
        vec!["console GetItem".to_owned(), "get-call PutItem".to_owned()]
    );
}
