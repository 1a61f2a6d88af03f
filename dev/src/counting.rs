//! What the local stack did, counted for the benchmark of push against
//! polling: the DynamoDB requests its clients made, by operation (an SDK
//! interceptor, so nothing in the product changes), and the requests the
//! development server handed to each function (in AWS, one Lambda
//! invocation each).
//!
//! The same counts, by the function that made them, check the code against
//! the permissions table (`Endpoint::needs`), which the template's IAM
//! policies are checked against in turn: a handler that starts calling
//! something its role may not shows up in the scenarios, not in AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warm_transfer_core::endpoint::Endpoint;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::{
    delete_item::{DeleteItemError, DeleteItemInput},
    get_item::GetItemInput,
    put_item::{PutItemError, PutItemInput},
    query::QueryInput,
    scan::ScanInput,
    update_item::{UpdateItemError, UpdateItemInput},
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Counts by name; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    pub fn add(&self, name: &str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(name.to_owned()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn get(&self, name: &str) -> u64 {
        self.snapshot().get(name).copied().unwrap_or(0)
    }
}

tokio::task_local! {
    /// The function whose code the current task runs, as its own Lambda
    /// would in AWS.
    static SERVING: Endpoint;
    /// The DynamoDB requests the current invocation made so far.
    static REQUESTS: Arc<AtomicU64>;
}

/// One handler run, as Lambda would bill it: the function, the wall time
/// from the event handed in to the answer, and the DynamoDB requests it
/// made on the way (counted by [`DynamoOps`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: &'static str,
    pub duration: Duration,
    pub dynamodb: u64,
}

/// Every invocation run through [`serving`] with this log; cheap to clone
/// and share.
#[derive(Debug, Clone, Default)]
pub struct Invocations(Arc<Mutex<Vec<Invocation>>>);

impl Invocations {
    fn push(&self, invocation: Invocation) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(invocation);
    }

    pub fn snapshot(&self) -> Vec<Invocation> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Runs `work` as `endpoint`'s function: the DynamoDB requests it makes are
/// also counted against that function ([`DynamoOps::outside_permissions`]).
pub async fn serving<F: Future>(endpoint: Endpoint, work: F) -> F::Output {
    SERVING.scope(endpoint, work).await
}

/// The same, and the run, its wall time and its DynamoDB requests go to
/// `log`. The development server runs each request so, and the local
/// stream and WebSocket API their handlers.
pub async fn serving_logged<F: Future>(
    endpoint: Endpoint,
    log: &Invocations,
    work: F,
) -> F::Output {
    let requests = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let output = serving(endpoint, REQUESTS.scope(requests.clone(), work)).await;
    log.push(Invocation {
        function: endpoint.function_name(),
        duration: started.elapsed(),
        dynamodb: requests.load(Ordering::Relaxed),
    });
    output
}

/// A Query on the open-sessions index, apart from one on the table: IAM
/// grants them on different resources.
const QUERY_INDEX: &str = "Query(index)";

/// Counts each DynamoDB request a client sends, by operation (`.0`), and
/// by the function making it (`.1`, keyed `function operation`) when it
/// runs within [`serving`]; each write by the kind of item it writes
/// (`.2`, keyed `kind`, and `by function kind` within [`serving`]), and
/// each write whose condition failed (keyed `refused kind`).
#[derive(Debug, Clone, Default)]
pub struct DynamoOps(pub Counts, pub Counts, pub Counts);

/// The kind of item a write names, carried from before the request to
/// after its answer.
#[derive(Debug, Clone)]
struct WriteKind(String);

impl Storable for WriteKind {
    type Storer = StoreReplace<Self>;
}

/// The kind of item a key names: the sort key up to its first `#`
/// (`SESSION`, `EVENT`, `END`, `SUB`, `AGENT`, ...), or the partition
/// key's when the sort key says nothing (a per-minute allowance).
pub fn item_kind(key: &std::collections::HashMap<String, AttributeValue>) -> String {
    let prefix = |name: &str| {
        key.get(name)
            .and_then(|v| v.as_s().ok())
            .map(|text| text.split('#').next().unwrap_or_default().to_owned())
    };
    match (prefix("pk"), prefix("sk")) {
        (Some(pk), Some(sk)) if sk == "MINUTE" => pk,
        (_, Some(sk)) => sk,
        (Some(pk), None) => pk,
        (None, None) => "unknown".to_owned(),
    }
}

/// Whether a write's answer was "your condition did not hold".
pub fn condition_failed(
    error: &aws_smithy_runtime_api::client::interceptors::context::Error,
) -> bool {
    let code = if let Some(e) = error.downcast_ref::<PutItemError>() {
        e.code()
    } else if let Some(e) = error.downcast_ref::<UpdateItemError>() {
        e.code()
    } else if let Some(e) = error.downcast_ref::<DeleteItemError>() {
        e.code()
    } else {
        None
    };
    code == Some("ConditionalCheckFailedException")
}

impl Intercept for DynamoOps {
    fn name(&self) -> &'static str {
        "DynamoOps"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let input = context.input();
        let written = if let Some(put) = input.downcast_ref::<PutItemInput>() {
            put.item().map(item_kind)
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            update.key().map(item_kind)
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            delete.key().map(item_kind)
        } else {
            None
        };
        if let Some(kind) = written {
            self.2.add(&kind);
            if let Ok(endpoint) = SERVING.try_with(|e| *e) {
                self.2
                    .add(&format!("by {} {kind}", endpoint.function_name()));
            }
            cfg.interceptor_state().store_put(WriteKind(kind));
        }
        let name = if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            if query.index_name().is_some() {
                QUERY_INDEX
            } else {
                "Query"
            }
        } else if input.downcast_ref::<ScanInput>().is_some() {
            "Scan"
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            "DeleteItem"
        } else {
            "other"
        };
        // Both Query kinds are one operation for the benchmark's counts.
        self.0.add(if name == QUERY_INDEX { "Query" } else { name });
        if let Ok(endpoint) = SERVING.try_with(|e| *e) {
            self.1.add(&format!("{} {name}", endpoint.function_name()));
        }
        let _ = REQUESTS.try_with(|requests| requests.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let refused = context
            .output_or_error()
            .and_then(|answer| answer.err())
            .and_then(|error| error.as_operation_error())
            .is_some_and(condition_failed);
        if let (true, Some(WriteKind(kind))) = (refused, cfg.load::<WriteKind>()) {
            self.2.add(&format!("refused {kind}"));
        }
        Ok(())
    }
}

impl DynamoOps {
    /// Each request a function made that its row of the permissions table
    /// (`Endpoint::needs`) does not name, as `function operation`; empty
    /// when the code stayed within what its role is granted.
    pub fn outside_permissions(&self) -> Vec<String> {
        let made: BTreeSet<String> = self.1.snapshot().into_keys().collect();
        made.into_iter()
            .filter(|key| {
                let (function, operation) = key.split_once(' ').unwrap_or((key, ""));
                let Some(endpoint) = Endpoint::ALL
                    .into_iter()
                    .find(|e| e.function_name() == function)
                else {
                    return true;
                };
                let needs = endpoint.needs();
                let allowed = if operation == QUERY_INDEX {
                    needs.open_sessions_index
                } else {
                    needs.table.iter().any(|action| action.name() == operation)
                };
                !allowed
            })
            .collect()
    }

    /// The functions that made at least one request, by name.
    pub fn functions_seen(&self) -> BTreeSet<String> {
        self.1
            .snapshot()
            .into_keys()
            .filter_map(|key| key.split_once(' ').map(|(f, _)| f.to_owned()))
            .collect()
    }

    /// `client` with this counter on every request.
    pub fn wrap(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        with_interceptor(client, self.clone())
    }
}

/// `client` with `interceptor` on every request: how the development
/// tools watch what the product's clients send, the product unchanged.
pub fn with_interceptor(
    client: &aws_sdk_dynamodb::Client,
    interceptor: impl Intercept + 'static,
) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build(),
    )
}
