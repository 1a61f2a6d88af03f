//! `dev/smoke`'s checks: all pass against the local stack, each fails
//! against a server that gets it wrong, and a deployed stack's description
//! becomes the right target. (`.ci/run` also runs `dev/smoke --local`.)

use std::time::Duration;

use serde_json::json;
use warm_transfer_core::config::Secret;
use warm_transfer_dev::local::{LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, LocalOptions, LocalStack};
use warm_transfer_dev::sim::Script;
use warm_transfer_dev::smoke::{self, Checked, Outcome, Target, TestCall, TwilioSecret};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn local_target(stack: &LocalStack, token: &str) -> Target {
    Target {
        base_url: stack.base_url(),
        twilio: Some(Ok(TwilioSecret {
            account_sid: LOCAL_ACCOUNT_SID.into(),
            api_base_url: url::Url::parse(&stack.sim.base_url()).unwrap(),
            auth_token: Secret::new(token),
            api_key: None,
        })),
        discovery_url: Some(format!(
            "{}/.well-known/openid-configuration",
            stack.issuer.issuer()
        )),
        call: None,
    }
}

fn outcome<'a>(results: &'a [Checked], name: &str) -> &'a Outcome {
    &results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {results:?}"))
        .outcome
}

#[tokio::test]
async fn every_check_passes_against_the_local_stack_with_a_call_to_its_end() {
    let stack = LocalStack::start(LocalOptions::default()).await.unwrap();
    let customer = "+15550100002";
    stack.sim.script(
        customer,
        Script::answer_after(Duration::from_millis(300))
            .then_hang_up_after(Duration::from_millis(500)),
    );
    let mut target = local_target(&stack, LOCAL_AUTH_TOKEN);
    target.call = Some(TestCall {
        agent: "+15550100001".into(),
        customer: customer.into(),
        token: Secret::new(stack.token("alice")),
        timeout: Duration::from_secs(20),
    });
    let results = smoke::run(&target).await;
    assert_eq!(results.len(), 6, "{results:?}");
    for result in &results {
        assert!(matches!(result.outcome, Outcome::Pass(_)), "{result}");
    }
    assert_eq!(stack.sim.calls_to(customer), 1);
}

#[tokio::test]
async fn a_token_twilio_refuses_fails() {
    let stack = LocalStack::start(LocalOptions::default()).await.unwrap();
    let results = smoke::run(&local_target(&stack, "a-rotated-away-token")).await;
    let Outcome::Fail(reason) = outcome(&results, "Twilio accepts the secret") else {
        panic!("{results:?}");
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(!reason.contains("a-rotated-away-token"), "{reason}");
}

#[tokio::test]
async fn a_server_that_lets_anything_through_fails_the_security_checks() {
    // Answers 200 to everything: an open webhook, an open front end, no page.
    let open = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&open)
        .await;
    let target = Target {
        base_url: open.uri(),
        twilio: None,
        discovery_url: Some(format!("{}/.well-known/openid-configuration", open.uri())),
        call: None,
    };
    let results = smoke::run(&target).await;
    for name in [
        "console loads",
        "unsigned webhook refused",
        "front end wants a token",
        "sign-in configured",
    ] {
        assert!(
            matches!(outcome(&results, name), Outcome::Fail(_)),
            "{name}: {results:?}"
        );
    }
    assert!(matches!(
        outcome(&results, "Twilio accepts the secret"),
        Outcome::Skip(_)
    ));

    // Nothing there at all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let results = smoke::run(&Target {
        base_url: closed,
        ..Target::default()
    })
    .await;
    assert!(matches!(
        outcome(&results, "console loads"),
        Outcome::Fail(_)
    ));
}

/// `aws cloudformation describe-stacks` of a stack, as the AWS CLI prints it.
fn described(outputs: &[(&str, &str)], parameters: &[(&str, &str)]) -> serde_json::Value {
    json!({ "Stacks": [{
        "StackName": "wt",
        "Outputs": outputs.iter().map(|(k, v)| json!({ "OutputKey": k, "OutputValue": v })).collect::<Vec<_>>(),
        "Parameters": parameters.iter().map(|(k, v)| json!({ "ParameterKey": k, "ParameterValue": v })).collect::<Vec<_>>(),
    }]})
}

#[test]
fn a_deployed_stack_is_read_from_its_outputs_parameters_and_secret() {
    let api = "https://abc123.execute-api.eu-west-1.amazonaws.com";
    let cognito = described(
        &[("ApiBaseUrl", api), ("AgentUserPoolId", "eu-west-1_AbCdEf")],
        &[("TwilioAccountSid", LOCAL_ACCOUNT_SID), ("OidcIssuer", "")],
    );
    let secret = json!({ "TWILIO_AUTH_TOKEN": "t", "TWILIO_API_KEY_SID": "SK1", "TWILIO_API_KEY_SECRET": "s" });
    let target = smoke::target_from_stack(&cognito, Ok(secret)).unwrap();
    assert_eq!(target.base_url, api);
    assert_eq!(
        target.discovery_url.as_deref(),
        Some(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf/.well-known/openid-configuration"
        )
    );
    let twilio = target.twilio.unwrap().unwrap();
    assert_eq!(twilio.account_sid, LOCAL_ACCOUNT_SID);
    assert_eq!(twilio.api_base_url.as_str(), "https://api.twilio.com/");
    assert_eq!(twilio.api_key.unwrap().0, "SK1");

    // Another OpenID Connect provider; a secret still without its token.
    let oidc = described(
        &[("ApiBaseUrl", api)],
        &[
            ("TwilioAccountSid", LOCAL_ACCOUNT_SID),
            ("OidcIssuer", "https://login.example.com/"),
        ],
    );
    let target = smoke::target_from_stack(&oidc, Ok(json!({ "TWILIO_AUTH_TOKEN": "" }))).unwrap();
    assert_eq!(
        target.discovery_url.as_deref(),
        Some("https://login.example.com/.well-known/openid-configuration")
    );
    let problem = target.twilio.unwrap().unwrap_err();
    assert!(problem.contains("TWILIO_AUTH_TOKEN"), "{problem}");

    // A secret that could not be read is a failure, not a skip.
    let target = smoke::target_from_stack(&oidc, Err("AccessDenied".into())).unwrap();
    assert_eq!(target.twilio.unwrap().unwrap_err(), "AccessDenied");

    // Not this product's stack.
    assert!(smoke::target_from_stack(&described(&[], &[]), Ok(json!({}))).is_err());
}
