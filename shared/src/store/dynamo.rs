//! The DynamoDB adapter of [`CallStore`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::item::{self, ItemMeta, n, s};
use super::table::{TABLE, open_shards};
use super::{CallStore, Command, DueSession, HistoryCursor, HistoryPage, QueuePlace, StoreError};
use crate::config::Config;
use crate::domain::{CallSession, HistoryEvent, TeamName};
use crate::ids::CallSid;

/// How often `update` re-reads and re-applies after losing a race.
const MAX_UPDATE_ATTEMPTS: usize = 8;
/// One DynamoDB request's attempt, and the request with the SDK's retries.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// Each session write carries a token of its own, and the item keeps the
/// tokens of its last few writes. When an attempt's answer is lost (it timed
/// out after DynamoDB applied it) the SDK sends the write again, and that
/// retry fails its condition against our own first write, or against a
/// callback's write made on top of it meanwhile: finding our token among
/// the recent ones tells that from another writer having come first.
const WRITE_IDS: &str = "write_ids";
/// Enough for the writes that can land between an attempt and its retry.
const RECENT_WRITES: usize = 16;

fn new_write_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Sessions: a working record, gone soon after the call.
    ttl: Duration,
    /// History entries: the audit trail, kept far longer.
    history_ttl: Duration,
}

/// What went wrong with a request, before the caller decides what it means.
pub(crate) enum Failure {
    ConditionFailed,
    Store(StoreError),
}

impl Failure {
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            Failure::ConditionFailed => StoreError::Conflict,
            Failure::Store(error) => error,
        }
    }
}

/// Sorts an SDK error into the store's vocabulary.
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or_default();
            let server_side = context.raw().status().is_server_error();
            match code {
                "ConditionalCheckFailedException" => Failure::ConditionFailed,
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded" => Failure::Store(StoreError::Throttled),
                // A 5xx is DynamoDB's trouble, whatever (if any) code it names.
                _ if server_side => Failure::Store(StoreError::Unavailable(format!(
                    "HTTP {} {code}: {}",
                    context.raw().status().as_u16(),
                    context.err().message().unwrap_or_default()
                ))),
                "InternalServerError" | "ServiceUnavailable" => Failure::Store(
                    StoreError::Unavailable(context.err().message().unwrap_or(code).to_owned()),
                ),
                _ => Failure::Store(StoreError::Other(format!(
                    "{code}: {}",
                    context.err().message().unwrap_or_default()
                ))),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            Failure::Store(StoreError::Unavailable(
                std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| error.to_string()),
            ))
        }
        _ => Failure::Store(StoreError::Other(error.to_string())),
    }
}

/// Every item of a call whose sort key starts with `prefix`, in sort key
/// order, read consistently, page after page.
pub(crate) async fn query_prefix(
    client: &Client,
    table: &str,
    call: &CallSid,
    prefix: &str,
) -> Result<Vec<item::Item>, StoreError> {
    query_partition(client, table, &item::pk(call), prefix).await
}

/// Every item of partition `pk` whose sort key starts with `prefix`.
pub(crate) async fn query_partition(
    client: &Client,
    table: &str,
    pk: &str,
    prefix: &str,
) -> Result<Vec<item::Item>, StoreError> {
    let mut items = Vec::new();
    let mut start: Option<item::Item> = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(store_error)?;
        items.extend_from_slice(output.items());
        match output.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(items),
        }
    }
}

/// A conditional write's outcome: whether its condition held and it was
/// written (false: someone else's write, or a limit, came first).
fn condition_met<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result.map_err(classify) {
        Ok(_) => Ok(true),
        Err(Failure::ConditionFailed) => Ok(false),
        Err(Failure::Store(error)) => Err(error),
    }
}

fn store_error<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(error).into_store_error()
}

impl DynamoStore {
    /// One shard of the open-sessions index: due sessions, oldest first.
    async fn due_in_shard(
        &self,
        shard: String,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        let index = &TABLE.open_sessions;
        let mut due = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = i32::try_from(limit - due.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index.name)
                .key_condition_expression("#shard = :shard AND #check_at <= :now")
                .expression_attribute_names("#shard", index.partition_key)
                .expression_attribute_names("#check_at", index.sort_key)
                .expression_attribute_values(":shard", s(&shard))
                .expression_attribute_values(":now", n(now.unix_timestamp()))
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for found in output.items() {
                let check_at = found
                    .get(index.sort_key)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt(index.sort_key.to_owned()))?;
                due.push(DueSession {
                    session: item::session_from_item(found)?,
                    check_at,
                });
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() && due.len() < limit => start = Some(key.clone()),
                _ => return Ok(due),
            }
        }
    }

    /// A store whose sessions and history entries both live `ttl`.
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            ttl,
            history_ttl: ttl,
        }
    }

    /// The store a function uses: the table, and each kind of item's
    /// lifetime, from its configuration.
    pub fn from_config(client: Client, config: &Config) -> Self {
        Self::new(client, config.table_name.clone(), config.session_ttl)
            .with_history_ttl(config.history_ttl)
    }

    /// History entries live `ttl` after they are written.
    pub fn with_history_ttl(mut self, ttl: Duration) -> Self {
        self.history_ttl = ttl;
        self
    }

    /// The SDK client, built once per cold start. With a `DYNAMODB_ENDPOINT`
    /// (dynalite locally) it uses fixed dummy credentials and us-east-1, so no
    /// AWS account is needed.
    pub async fn client_from_config(config: &Config) -> Client {
        Self::client_for(config.dynamodb_endpoint.as_ref()).await
    }

    /// The SDK client for DynamoDB in AWS, or for a local endpoint.
    pub async fn client_for(endpoint: Option<&url::Url>) -> Client {
        Self::client_over(endpoint, crate::https::aws_http_client()).await
    }

    /// The same over `http`, an HTTP client another AWS client of the
    /// process uses too (their connections and TLS set-up shared).
    pub async fn client_over(
        endpoint: Option<&url::Url>,
        http: aws_sdk_dynamodb::config::SharedHttpClient,
    ) -> Client {
        use aws_sdk_dynamodb::config::{Credentials, Region};
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = crate::https::aws_config_loader_over(http).timeout_config(timeouts);
        if let Some(endpoint) = endpoint {
            loader = loader
                .endpoint_url(endpoint.as_str().trim_end_matches('/'))
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
        Client::new(&loader.load().await)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    fn expires_at(&self, now: OffsetDateTime) -> i64 {
        now.unix_timestamp() + self.ttl.as_secs() as i64
    }

    fn key(id: &CallSid) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(item::pk(id))),
            ("sk".to_owned(), s(item::SESSION_SK)),
        ])
    }

    /// The session item to write, carrying the tokens of its recent writes.
    fn session_write(session: &CallSession, meta: ItemMeta, write_ids: &[String]) -> item::Item {
        let mut written = item::session_item(session, meta, OffsetDateTime::now_utc());
        written.insert(
            WRITE_IDS.to_owned(),
            AttributeValue::L(write_ids.iter().map(s).collect()),
        );
        written
    }

    async fn put_session(
        &self,
        written: &item::Item,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<(), Failure> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(written.clone()))
            .condition_expression(condition);
        if !values.is_empty() {
            request = request.set_expression_attribute_values(Some(values));
        }
        request.send().await.map_err(classify)?;
        Ok(())
    }

    async fn read(&self, id: &CallSid) -> Result<Option<(CallSession, ItemMeta)>, StoreError> {
        Ok(self
            .read_written(id)
            .await?
            .map(|(session, meta, _)| (session, meta)))
    }

    /// The session, its item's metadata and the tokens of its recent
    /// writes, oldest first.
    async fn read_written(
        &self,
        id: &CallSid,
    ) -> Result<Option<(CallSession, ItemMeta, Vec<String>)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match output.item() {
            None => Ok(None),
            Some(found) => {
                let meta = ItemMeta::read(found).unwrap_or(ItemMeta {
                    expires_at: self.expires_at(OffsetDateTime::now_utc()),
                    check_lease: None,
                });
                let written = found
                    .get(WRITE_IDS)
                    .and_then(|v| v.as_l().ok())
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| id.as_s().ok().cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some((item::session_from_item(found)?, meta, written)))
            }
        }
    }
}

#[async_trait]
impl CallStore for DynamoStore {
    async fn create_session(&self, session: &CallSession) -> Result<(), StoreError> {
        let meta = ItemMeta {
            expires_at: self.expires_at(session.created_at),
            check_lease: None,
        };
        let write_id = new_write_id();
        let item = Self::session_write(session, meta, std::slice::from_ref(&write_id));
        match self
            .put_session(&item, "attribute_not_exists(pk)", HashMap::new())
            .await
        {
            Ok(()) => Ok(()),
            // Our own first attempt may be what is there.
            Err(Failure::ConditionFailed) => match self.read_written(&session.id).await? {
                // Written after all.
                Some((_, _, written)) if written.contains(&write_id) => Ok(()),
                _ => Err(StoreError::AlreadyExists),
            },
            Err(Failure::Store(error)) => Err(error),
        }
    }

    async fn get_session(&self, id: &CallSid) -> Result<Option<CallSession>, StoreError> {
        Ok(self.read(id).await?.map(|(session, _)| session))
    }

    async fn update(&self, id: &CallSid, command: &Command<'_>) -> Result<CallSession, StoreError> {
        // The token of the last attempt whose condition failed.
        let mut refused: Option<String> = None;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            // Another read and write could outlast the invocation: stop
            // while there is time to answer (the caller retries).
            if crate::time_budget::too_late_for(2 * ATTEMPT_TIMEOUT) {
                return Err(StoreError::Unavailable(
                    "out of time for another attempt".into(),
                ));
            }
            let (current, meta, written) =
                self.read_written(id).await?.ok_or(StoreError::NotFound)?;
            if let Some(write_id) = refused.take() {
                // It had landed: its answer was lost and the SDK's retry
                // met our own write. Done, and not to be applied twice; it
                // is in the table's stream like any write.
                if written.contains(&write_id) {
                    return Ok(current);
                }
            }
            let mut next = current.clone();
            command(&mut next)?;
            if next == current {
                return Ok(current);
            }
            next.version = current.version + 1;
            let expected = HashMap::from([(":version".to_owned(), n(current.version))]);
            let write_id = new_write_id();
            let mut write_ids = written;
            write_ids.push(write_id.clone());
            let keep = write_ids.len().saturating_sub(RECENT_WRITES);
            write_ids.drain(..keep);
            let item = Self::session_write(&next, meta, &write_ids);
            match self
                .put_session(&item, "version = :version", expected)
                .await
            {
                Ok(()) => return Ok(next),
                // Someone wrote in between (or our own attempt did): read
                // again, then re-apply.
                Err(Failure::ConditionFailed) => {
                    crate::metrics::count(crate::metrics::Metric::StoreConflicts, None);
                    refused = Some(write_id);
                    continue;
                }
                Err(Failure::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn due_sessions(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let queries = open_shards().map(|shard| self.due_in_shard(shard, now, limit));
        let mut due = Vec::new();
        for found in futures::future::join_all(queries).await {
            due.extend(found?);
        }
        due.sort_by_key(|d| d.check_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_check(
        &self,
        due: &DueSession,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let lease = lease_until.unix_timestamp();
        let next = due.due_again(now, lease_until);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&due.session.id)))
            .update_expression("SET #check_at = :next, #lease = :lease")
            .condition_expression(
                "version = :version AND #check_at = :seen \
                 AND (attribute_not_exists(#lease) OR #lease <= :now)",
            )
            .expression_attribute_names("#check_at", item::CHECK_AT)
            .expression_attribute_names("#lease", item::CHECK_LEASE)
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":lease", n(lease))
            .expression_attribute_values(":version", n(due.session.version))
            .expression_attribute_values(":seen", n(due.check_at))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        condition_met(result)
    }

    async fn claim_leg_end(
        &self,
        call: &CallSid,
        leg: &CallSid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let at = now.unix_timestamp();
        let stale = at - super::LEG_END_CLAIM.as_secs() as i64;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(item::pk(call)))
            .item("sk", s(format!("{}{leg}", item::LEG_END_PREFIX)))
            .item("claimed_at", n(at))
            .item("expires_at", n(self.expires_at(now)))
            .condition_expression("attribute_not_exists(pk) OR claimed_at < :stale")
            .expression_attribute_values(":stale", n(stale))
            .send()
            .await;
        condition_met(result)
    }

    async fn release_leg_end(&self, call: &CallSid, leg: &CallSid) -> Result<(), StoreError> {
        // Claimed at the epoch: stale to every later claim.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(item::pk(call)))
            .item("sk", s(format!("{}{leg}", item::LEG_END_PREFIX)))
            .item("claimed_at", n(0))
            .item("expires_at", n(self.expires_at(OffsetDateTime::now_utc())))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn still_waiting(&self, team: &TeamName, place: &QueuePlace) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("{}{team}", item::QUEUE_PREFIX)))
            .item("sk", s(item::wait_sort_key(place.since, &place.call)))
            .item("seen", n(place.seen.unix_timestamp()))
            .item(
                "expires_at",
                n((place.until + time::Duration::hours(1)).unix_timestamp()),
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn callers_ahead(
        &self,
        team: &TeamName,
        place: &QueuePlace,
        now: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        // One page holds a team's queue (an entry is about 80 bytes); a
        // queue longer than a page counts as what the page holds.
        let counted = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :mine")
            .filter_expression("seen >= :recent")
            .expression_attribute_values(":pk", s(format!("{}{team}", item::QUEUE_PREFIX)))
            .expression_attribute_values(":first", s(item::WAIT_PREFIX))
            .expression_attribute_values(":mine", s(item::wait_sort_key(place.since, &place.call)))
            .expression_attribute_values(
                ":recent",
                n((now - super::QUEUE_SEEN_WITHIN).unix_timestamp()),
            )
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map_err(store_error)?;
        // BETWEEN includes the caller's own entry when it is recent.
        let mine = u32::from(place.seen >= now - super::QUEUE_SEEN_WITHIN);
        Ok((counted.count().max(0) as u32).saturating_sub(mine))
    }

    async fn take_allowance(&self, who: &str, minute: i64, limit: u32) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{}{who}", item::ALLOWANCE_PREFIX)))
            .key("sk", s(format!("MINUTE#{minute}")))
            .update_expression("ADD taken :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(taken) OR taken < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            // Gone with DynamoDB's TTL sweep a while after its minute.
            .expression_attribute_values(":expires", n(minute + 3600))
            .send()
            .await;
        condition_met(result)
    }

    async fn append_event(&self, id: &CallSid, event: &HistoryEvent) -> Result<(), StoreError> {
        let expires_at =
            OffsetDateTime::now_utc().unix_timestamp() + self.history_ttl.as_secs() as i64;
        let written = item::event_item(id, event, expires_at);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(written.clone()))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn history_page(
        &self,
        id: &CallSid,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        // Newest first from the cursor (exclusive), at most `limit` items.
        let start = before.map(|cursor| {
            let mut key = Self::key(id);
            key.insert("sk".into(), s(cursor.as_str()));
            key
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(item::pk(id)))
            .expression_attribute_values(":prefix", s(item::EVENT_PREFIX))
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let mut events = output
            .items()
            .iter()
            .map(item::event_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        let more = output.last_evaluated_key().is_some_and(|k| !k.is_empty());
        let earlier =
            output
                .items()
                .last()
                .filter(|_| more)
                .and_then(|oldest| match oldest.get("sk") {
                    Some(AttributeValue::S(sk)) => HistoryCursor::parse(sk),
                    _ => None,
                });
        Ok(HistoryPage { events, earlier })
    }

    async fn list_events(&self, id: &CallSid) -> Result<Vec<HistoryEvent>, StoreError> {
        query_prefix(&self.client, &self.table, id, item::EVENT_PREFIX)
            .await?
            .iter()
            .map(item::event_from_item)
            .collect()
    }
}
