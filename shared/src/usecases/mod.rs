//! The use cases: what the product does with a call, through the ports it
//! acts on (the [`CallStore`] and Twilio), free of HTTP and Lambda. The
//! domain decides; these carry out its decisions and keep the record. The
//! entry points (`handlers`, `push`, `lambda`) call them.

pub mod follow_up;
pub mod history;
pub mod metered;
pub mod reconcile;
pub mod routing;
pub mod transfer;
pub mod view;

use std::sync::Arc;

use crate::store::{CallStore, Directory};
use crate::twilio::TwilioClient;

/// What the use cases act through: where calls are kept, and the telephone
/// network. Built once per cold start, cloned cheaply into each request.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn CallStore>,
    /// The agents and their presence, in the same table.
    pub directory: Arc<dyn Directory>,
    pub twilio: TwilioClient,
}
