//! The secret loader against a real Secrets Manager API (moto_server on
//! loopback): a function starts from the secret `SECRET_ARN` names, refuses
//! to start on a missing or malformed one with a message naming what is
//! wrong, validates webhooks with the primary and the secondary token, and a
//! warm function takes a rotated secret when it re-reads it.

use std::collections::HashMap;
use std::time::Duration;

use lambda_http::http::StatusCode;
use warm_transfer_core::config::{Config, vars};
use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_core::endpoint::HttpEndpoint;
use warm_transfer_core::handlers::{App, StartupError};
use warm_transfer_core::secrets::{SecretKeeper, SecretsManagerSource};
use warm_transfer_dev::events::{self, EVENTS_ACCOUNT_SID, EVENTS_AUTH_TOKEN};
use warm_transfer_dev::moto::MotoServer;

/// A deployed function's environment: no secret value, only the secret's ARN.
fn env(secret_arn: &str) -> HashMap<String, String> {
    [
        (vars::TWILIO_ACCOUNT_SID, EVENTS_ACCOUNT_SID),
        (vars::TABLE_NAME, "calls-secrets"),
        // Never reached: the webhook below is stateless.
        (vars::DYNAMODB_ENDPOINT, "http://127.0.0.1:9"),
        (vars::DEFAULT_CALLER_ID, "+15005550006"),
        (vars::SECRET_ARN, secret_arn),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn secret(primary: &str, secondary: Option<&str>) -> String {
    let mut fields = serde_json::json!({
        "TWILIO_AUTH_TOKEN": primary,
    });
    if let Some(secondary) = secondary {
        fields["TWILIO_AUTH_TOKEN_SECONDARY"] = secondary.into();
    }
    fields.to_string()
}

async fn start(moto: &MotoServer, env: HashMap<String, String>) -> Result<App, StartupError> {
    let id = env[vars::SECRET_ARN].clone();
    let source = SecretsManagerSource::from_sdk_config(&moto.sdk_config().await, id);
    App::start(env, Some(source)).await
}

async fn startup_error(moto: &MotoServer, env: HashMap<String, String>) -> String {
    match start(moto, env).await {
        Ok(_) => panic!("start-up should have failed"),
        Err(error) => error.to_string(),
    }
}

/// dial-customer's recorded event, signed with [`EVENTS_AUTH_TOKEN`].
async fn dial_customer(app: &App) -> StatusCode {
    let text = events::event(Endpoint::DialCustomer).to_string();
    let request = lambda_http::request::from_str(&text).expect("API Gateway event");
    app.handle(HttpEndpoint::DialCustomer, request)
        .await
        .status()
}

#[tokio::test]
async fn webhooks_pass_with_the_primary_or_the_secondary_token_and_no_other() {
    let moto = MotoServer::start().await.unwrap();
    for (name, primary, secondary, expected) in [
        ("primary", EVENTS_AUTH_TOKEN, None, StatusCode::OK),
        (
            "secondary",
            "the-next-token",
            Some(EVENTS_AUTH_TOKEN),
            StatusCode::OK,
        ),
        (
            "wrong",
            "the-next-token",
            Some("another-token"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let arn = moto
            .create_secret(name, &secret(primary, secondary))
            .await
            .unwrap();
        let app = start(&moto, env(&arn)).await.unwrap();
        assert_eq!(dial_customer(&app).await, expected, "{name}");
    }
}

#[tokio::test]
async fn a_missing_secret_fails_start_up_naming_it() {
    let moto = MotoServer::start().await.unwrap();
    let error = startup_error(&moto, env("warm-transfer/absent")).await;
    assert!(
        error.contains("secret warm-transfer/absent could not be read"),
        "{error}"
    );
    assert!(error.contains("ResourceNotFoundException"), "{error}");
}

#[tokio::test]
async fn a_malformed_secret_fails_start_up_saying_what_is_wrong() {
    let moto = MotoServer::start().await.unwrap();
    for (name, text, expected) in [
        ("not-json", "token=abc", "not a JSON object of strings"),
        (
            "shared-api-token",
            r#"{"TWILIO_AUTH_TOKEN":"t","API_TOKEN":"a"}"#,
            "unknown field API_TOKEN",
        ),
        (
            "empty-token",
            r#"{"TWILIO_AUTH_TOKEN":" "}"#,
            "field TWILIO_AUTH_TOKEN is missing or empty",
        ),
        (
            "typo",
            r#"{"TWILIO_AUTH_TOKEN":"t","TWILIO_AUTHTOKEN":"x"}"#,
            "unknown field TWILIO_AUTHTOKEN",
        ),
        (
            "no-key-secret",
            r#"{"TWILIO_AUTH_TOKEN":"t","TWILIO_API_KEY_SID":"SK00000000000000000000000000000000"}"#,
            "fields TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET go together",
        ),
    ] {
        let arn = moto.create_secret(name, text).await.unwrap();
        let error = startup_error(&moto, env(&arn)).await;
        assert!(
            error.contains(&format!("secret {arn} is malformed")),
            "{error}"
        );
        assert!(error.contains(expected), "{name}: {error}");
        assert!(!error.contains("abc"), "the value leaked: {error}");
    }
}

#[tokio::test]
async fn a_secret_value_in_the_environment_beside_the_arn_is_refused() {
    let moto = MotoServer::start().await.unwrap();
    let arn = moto
        .create_secret("both", &secret(EVENTS_AUTH_TOKEN, None))
        .await
        .unwrap();
    let mut env = env(&arn);
    env.insert(
        vars::TWILIO_AUTH_TOKEN.into(),
        "from-the-environment".into(),
    );
    let error = startup_error(&moto, env).await;
    assert!(
        error.contains("TWILIO_AUTH_TOKEN is set in the environment while SECRET_ARN is set"),
        "{error}"
    );
    assert!(!error.contains("from-the-environment"), "{error}");
}

#[tokio::test]
async fn a_warm_function_takes_the_rotated_secret_and_keeps_it_when_a_re_read_fails() {
    let moto = MotoServer::start().await.unwrap();
    let arn = moto
        .create_secret("rotated", &secret("old-token", None))
        .await
        .unwrap();
    let source = SecretsManagerSource::from_sdk_config(&moto.sdk_config().await, &arn);
    let mut env = env(&arn);
    warm_transfer_core::secrets::merge_into_env(&mut env, &source)
        .await
        .unwrap();
    let config = Config::from_map(&env).unwrap();
    let keeper = SecretKeeper::refreshed(source, &config, Duration::ZERO);
    assert_eq!(keeper.current().signing_tokens(), ["old-token"]);

    // Nothing changed: no new values.
    assert!(keeper.refresh_if_due().await.is_none());

    let client = moto.secrets_client().await;
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret("new-token", Some("old-token")))
        .send()
        .await
        .unwrap();
    let fresh = keeper.refresh_if_due().await.expect("new values");
    assert_eq!(fresh.signing_tokens(), ["new-token", "old-token"]);
    assert_eq!(
        fresh.rest_credentials(EVENTS_ACCOUNT_SID).1.expose(),
        "new-token",
        "REST calls use the new primary, which Twilio accepts as its secondary"
    );

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    assert!(keeper.refresh_if_due().await.is_none());
    assert_eq!(
        keeper.current().signing_tokens(),
        ["new-token", "old-token"],
        "a malformed re-read keeps the values in force"
    );
}

/// The console page, get-call and the push functions may not read the
/// secret (`Endpoint::reads_secret`): they start with no `SECRET_ARN` and
/// no token, where a webhook function refuses to; and what starts so
/// accepts no webhook signature, not even one made with an empty token.
#[tokio::test]
async fn a_function_that_never_uses_the_secret_starts_without_it() {
    let mut env = env("unused");
    env.remove(vars::SECRET_ARN);
    let console = App::start_for(Endpoint::Console, env.clone(), None)
        .await
        .expect("the console starts without the secret");
    let page = events::event(Endpoint::Console).to_string();
    let request = lambda_http::request::from_str(&page).expect("API Gateway event");
    let response = console.handle(HttpEndpoint::Console, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    App::start_for(Endpoint::GetCall, env.clone(), None)
        .await
        .expect("get-call starts without the secret");
    // Handed a signed webhook anyway, it has no token to accept it with.
    assert_eq!(dial_customer(&console).await, StatusCode::FORBIDDEN);

    let refused = match App::start_for(Endpoint::DialCustomer, env, None).await {
        Ok(_) => panic!("a webhook function needs its token"),
        Err(error) => error.to_string(),
    };
    assert!(refused.contains(vars::TWILIO_AUTH_TOKEN), "{refused}");
}
