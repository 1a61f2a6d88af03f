//! dynalite (a DynamoDB API server on Node.js, in memory) for tests, the
//! development server and the demo: started on a free loopback port,
//! stopped when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use tokio::process::{Child, Command};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use warm_transfer_core::store::StoreError;
use warm_transfer_core::store::table::TABLE;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("dynalite not found ({0}); install it with `npm ci --prefix dev` or set DYNALITE_BIN")]
    NotInstalled(String),
    #[error("dynalite could not start: {0}")]
    Start(String),
}

/// A running dynalite; killed on drop.
pub struct Dynalite {
    _child: Child,
    port: u16,
}

/// `DYNALITE_BIN`, else the copy `npm ci --prefix dev` installs in the
/// workspace, else `dynalite` on `PATH`.
fn binary() -> Result<PathBuf, LocalError> {
    if let Some(explicit) = std::env::var_os("DYNALITE_BIN") {
        return Ok(PathBuf::from(explicit));
    }
    let workspace = crate::paths::dev().join("node_modules/.bin/dynalite");
    if workspace.exists() {
        return Ok(workspace);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("dynalite"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            LocalError::NotInstalled(format!("not at {} nor on PATH", workspace.display()))
        })
}

impl Dynalite {
    pub async fn start() -> Result<Self, LocalError> {
        let binary = binary()?;
        if !binary.exists() {
            return Err(LocalError::NotInstalled(binary.display().to_string()));
        }
        // The free port is handed over, not held: until dynalite listens,
        // another test's server may take it. So the answer must be
        // dynalite's, and on another port it starts again.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::start_on_a_free_port(&binary).await {
                Ok(dynalite) => return Ok(dynalite),
                Err(reason) => last = reason,
            }
        }
        Err(LocalError::Start(last))
    }

    async fn start_on_a_free_port(binary: &std::path::Path) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut command = Command::new(binary);
        command
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = crate::process::die_with_parent(&mut command)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut dynalite = Self {
            _child: child,
            port,
        };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            // Gave up its port to whoever took it first.
            if let Ok(Some(status)) = dynalite._child.try_wait() {
                return Err(format!("dynalite exited ({status}) on port {port}"));
            }
            match dynalite.answers(&http).await {
                Some(true) => return Ok(dynalite),
                Some(false) => return Err(format!("another server holds port {port}")),
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        Err(format!("nothing listening on 127.0.0.1:{port} after 10 s"))
    }

    /// Whether the port answers as DynamoDB does (any of its JSON answers,
    /// an error included); None while nothing listens.
    async fn answers(&self, http: &reqwest::Client) -> Option<bool> {
        let response = http
            .post(self.endpoint())
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .body("{}")
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let body = response.text().await.unwrap_or_default();
        Some(body.contains("TableNames") || body.contains("__type"))
    }

    /// The dynalite process, to read its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self._child.id()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client for this dynalite, with dummy credentials.
    pub fn client(&self) -> Client {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(warm_transfer_core::https::aws_http_client())
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "local"))
            .build();
        Client::from_conf(config)
    }

    /// Creates a table from the one definition the template also uses.
    pub async fn create_table(&self, name: &str) -> Result<(), StoreError> {
        create_table(&self.client(), name).await
    }
}

/// Creates the table as [`TABLE`] defines it (in AWS the SAM template does).
/// TTL is switched on by the template; dynalite does not implement it.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let definition = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let string = |name: &str| definition(name, ScalarAttributeType::S);
    let index = &TABLE.open_sessions;
    let open_sessions = GlobalSecondaryIndex::builder()
        .index_name(index.name)
        .key_schema(key(index.partition_key, KeyType::Hash).map_err(other)?)
        .key_schema(key(index.sort_key, KeyType::Range).map_err(other)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection))
                .build(),
        )
        .build()
        .map_err(other)?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(TABLE.billing_mode))
        .key_schema(key(TABLE.partition_key, KeyType::Hash).map_err(other)?)
        .key_schema(key(TABLE.sort_key, KeyType::Range).map_err(other)?)
        .attribute_definitions(string(TABLE.partition_key).map_err(other)?)
        .attribute_definitions(string(TABLE.sort_key).map_err(other)?)
        .attribute_definitions(string(index.partition_key).map_err(other)?)
        .attribute_definitions(definition(index.sort_key, ScalarAttributeType::N).map_err(other)?)
        .global_secondary_indexes(open_sessions)
        .send()
        .await;
    // The SDK retries a request whose answer came late (a loaded machine):
    // the retry then finds the table its first attempt created.
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(other(DisplayErrorContext(error))),
    }
    // dynalite creates tables asynchronously, like DynamoDB.
    for _ in 0..200 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| other(DisplayErrorContext(e)))?;
        let active = described
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active"
    )))
}

fn other(error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(error.to_string())
}
