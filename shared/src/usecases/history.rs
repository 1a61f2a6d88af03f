//! The call's history, as the use cases and handlers add to it.

use crate::domain::HistoryEvent;
use crate::ids::CallSid;
use crate::store::CallStore;

/// Adds `event` to the call's history. A history entry is a record for
/// people, not state: failing to write one must not fail the request it
/// describes, but it must not vanish without a trace either.
pub async fn record(store: &dyn CallStore, call: &CallSid, event: &HistoryEvent) {
    if let Err(error) = store.append_event(call, event).await {
        tracing::warn!(%error, %call, entry = %event.kind, "history entry not recorded");
    }
}
