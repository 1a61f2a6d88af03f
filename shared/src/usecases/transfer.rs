//! Recording a transfer: the domain decides, the store keeps the decision.

use time::OffsetDateTime;

use crate::domain::{CallSession, DomainError, Member, TeamRoute, TransferDecision, TransferKind};
use crate::ids::{CallSid, PhoneNumber};
use crate::store::{CallStore, StoreError, update_returning};

/// A check on the session as read, before a command may change it.
pub type Guard<'a> = dyn Fn(&CallSession) -> Result<(), DomainError> + Send + Sync + 'a;

/// Who a transfer rings: a number, and the directory's agent behind it
/// when the transfer named a colleague or a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callee {
    pub number: PhoneNumber,
    pub member: Option<Member>,
    pub route: Option<TeamRoute>,
}

impl Callee {
    pub fn number(number: PhoneNumber) -> Self {
        Self {
            number,
            member: None,
            route: None,
        }
    }
}

/// Records a transfer to `callee` as [`record_transfer`] does, naming the
/// member it rings (and the team's route) in the same write.
pub async fn record_transfer_to(
    store: &dyn CallStore,
    id: &CallSid,
    callee: &Callee,
    kind: TransferKind,
    idempotency_key: Option<String>,
    now: OffsetDateTime,
    guard: &Guard<'_>,
) -> Result<(TransferDecision, CallSession), StoreError> {
    let (decision, session) = update_returning(store, id, &|session: &mut CallSession| {
        guard(session)?;
        let decision =
            session.request_transfer(callee.number.clone(), kind, idempotency_key.clone(), now)?;
        if let (TransferDecision::New, Some(member)) = (decision, &callee.member) {
            session.ring_member(member.clone(), callee.route.clone());
        }
        Ok(decision)
    })
    .await?;
    Ok((decision.unwrap_or(TransferDecision::Existing), session))
}

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
    let callee = Callee::number(target);
    record_transfer_to(store, id, &callee, kind, idempotency_key, now, guard).await
}
