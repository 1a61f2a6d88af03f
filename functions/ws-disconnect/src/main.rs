use warm_transfer_core::handlers::Endpoint;
use warm_transfer_core::push::PushApp;

/// The table client is built once per cold start.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = PushApp::from_env(Endpoint::WsDisconnect).await?;
    app.serve(Endpoint::WsDisconnect).await
}
