//! The capacity DynamoDB would bill for the local stack's requests, for the
//! cost benchmark: an SDK interceptor (nothing in the product changes) that
//! asks each request's `ConsumedCapacity` (`ReturnConsumedCapacity =
//! INDEXES`) and adds up what the table answers. dynalite works it out from
//! the items' sizes as DynamoDB does (a read 1 unit per 4 KB, strongly
//! consistent; a write 1 unit per 1 KB of the larger of the old and new
//! item). Two things it does not report are worked out here from the
//! requests: the writes to the open-sessions index (projection ALL, so
//! each write of a session that is in the index, or enters or leaves it,
//! is written there too), and conditional writes that failed, which
//! DynamoDB bills though they change nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::Value;

/// A request as sent, for the hook that reads its answer (the request
/// itself is gone by then): its operation and JSON body.
#[derive(Debug, Clone)]
struct Sent {
    operation: String,
    body: Option<Value>,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// The attributes that put a session in the open-sessions index
/// (`shared/src/store/item.rs`).
const INDEX_KEYS: [&str; 2] = ["open_shard", "check_at"];

/// Capacity units billed, as DynamoDB would count them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Billed {
    /// Read request units, as the table reported them.
    pub read_units: f64,
    /// Write request units on the table, as reported.
    pub write_units: f64,
    /// Write request units on the open-sessions index, worked out from the
    /// items written.
    pub index_write_units: f64,
    /// Conditional writes refused, and the units they are billed: the size
    /// of the item the request carried (a `PutItem`), at least 1.
    pub failed_writes: u64,
    pub failed_write_units: f64,
    /// Those refusals by operation and kind of item (its sort key up to
    /// the first `#`): which writes meet a condition they lose.
    pub refused: BTreeMap<String, u64>,
    /// Requests answered without a `ConsumedCapacity`: not billed here.
    pub unreported: u64,
    /// Requests refused for another reason than a condition (not billed).
    pub errors: u64,
    /// Session writes other than `PutItem` (the reconciler's `UpdateItem`):
    /// their index writes are not worked out.
    pub index_unknown: u64,
    /// The largest item written, in bytes (DynamoDB's sizing).
    pub largest_item: u64,
    /// The most read units one read was billed.
    pub largest_read: f64,
}

impl Billed {
    pub fn total_write_units(&self) -> f64 {
        self.write_units + self.index_write_units + self.failed_write_units
    }
}

/// What the index holds of an item: its index key and size.
type IndexEntry = (Vec<String>, u64);

/// Each item written with `PutItem`, by key (`pk`, `sk`): its index entry, if any.
type Written = HashMap<(String, String), Option<IndexEntry>>;

/// The interceptor; off until [`CapacityMeter::enable`], so other tests'
/// requests go out unchanged.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    on: Arc<AtomicBool>,
    billed: Arc<Mutex<Billed>>,
    index: Arc<Mutex<Written>>,
}

impl CapacityMeter {
    pub fn enable(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> Billed {
        self.billed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn reset(&self) {
        *self.billed.lock().unwrap_or_else(|p| p.into_inner()) = Billed::default();
    }

    /// `client` with this meter on every request.
    pub fn wrap(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        crate::counting::with_interceptor(client, self.clone())
    }

    fn record(&self, operation: &str, body: Option<&Value>, outcome: Outcome) {
        let mut billed = self.billed.lock().unwrap_or_else(|p| p.into_inner());
        let item = body.and_then(|b| b.get("Item"));
        if let Some(item) = item {
            billed.largest_item = billed.largest_item.max(item_size(item));
        }
        let write = matches!(operation, "PutItem" | "UpdateItem" | "DeleteItem");
        match outcome {
            Outcome::Error => billed.errors += 1,
            Outcome::Refused => {
                if write {
                    let kind = body
                        .and_then(|b| b.get("Item").or_else(|| b.get("Key")))
                        .and_then(|i| i.get("sk")?.get("S")?.as_str())
                        .map_or("", |sk| sk.split('#').next().unwrap_or(sk));
                    *billed
                        .refused
                        .entry(format!("{operation} {kind}"))
                        .or_default() += 1;
                    billed.failed_writes += 1;
                    billed.failed_write_units += item.map_or(1.0, |i| write_units(item_size(i)));
                }
            }
            Outcome::Unreported => billed.unreported += 1,
            Outcome::Billed(units) => {
                if write {
                    billed.write_units += units;
                } else {
                    billed.read_units += units;
                }
                if !write {
                    billed.largest_read = billed.largest_read.max(units);
                }
                let key = body.and_then(|b| item_key(b.get("Item").or_else(|| b.get("Key"))?));
                match (operation, key) {
                    ("PutItem", Some(key)) => {
                        let new = item.and_then(index_entry);
                        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
                        let old = index.insert(key, new.clone()).flatten();
                        billed.index_write_units += index_write_units(old.as_ref(), new.as_ref());
                    }
                    ("UpdateItem" | "DeleteItem", Some(key)) => {
                        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
                        if index.get(&key).is_some_and(Option::is_some) {
                            billed.index_unknown += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

enum Outcome {
    Billed(f64),
    Unreported,
    /// A condition was not met: billed as a write.
    Refused,
    Error,
}

/// Write units for an item of `size` bytes: 1 per KB, at least 1.
pub fn write_units(size: u64) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// The index's writes when an item goes from `old` to `new`: an entry kept
/// under the same index key is one write the size of the larger; a moved
/// key is a delete and a put; an entry added or taken out, one write.
pub fn index_write_units(old: Option<&IndexEntry>, new: Option<&IndexEntry>) -> f64 {
    match (old, new) {
        (Some((old_key, old_size)), Some((new_key, new_size))) => {
            if old_key == new_key {
                write_units((*old_size).max(*new_size))
            } else {
                write_units(*old_size) + write_units(*new_size)
            }
        }
        (Some((_, size)), None) | (None, Some((_, size))) => write_units(*size),
        (None, None) => 0.0,
    }
}

fn index_entry(item: &Value) -> Option<IndexEntry> {
    let key: Option<Vec<String>> = INDEX_KEYS
        .iter()
        .map(|name| item.get(*name).map(Value::to_string))
        .collect();
    key.map(|key| (key, item_size(item)))
}

fn item_key(item: &Value) -> Option<(String, String)> {
    let part = |name: &str| item.get(name).map(Value::to_string);
    Some((part("pk")?, part("sk").unwrap_or_default()))
}

/// An item's size as DynamoDB counts it: each attribute's name (UTF-8
/// bytes) and value; a number about one byte per two significant digits
/// plus one; a list or map 3 bytes plus 1 per element plus its elements.
pub fn item_size(item: &Value) -> u64 {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() as u64 + value_size(value))
            .sum()
    })
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let number = |n: &Value| {
        let digits = n
            .as_str()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .count() as u64;
        digits.div_ceil(2) + 1
    };
    let text = |t: &Value| t.as_str().map_or(0, |s| s.len() as u64);
    let set = |f: &dyn Fn(&Value) -> u64| {
        inner
            .as_array()
            .map_or(0, |items| items.iter().map(f).sum::<u64>())
    };
    match kind.as_str() {
        // Binary values travel base64-encoded: 3 bytes per 4 characters.
        "S" => text(inner),
        "B" => text(inner) * 3 / 4,
        "N" => number(inner),
        "BOOL" | "NULL" => 1,
        "SS" => set(&text),
        "BS" => set(&|b| text(b) * 3 / 4),
        "NS" => set(&number),
        "L" => {
            3 + inner.as_array().map_or(0, |items| {
                items.iter().map(|v| 1 + value_size(v)).sum::<u64>()
            })
        }
        "M" => {
            3 + inner.as_object().map_or(0, |entries| {
                entries
                    .iter()
                    .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                    .sum::<u64>()
            })
        }
        _ => 0,
    }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !self.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let input = context.input_mut();
        let ask = Some(ReturnConsumedCapacity::Indexes);
        if let Some(i) = input.downcast_mut::<GetItemInput>() {
            i.return_consumed_capacity = ask;
        } else if let Some(i) = input.downcast_mut::<QueryInput>() {
            i.return_consumed_capacity = ask;
        } else if let Some(i) = input.downcast_mut::<ScanInput>() {
            i.return_consumed_capacity = ask;
        } else if let Some(i) = input.downcast_mut::<PutItemInput>() {
            i.return_consumed_capacity = ask;
        } else if let Some(i) = input.downcast_mut::<UpdateItemInput>() {
            i.return_consumed_capacity = ask;
        } else if let Some(i) = input.downcast_mut::<DeleteItemInput>() {
            i.return_consumed_capacity = ask;
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !self.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok());
        cfg.interceptor_state().store_put(Sent { operation, body });
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !self.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(Sent { operation, body }) = cfg.load::<Sent>().cloned() else {
            return Ok(());
        };
        let outcome = match context.output_or_error() {
            Some(Ok(output)) => {
                let consumed: Option<&ConsumedCapacity> = output
                    .downcast_ref::<GetItemOutput>()
                    .and_then(|o| o.consumed_capacity())
                    .or_else(|| {
                        output
                            .downcast_ref::<QueryOutput>()
                            .and_then(|o| o.consumed_capacity())
                    })
                    .or_else(|| {
                        output
                            .downcast_ref::<ScanOutput>()
                            .and_then(|o| o.consumed_capacity())
                    })
                    .or_else(|| {
                        output
                            .downcast_ref::<PutItemOutput>()
                            .and_then(|o| o.consumed_capacity())
                    })
                    .or_else(|| {
                        output
                            .downcast_ref::<UpdateItemOutput>()
                            .and_then(|o| o.consumed_capacity())
                    })
                    .or_else(|| {
                        output
                            .downcast_ref::<DeleteItemOutput>()
                            .and_then(|o| o.consumed_capacity())
                    });
                match consumed.and_then(ConsumedCapacity::capacity_units) {
                    Some(units) => Outcome::Billed(units),
                    None => Outcome::Unreported,
                }
            }
            Some(Err(error)) => {
                let refused = error
                    .as_operation_error()
                    .is_some_and(crate::counting::condition_failed);
                if refused {
                    Outcome::Refused
                } else {
                    Outcome::Error
                }
            }
            None => return Ok(()),
        };
        self.record(&operation, body.as_ref(), outcome);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        // "pk" 2 + "CALL#1" 6; "n" 1 + 3 digits -> 3; "ok" 2 + 1;
        // "m" 1 + map (3 + "a" 1+1 + "xy" 2)
        let item = json!({
            "pk": {"S": "CALL#1"},
            "n": {"N": "123"},
            "ok": {"BOOL": true},
            "m": {"M": {"a": {"S": "xy"}}},
        });
        assert_eq!(item_size(&item), 8 + 4 + 3 + 1 + 7);
    }

    #[test]
    fn an_index_entry_moved_is_a_delete_and_a_put() {
        let a = (vec!["OPEN#1".to_owned(), "10".to_owned()], 1500);
        let b = (vec!["OPEN#1".to_owned(), "20".to_owned()], 900);
        assert_eq!(index_write_units(Some(&a), Some(&b)), 2.0 + 1.0);
        assert_eq!(index_write_units(Some(&a), Some(&a)), 2.0);
        assert_eq!(index_write_units(None, Some(&b)), 1.0);
        assert_eq!(index_write_units(Some(&a), None), 2.0);
        assert_eq!(index_write_units(None, None), 0.0);
    }
}
