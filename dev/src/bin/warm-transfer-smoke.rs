//! `dev/smoke`: checks a running stack, one pass/fail line per check, and
//! exits non-zero when any fails (see `warm_transfer_dev::smoke`).
//!
//! Where: `--stack NAME [--region R]` (a deployed stack, read with the AWS
//! CLI), `--base-url URL [--oidc-issuer URL]` (any running API; the Twilio
//! credentials, when wanted, from the environment or dev/twilio.env), or
//! `--local` (starts the local stack and checks it over HTTP).
//! `--call AGENT_NUMBER CUSTOMER_NUMBER` also places a call, signed in with
//! `--token` or `WARM_TRANSFER_ID_TOKEN` (locally: as alice).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use warm_transfer_core::config::{Config, Secret, TwilioCredentials, vars};
use warm_transfer_dev::local::{LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, LocalOptions, LocalStack};
use warm_transfer_dev::sim::Script;
use warm_transfer_dev::smoke::{self, Outcome, Target, TestCall, TwilioSecret};
use warm_transfer_dev::twilio_account::{SETTINGS_FILE, read_settings};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: dev/smoke (--stack NAME [--region R] | --base-url URL [--oidc-issuer URL] | --local) \
                     [--call AGENT_NUMBER CUSTOMER_NUMBER [--token ID_TOKEN] [--call-timeout SECS]]";

#[derive(Default)]
struct Args {
    stack: Option<String>,
    region: Option<String>,
    base_url: Option<String>,
    oidc_issuer: Option<String>,
    local: bool,
    call: Option<(String, String)>,
    token: Option<String>,
    call_timeout: u64,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        call_timeout: 300,
        ..Args::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--stack" => parsed.stack = Some(value()?),
            "--region" => parsed.region = Some(value()?),
            "--base-url" => parsed.base_url = Some(value()?),
            "--oidc-issuer" => parsed.oidc_issuer = Some(value()?),
            "--token" => parsed.token = Some(value()?),
            "--call-timeout" => {
                parsed.call_timeout = value()?
                    .parse()
                    .map_err(|_| "--call-timeout needs seconds")?;
            }
            "--call" => parsed.call = Some((value()?, value()?)),
            "--local" => parsed.local = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let targets = [
        parsed.stack.is_some(),
        parsed.base_url.is_some(),
        parsed.local,
    ];
    if targets.iter().filter(|t| **t).count() != 1 {
        return Err(format!("give one of --stack, --base-url, --local\n{USAGE}"));
    }
    Ok(parsed)
}

/// The AWS CLI's JSON answer (the user's own credentials and profile).
fn aws(args: &[&str], region: Option<&str>) -> Result<String, String> {
    let mut command = Command::new("aws");
    command.args(args);
    if let Some(region) = region {
        command.args(["--region", region]);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run the AWS CLI (aws): {e}"))?;
    if !output.status.success() {
        let error = String::from_utf8_lossy(&output.stderr);
        return Err(format!("aws {}: {}", args[..2].join(" "), error.trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn stack_target(name: &str, region: Option<&str>) -> Result<Target, Error> {
    let description = aws(
        &[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            name,
            "--output",
            "json",
        ],
        region,
    )?;
    let description: Value = serde_json::from_str(&description)?;
    let secret_id = format!("{name}/secrets");
    let secret = aws(
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            &secret_id,
            "--query",
            "SecretString",
            "--output",
            "text",
        ],
        region,
    )
    .and_then(|text| {
        serde_json::from_str::<Value>(&text).map_err(|_| {
            format!("the secret {secret_id} is not a JSON object (docs/configuration.md)")
        })
    });
    Ok(smoke::target_from_stack(&description, secret)?)
}

/// `--base-url`: the Twilio credentials of a local `--twilio` run, if set.
fn settings_secret() -> Result<Option<TwilioSecret>, Error> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let file = warm_transfer_dev::paths::workspace().join(SETTINGS_FILE);
    let mut settings = read_settings(&env, &file)?;
    if !settings.contains_key(vars::TWILIO_ACCOUNT_SID) {
        return Ok(None);
    }
    settings.insert(vars::TABLE_NAME.into(), "unused".into());
    settings
        .entry(vars::DEFAULT_CALLER_ID.into())
        .or_insert_with(|| "+15005550006".into());
    let config = Config::from_map(&settings)?;
    Ok(Some(TwilioSecret {
        account_sid: config.twilio_account_sid.clone(),
        api_base_url: config.twilio_api_base_url.clone(),
        auth_token: config.twilio_auth_token.clone(),
        api_key: match config.twilio_credentials {
            TwilioCredentials::ApiKey { sid, secret } => Some((sid, secret)),
            TwilioCredentials::AuthToken => None,
        },
    }))
}

fn call(args: &Args, token: Option<String>) -> Result<Option<TestCall>, Error> {
    let Some((agent, customer)) = &args.call else {
        return Ok(None);
    };
    let token = token
        .or_else(|| args.token.clone())
        .or_else(|| std::env::var("WARM_TRANSFER_ID_TOKEN").ok())
        .ok_or("--call needs an agent's ID token: --token or WARM_TRANSFER_ID_TOKEN (docs/deploy.md, \"After deploying\")")?;
    Ok(Some(TestCall {
        agent: agent.clone(),
        customer: customer.clone(),
        token: Secret::new(token),
        timeout: Duration::from_secs(args.call_timeout),
    }))
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    match smoke_test(&args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("smoke: {error}");
            std::process::exit(2);
        }
    }
}

/// Whether every check passed (or was skipped).
async fn smoke_test(args: &Args) -> Result<bool, Error> {
    // Kept alive while the checks run.
    let mut local = None;
    let target = if let Some(name) = &args.stack {
        let mut target = stack_target(name, args.region.as_deref())?;
        target.call = call(args, None)?;
        target
    } else if let Some(base_url) = &args.base_url {
        Target {
            base_url: base_url.trim_end_matches('/').to_owned(),
            twilio: settings_secret()?.map(Ok),
            discovery_url: args.oidc_issuer.as_ref().map(|issuer| {
                format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                )
            }),
            call: call(args, None)?,
        }
    } else {
        let stack = LocalStack::start(LocalOptions::default()).await?;
        if let Some((_, customer)) = &args.call {
            // The simulated customer answers, talks a moment, hangs up.
            stack.sim.script(
                customer,
                Script::answer_after(Duration::from_secs(1))
                    .then_hang_up_after(Duration::from_secs(2)),
            );
        }
        let target = Target {
            base_url: stack.base_url(),
            twilio: Some(Ok(TwilioSecret {
                account_sid: LOCAL_ACCOUNT_SID.into(),
                api_base_url: url::Url::parse(&stack.sim.base_url())?,
                auth_token: Secret::new(LOCAL_AUTH_TOKEN),
                api_key: None,
            })),
            discovery_url: Some(format!(
                "{}/.well-known/openid-configuration",
                stack.issuer.issuer()
            )),
            call: call(args, Some(stack.token("alice")))?,
        };
        local = Some(stack);
        target
    };
    println!("smoke test of {}", target.base_url);
    let results = smoke::run(&target).await;
    drop(local);
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let failed = count(|o| matches!(o, Outcome::Fail(_)));
    println!(
        "smoke: {} passed, {failed} failed, {} skipped",
        count(|o| matches!(o, Outcome::Pass(_))),
        count(|o| matches!(o, Outcome::Skip(_)))
    );
    Ok(failed == 0)
}
