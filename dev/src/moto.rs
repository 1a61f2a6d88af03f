//! moto_server (moto's AWS API server, from PyPI) for tests and the bench:
//! a real Secrets Manager API on a free loopback port, stopped when dropped
//! or when the program that started it dies.
//! `dev/test.sh` and `.ci/run` install it when it is missing.

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use tokio::process::{Child, Command};

/// The region and dummy credentials every client of this server uses.
pub const REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found ({0}); install it with `python3 -m pip install 'moto[server]'` or set MOTO_SERVER"
    )]
    NotInstalled(String),
    #[error("moto_server could not start: {0}")]
    Start(String),
}

/// A running moto_server; killed on drop.
pub struct MotoServer {
    _child: Child,
    port: u16,
}

impl MotoServer {
    /// `MOTO_SERVER`, else `moto_server` on `PATH`. The free port is handed
    /// over, not held: should another test's server take it before moto
    /// listens, moto starts again on another one.
    pub async fn start() -> Result<Self, MotoError> {
        let binary = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let mut last = MotoError::Start("not started".into());
        for _ in 0..5 {
            match Self::start_on_a_free_port(&binary).await {
                Ok(server) => return Ok(server),
                Err(error @ MotoError::NotInstalled(_)) => return Err(error),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    async fn start_on_a_free_port(binary: &str) -> Result<Self, MotoError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| MotoError::Start(e.to_string()))?
            .port();
        let mut command = Command::new(binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = crate::process::die_with_parent(&mut command)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => MotoError::NotInstalled(binary.to_owned()),
                _ => MotoError::Start(format!("{binary}: {e}")),
            })?;
        let mut server = Self {
            _child: child,
            port,
        };
        let http = reqwest::Client::new();
        // Python takes a second or two to import moto before it listens.
        for _ in 0..600 {
            if let Ok(Some(status)) = server._child.try_wait() {
                return Err(MotoError::Start(format!(
                    "exited ({status}) on port {port}"
                )));
            }
            // moto's own API answers JSON; another server would not.
            let answer = http
                .get(format!("{}/moto-api/data.json", server.endpoint()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = answer {
                let body = response.text().await.unwrap_or_default();
                if body.trim_start().starts_with('{') {
                    return Ok(server);
                }
                return Err(MotoError::Start(format!(
                    "another server holds port {port}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(MotoError::Start(format!(
            "nothing listening on 127.0.0.1:{port} after 30 s"
        )))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// AWS configuration for this server: its endpoint, a region and dummy
    /// credentials, so nothing reaches AWS.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        warm_transfer_core::https::aws_config_loader()
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// The environment a function binary needs to reach this server through
    /// the SDK's own settings.
    pub fn function_env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ]
    }

    pub async fn secrets_client(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// Creates a secret holding `text`; returns its ARN.
    pub async fn create_secret(&self, name: &str, text: &str) -> Result<String, MotoError> {
        let created = self
            .secrets_client()
            .await
            .create_secret()
            .name(name)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| {
                MotoError::Start(format!(
                    "CreateSecret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(created.arn().unwrap_or(name).to_owned())
    }
}
