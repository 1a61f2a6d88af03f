//! The table's DynamoDB Stream, read as call changes. A batch of records
//! becomes, per call, each new version of its session and the history
//! entries written, in stream order. Everything else is left out: subscription and
//! connection items, deletions (TTL), and session writes that changed no
//! `version` (a reconciler's claim only moves its next check).

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::Value;

use crate::domain::{CallSession, HistoryEvent, presence_moved};
use crate::ids::CallSid;
use crate::store::dynamodb_json::item_from_json;
use crate::store::{
    AGENT_PREFIX, DIRECTORY_PK, EVENT_PREFIX, Item, SESSION_SK, agent_from_item, event_from_item,
    session_from_item,
};
use crate::usecases::view::board_moved;

/// What a batch says about one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallChange {
    /// Each new version of the session in the batch, oldest first.
    pub sessions: Vec<CallSession>,
    /// History entries written, oldest first.
    pub events: Vec<HistoryEvent>,
}

/// The calls a batch changed, in the order they first appear.
pub fn changes(records: &[EventRecord]) -> Vec<(CallSid, CallChange)> {
    let mut calls: Vec<(CallSid, CallChange)> = Vec::new();
    for record in records {
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            continue;
        }
        let Some(keys) = image(&record.change.keys) else {
            continue;
        };
        let text = |name: &str| keys.get(name).and_then(|v| v.as_s().ok()).cloned();
        let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
            continue;
        };
        let Some(call) = pk
            .strip_prefix("CALL#")
            .and_then(|sid| CallSid::parse(sid).ok())
        else {
            continue;
        };
        let Some(new) = image(&record.change.new_image) else {
            tracing::warn!(call = %call, "stream record without its new image");
            continue;
        };
        let slot = match calls.iter().position(|(c, _)| *c == call) {
            Some(at) => &mut calls[at].1,
            None => {
                calls.push((call.clone(), CallChange::default()));
                &mut calls.last_mut().expect("just pushed").1
            }
        };
        if sk == SESSION_SK {
            let old = image(&record.change.old_image);
            if old.is_some() && version(old.as_ref()) == version(Some(&new)) {
                continue;
            }
            match session_from_item(&new) {
                Ok(session) => {
                    if !slot.sessions.iter().any(|s| s.version == session.version) {
                        slot.sessions.push(session);
                        slot.sessions.sort_by_key(|s| s.version);
                    }
                }
                Err(error) => tracing::warn!(%error, call = %call, "unreadable session image"),
            }
        } else if sk.starts_with(EVENT_PREFIX) && record.event_name == "INSERT" {
            match event_from_item(&new) {
                Ok(event) => slot.events.push(event),
                Err(error) => tracing::warn!(%error, call = %call, "unreadable history image"),
            }
        }
    }
    calls.retain(|(_, change)| !change.sessions.is_empty() || !change.events.is_empty());
    calls
}

/// Whether a batch changed what the directory shows anyone: an agent's
/// entry changed other than by a bare heartbeat, or a call's change put
/// someone on the line or took them off it (presence is derived from the
/// calls). Consoles then read the directory again.
pub fn directory_changed(records: &[EventRecord]) -> bool {
    records.iter().any(|record| {
        let Some(Written { pk, sk, old, new }) = written(record) else {
            return false;
        };
        if pk == DIRECTORY_PK && sk.starts_with(AGENT_PREFIX) {
            return match (old.map(|o| agent_from_item(&o)), agent_from_item(&new)) {
                (Some(Ok(before)), Ok(after)) => after.shown_differently(&before),
                _ => true,
            };
        }
        if !(pk.starts_with("CALL#") && sk == SESSION_SK) {
            return false;
        }
        match (old.map(|o| session_from_item(&o)), session_from_item(&new)) {
            (Some(Ok(before)), Ok(after)) => presence_moved(&before, &after),
            // A new call: its first agent is now on it.
            (None, Ok(_)) => true,
            _ => false,
        }
    })
}

/// Whether a batch changed a line of the supervisors' board: a call began,
/// or a call's state, agent, transfer, supervisor or help request moved.
/// (A bare callback that changes none of these nudges nobody.)
pub fn board_changed(records: &[EventRecord]) -> bool {
    records.iter().any(|record| {
        let Some(Written { pk, sk, old, new }) = written(record) else {
            return false;
        };
        if !(pk.starts_with("CALL#") && sk == SESSION_SK) {
            return false;
        }
        let before = old.and_then(|o| session_from_item(&o).ok());
        session_from_item(&new).is_ok_and(|after| board_moved(before.as_ref(), &after))
    })
}

/// An item a record wrote (inserted or modified): its keys, and its image
/// before and after.
struct Written {
    pk: String,
    sk: String,
    old: Option<Item>,
    new: Item,
}

fn written(record: &EventRecord) -> Option<Written> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let keys = image(&record.change.keys)?;
    let new = image(&record.change.new_image)?;
    let text = |name: &str| keys.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(Written {
        pk: text("pk")?,
        sk: text("sk")?,
        old: image(&record.change.old_image),
        new,
    })
}

fn image<T: serde::Serialize>(image: &T) -> Option<Item> {
    let value = serde_json::to_value(image).ok()?;
    match &value {
        Value::Object(map) if map.is_empty() => None,
        _ => item_from_json(&value),
    }
}

fn version(item: Option<&Item>) -> Option<String> {
    item?.get("version")?.as_n().ok().cloned()
}
