use warm_transfer_core::handlers::{App, Endpoint};

/// Clients are built once per cold start and reused by every invocation.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = App::from_env().await?;
    app.serve(Endpoint::HoldCustomer).await
}
