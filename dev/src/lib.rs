//! Development-only tools: the local server that mounts every Lambda handler,
//! the recorded API Gateway events, the Twilio call-flow simulator, the demo
//! and the benchmarks.

pub mod bench;
pub mod call_guard;
pub mod capacity;
pub mod contract;
pub mod counting;
pub mod dynalite;
pub mod events;
pub mod idp;
pub mod local;
pub mod log_capture;
pub mod metrics_capture;
pub mod moto;
pub mod paths;
pub mod privacy;
pub mod process;
pub mod push;
pub mod routes;
pub mod server;
pub mod sim;
pub mod smoke;
pub mod store_ext;
pub mod template;
pub mod twilio_account;
pub mod write_tap;
