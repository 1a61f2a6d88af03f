use warm_transfer_core::handlers::{App, Endpoint};

/// Clients are built once per cold start; each scheduled event is one run.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = App::from_env().await?;
    app.serve_scheduled(Endpoint::Reconciler).await
}
