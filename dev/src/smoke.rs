//! `dev/smoke`: is a deployed stack (or any base URL, the local stack
//! included) working? Each check prints a pass or fail line: the console
//! loads, an unsigned webhook is refused, the front end wants a token, Twilio
//! accepts the secret's credentials, sign-in is reachable; optionally one
//! real call, its timeline printed until the customer hangs up.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use warm_transfer_core::config::{Secret, vars};
use warm_transfer_core::twilio::{RetryPolicy, TwilioClient, TwilioClientConfig, TwilioError};

use crate::twilio_account::fetch_account;

const TWILIO_API: &str = "https://api.twilio.com";

/// Twilio credentials to try, as the stack's secret holds them.
#[derive(Debug, Clone)]
pub struct TwilioSecret {
    pub account_sid: String,
    pub api_base_url: url::Url,
    pub auth_token: Secret,
    pub api_key: Option<(String, Secret)>,
}

/// One real call: who rings, who is called, and the agent's ID token.
#[derive(Debug, Clone)]
pub struct TestCall {
    pub agent: String,
    pub customer: String,
    pub token: Secret,
    /// How long to wait for the customer to answer and hang up.
    pub timeout: Duration,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The API's base URL (`ApiBaseUrl`), without a trailing slash.
    pub base_url: String,
    /// None: the Twilio check is skipped (said so); an error: the secret
    /// could not be read, a failure.
    pub twilio: Option<Result<TwilioSecret, String>>,
    /// The sign-in's OpenID Connect discovery document; None: skipped.
    pub discovery_url: Option<String>,
    pub call: Option<TestCall>,
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// A check's name and outcome, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub name: &'static str,
    pub outcome: Outcome,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, detail) = match &self.outcome {
            Outcome::Pass(d) => ("PASS", d),
            Outcome::Fail(d) => ("FAIL", d),
            Outcome::Skip(d) => ("SKIP", d),
        };
        write!(f, "{word}  {}: {detail}", self.name)
    }
}

/// Runs every check, printing each line as it is known (a call's timeline
/// too), and returns them.
pub async fn run(target: &Target) -> Vec<Checked> {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            return vec![Checked {
                name: "http client",
                outcome: Outcome::Fail(error.to_string()),
            }];
        }
    };
    let base = target.base_url.trim_end_matches('/');
    let mut results = Vec::new();
    let mut note = |checked: Checked| {
        println!("{checked}");
        results.push(checked);
    };
    note(Checked {
        name: "console loads",
        outcome: console(&http, base).await,
    });
    note(Checked {
        name: "unsigned webhook refused",
        outcome: unsigned_webhook(&http, base).await,
    });
    note(Checked {
        name: "front end wants a token",
        outcome: no_token(&http, base).await,
    });
    note(Checked {
        name: "Twilio accepts the secret",
        outcome: match &target.twilio {
            Some(Ok(secret)) => twilio(secret).await,
            Some(Err(problem)) => Outcome::Fail(problem.clone()),
            None => Outcome::Skip(
                "no credentials to try (--stack reads the stack's secret; with --base-url, \
                 TWILIO_* from the environment or dev/twilio.env)"
                    .into(),
            ),
        },
    });
    note(Checked {
        name: "sign-in configured",
        outcome: match &target.discovery_url {
            Some(url) => sign_in(&http, url).await,
            None => Outcome::Skip("no issuer known (give --stack or --oidc-issuer)".into()),
        },
    });
    if let Some(call) = &target.call {
        note(Checked {
            name: "a real call",
            outcome: place_call(&http, base, call).await,
        });
    }
    results
}

fn status_was(expected: u16, got: reqwest::StatusCode, what: &str) -> Outcome {
    if got.as_u16() == expected {
        Outcome::Pass(format!("{expected}"))
    } else {
        Outcome::Fail(format!("expected {expected}, got {got}: {what}"))
    }
}

async fn console(http: &reqwest::Client, base: &str) -> Outcome {
    let response = match http.get(format!("{base}/console")).send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Fail(format!("cannot reach it: {}", error.without_url())),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Outcome::Fail(format!("GET /console answered {status}"));
    }
    if !body.to_ascii_lowercase().contains("<html") {
        return Outcome::Fail("GET /console answered something that is not a page".into());
    }
    Outcome::Pass(format!("{status}, {} bytes", body.len()))
}

async fn unsigned_webhook(http: &reqwest::Client, base: &str) -> Outcome {
    // Twilio's form as a stranger could post it, without X-Twilio-Signature.
    let form = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", "CA00000000000000000000000000000000"),
        ("CallStatus", "in-progress"),
    ];
    match http
        .post(format!("{base}/twiml/dial-customer"))
        .form(&form)
        .send()
        .await
    {
        Ok(response) => status_was(
            403,
            response.status(),
            "a webhook without a signature must be refused",
        ),
        Err(error) => Outcome::Fail(format!("cannot reach it: {}", error.without_url())),
    }
}

async fn no_token(http: &reqwest::Client, base: &str) -> Outcome {
    match http
        .get(format!("{base}/calls/CA00000000000000000000000000000000"))
        .send()
        .await
    {
        Ok(response) => status_was(
            401,
            response.status(),
            "a front-end route without a token must be refused",
        ),
        Err(error) => Outcome::Fail(format!("cannot reach it: {}", error.without_url())),
    }
}

/// Fetches the account with each credential the secret holds: the REST
/// one, and the auth token that signs webhooks.
async fn twilio(secret: &TwilioSecret) -> Outcome {
    let mut tries = vec![(
        "auth token",
        secret.account_sid.clone(),
        secret.auth_token.clone(),
    )];
    if let Some((sid, key_secret)) = &secret.api_key {
        tries.push(("API key", sid.clone(), key_secret.clone()));
    }
    let mut passed = Vec::new();
    for (what, username, password) in tries {
        let client = TwilioClient::new(TwilioClientConfig {
            api_base_url: secret.api_base_url.clone(),
            account_sid: secret.account_sid.clone(),
            username,
            password,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
        });
        let client = match client {
            Ok(client) => client,
            Err(error) => return Outcome::Fail(error.to_string()),
        };
        match client.send(&fetch_account(&secret.account_sid)).await {
            Ok(body) => {
                let account: Value = serde_json::from_slice(&body).unwrap_or_default();
                passed.push(format!(
                    "{what} accepted ({} account)",
                    account["type"].as_str().unwrap_or("unknown")
                ));
            }
            Err(TwilioError::Api { status: 401, .. }) => {
                return Outcome::Fail(format!(
                    "Twilio refuses the secret's {what} (401): put the current one in the secret (docs/deploy.md)"
                ));
            }
            Err(error) => return Outcome::Fail(format!("{what}: {error}")),
        }
    }
    Outcome::Pass(passed.join(", "))
}

async fn sign_in(http: &reqwest::Client, url: &str) -> Outcome {
    let response = match http.get(url).send().await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Fail(format!(
                "discovery document unreachable: {}",
                error.without_url()
            ));
        }
    };
    let status = response.status();
    let document: Value = response.json().await.unwrap_or_default();
    match (
        status.is_success(),
        document["issuer"].as_str(),
        document["authorization_endpoint"].as_str(),
    ) {
        (true, Some(issuer), Some(_)) => Outcome::Pass(format!("issuer {issuer}")),
        _ => Outcome::Fail(format!(
            "{url} answered {status} without an issuer and an authorization endpoint"
        )),
    }
}

/// Starts a call as the agent and prints its history as it grows, until
/// the call ends; passes when the customer answered and the call ended.
async fn place_call(http: &reqwest::Client, base: &str, call: &TestCall) -> Outcome {
    let body = serde_json::json!({ "agentNumber": call.agent, "customerNumber": call.customer });
    let started = http
        .post(format!("{base}/calls"))
        .bearer_auth(call.token.expose())
        .json(&body)
        .send()
        .await;
    let started = match started {
        Ok(response) if response.status().as_u16() == 201 => {
            response.json::<Value>().await.unwrap_or_default()
        }
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Outcome::Fail(format!("POST /calls answered {status}: {text}"));
        }
        Err(error) => return Outcome::Fail(format!("POST /calls: {}", error.without_url())),
    };
    let Some(sid) = started["callSid"].as_str() else {
        return Outcome::Fail("POST /calls answered no callSid".into());
    };
    println!("      call {sid} started: the agent's phone rings first, then the customer's");
    let deadline = tokio::time::Instant::now() + call.timeout;
    let mut seen = BTreeSet::new();
    let mut answered = false;
    loop {
        let view = http
            .get(format!("{base}/calls/{sid}"))
            .bearer_auth(call.token.expose())
            .send()
            .await;
        let view: Value = match view {
            Ok(response) if response.status().is_success() => {
                response.json().await.unwrap_or_default()
            }
            Ok(response) => {
                return Outcome::Fail(format!("GET /calls/{sid} answered {}", response.status()));
            }
            Err(error) => {
                return Outcome::Fail(format!("GET /calls/{sid}: {}", error.without_url()));
            }
        };
        let mut events: Vec<&Value> = view["events"].as_array().into_iter().flatten().collect();
        events.sort_by_key(|e| e["at"].as_str().unwrap_or_default().to_owned());
        for event in events {
            let line = format!(
                "{}  {:<6}  {}{}",
                event["at"].as_str().unwrap_or_default(),
                event["source"].as_str().unwrap_or_default(),
                event["kind"].as_str().unwrap_or_default(),
                event["detail"]
                    .as_str()
                    .map(|d| format!("  ({d})"))
                    .unwrap_or_default(),
            );
            if seen.insert(line.clone()) {
                println!("      {line}");
            }
        }
        if view["customerLeg"]["status"] == "in-progress" && !answered {
            answered = true;
            println!("      the customer answered; hang up to end the test");
        }
        if view["state"] == "ended" {
            return if answered {
                Outcome::Pass(format!("{sid}: the customer answered, then the call ended"))
            } else {
                Outcome::Fail(format!("{sid} ended before the customer answered"))
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return Outcome::Fail(format!(
                "{sid} still {} after {:?}",
                view["state"].as_str().unwrap_or("?"),
                call.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a deployed stack says of itself: `aws cloudformation
/// describe-stacks` (its outputs and parameters) and its secret's JSON.
pub fn target_from_stack(
    description: &Value,
    secret: Result<Value, String>,
) -> Result<Target, String> {
    let stack = &description["Stacks"][0];
    let pairs = |list: &str, key: &str, value: &str| -> HashMap<String, String> {
        stack[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some((
                    item[key].as_str()?.to_owned(),
                    item[value].as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let outputs = pairs("Outputs", "OutputKey", "OutputValue");
    let parameters = pairs("Parameters", "ParameterKey", "ParameterValue");
    let base_url = outputs
        .get("ApiBaseUrl")
        .ok_or("the stack has no ApiBaseUrl output: is it deployed from this template?")?
        .trim_end_matches('/')
        .to_owned();
    let discovery_url = match (outputs.get("AgentUserPoolId"), parameters.get("OidcIssuer")) {
        (Some(pool), _) => {
            let region = pool.split('_').next().unwrap_or_default();
            Some(format!(
                "https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/openid-configuration"
            ))
        }
        (None, Some(issuer)) if !issuer.is_empty() => Some(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )),
        _ => None,
    };
    let account_sid = parameters
        .get("TwilioAccountSid")
        .cloned()
        .unwrap_or_default();
    let twilio = secret.and_then(|secret| {
        let field = |name: &str| secret[name].as_str().filter(|v| !v.is_empty());
        let auth_token = field(vars::TWILIO_AUTH_TOKEN)
            .ok_or("the stack's secret holds no TWILIO_AUTH_TOKEN: put it in (docs/deploy.md)")?;
        let api_key = match (
            field(vars::TWILIO_API_KEY_SID),
            field(vars::TWILIO_API_KEY_SECRET),
        ) {
            (Some(sid), Some(key)) => Some((sid.to_owned(), Secret::new(key))),
            _ => None,
        };
        Ok(TwilioSecret {
            account_sid,
            api_base_url: url::Url::parse(TWILIO_API).map_err(|e| e.to_string())?,
            auth_token: Secret::new(auth_token),
            api_key,
        })
    });
    Ok(Target {
        base_url,
        twilio: Some(twilio),
        discovery_url,
        call: None,
    })
}
