//! Sending to a WebSocket connection: API Gateway's management API
//! (`PostToConnection`). A connection that closed answers 410 Gone; its
//! subscription is then dropped. Locally the development server answers
//! the same API, so the same client runs there.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// 410: the client went away; forget it.
    #[error("the connection is gone")]
    Gone,
    #[error("could not post to the connection: {0}")]
    Failed(String),
}

/// Where pushed frames go.
#[async_trait]
pub trait Connections: Send + Sync {
    async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<(), PostError>;
}

/// The management API of one WebSocket API stage.
#[derive(Clone)]
pub struct ApiGatewayConnections {
    client: Client,
}

impl ApiGatewayConnections {
    /// The SDK client for `endpoint`, built once per cold start. `local`
    /// (the development server) takes fixed dummy credentials.
    pub async fn new(endpoint: &Url, local: bool) -> Self {
        use aws_sdk_apigatewaymanagement::config::{Credentials, Region};
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(4))
            .build();
        let mut loader = crate::https::aws_config_loader()
            .timeout_config(timeouts)
            .endpoint_url(endpoint.as_str().trim_end_matches('/'));
        if local {
            loader = loader
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
        Self {
            client: Client::new(&loader.load().await),
        }
    }
}

#[async_trait]
impl Connections for ApiGatewayConnections {
    async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<(), PostError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(context))
                if matches!(context.err(), PostToConnectionError::GoneException(_))
                    || context.raw().status().as_u16() == 410 =>
            {
                Err(PostError::Gone)
            }
            Err(error) => Err(PostError::Failed(
                std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| error.to_string()),
            )),
        }
    }
}
