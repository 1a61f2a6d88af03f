use warm_transfer_core::endpoint::Endpoint;

/// The table and management API clients are built once per cold start;
/// each invocation is one batch of the table's stream.
/// The runtime and the handler loop live in the shared crate (`lambda::run`),
/// so this crate has no generic code of its own to compile.
fn main() -> Result<(), lambda_runtime::Error> {
    warm_transfer_core::lambda::run(Endpoint::StreamPublisher)
}
