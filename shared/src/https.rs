//! The functions' HTTPS: rustls with the *ring* crypto provider, for the AWS
//! SDK's clients and for reqwest's (Twilio, the token issuer's keys) alike,
//! both trusting the same roots: Mozilla's, compiled in.
//!
//! Not the SDK's and reqwest's default, rustls on AWS-LC: AWS-LC is a C
//! library, and compiling it (with zig, for arm64) was more than half of a
//! clean release build of the functions (BENCHMARKS.md, "Build time"). ring
//! does the same TLS 1.2/1.3 for these clients and builds in seconds.
//!
//! Not the system's roots either: both clients read and parsed every file of
//! `/etc/ssl/certs` on their first use, about 10 ms each, twice per cold
//! start (BENCHMARKS.md, "Cold start"). The compiled-in list
//! (`webpki-root-certs`, from the rustls project, generated from Mozilla's
//! CCADB report) is the list a Linux distribution's bundle is made from;
//! verification stays on, with the same checks. A root Mozilla adds or
//! removes reaches the functions with a dependency update and a deploy.

use std::sync::{Arc, LazyLock};

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine as _;

/// The roots, parsed once per process, for reqwest's clients.
static ROOTS: LazyLock<Arc<rustls::RootCertStore>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    Arc::new(roots)
});

/// The same roots as PEM, the only form the SDK's client takes its own
/// roots in (`TrustStore::with_pem_certificate`); encoded once per process.
static ROOTS_PEM: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_000);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
});

/// The TLS configuration of reqwest's clients: ring, the compiled-in roots,
/// rustls' safe defaults (TLS 1.2 and 1.3). Give it to
/// `reqwest::ClientBuilder::tls_backend_preconfigured`.
pub fn reqwest_tls() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(ROOTS.clone())
        .with_no_client_auth()
}

/// The AWS SDK's hyper + rustls client on ring, trusting the compiled-in
/// roots only. Give it to every AWS client: without the SDK's
/// `default-https-client` feature, a client without it fails its first
/// request ("no HTTP client").
///
/// Share one between the clients of a process where it can: it builds a
/// connector (parsing the roots' PEM, about 0.6 ms) at the first request of
/// each timeout setting, which the clients sharing it then share.
pub fn aws_http_client() -> SharedHttpClient {
    let roots = TrustStore::empty().with_pem_certificate(ROOTS_PEM.as_slice());
    let context = TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .expect("a trust store of PEM certificates is a valid TLS context");
    SharedHttpClient::new(OnFirstRequest(
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(context)
            .build_https(),
    ))
}

/// The SDK's client, without its check at each client's construction, which
/// builds a connector it throws away ("so that native certs load at client
/// initialization time"): our roots are compiled in, and a connector is
/// built at the first request that needs one, as without the check.
#[derive(Debug)]
struct OnFirstRequest(SharedHttpClient);

impl HttpClient for OnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// `aws_config::defaults` with [`aws_http_client`]: the clients built from its
/// `SdkConfig`, and the credential providers it loads, all use it.
///
/// The region and credentials come from the environment when it gives them,
/// as Lambda's always does (`AWS_REGION`, the role's `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`): the environment is what
/// the default chains read first, so nothing changes but the chains' own
/// set-up, which built an STS client for web identity tokens (its endpoint
/// rules, parsed at first use in an unoptimised crate: about 3 ms of a cold
/// start). Elsewhere (a developer's profile, an instance's role) the
/// default chains find them.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config_loader_over(aws_http_client())
}

/// [`aws_config_loader`] over `http`, an HTTP client another AWS client of
/// the process already uses (no second one built and thrown away).
pub fn aws_config_loader_over(http: SharedHttpClient) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let loader = match std::env::var("AWS_REGION") {
        Ok(region) if !region.trim().is_empty() => {
            loader.region(aws_config::Region::new(region.trim().to_owned()))
        }
        _ => loader,
    };
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
    } else {
        loader
    }
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

    #[test]
    fn both_clients_trust_every_compiled_in_root() {
        let all = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(all > 100, "{all} roots");
        assert_eq!(ROOTS.len(), all, "every root parses");
        // The SDK's copy: the same certificates, back from the PEM.
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ROOTS_PEM)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, webpki_root_certs::TLS_SERVER_ROOT_CERTS);
        reqwest::Client::builder()
            .tls_backend_preconfigured(reqwest_tls())
            .build()
            .unwrap();
    }
}
