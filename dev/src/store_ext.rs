//! Shorthands tests use to put a stored call in a state.

use time::OffsetDateTime;
use warm_transfer_core::domain::{CallSession, TransferDecision, TransferKind};
use warm_transfer_core::ids::{CallSid, PhoneNumber};
use warm_transfer_core::store::{CallStore, StoreError};
use warm_transfer_core::usecases::transfer::record_transfer;

/// Records a transfer as the start-transfer use case does, for anyone.
#[allow(async_fn_in_trait)] // Used in tests only, never across threads by name.
pub trait RequestTransfer: CallStore + Sized {
    async fn request_transfer(
        &self,
        id: &CallSid,
        target: PhoneNumber,
        kind: TransferKind,
        idempotency_key: Option<String>,
        now: OffsetDateTime,
    ) -> Result<(TransferDecision, CallSession), StoreError> {
        record_transfer(self, id, target, kind, idempotency_key, now, &|_| Ok(())).await
    }
}

impl<S: CallStore> RequestTransfer for S {}
