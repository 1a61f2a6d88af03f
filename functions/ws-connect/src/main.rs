use warm_transfer_core::endpoint::Endpoint;

/// The issuer's keys and the table client are read once per cold start.
/// The runtime and the handler loop live in the shared crate (`lambda::run`),
/// so this crate has no generic code of its own to compile.
fn main() -> Result<(), lambda_runtime::Error> {
    warm_transfer_core::lambda::run(Endpoint::WsConnect)
}
