//! The whole product on one machine: dynalite, the Twilio simulator and the
//! development server, wired with local defaults. Used by the demo, the
//! end-to-end scenarios, the browser tests and the benchmarks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::dynalite::Dynalite;
use tokio::net::TcpListener;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::handlers::App;
use warm_transfer_core::push::PushApp;
use warm_transfer_core::push::connections::ApiGatewayConnections;
use warm_transfer_core::store::{DynamoStore, DynamoSubscriptions};
use warm_transfer_core::twilio::TwilioClient;

use crate::capacity::CapacityMeter;
use crate::counting::DynamoOps;
use crate::idp::{LOCAL_CLIENT_ID, LocalAgent, LocalIssuer, local_agents};
use crate::push::{LocalPush, LocalStream, PushCounts, WS_PATH};
use crate::server::DevServer;
use crate::sim::{Script, SimConfig, Simulator};
use crate::write_tap;

/// The auth token the simulator signs webhooks with.
pub const LOCAL_AUTH_TOKEN: &str = "local-twilio-auth-token";
pub const LOCAL_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const LOCAL_CALLER_ID: &str = "+15005550006";
/// The team a call to [`LOCAL_CALLER_ID`] reaches.
pub const LOCAL_INBOUND_TEAM: &str = "billing";

/// How simulated people answer locally, by the end of their number:
/// `…0486` is busy, `…0404` never answers, `…0500` cannot be reached;
/// everyone else answers after a short ring.
pub fn local_people(number: &str) -> Option<Script> {
    if number.ends_with("0486") {
        Some(Script::busy())
    } else if number.ends_with("0404") {
        Some(Script::no_answer())
    } else if number.ends_with("0500") {
        Some(Script::fail())
    } else {
        Some(Script::answer_after(Duration::from_millis(1500)))
    }
}

/// Options of a local stack.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Port of the development server; 0 picks a free one.
    pub port: u16,
    /// How fast simulated time runs: 1.0 is real time, 0.1 ten times faster.
    pub time_scale: f64,
    pub ring_timeout_secs: u32,
    /// `RECORDING=on`: the simulator records and reports the conversation.
    pub recording: bool,
    /// How often the simulator's waiting legs look again (see [`SimConfig::poll`]).
    pub sim_poll: Duration,
    /// Runs the development server (and so every handler) on this runtime
    /// instead of the caller's: the scale benchmark gives the product
    /// threads of its own to measure their CPU time apart.
    pub product_runtime: Option<tokio::runtime::Handle>,
    /// The WebSocket endpoint and the stream feeding it; off, the stack is
    /// as it was before push (the benchmark's "before").
    pub push: bool,
    /// `AGENT_DIALS_PER_MINUTE`; None: the product's default. Tests and
    /// benchmarks that start many calls as one agent raise it.
    pub agent_dials_per_minute: Option<u32>,
    /// A real Twilio account instead of the simulator; None: simulated.
    pub twilio: Option<RealTwilio>,
    /// `INBOUND_MAX_WAIT_SECS`; None: the product's default.
    pub inbound_max_wait_secs: Option<u32>,
}

/// A real Twilio account for the stack (`run-local.sh --twilio`). The
/// simulator still runs, unused: the tests' handles to it stay valid.
#[derive(Debug, Clone)]
pub struct RealTwilio {
    /// The user's settings (`twilio_account::read_settings`): credentials,
    /// caller ID, allow-list. Secrets: never printed.
    pub settings: HashMap<String, String>,
    /// Where Twilio reaches this server (a tunnel); webhook signatures are
    /// checked against it.
    pub public_url: url::Url,
    /// Where the product's REST client goes: the call guard in front of Twilio.
    pub api_base_url: String,
    /// Who signs in locally, with their own phones' numbers.
    pub agents: Vec<LocalAgent>,
    /// The numbers the user confirmed: the product's allow-list becomes
    /// exactly these, since the customer is dialed by TwiML, which the
    /// call guard never sees.
    pub confirmed: Vec<String>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            port: 0,
            time_scale: 1.0,
            ring_timeout_secs: 20,
            recording: false,
            sim_poll: SimConfig::default().poll,
            product_runtime: None,
            push: true,
            agent_dials_per_minute: None,
            twilio: None,
            inbound_max_wait_secs: None,
        }
    }
}

/// A running local stack; everything stops when it is dropped.
pub struct LocalStack {
    pub dynalite: Dynalite,
    pub sim: Simulator,
    pub server: DevServer,
    pub app: App,
    /// Signs agents in (`/local-idp`); the server verifies its tokens.
    pub issuer: Arc<LocalIssuer>,
    /// The local WebSocket API and stream (see `push`).
    pub push: Arc<LocalPush>,
    pub push_counts: Arc<PushCounts>,
    /// Who listens to which call (the items `$connect` writes).
    pub subscriptions: Arc<DynamoSubscriptions>,
    /// Every DynamoDB request of the stack's clients, by operation.
    pub dynamo_ops: DynamoOps,
    /// The capacity units those requests are billed (off until enabled).
    pub capacity: CapacityMeter,
}

impl LocalStack {
    pub async fn start(
        options: LocalOptions,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dynalite = Dynalite::start().await?;
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let agents = options
            .twilio
            .as_ref()
            .map_or_else(local_agents, |t| t.agents.clone());
        let issuer = Arc::new(LocalIssuer::new(&base_url, agents)?);
        let sim = Simulator::start(SimConfig {
            account_sid: LOCAL_ACCOUNT_SID.to_owned(),
            auth_token: LOCAL_AUTH_TOKEN.to_owned(),
            time_scale: options.time_scale,
            default_script: local_people,
            poll: options.sim_poll,
            owned_numbers: vec![LOCAL_CALLER_ID.to_owned()],
            ..SimConfig::default()
        })
        .await?;

        let env: HashMap<String, String> = [
            (vars::TWILIO_ACCOUNT_SID, LOCAL_ACCOUNT_SID.to_owned()),
            (vars::TWILIO_AUTH_TOKEN, LOCAL_AUTH_TOKEN.to_owned()),
            (vars::TWILIO_API_BASE_URL, sim.base_url()),
            (vars::TABLE_NAME, "warm-transfer-local".to_owned()),
            (vars::DYNAMODB_ENDPOINT, dynalite.endpoint()),
            (vars::PUBLIC_BASE_URL, base_url.clone()),
            (vars::DEFAULT_CALLER_ID, LOCAL_CALLER_ID.to_owned()),
            (vars::CONSOLE_CLIENT_ID, LOCAL_CLIENT_ID.to_owned()),
            (vars::CONSOLE_AUTHORIZE_URL, issuer.authorize_url()),
            (vars::CONSOLE_TOKEN_URL, issuer.token_url()),
            (
                vars::CONSOLE_PUSH_URL,
                // Empty (the page polls) when the stack runs without push.
                if options.push {
                    format!("{}{WS_PATH}", base_url.replacen("http", "ws", 1))
                } else {
                    String::new()
                },
            ),
            (
                vars::TRANSFER_RING_TIMEOUT_SECS,
                options.ring_timeout_secs.to_string(),
            ),
            (
                vars::RECORDING,
                if options.recording { "on" } else { "off" }.to_owned(),
            ),
            // Customers calling the caller ID reach team billing.
            (
                vars::INBOUND_NUMBERS,
                format!("{LOCAL_CALLER_ID}={LOCAL_INBOUND_TEAM}"),
            ),
        ]
        .into_iter()
        .chain(
            options
                .agent_dials_per_minute
                .map(|limit| (vars::AGENT_DIALS_PER_MINUTE, limit.to_string())),
        )
        .chain(
            options
                .inbound_max_wait_secs
                .map(|secs| (vars::INBOUND_MAX_WAIT_SECS, secs.to_string())),
        )
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let env = match &options.twilio {
            Some(twilio) => with_real_twilio(env, twilio),
            None => env,
        };
        let config = Config::from_map(&env)?;
        dynalite.create_table(&config.table_name).await?;
        let dynamo_ops = DynamoOps::default();
        let capacity = CapacityMeter::default();
        let client =
            capacity.wrap(&dynamo_ops.wrap(&DynamoStore::client_from_config(&config).await));
        let plain = DynamoStore::from_config(client.clone(), &config);
        // Push as in AWS: the publisher posts with the SDK's management
        // client to this server, fed by the stream made from the writes.
        let push_counts = Arc::new(PushCounts::default());
        let subscriptions = Arc::new(DynamoSubscriptions::new(
            client.clone(),
            config.table_name.clone(),
        ));
        let management = ApiGatewayConnections::new(&url::Url::parse(&base_url)?, true).await;
        let publisher = PushApp::new(
            config.agents.clone(),
            Arc::new(plain.clone()),
            subscriptions.clone(),
        )
        .with_connections(Arc::new(management));
        let store = if options.push {
            let stream = LocalStream::start(publisher, push_counts.clone());
            DynamoStore::from_config(write_tap::tapped(&client, stream), &config)
        } else {
            plain
        };
        let gate = PushApp::new(
            config.agents.clone(),
            Arc::new(store.clone()),
            subscriptions.clone(),
        )
        .with_verifier(issuer.verifier());
        let push = LocalPush::new(gate, push_counts.clone());
        let twilio = TwilioClient::from_config(&config)?;
        let app = App::new(config, Arc::new(store), twilio);
        let served = options.push.then(|| push.clone());
        let server = match &options.product_runtime {
            Some(runtime) => {
                DevServer::start_on(runtime, app.clone(), listener, issuer.clone(), served)?
            }
            None => DevServer::start(app.clone(), listener, issuer.clone(), served)?,
        };
        if let Some(host) = options
            .twilio
            .as_ref()
            .and_then(|t| t.public_url.host_str())
        {
            server.tunnel.set_public_host(host);
        }
        if options.twilio.is_none() {
            // A customer calling the centre, for the console (`/local-sim/`).
            let (phones, base) = (sim.phones(), base_url.clone());
            let hang_up = sim.phones();
            server.phones.set(
                move |from| {
                    Some(phones.call_in(
                        from,
                        LOCAL_CALLER_ID,
                        &format!("{base}/twiml/inbound"),
                        Some(format!("{base}/events/caller")),
                    ))
                },
                move |number| hang_up.hang_up(number).then(|| number.to_owned()),
            );
        }
        Ok(Self {
            dynalite,
            sim,
            server,
            app,
            issuer,
            push,
            push_counts,
            subscriptions,
            dynamo_ops,
            capacity,
        })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The WebSocket endpoint, as the console is told it.
    pub fn ws_url(&self) -> String {
        format!("{}{WS_PATH}", self.base_url().replacen("http", "ws", 1))
    }

    /// A valid ID token of a local agent (`alice`, `bob`, `sam`).
    pub fn token(&self, agent: &str) -> String {
        self.issuer
            .agent(agent)
            .map(|a| self.issuer.token_for(a))
            .unwrap_or_default()
    }

    /// A valid ID token for anyone: tests sign in agents of their own.
    pub fn token_for(&self, agent: &LocalAgent) -> String {
        self.issuer.token_for(agent)
    }
}

/// The local stack's variables with the user's account in place of the
/// simulator's, Twilio reaching the server at the public URL.
fn with_real_twilio(
    mut env: HashMap<String, String>,
    twilio: &RealTwilio,
) -> HashMap<String, String> {
    for name in crate::twilio_account::SETTINGS {
        env.remove(*name);
        if let Some(value) = twilio.settings.get(*name) {
            env.insert((*name).to_owned(), value.clone());
        }
    }
    env.insert(
        vars::TWILIO_API_BASE_URL.to_owned(),
        twilio.api_base_url.clone(),
    );
    env.insert(
        vars::ALLOWED_DESTINATIONS.to_owned(),
        twilio.confirmed.join(","),
    );
    env.insert(
        vars::PUBLIC_BASE_URL.to_owned(),
        twilio.public_url.as_str().trim_end_matches('/').to_owned(),
    );
    env
}

/// Lets a caller wait for something the stack does asynchronously.
pub async fn eventually<T>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
