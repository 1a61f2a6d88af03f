//! A function binary's whole `main`: the Tokio runtime, the clients built
//! once per cold start, then the Lambda runtime loop of the endpoint's kind
//! (HTTP, schedule, WebSocket, stream).
//!
//! Here rather than in each `main.rs`: the runtime and the futures it polls
//! are generic code, compiled again (monomorphised) in every crate that
//! instantiates them, which made each function crate a 15 CPU-second
//! release build of its own. Behind this one non-generic function they are
//! compiled once, in this crate, and a function crate is a call and a link
//! (BENCHMARKS.md, "Build time").

use crate::endpoint::{Endpoint, Kind};
use crate::handlers::App;
use crate::push::PushApp;
use crate::usecases::reconcile;

/// Runs `endpoint`'s function until Lambda stops the process.
pub fn run(endpoint: Endpoint) -> Result<(), lambda_runtime::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // One arm per kind, each served by its own kind's loop.
            match endpoint.kind() {
                Kind::Http(http) => App::from_env(endpoint).await?.serve(http).await,
                Kind::Scheduled(_) => {
                    serve_scheduled(App::from_env(endpoint).await?, endpoint).await
                }
                Kind::Push(push) => PushApp::from_env(push).await?.serve(push).await,
            }
        })
}

/// The EventBridge scheduled event (`detail-type: Scheduled Event`); only
/// its time is read, for the log.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default, rename = "detail-type")]
    pub detail_type: Option<String>,
}

/// Runs the Lambda runtime loop of a scheduled function: one
/// reconciler run per event.
pub async fn serve_scheduled(app: App, endpoint: Endpoint) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ScheduledEvent>| {
            let app = app.clone();
            async move {
                tracing::info!(
                    endpoint = endpoint.function_name(),
                    scheduled = event.payload.time.as_deref().unwrap_or_default(),
                    request_id = %event.context.request_id,
                    "scheduled run"
                );
                app.refresh_secrets().await;
                let deadline = endpoint.deadline(Some(event.context.deadline));
                let report = reconcile::run_until(app.services(), deadline).await?;
                Ok::<_, lambda_runtime::Error>(report)
            }
        },
    ))
    .await
}
