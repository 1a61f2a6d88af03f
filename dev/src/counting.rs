//! What the local stack did, counted for the benchmark of push against
//! polling: the DynamoDB requests its clients made, by operation (an SDK
//! interceptor, so nothing in the product changes), and the requests the
//! development server handed to each function (in AWS, one Lambda
//! invocation each).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, scan::ScanInput, update_item::UpdateItemInput,
};

/// Counts by name; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    pub fn add(&self, name: &str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(name.to_owned()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn get(&self, name: &str) -> u64 {
        self.snapshot().get(name).copied().unwrap_or(0)
    }
}

/// Counts each DynamoDB request a client sends, by operation.
#[derive(Debug, Clone, Default)]
pub struct DynamoOps(pub Counts);

impl Intercept for DynamoOps {
    fn name(&self) -> &'static str {
        "DynamoOps"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let input = context.input();
        let name = if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<QueryInput>().is_some() {
            "Query"
        } else if input.downcast_ref::<ScanInput>().is_some() {
            "Scan"
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            "DeleteItem"
        } else {
            "other"
        };
        self.0.add(name);
        Ok(())
    }
}

impl DynamoOps {
    /// `client` with this counter on every request.
    pub fn wrap(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(self.clone())
                .build(),
        )
    }
}
