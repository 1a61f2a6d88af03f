//! Who listens to which call over the WebSocket API. Two small items per
//! connection, in the calls table:
//!
//! - `CALL#<sid>` / `SUB#<connection id>`: in the call's own partition, so
//!   the publisher finds a call's listeners with one Query; it keeps who
//!   signed in (their id, numbers and supervisor flag, as the token said),
//!   so every change is authorised again against the session it shows;
//! - `CONN#<connection id>` / `CONN`: names the call, since `$disconnect`
//!   knows only the connection.
//!
//! Neither is a session or a history entry, so the stream's filter keeps
//! their writes from the publisher. Both expire (TTL) shortly after API
//! Gateway's two-hour limit on a connection, in case a `$disconnect` is lost.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::StoreError;
use super::directory::DIRECTORY_PK;
use super::dynamo::{classify, query_partition, query_prefix};
use super::item::{self, Item, n, s};
use crate::domain::Actor;
use crate::endpoint::Endpoint;
use crate::ids::{CallSid, PhoneNumber};

pub const SUBSCRIPTION_PREFIX: &str = "SUB#";
const CONNECTION_SK: &str = "CONN";
/// API Gateway closes a WebSocket connection after two hours at most.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// One connection listening to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub connection_id: String,
    /// Who signed in, as their token said when they connected.
    pub actor: Actor,
    /// When their token expires: nothing is sent to them after it.
    pub until: OffsetDateTime,
    /// When they subscribed, in `$connect`: until that returns, API Gateway
    /// answers a post to the connection 410 as if it were gone.
    pub since: OffsetDateTime,
}

impl Subscriber {
    /// Still within the time its `$connect` may take (the connection is
    /// opening, not gone).
    pub fn still_connecting(&self, now: OffsetDateTime) -> bool {
        // `$connect` subscribes within its own run, which ends by the
        // function's timeout.
        let connecting = Endpoint::WsConnect.timeout();
        now < self.since + connecting
    }
}

#[async_trait]
pub trait Subscriptions: Send + Sync {
    /// Records that `subscriber` listens to `call`.
    async fn subscribe(&self, call: &CallSid, subscriber: &Subscriber) -> Result<(), StoreError>;

    /// Forgets a connection that closed (`$disconnect`).
    async fn disconnected(&self, connection_id: &str) -> Result<(), StoreError>;

    /// Everyone listening to `call`: one strongly consistent Query.
    async fn subscribers(&self, call: &CallSid) -> Result<Vec<Subscriber>, StoreError>;

    /// Forgets one listener: its connection is gone (410) or it may no
    /// longer see the call.
    async fn remove(&self, call: &CallSid, connection_id: &str) -> Result<(), StoreError>;

    /// Records that `subscriber` listens to the directory (presence).
    async fn subscribe_directory(&self, subscriber: &Subscriber) -> Result<(), StoreError>;

    /// Everyone listening to the directory: one Query of its partition.
    async fn directory_subscribers(&self) -> Result<Vec<Subscriber>, StoreError>;

    /// Forgets one directory listener (gone, or signed out).
    async fn remove_directory(&self, connection_id: &str) -> Result<(), StoreError>;
}

/// Where a subscription lives: a call's partition, or the directory's.
fn subscription_key_in(pk: &str, connection_id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(pk)),
        (
            "sk".to_owned(),
            s(format!("{SUBSCRIPTION_PREFIX}{connection_id}")),
        ),
    ])
}

/// The DynamoDB adapter of [`Subscriptions`].
#[derive(Clone)]
pub struct DynamoSubscriptions {
    client: Client,
    table: String,
}

fn subscription_key(call: &CallSid, connection_id: &str) -> Item {
    subscription_key_in(&item::pk(call), connection_id)
}

fn connection_key(connection_id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("CONN#{connection_id}"))),
        ("sk".to_owned(), s(CONNECTION_SK)),
    ])
}

fn subscriber_from_item(found: &Item) -> Result<Subscriber, StoreError> {
    let text = |name: &str| {
        found
            .get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(name.to_owned()))
    };
    let numbers = match found.get("numbers") {
        Some(AttributeValue::Ss(values)) => values
            .iter()
            .map(|v| PhoneNumber::parse(v).map_err(|_| StoreError::Corrupt("numbers".into())))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let time = |name: &str| {
        found
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|v| OffsetDateTime::from_unix_timestamp(v).ok())
    };
    let until = time("until").ok_or_else(|| StoreError::Corrupt("until".into()))?;
    Ok(Subscriber {
        connection_id: text("connection_id")?.clone(),
        actor: Actor {
            id: text("actor")?.clone(),
            numbers,
            supervisor: found
                .get("supervisor")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        until,
        // An item written before `since` was: long open.
        since: time("since").unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

impl DynamoSubscriptions {
    /// The two items of a subscription: the listener in its topic's
    /// partition, and the connection naming that topic (`what`).
    async fn subscribe_in(
        &self,
        subscription: Item,
        subscriber: &Subscriber,
        what: (&str, AttributeValue),
    ) -> Result<(), StoreError> {
        let expires_at = (OffsetDateTime::now_utc() + CONNECTION_LIFETIME).unix_timestamp() + 600;
        let mut subscription = subscription;
        subscription.extend([
            ("connection_id".to_owned(), s(&subscriber.connection_id)),
            ("actor".to_owned(), s(&subscriber.actor.id)),
            (
                "supervisor".to_owned(),
                AttributeValue::Bool(subscriber.actor.supervisor),
            ),
            ("until".to_owned(), n(subscriber.until.unix_timestamp())),
            ("since".to_owned(), n(subscriber.since.unix_timestamp())),
            ("expires_at".to_owned(), n(expires_at)),
        ]);
        if !subscriber.actor.numbers.is_empty() {
            let numbers = subscriber
                .actor
                .numbers
                .iter()
                .map(|p| p.as_str().to_owned());
            subscription.insert("numbers".to_owned(), AttributeValue::Ss(numbers.collect()));
        }
        let mut connection = connection_key(&subscriber.connection_id);
        connection.extend([
            (what.0.to_owned(), what.1),
            ("expires_at".to_owned(), n(expires_at)),
        ]);
        let put = |item: Item| {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
        };
        let (a, b) = futures::join!(put(subscription), put(connection));
        a.map_err(|e| classify(e).into_store_error())?;
        b.map_err(|e| classify(e).into_store_error())?;
        Ok(())
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn delete(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify(e).into_store_error())?;
        Ok(output.attributes)
    }
}

#[async_trait]
impl Subscriptions for DynamoSubscriptions {
    async fn subscribe(&self, call: &CallSid, subscriber: &Subscriber) -> Result<(), StoreError> {
        let subscription = subscription_key(call, &subscriber.connection_id);
        self.subscribe_in(subscription, subscriber, ("call", s(call.as_str())))
            .await
    }

    async fn disconnected(&self, connection_id: &str) -> Result<(), StoreError> {
        let old = self.delete(connection_key(connection_id)).await?;
        let call = old
            .as_ref()
            .and_then(|item| item.get("call"))
            .and_then(|v| v.as_s().ok())
            .and_then(|sid| CallSid::parse(sid).ok());
        if let Some(call) = call {
            self.delete(subscription_key(&call, connection_id)).await?;
        }
        let directory = old
            .as_ref()
            .and_then(|item| item.get("directory"))
            .is_some_and(|v| v.as_bool().is_ok_and(|yes| *yes));
        if directory {
            self.delete(subscription_key_in(DIRECTORY_PK, connection_id))
                .await?;
        }
        Ok(())
    }

    async fn subscribers(&self, call: &CallSid) -> Result<Vec<Subscriber>, StoreError> {
        let entries = query_prefix(&self.client, &self.table, call, SUBSCRIPTION_PREFIX).await?;
        let mut found = Vec::new();
        for entry in &entries {
            match subscriber_from_item(entry) {
                Ok(subscriber) => found.push(subscriber),
                // One unreadable entry must not silence the others.
                Err(error) => tracing::warn!(%error, call = %call, "unreadable subscription"),
            }
        }
        Ok(found)
    }

    async fn remove(&self, call: &CallSid, connection_id: &str) -> Result<(), StoreError> {
        let (a, b) = futures::join!(
            self.delete(subscription_key(call, connection_id)),
            self.delete(connection_key(connection_id))
        );
        a?;
        b?;
        Ok(())
    }

    async fn subscribe_directory(&self, subscriber: &Subscriber) -> Result<(), StoreError> {
        let subscription = subscription_key_in(DIRECTORY_PK, &subscriber.connection_id);
        let topic = ("directory", AttributeValue::Bool(true));
        self.subscribe_in(subscription, subscriber, topic).await
    }

    async fn directory_subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        let entries =
            query_partition(&self.client, &self.table, DIRECTORY_PK, SUBSCRIPTION_PREFIX).await?;
        Ok(entries
            .iter()
            .filter_map(|entry| match subscriber_from_item(entry) {
                Ok(subscriber) => Some(subscriber),
                Err(error) => {
                    tracing::warn!(%error, "unreadable directory subscription");
                    None
                }
            })
            .collect())
    }

    async fn remove_directory(&self, connection_id: &str) -> Result<(), StoreError> {
        let (a, b) = futures::join!(
            self.delete(subscription_key_in(DIRECTORY_PK, connection_id)),
            self.delete(connection_key(connection_id))
        );
        a?;
        b?;
        Ok(())
    }
}
