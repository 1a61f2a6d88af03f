//! The DynamoDB adapter of [`CallStore`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::item::{self, n, s};
use super::{CallStore, Command, StoreError};
use crate::config::Config;
use crate::domain::{
    CallSession, ConferenceEvent, HistoryEvent, LegObservation, Observation, Observed, Presence,
    RoomParticipant, TransferDecision,
};
use crate::ids::{CallSid, PhoneNumber};

/// How often `update` re-reads and re-applies after losing a race.
const MAX_UPDATE_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    ttl: Duration,
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

fn store_error<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(error).into_store_error()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            ttl,
        }
    }

    /// The SDK client, built once per cold start. With a `DYNAMODB_ENDPOINT`
    /// (dynalite locally) it uses fixed dummy credentials and us-east-1, so no
    /// AWS account is needed.
    pub async fn client_from_config(config: &Config) -> Client {
        use aws_sdk_dynamodb::config::{Credentials, Region};
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_secs(3))
            .build();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(endpoint) = &config.dynamodb_endpoint {
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

    fn expires_at(&self, now: OffsetDateTime) -> i64 {
        now.unix_timestamp() + self.ttl.as_secs() as i64
    }

    fn key(id: &CallSid) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(item::pk(id))),
            ("sk".to_owned(), s(item::SESSION_SK)),
        ])
    }

    async fn put_session(
        &self,
        session: &CallSession,
        expires_at: i64,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<(), Failure> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::session_item(session, expires_at)))
            .condition_expression(condition);
        if !values.is_empty() {
            request = request.set_expression_attribute_values(Some(values));
        }
        request.send().await.map(|_| ()).map_err(classify)
    }

    async fn read(&self, id: &CallSid) -> Result<Option<(CallSession, i64)>, StoreError> {
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
                let expires_at = found
                    .get("expires_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| self.expires_at(OffsetDateTime::now_utc()));
                Ok(Some((item::session_from_item(found)?, expires_at)))
            }
        }
    }

    /// One conditional UpdateItem: the observation is written only if it
    /// moves the leg (or presence) forward, the same rule as
    /// [`LegObservation::supersedes`], checked by DynamoDB itself.
    fn observation_update(observation: &Observation) -> Option<ObservationUpdate> {
        let mut update = ObservationUpdate::default();
        match observation {
            Observation::AgentLeg(leg) => update.leg(item::AGENT, leg),
            Observation::CustomerLeg(leg) => update.leg(item::CUSTOMER, leg),
            Observation::TargetLeg {
                attempt,
                observation,
            } => {
                update.leg(item::TARGET, observation);
                update.condition("t_attempt = :attempt");
                update.value(":attempt", n(attempt));
            }
            Observation::Conference {
                event, participant, ..
            } => {
                let presence = match event {
                    ConferenceEvent::Start => return None,
                    ConferenceEvent::End => {
                        update.set("room_ended = :true");
                        update.condition("room_ended = :false");
                        update.value(":true", AttributeValue::Bool(true));
                        update.value(":false", AttributeValue::Bool(false));
                        return Some(update);
                    }
                    ConferenceEvent::Join => Presence::Joined,
                    ConferenceEvent::Leave => Presence::Left,
                };
                let attribute = match (*participant)? {
                    RoomParticipant::Customer => "customer_presence",
                    RoomParticipant::FirstAgent => "first_agent_presence",
                    RoomParticipant::SecondAgent { attempt } => {
                        update.condition("t_attempt = :attempt");
                        update.value(":attempt", n(attempt));
                        "t_presence"
                    }
                };
                update.set(&format!("{attribute} = :presence"));
                update.condition(&format!(
                    "(attribute_not_exists({attribute}) OR {attribute} < :presence)"
                ));
                update.value(":presence", n(presence.as_u8()));
            }
        }
        Some(update)
    }
}

/// The pieces of an UpdateItem built from an observation.
#[derive(Default)]
struct ObservationUpdate {
    set: Vec<String>,
    remove: Vec<String>,
    conditions: Vec<String>,
    values: HashMap<String, AttributeValue>,
}

impl ObservationUpdate {
    fn set(&mut self, clause: &str) {
        self.set.push(clause.to_owned());
    }

    fn condition(&mut self, clause: &str) {
        self.conditions.push(clause.to_owned());
    }

    fn value(&mut self, name: &str, value: AttributeValue) {
        self.values.insert(name.to_owned(), value);
    }

    fn leg(&mut self, prefix: &str, leg: &LegObservation) {
        for (attribute, value) in item::leg_attributes(prefix, leg) {
            let placeholder = format!(":{attribute}");
            self.set(&format!("{attribute} = {placeholder}"));
            self.value(&placeholder, value);
        }
        if leg.sequence.is_none() {
            self.remove.push(format!("{prefix}_seq"));
        }
        // First report of the leg, or the same call moving to a higher rank
        // with a newer sequence number (when both have one).
        let mut forward =
            format!("{prefix}_sid = :{prefix}_sid AND {prefix}_rank < :{prefix}_rank");
        if leg.sequence.is_some() {
            forward.push_str(&format!(
                " AND (attribute_not_exists({prefix}_seq) OR {prefix}_seq < :{prefix}_seq)"
            ));
        }
        self.condition(&format!(
            "(attribute_not_exists({prefix}_sid) OR ({forward}))"
        ));
    }

    fn update_expression(&self) -> String {
        let mut expression = format!("SET {}, version = version + :one", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }

    fn condition_expression(&self) -> String {
        let mut all = vec!["attribute_exists(pk)".to_owned()];
        all.extend(self.conditions.iter().cloned());
        all.join(" AND ")
    }
}

impl DynamoStore {
    /// The conditional write of a new transfer attempt (see `request_transfer`).
    async fn record_transfer(
        &self,
        id: &CallSid,
        target: &PhoneNumber,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<CallSession, Failure> {
        let mut set = vec![
            "t_attempt = if_not_exists(t_attempt, :zero) + :one",
            "t_target = :target",
            "t_room = :room",
            "t_requested_at = :now",
            "t_presence = :zero",
            "version = version + :one",
        ];
        let mut remove = vec![
            "t_outcome",
            "t_reason",
            "target_sid",
            "target_status",
            "target_rank",
            "target_seq",
            "target_at",
        ];
        let mut condition = vec![
            "attribute_exists(pk)",
            // Connected: the customer's leg is in progress (so not over).
            "customer_status = :in_progress",
            // Not ended by the room closing on the customer...
            "NOT (room_ended = :true AND customer_presence > :zero)",
            // ...nor by the first agent hanging up a plain bridged call.
            "(attribute_not_exists(agent_rank) OR agent_rank < :final OR customer_presence > :zero OR customer_moved = :true)",
            // No transfer yet, or the last one is over without a handover.
            "(attribute_not_exists(t_attempt) OR t_outcome IN (:failed, :cancelled) \
             OR (attribute_not_exists(t_outcome) AND target_rank = :final))",
        ];
        let mut values: HashMap<String, AttributeValue> = [
            (":zero", n(0)),
            (":one", n(1)),
            (":final", n(crate::domain::LegStatus::FINAL_RANK)),
            (":target", s(target.as_str())),
            (":room", s(id.room().as_str())),
            (":now", s(item::time_text(now))),
            (
                ":in_progress",
                s(crate::domain::LegStatus::InProgress.as_str()),
            ),
            (":true", AttributeValue::Bool(true)),
            (":failed", s("failed")),
            (":cancelled", s("cancelled")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        match idempotency_key {
            Some(key) => {
                set.push("t_key = :key");
                // The same key again is answered from the stored transfer.
                condition.push("(attribute_not_exists(t_key) OR t_key <> :key)");
                values.insert(":key".to_owned(), s(key));
            }
            None => remove.push("t_key"),
        }
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression(condition.join(" AND "))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        let item = output
            .attributes()
            .ok_or_else(|| Failure::Store(StoreError::Corrupt("no attributes returned".into())))?;
        item::session_from_item(item).map_err(Failure::Store)
    }
}

#[async_trait]
impl CallStore for DynamoStore {
    async fn create_session(&self, session: &CallSession) -> Result<(), StoreError> {
        let expires_at = self.expires_at(session.created_at);
        self.put_session(
            session,
            expires_at,
            "attribute_not_exists(pk)",
            HashMap::new(),
        )
        .await
        .map_err(|failure| match failure {
            Failure::ConditionFailed => StoreError::AlreadyExists,
            Failure::Store(error) => error,
        })
    }

    async fn get_session(&self, id: &CallSid) -> Result<Option<CallSession>, StoreError> {
        Ok(self.read(id).await?.map(|(session, _)| session))
    }

    async fn update(&self, id: &CallSid, command: &Command<'_>) -> Result<CallSession, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let (current, expires_at) = self.read(id).await?.ok_or(StoreError::NotFound)?;
            let mut next = current.clone();
            command(&mut next)?;
            if next == current {
                return Ok(current);
            }
            next.version = current.version + 1;
            let expected = HashMap::from([(":version".to_owned(), n(current.version))]);
            match self
                .put_session(&next, expires_at, "version = :version", expected)
                .await
            {
                Ok(()) => return Ok(next),
                // Someone wrote in between: read again and re-apply.
                Err(Failure::ConditionFailed) => continue,
                Err(Failure::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn observe(
        &self,
        id: &CallSid,
        observation: Observation,
    ) -> Result<(Observed, Option<CallSession>), StoreError> {
        if let Observation::AgentLeg(leg) = &observation {
            if leg.call_sid != *id {
                return Ok((Observed::Ignored, None));
            }
        }
        let Some(update) = Self::observation_update(&observation) else {
            return Ok((Observed::Ignored, None));
        };
        let mut values = update.values.clone();
        values.insert(":one".to_owned(), n(1));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .update_expression(update.update_expression())
            .condition_expression(update.condition_expression())
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let session = output
                    .attributes()
                    .map(item::session_from_item)
                    .transpose()?;
                Ok((Observed::Applied, session))
            }
            // Stale, duplicate, about another attempt, or an unknown call.
            Err(error) => match classify(error) {
                Failure::ConditionFailed => Ok((Observed::Ignored, None)),
                Failure::Store(error) => Err(error),
            },
        }
    }

    async fn append_event(&self, id: &CallSid, event: &HistoryEvent) -> Result<(), StoreError> {
        let expires_at = self.expires_at(OffsetDateTime::now_utc());
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::event_item(id, event, expires_at)))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// One round trip in the common case: a single conditional UpdateItem
    /// records the new attempt when the customer is connected, the call has
    /// not ended and no transfer is active or handed over (the domain's rule,
    /// written as DynamoDB's condition). Anything else (a repeated
    /// idempotency key, a refusal) falls back to the domain via `update`.
    async fn request_transfer(
        &self,
        id: &CallSid,
        target: PhoneNumber,
        idempotency_key: Option<String>,
        now: OffsetDateTime,
    ) -> Result<(TransferDecision, CallSession), StoreError> {
        match self
            .record_transfer(id, &target, idempotency_key.as_deref(), now)
            .await
        {
            Ok(session) => return Ok((TransferDecision::New, session)),
            Err(Failure::ConditionFailed) => {}
            Err(Failure::Store(error)) => return Err(error),
        }
        super::transfer_through_domain(self, id, target, idempotency_key, now).await
    }

    async fn list_events(&self, id: &CallSid) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut events = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(item::pk(id)))
                .expression_attribute_values(":prefix", s(item::EVENT_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for found in output.items() {
                events.push(item::event_from_item(found)?);
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(events),
            }
        }
    }
}
