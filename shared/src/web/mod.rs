//! What the product's HTTP entry points share: the front-end API's error
//! body, response builders and CORS. The REST functions (`handlers`) and the
//! WebSocket functions (`push`) both answer with these.

pub mod api_error;
pub mod cors;
pub mod responses;

pub use api_error::ApiError;
