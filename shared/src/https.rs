//! The functions' HTTPS: rustls with the *ring* crypto provider, for the AWS
//! SDK's clients and for reqwest's (Twilio) alike.
//!
//! Not the SDK's and reqwest's default, rustls on AWS-LC: AWS-LC is a C
//! library, and compiling it (with zig, for arm64) was more than half of a
//! clean release build of the functions (BENCHMARKS.md, "Build time"). ring
//! does the same TLS 1.2/1.3 for these clients and builds in seconds.

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The AWS SDK's hyper + rustls client on ring. Give it to every AWS client:
/// without the SDK's `default-https-client` feature, a client without it
/// fails its first request ("no HTTP client").
pub fn aws_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `aws_config::defaults` with [`aws_http_client`]: the clients built from its
/// `SdkConfig`, and the credential providers it loads (the Lambda role's
/// come from the environment, others over HTTPS), all use it.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_http_client())
}

/// Makes ring rustls' provider for this process, before a reqwest client is
/// built: reqwest (feature `rustls-no-provider`) takes the installed one and
/// panics when there is none. Calling it again, or after a development tool
/// installed another provider, keeps the one installed first.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reqwest_builds_a_client_on_the_installed_provider() {
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        // In this crate's own test build reqwest has no fallback provider: this
        // panics if nothing is installed.
        reqwest::Client::builder().build().unwrap();
    }
}
