//! Shared crate of the warm-transfer Lambda functions.
//!
//! Layers, from the inside out:
//! - [`ids`] and [`domain`]: phone numbers, call SIDs and the transfer state
//!   machine, free of HTTP and AWS types;
//! - [`twiml`], [`signature`], [`public_url`]: what a Twilio webhook speaks;
//! - [`twilio`] and [`store`]: adapters for Twilio's REST API and DynamoDB;
//! - [`handlers`]: one function per Lambda, mapping HTTP to the domain.

pub mod config;
pub mod domain;
pub mod handlers;
pub mod ids;
pub mod logging;
pub mod public_url;
pub mod signature;
pub mod store;
pub mod twilio;
pub mod twiml;
