//! The reconciler's access pattern against a real DynamoDB API server
//! (dynalite, in memory): the sparse open-sessions index finds the sessions
//! due for a check without a scan, a settled session leaves it, one claim of
//! many wins, and every item carries the TTL that removes it in the end.
//!
//! dynalite does not run TTL deletion (nor does DynamoDB Local): the tests
//! check that every item written carries a future `expires_at` within the
//! configured TTL, and delete what DynamoDB's TTL would delete to show that
//! nothing is left behind in the index.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use warm_transfer_core::domain::*;
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::table::{OPEN_SHARDS, TABLE};
use warm_transfer_core::store::{CHECK_AT, CallStore, DueSession, DynamoStore, OPEN_SHARD};
use warm_transfer_dev::dynalite::Dynalite;
use warm_transfer_dev::store_ext::RequestTransfer;

const TABLE_NAME: &str = "calls-open-sessions";
const TTL: Duration = Duration::from_secs(72 * 3600);

fn sid(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

fn customer_sid(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{:032x}", 0x1000_0000 + n)).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

async fn store() -> (Dynalite, Arc<DynamoStore>) {
    let dynalite = Dynalite::start()
        .await
        .expect("dynalite (npm ci --prefix dev)");
    dynalite.create_table(TABLE_NAME).await.unwrap();
    let store = DynamoStore::new(dynalite.client(), TABLE_NAME, TTL);
    (dynalite, Arc::new(store))
}

/// A connected call `n`: next check in [`RECHECK_CONNECTED`].
async fn connected(store: &DynamoStore, n: u32) -> CallSession {
    super::store_connected_call(store, &sid(n), &customer_sid(n)).await
}

/// A call `n` with a transfer under way: next check in [`RECHECK_SOON`].
async fn transferring(store: &DynamoStore, n: u32) -> CallSession {
    connected(store, n).await;
    let (_, session) = store
        .request_transfer(
            &sid(n),
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    session
}

async fn raw_items(dynalite: &Dynalite) -> Vec<HashMap<String, AttributeValue>> {
    dynalite
        .client()
        .scan()
        .table_name(TABLE_NAME)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

async fn raw_session(dynalite: &Dynalite, id: &CallSid) -> HashMap<String, AttributeValue> {
    raw_items(dynalite)
        .await
        .into_iter()
        .find(|item| {
            item["pk"].as_s().unwrap() == &format!("CALL#{id}")
                && item["sk"].as_s().unwrap() == "SESSION"
        })
        .unwrap()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

fn ids(due: &[DueSession]) -> BTreeSet<CallSid> {
    due.iter().map(|d| d.session.id.clone()).collect()
}

fn later(d: time::Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() + d
}

#[tokio::test]
async fn due_sessions_are_found_by_their_deadline() {
    let (dynalite, store) = store().await;
    let calm = connected(&store, 1).await;
    let busy = transferring(&store, 2).await;

    let item = raw_session(&dynalite, &busy.id).await;
    let check_at = number(&item, CHECK_AT);
    let expected = later(RECHECK_SOON).unix_timestamp();
    assert!((expected - 3..=expected).contains(&check_at), "{item:?}");
    assert!(item[OPEN_SHARD].as_s().unwrap().starts_with("OPEN#"));

    assert!(
        store
            .due_sessions(OffsetDateTime::now_utc(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let soon = store
        .due_sessions(later(RECHECK_SOON + time::Duration::seconds(1)), 10)
        .await
        .unwrap();
    assert_eq!(ids(&soon), BTreeSet::from([busy.id.clone()]));
    assert_eq!(soon[0].session, busy, "the index holds the whole session");
    assert_eq!(soon[0].check_at, check_at);

    let all = store
        .due_sessions(later(RECHECK_CONNECTED + time::Duration::seconds(1)), 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].session.id, busy.id, "the longest overdue first");
    assert_eq!(all[1].session.id, calm.id);
}

#[tokio::test]
async fn sessions_in_every_shard_are_found_and_the_limit_holds() {
    let (_dynalite, store) = store().await;
    let count = OPEN_SHARDS * 3;
    let created = futures::future::join_all((1..=count).map(|n| {
        let store = store.clone();
        async move { connected(&store, n).await.id }
    }))
    .await;
    let far = later(RECHECK_CONNECTED + time::Duration::seconds(1));
    let due = store.due_sessions(far, 100).await.unwrap();
    assert_eq!(ids(&due), created.into_iter().collect());
    let shards: BTreeSet<String> = (1..=count)
        .map(|n| warm_transfer_core::store::open_shard(&sid(n)))
        .collect();
    assert_eq!(shards.len(), OPEN_SHARDS as usize, "{shards:?}");
    let some = store.due_sessions(far, 5).await.unwrap();
    assert_eq!(some.len(), 5);
    assert!(store.due_sessions(far, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_settled_session_leaves_the_index() {
    let (dynalite, store) = store().await;
    let session = connected(&store, 7).await;
    store
        .observe(
            &session.id,
            Observation::CustomerLeg(super::leg_now(&customer_sid(7), LegStatus::Completed, 3)),
        )
        .await
        .unwrap();
    // Ended, but leg 1 has not reported its end: still checked, soon.
    let item = raw_session(&dynalite, &session.id).await;
    assert!(item.contains_key(CHECK_AT));
    let due = store.due_sessions(later(RECHECK_SOON + time::Duration::seconds(1)), 10);
    assert_eq!(due.await.unwrap().len(), 1);

    store
        .observe(
            &session.id,
            Observation::AgentLeg(super::leg_now(&session.id, LegStatus::Completed, 3)),
        )
        .await
        .unwrap();
    let item = raw_session(&dynalite, &session.id).await;
    assert!(!item.contains_key(CHECK_AT), "{item:?}");
    assert!(!item.contains_key(OPEN_SHARD), "{item:?}");
    let forever = later(time::Duration::days(30));
    assert!(store.due_sessions(forever, 10).await.unwrap().is_empty());
    // The session itself is still there, read as before.
    let read = store.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(read.state(), SessionState::Ended);
}

#[tokio::test]
async fn exactly_one_of_many_concurrent_claims_wins() {
    let (_dynalite, store) = store().await;
    transferring(&store, 3).await;
    let at = later(RECHECK_SOON + time::Duration::seconds(1));
    let due = store.due_sessions(at, 10).await.unwrap().remove(0);
    let lease = at + time::Duration::minutes(1);
    let claims = futures::future::join_all((0..12).map(|_| {
        let (store, due) = (store.clone(), due.clone());
        async move { store.claim_check(&due, at, lease).await.unwrap() }
    }))
    .await;
    assert_eq!(claims.iter().filter(|won| **won).count(), 1, "{claims:?}");

    // Claimed: not due again until the lease ends.
    assert!(store.due_sessions(at, 10).await.unwrap().is_empty());
    let after = store
        .due_sessions(lease + time::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].check_at, lease.unix_timestamp());
    // A stale read of the index (the old deadline) cannot claim it again.
    assert!(!store.claim_check(&due, lease, lease).await.unwrap());
}

#[tokio::test]
async fn a_claim_schedules_the_next_check_and_survives_writes() {
    let (dynalite, store) = store().await;
    let session = connected(&store, 4).await;
    let at = later(RECHECK_CONNECTED + time::Duration::seconds(1));
    let due = store.due_sessions(at, 10).await.unwrap().remove(0);
    let lease = at + time::Duration::seconds(60);
    assert!(store.claim_check(&due, at, lease).await.unwrap());
    // A connected call's next check is its own, later than the lease.
    let item = raw_session(&dynalite, &session.id).await;
    assert_eq!(
        number(&item, CHECK_AT),
        (at + RECHECK_CONNECTED).unix_timestamp()
    );

    // A callback written during the run keeps the lease: a second run that
    // reads the new deadline still cannot take the session over.
    let (_, changed) = store
        .request_transfer(
            &session.id,
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let item = raw_session(&dynalite, &session.id).await;
    assert_eq!(number(&item, "check_lease"), lease.unix_timestamp());
    let due = store
        .due_sessions(later(RECHECK_SOON + time::Duration::seconds(1)), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(due.session, changed);
    let during = at + time::Duration::seconds(30);
    assert!(!store.claim_check(&due, during, during).await.unwrap());
    // Once the lease has ended it can be claimed again.
    assert!(store.claim_check(&due, lease, lease).await.unwrap());
}

#[tokio::test]
async fn a_claim_fails_when_the_session_changed_since_the_index_read_it() {
    let (_dynalite, store) = store().await;
    let session = transferring(&store, 5).await;
    let at = later(RECHECK_SOON + time::Duration::seconds(1));
    let due = store.due_sessions(at, 10).await.unwrap().remove(0);
    store
        .observe(
            &session.id,
            Observation::Conference {
                event: ConferenceEvent::Join,
                participant: Some(RoomParticipant::Customer),
                sequence: None,
                conference: None,
                at: OffsetDateTime::now_utc(),
            },
        )
        .await
        .unwrap();
    assert!(!store.claim_check(&due, at, at).await.unwrap());
}

#[tokio::test]
async fn every_item_carries_a_future_ttl_and_expired_items_leave_the_index() {
    let (dynalite, store) = store().await;
    let started = OffsetDateTime::now_utc().unix_timestamp();
    transferring(&store, 6).await;
    connected(&store, 8).await;
    store
        .append_event(
            &sid(6),
            &HistoryEvent::reconciler(OffsetDateTime::now_utc(), "repair", None),
        )
        .await
        .unwrap();
    let at = later(RECHECK_SOON + time::Duration::seconds(1));
    let due = store.due_sessions(at, 10).await.unwrap().remove(0);
    assert!(store.claim_check(&due, at, at).await.unwrap());

    let items = raw_items(&dynalite).await;
    assert_eq!(items.len(), 3);
    let ttl = TTL.as_secs() as i64;
    for item in &items {
        let expires = number(item, TABLE.ttl_attribute);
        assert!(
            (started + ttl - 5..=started + ttl + 60).contains(&expires),
            "{item:?}"
        );
        if let Some(check_at) = item.get(CHECK_AT) {
            let check_at: i64 = check_at.as_n().unwrap().parse().unwrap();
            assert!(check_at < expires, "checked before it expires: {item:?}");
        }
    }

    // What DynamoDB's TTL does once `expires_at` has passed (dynalite does
    // not): delete the item, and with it its index entry.
    let client = dynalite.client();
    for item in items {
        if number(&item, TABLE.ttl_attribute) <= later(time::Duration::hours(73)).unix_timestamp() {
            client
                .delete_item()
                .table_name(TABLE_NAME)
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .unwrap();
        }
    }
    assert!(raw_items(&dynalite).await.is_empty());
    let forever = later(time::Duration::days(30));
    assert!(store.due_sessions(forever, 10).await.unwrap().is_empty());
}
