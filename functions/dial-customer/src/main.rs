use warm_transfer_core::handlers::{App, Endpoint};

/// Clients are built once per cold start and reused by every invocation.
/// The runtime and the handler loop live in the shared crate (`App::run_function`),
/// so this crate has no generic code of its own to compile.
fn main() -> Result<(), lambda_runtime::Error> {
    App::run_function(Endpoint::DialCustomer)
}
