use warm_transfer_core::endpoint::Endpoint;

/// Clients are built once per cold start and reused by every invocation.
/// The runtime and the handler loop live in the shared crate (`lambda::run`),
/// so this crate has no generic code of its own to compile.
fn main() -> Result<(), lambda_runtime::Error> {
    warm_transfer_core::lambda::run(Endpoint::OutsideParty)
}
