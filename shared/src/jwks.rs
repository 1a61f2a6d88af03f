//! The issuer's signing keys for `$connect`, kept the way API Gateway's JWT
//! authorizer keeps them for the HTTP API: read when first needed, kept for
//! [`KEYS_TTL`], and read again as soon as a token names a key not among
//! them (a routine key rotation), but never more often than once per
//! [`REFETCH_AFTER`], so a flood of tokens with made-up key ids costs the
//! issuer one request per interval. A failed read keeps the keys held.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::token::{self, Jwks, Refused, Verifier};

/// How long keys are used before they are read again. API Gateway may cache
/// an issuer's keys for two hours; an hour keeps `$connect` no later.
pub const KEYS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two reads of the keys, whatever tokens arrive.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// Where the keys come from: the issuer's `jwks_uri`, or a test's stand-in.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> Result<Jwks, String>;
}

/// The issuer's JWKS over HTTPS.
pub struct HttpKeySource {
    url: url::Url,
    client: reqwest::Client,
}

impl HttpKeySource {
    pub fn new(url: url::Url) -> Result<Self, String> {
        crate::https::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::https::reqwest_tls())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { url, client })
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<Jwks, String> {
        let response = self
            .client
            .get(self.url.as_str())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }
}

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

struct Held {
    verifier: Arc<Verifier>,
    /// When the keys held were read; None: never.
    fetched: Option<Instant>,
    /// When a read was last tried, successful or not.
    tried: Option<Instant>,
}

/// One issuer's keys, refreshed as described above, and the token check.
pub struct Keys {
    issuer: String,
    audience: String,
    /// None: fixed keys, never read again (the development server's own).
    source: Option<Arc<dyn KeySource>>,
    held: RwLock<Held>,
    /// One read at a time: callers arriving meanwhile use its result.
    reading: tokio::sync::Mutex<()>,
    clock: Clock,
}

impl Keys {
    pub fn new(issuer: &str, audience: &str, source: Arc<dyn KeySource>) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            source: Some(source),
            held: RwLock::new(Held {
                verifier: Arc::new(Verifier::new(issuer, audience, &Jwks { keys: Vec::new() })),
                fetched: None,
                tried: None,
            }),
            reading: tokio::sync::Mutex::new(()),
            clock: Arc::new(Instant::now),
        }
    }

    /// Keys that never change (a local issuer's).
    pub fn fixed(verifier: Verifier) -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            source: None,
            held: RwLock::new(Held {
                verifier: Arc::new(verifier),
                fetched: None,
                tried: None,
            }),
            reading: tokio::sync::Mutex::new(()),
            clock: Arc::new(Instant::now),
        }
    }

    /// Tests move time on with their own clock instead of waiting.
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The claims of a valid token as JSON, reading the keys again first if
    /// they are old or the token names a key not among them.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>, Refused> {
        let kid = token::key_id(token)?;
        if let Some(source) = &self.source {
            let now = (self.clock)();
            let (known, fresh) = {
                let held = self.held();
                let fresh = held
                    .fetched
                    .is_some_and(|at| now.saturating_duration_since(at) < KEYS_TTL);
                (held.verifier.knows(&kid), fresh)
            };
            if !known || !fresh {
                self.read(source.as_ref()).await;
            }
        }
        let verifier = self.held().verifier.clone();
        verifier.verify_json(token)
    }

    async fn read(&self, source: &dyn KeySource) {
        let _reading = self.reading.lock().await;
        // Checked once in line: a read that just finished serves this caller.
        let now = (self.clock)();
        let recently = self
            .held()
            .tried
            .is_some_and(|at| now.saturating_duration_since(at) < REFETCH_AFTER);
        if recently {
            return;
        }
        self.held_mut().tried = Some(now);
        match source.fetch().await {
            Ok(jwks) => {
                let verifier = Verifier::new(&self.issuer, &self.audience, &jwks);
                let mut held = self.held_mut();
                held.verifier = Arc::new(verifier);
                held.fetched = Some(now);
                tracing::info!(keys = jwks.keys.len(), "issuer's keys read");
            }
            // The keys held stay in use; the next read waits its turn.
            Err(reason) => tracing::warn!(%reason, "the issuer's keys could not be read"),
        }
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(|p| p.into_inner())
    }

    fn held_mut(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// Counts its reads; slow enough that callers pile up behind one.
    struct Counting(AtomicUsize);

    #[async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> Result<Jwks, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Jwks { keys: Vec::new() })
        }
    }

    fn token_naming(kid: &str) -> String {
        signed_with("RS256", kid)
    }

    fn signed_with(alg: &str, kid: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#));
        format!("{header}.e30.c2ln")
    }

    #[tokio::test]
    async fn tokens_arriving_together_with_unknown_keys_cost_one_read() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let keys = Arc::new(Keys::new("https://idp", "app", source.clone()));
        let checks: Vec<_> = (0..20)
            .map(|i| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.verify(&token_naming(&format!("k{i}"))).await })
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.unwrap(), Err(Refused::UnknownKey));
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        // Malformed tokens and refused algorithms never cause a read.
        for bad in ["garbage", "e30.e30.e30", &signed_with("none", "k")] {
            assert!(
                matches!(keys.verify(bad).await, Err(Refused::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
    }
}
