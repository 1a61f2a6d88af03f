use warm_transfer_core::handlers::Endpoint;
use warm_transfer_core::push::PushApp;

/// The table and management API clients are built once per cold start;
/// each invocation is one batch of the table's stream.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = PushApp::from_env(Endpoint::StreamPublisher).await?;
    app.serve(Endpoint::StreamPublisher).await
}
