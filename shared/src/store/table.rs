//! The table's definition, in one place: the store, the local harness and
//! (checked by a test) the SAM template all use it. Creating it is the
//! template's job in AWS, and the development harness's locally (`dev/`).

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
