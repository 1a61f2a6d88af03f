//! Recording a transfer: the domain decides, the store keeps the decision.

use time::OffsetDateTime;

use crate::domain::{CallSession, DomainError, TransferDecision, TransferKind};
use crate::ids::{CallSid, PhoneNumber};
use crate::store::{CallStore, StoreError, update_returning};

/// A check on the session as read, before a command may change it.
pub type Guard<'a> = dyn Fn(&CallSession) -> Result<(), DomainError> + Send + Sync + 'a;

/// Records a transfer by reading the session, letting the domain decide and
/// writing back on condition (see [`CallStore::update`]), if `guard` (who
/// may transfer this call) lets it.
pub async fn record_transfer(
    store: &dyn CallStore,
    id: &CallSid,
    target: PhoneNumber,
    kind: TransferKind,
    idempotency_key: Option<String>,
    now: OffsetDateTime,
    guard: &Guard<'_>,
) -> Result<(TransferDecision, CallSession), StoreError> {
    let (decision, session) = update_returning(store, id, &|session: &mut CallSession| {
        guard(session)?;
        session.request_transfer(target.clone(), kind, idempotency_key.clone(), now)
    })
    .await?;
    Ok((decision.unwrap_or(TransferDecision::Existing), session))
}
