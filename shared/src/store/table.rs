//! The table's definition, in one place: the store, the local harness and
//! (checked by a test) the SAM template all use it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use super::StoreError;
use super::dynamo::classify;

pub struct TableDefinition {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// Epoch seconds after which DynamoDB's TTL deletes an item.
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
    /// The sparse index of sessions the reconciler must check.
    pub open_sessions: IndexDefinition,
}

/// A global secondary index whose partition key is a string and sort key a
/// number.
pub struct IndexDefinition {
    pub name: &'static str,
    /// `S`: one of [`OPEN_SHARDS`] shard names, so writes spread over
    /// partitions; present only while the session is open.
    pub partition_key: &'static str,
    /// `N`: epoch seconds of the session's next check.
    pub sort_key: &'static str,
    /// `ALL`: the reconciler reads each due session from the index and
    /// claims it on its version, without a second read.
    pub projection: &'static str,
}

/// Open sessions are spread over this many index partitions
/// (`OPEN#0`..`OPEN#3`); the reconciler queries each.
pub const OPEN_SHARDS: u32 = 4;

pub const TABLE: TableDefinition = TableDefinition {
    partition_key: "pk",
    sort_key: "sk",
    ttl_attribute: "expires_at",
    billing_mode: "PAY_PER_REQUEST",
    open_sessions: IndexDefinition {
        name: "open-sessions",
        partition_key: "open_shard",
        sort_key: "check_at",
        projection: "ALL",
    },
};

/// The shard names of the open-sessions index.
pub fn open_shards() -> impl Iterator<Item = String> {
    (0..OPEN_SHARDS).map(|shard| format!("OPEN#{shard}"))
}

/// Creates the table (local runs and tests; in AWS the SAM template does).
/// TTL is switched on by the template; dynalite does not implement it.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let definition = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let string = |name: &str| definition(name, ScalarAttributeType::S);
    let index = &TABLE.open_sessions;
    let open_sessions = GlobalSecondaryIndex::builder()
        .index_name(index.name)
        .key_schema(key(index.partition_key, KeyType::Hash).map_err(other)?)
        .key_schema(key(index.sort_key, KeyType::Range).map_err(other)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection))
                .build(),
        )
        .build()
        .map_err(other)?;
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(TABLE.billing_mode))
        .key_schema(key(TABLE.partition_key, KeyType::Hash).map_err(other)?)
        .key_schema(key(TABLE.sort_key, KeyType::Range).map_err(other)?)
        .attribute_definitions(string(TABLE.partition_key).map_err(other)?)
        .attribute_definitions(string(TABLE.sort_key).map_err(other)?)
        .attribute_definitions(string(index.partition_key).map_err(other)?)
        .attribute_definitions(definition(index.sort_key, ScalarAttributeType::N).map_err(other)?)
        .global_secondary_indexes(open_sessions)
        .send()
        .await
        .map_err(|e| classify(e).into_store_error())?;
    // dynalite creates tables asynchronously, like DynamoDB.
    for _ in 0..200 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| classify(e).into_store_error())?;
        let active = described
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active"
    )))
}

fn other(error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(error.to_string())
}
