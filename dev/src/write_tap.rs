//! The items a DynamoDB client's `PutItem` requests wrote, told as they
//! land: what the local stack makes its stand-in for DynamoDB Streams from
//! (dynalite has none). Taken from the HTTP exchange, so the product's store
//! knows nothing of it. A request whose answer came too late for the SDK
//! (which then retried and met its own write) still landed, and is still
//! told: like a stream, this follows the table, not the client.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpRequest;
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use serde_json::Value;

/// Told of each item written, in DynamoDB's JSON (`{"pk":{"S":"..."}}`).
pub trait WriteObserver: Send + Sync {
    fn written(&self, item: &Value);
}

/// `client`, telling `observer` of every item its `PutItem`s write.
pub fn tapped(client: &Client, observer: Arc<dyn WriteObserver>) -> Client {
    let config = client.config();
    let inner = config
        .http_client()
        .unwrap_or_else(warm_transfer_core::https::aws_http_client);
    Client::from_conf(
        config
            .to_builder()
            .http_client(SharedHttpClient::new(Tap { inner, observer }))
            .build(),
    )
}

#[derive(Clone)]
struct Tap<T> {
    inner: T,
    observer: Arc<dyn WriteObserver>,
}

impl<T> std::fmt::Debug for Tap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTap")
    }
}

impl HttpClient for Tap<SharedHttpClient> {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Tap {
            inner: self.inner.http_connector(settings, components),
            observer: self.observer.clone(),
        })
    }
}

impl HttpConnector for Tap<SharedHttpConnector> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let item = put_item(&request);
        let exchange = self.inner.call(request);
        let observer = self.observer.clone();
        // Run to its end even when the SDK stops waiting (its attempt
        // timeout): the write may land all the same.
        let exchange = tokio::spawn(async move {
            let answer = exchange.await;
            if let (Some(item), Ok(response)) = (&item, &answer) {
                if response.status().is_success() {
                    observer.written(item);
                }
            }
            answer
        });
        HttpConnectorFuture::new(async move {
            exchange
                .await
                .unwrap_or_else(|error| Err(ConnectorError::other(error.into(), None)))
        })
    }
}

/// The item of a `PutItem` request.
fn put_item(request: &HttpRequest) -> Option<Value> {
    let target = request.headers().get("x-amz-target")?;
    if !target.ends_with(".PutItem") {
        return None;
    }
    let body: Value = serde_json::from_slice(request.body().bytes()?).ok()?;
    body.get("Item").cloned()
}
