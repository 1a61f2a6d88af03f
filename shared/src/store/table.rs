//! The table's definition, in one place: the store, the local harness and
//! (checked by a test) the SAM template all use it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use super::StoreError;
use super::dynamo::classify;

pub struct TableDefinition {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// Epoch seconds after which DynamoDB's TTL deletes an item.
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
}

pub const TABLE: TableDefinition = TableDefinition {
    partition_key: "pk",
    sort_key: "sk",
    ttl_attribute: "expires_at",
    billing_mode: "PAY_PER_REQUEST",
};

/// Creates the table (local runs and tests; in AWS the SAM template does).
/// TTL is switched on by the template; dynalite does not implement it.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(TABLE.billing_mode))
        .key_schema(key(TABLE.partition_key, KeyType::Hash).map_err(other)?)
        .key_schema(key(TABLE.sort_key, KeyType::Range).map_err(other)?)
        .attribute_definitions(string(TABLE.partition_key).map_err(other)?)
        .attribute_definitions(string(TABLE.sort_key).map_err(other)?)
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
