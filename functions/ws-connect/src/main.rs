use warm_transfer_core::handlers::Endpoint;
use warm_transfer_core::push::PushApp;

/// The issuer's keys and the table client are read once per cold start.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = PushApp::from_env(Endpoint::WsConnect).await?;
    app.serve(Endpoint::WsConnect).await
}
