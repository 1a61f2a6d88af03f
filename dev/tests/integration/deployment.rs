//! Keeps the SAM template, the function binaries, the `events/` fixtures and
//! the code in step: a function added, renamed or re-routed in one place and
//! not the others fails here, not in a deployed stack.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_norway::Value;
use warm_transfer_core::config::vars;
use warm_transfer_core::endpoint::{Caller, Endpoint};
use warm_transfer_core::secrets;
use warm_transfer_core::store::table::TABLE;

fn workspace() -> PathBuf {
    warm_transfer_dev::paths::workspace()
}

fn template() -> Value {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// `!Ref X`, `!Sub "..."` and friends parse as tagged values; this gives the
/// plain string inside, or the string itself.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) => text(&tagged.value),
        _ => None,
    }
}

/// (logical id, properties) of every serverless function in the template.
fn template_functions(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .map(|(id, resource)| {
            (
                id.as_str().unwrap().to_owned(),
                resource["Properties"].clone(),
            )
        })
        .collect()
}

/// The function a `CodeUri` deploys: the directory `cargo lambda build
/// --lambda-dir target/lambda` writes its `bootstrap` to.
fn built_function(code_uri: &str) -> &str {
    code_uri
        .strip_prefix("target/lambda/")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("CodeUri {code_uri} is not a cargo-lambda artefact"))
}

fn dir_names(dir: &str, suffix: &str) -> BTreeSet<String> {
    std::fs::read_dir(workspace().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(suffix).map(str::to_owned))
        .collect()
}

/// template.yaml is what its source renders (`warm_transfer_dev::template`):
/// an edit to the output alone would be lost at the next rendering, and an
/// edit to the source alone would not be deployed.
#[test]
fn the_template_is_rendered_from_its_source() {
    use warm_transfer_dev::template::{OUTPUT, SOURCE, render};
    let source = std::fs::read_to_string(workspace().join(SOURCE)).unwrap();
    let rendered = render(&source).unwrap();
    let committed = std::fs::read_to_string(workspace().join(OUTPUT)).unwrap();
    if let Some((line, (want, have))) = rendered
        .lines()
        .zip(committed.lines())
        .enumerate()
        .find(|(_, (want, have))| want != have)
    {
        panic!(
            "{OUTPUT}:{}: {have:?}, but {SOURCE} renders {want:?}: run \
             `cargo run -p warm-transfer-dev --bin template`",
            line + 1
        );
    }
    assert_eq!(
        rendered.lines().count(),
        committed.lines().count(),
        "{OUTPUT} is not what {SOURCE} renders: run `cargo run -p warm-transfer-dev --bin template`"
    );
    assert_eq!(rendered, committed, "{OUTPUT}: line ends");
}

#[test]
fn every_endpoint_has_a_function_a_binary_and_an_event() {
    let template = template();
    let in_template: BTreeSet<String> = template_functions(&template)
        .iter()
        .map(|(_, props)| {
            let uri = text(&props["CodeUri"]).unwrap();
            built_function(&uri).to_owned()
        })
        .collect();
    let in_code: BTreeSet<String> = Endpoint::ALL
        .iter()
        .map(|e| e.function_name().to_owned())
        .collect();
    let binaries = dir_names("functions", "");
    let events = dir_names("events", ".json");

    assert_eq!(in_template, in_code, "template.yaml vs Endpoint::ALL");
    assert_eq!(binaries, in_code, "functions/ vs Endpoint::ALL");
    assert_eq!(events, in_code, "events/*.json vs Endpoint::ALL");
}

#[test]
fn each_binary_serves_its_own_endpoint() {
    for endpoint in Endpoint::ALL {
        let main = workspace()
            .join("functions")
            .join(endpoint.function_name())
            .join("src/main.rs");
        let source = std::fs::read_to_string(&main).unwrap();
        let serves = format!("Endpoint::{endpoint:?})");
        assert!(
            source.contains(&serves),
            "{} must call serve({serves}",
            main.display()
        );
        // Every other endpoint is absent: no binary serves two routes.
        for other in Endpoint::ALL.iter().filter(|o| **o != endpoint) {
            assert!(!source.contains(&format!("Endpoint::{other:?})")));
        }
    }
}

#[test]
fn template_routes_match_the_handlers() {
    let template = template();
    for (id, props) in template_functions(&template) {
        let uri = text(&props["CodeUri"]).unwrap();
        let name = built_function(&uri);
        let endpoint = Endpoint::ALL
            .into_iter()
            .find(|e| e.function_name() == name)
            .unwrap_or_else(|| panic!("{id}: no endpoint serves {name}"));
        // SAM packages the artefact cargo-lambda built; it builds nothing itself.
        assert!(
            template["Resources"][&id]["Metadata"]["BuildMethod"].is_null(),
            "{id}"
        );
        if endpoint.caller() == Caller::Schedule {
            // An EventBridge schedule every minute, which the reconciler's
            // passes within an invocation cover without a gap; no route.
            let schedule = &props["Events"]["Schedule"];
            assert_eq!(schedule["Type"], "Schedule", "{id}");
            assert_eq!(
                schedule["Properties"]["Schedule"].as_str(),
                Some("rate(1 minute)"),
                "{id}"
            );
            assert!(
                warm_transfer_core::usecases::reconcile::WINDOW
                    + warm_transfer_core::usecases::reconcile::POLL
                    >= std::time::Duration::from_secs(60)
            );
            assert!(props["Events"]["Api"].is_null(), "{id}");
            continue;
        }
        if endpoint.caller() == Caller::WebSocket {
            websocket_route(&template, &id, endpoint);
            continue;
        }
        if endpoint.caller() == Caller::Stream {
            // The table's stream, sessions, history entries and directory
            // entries (presence) only, through
            // an event source mapping of its own (a SAM event would attach a
            // managed policy reading every stream in the account).
            assert!(props["Events"].is_null(), "{id}: no SAM event");
            let mapping = event_source_mapping(&template, &id);
            assert_eq!(
                text(&mapping["EventSourceArn"]).as_deref(),
                Some("CallsTable.StreamArn")
            );
            let pattern = text(&mapping["FilterCriteria"]["Filters"][0]["Pattern"]).unwrap();
            let pattern: serde_json::Value = serde_json::from_str(&pattern).unwrap();
            assert_eq!(
                pattern["dynamodb"]["Keys"]["sk"]["S"],
                serde_json::json!([
                    warm_transfer_core::store::SESSION_SK,
                    { "prefix": warm_transfer_core::store::EVENT_PREFIX },
                    { "prefix": warm_transfer_core::store::AGENT_PREFIX }
                ])
            );
            assert_eq!(
                pattern["eventName"],
                serde_json::json!(["INSERT", "MODIFY"])
            );
            assert_eq!(
                text(&template["Resources"]["CallsTable"]["Properties"]["StreamSpecification"]["StreamViewType"]).as_deref(),
                Some("NEW_AND_OLD_IMAGES"),
                "the publisher skips writes that changed no version"
            );
            continue;
        }
        if endpoint.caller() == Caller::Twilio {
            // A function event on the API: no authorizer, the signature is checked.
            let api = &props["Events"]["Api"];
            assert_eq!(api["Type"], "HttpApi", "{id}");
            let method = text(&api["Properties"]["Method"]).unwrap();
            let path = text(&api["Properties"]["Path"]).unwrap();
            assert_eq!(method, endpoint.method().as_str(), "{id} method");
            assert_eq!(path, endpoint.route(), "{id} path");
            assert!(
                api["Properties"]["Auth"].is_null(),
                "{id}: Twilio has no JWT"
            );
            continue;
        }
        // Front end and console: a route of their own (see the template).
        assert!(props["Events"].is_null(), "{id}: declared as a route");
        let route = route_of(&template, &id);
        assert_eq!(
            text(&route["RouteKey"]).unwrap(),
            format!("{} {}", endpoint.method(), endpoint.route()),
            "{id}"
        );
        let signed_in = endpoint.caller() == Caller::FrontEnd;
        assert_eq!(
            text(&route["AuthorizationType"]).unwrap(),
            if signed_in { "JWT" } else { "NONE" },
            "{id}"
        );
        assert_eq!(
            text(&route["AuthorizerId"]).as_deref(),
            signed_in.then_some("AgentsAuthorizer"),
            "{id}"
        );
    }
}

/// The explicit route whose integration invokes `function`, and checks the
/// integration and the permission API Gateway needs to call it.
fn route_of(template: &Value, function: &str) -> Value {
    let resources = template["Resources"].as_mapping().unwrap();
    let name = function.strip_suffix("Function").unwrap();
    let integration = &template["Resources"][format!("{name}Integration").as_str()];
    assert_eq!(
        integration["Type"], "AWS::ApiGatewayV2::Integration",
        "{name}"
    );
    let props = &integration["Properties"];
    assert_eq!(text(&props["IntegrationType"]).unwrap(), "AWS_PROXY");
    assert_eq!(text(&props["PayloadFormatVersion"]).unwrap(), "2.0");
    assert_eq!(
        text(&props["IntegrationUri"]).unwrap(),
        format!("{function}.Arn"),
        "{name}"
    );
    let permission = &template["Resources"][format!("{name}Permission").as_str()]["Properties"];
    assert_eq!(text(&permission["FunctionName"]).unwrap(), function);
    assert_eq!(permission["Principal"], "apigateway.amazonaws.com");
    let target = format!("integrations/${{{name}Integration}}");
    let routes: Vec<&Value> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
        .filter(|r| text(&r["Properties"]["Target"]).as_deref() == Some(target.as_str()))
        .collect();
    assert_eq!(routes.len(), 1, "{function}: one route");
    routes[0]["Properties"].clone()
}

/// The properties of the one event source mapping that invokes `function`.
fn event_source_mapping(template: &Value, function: &str) -> Value {
    let mappings: Vec<&Value> = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .filter(|r| text(&r["Properties"]["FunctionName"]).as_deref() == Some(function))
        .collect();
    assert_eq!(mappings.len(), 1, "{function}: one event source mapping");
    mappings[0]["Properties"].clone()
}

/// A WebSocket route of the push API: its integration invokes `function`,
/// which API Gateway may call for that route only; `$connect` gets the
/// issuer and audience the HTTP API's authorizer checks.
fn websocket_route(template: &Value, function: &str, endpoint: Endpoint) {
    let name = function.strip_suffix("Function").unwrap();
    let route = &template["Resources"][format!("{name}Route").as_str()]["Properties"];
    assert_eq!(text(&route["ApiId"]).as_deref(), Some("WebSocketApi"));
    assert_eq!(text(&route["RouteKey"]).as_deref(), Some(endpoint.route()));
    assert_eq!(
        text(&route["Target"]).unwrap(),
        format!("integrations/${{{name}Integration}}")
    );
    let integration = &template["Resources"][format!("{name}Integration").as_str()]["Properties"];
    assert_eq!(text(&integration["IntegrationType"]).unwrap(), "AWS_PROXY");
    assert!(
        text(&integration["IntegrationUri"])
            .unwrap()
            .contains(&format!("${{{function}.Arn}}")),
        "{name}"
    );
    let permission = &template["Resources"][format!("{name}Permission").as_str()]["Properties"];
    assert_eq!(text(&permission["FunctionName"]).unwrap(), function);
    assert!(
        text(&permission["SourceArn"])
            .unwrap()
            .ends_with(&format!("${{WebSocketApi}}/*/{}", endpoint.route())),
        "{name}"
    );
    let deployment = &template["Resources"]["WebSocketDeployment"];
    assert!(
        deployment["DependsOn"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|d| d.as_str() == Some(&format!("{name}Route"))),
        "{name}: deployed with its route"
    );
    if endpoint == Endpoint::WsConnect {
        let env = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        let authorizer =
            &template["Resources"]["AgentsAuthorizer"]["Properties"]["JwtConfiguration"];
        assert_eq!(env[vars::JWT_ISSUER], authorizer["Issuer"]);
        assert_eq!(env[vars::JWT_AUDIENCE], authorizer["Audience"][0]);
    }
}

#[test]
fn front_end_routes_need_an_agent_signed_in() {
    let template = template();
    let authorizer = &template["Resources"]["AgentsAuthorizer"];
    assert_eq!(authorizer["Type"], "AWS::ApiGatewayV2::Authorizer");
    let props = &authorizer["Properties"];
    assert_eq!(text(&props["AuthorizerType"]).unwrap(), "JWT");
    assert_eq!(text(&props["ApiId"]).unwrap(), "HttpApi");
    assert_eq!(props["IdentitySource"][0], "$request.header.Authorization");
    // The stack's Cognito pool by default, an external issuer when given.
    let issuer = serde_norway::to_string(&props["JwtConfiguration"]["Issuer"]).unwrap();
    assert!(
        issuer.contains("UseCognito") && issuer.contains("OidcIssuer"),
        "{issuer}"
    );
    assert!(issuer.contains("cognito-idp.${AWS::Region}.amazonaws.com/${AgentUserPool}"));
    let audience = serde_norway::to_string(&props["JwtConfiguration"]["Audience"]).unwrap();
    assert!(
        audience.contains("ConsoleUserPoolClient") && audience.contains("OidcAudience"),
        "{audience}"
    );
    let conditions = serde_norway::to_string(&template["Conditions"]["UseCognito"]).unwrap();
    assert!(conditions.contains("OidcIssuer"), "{conditions}");

    // The console is a public client: code + PKCE, no secret, back to its page.
    let client = &template["Resources"]["ConsoleUserPoolClient"]["Properties"];
    assert_eq!(client["GenerateSecret"], Value::Bool(false));
    assert_eq!(client["AllowedOAuthFlows"].as_sequence().unwrap().len(), 1);
    assert_eq!(client["AllowedOAuthFlows"][0], "code");
    let callback = serde_norway::to_string(&client["CallbackURLs"]).unwrap();
    assert!(callback.contains("/console"), "{callback}");
    // Agents cannot rewrite who they are or which numbers are theirs.
    let writable = client["WriteAttributes"].as_sequence().unwrap();
    for attribute in ["email", "custom:agent_numbers", "phone_number"] {
        assert!(!writable.iter().any(|w| w == attribute), "{attribute}");
    }
    let pool = &template["Resources"]["AgentUserPool"]["Properties"];
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        Value::Bool(true)
    );
    let group = &template["Resources"]["SupervisorsGroup"]["Properties"];
    assert_eq!(
        text(&group["GroupName"]).as_deref(),
        Some("SupervisorGroup")
    );

    // The console's page gets the sign-in settings, nobody else needs them.
    let console =
        &template["Resources"]["ConsoleFunction"]["Properties"]["Environment"]["Variables"];
    let names: BTreeSet<&str> = console
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, vars::CONSOLE_ONLY.iter().copied().collect());
    // No shared bearer token anywhere.
    assert!(template["Parameters"]["ApiToken"].is_null());
}

#[test]
fn template_environment_is_what_the_configuration_reads() {
    let template = template();
    let variables = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    let in_template: BTreeSet<&str> = variables
        .keys()
        .map(|k| k.as_str().unwrap())
        .filter(|k| *k != "RUST_LOG")
        .collect();
    // Only local runs point these elsewhere; in AWS the defaults are right.
    // The secret values come from the secret, never the environment.
    let local_only = [vars::TWILIO_API_BASE_URL, vars::DYNAMODB_ENDPOINT];
    let read_by_code: BTreeSet<&str> = vars::ALL
        .iter()
        .copied()
        .filter(|v| !local_only.contains(v) && !secrets::FIELDS.contains(v))
        .collect();
    // The secret's ARN goes only to the functions that read the secret
    // (checked below, with their policies).
    let everywhere: BTreeSet<&str> = read_by_code
        .iter()
        .copied()
        .filter(|v| !vars::CONSOLE_ONLY.contains(v) && !vars::PUSH_ONLY.contains(v))
        .filter(|v| *v != vars::SECRET_ARN)
        .collect();
    assert_eq!(in_template, everywhere);

    // No function overrides the globals with a variable the code does not read.
    for (id, props) in template_functions(&template) {
        if let Some(vars) = props["Environment"]["Variables"].as_mapping() {
            for key in vars.keys() {
                assert!(
                    read_by_code.contains(key.as_str().unwrap()),
                    "{id}: {key:?}"
                );
            }
        }
    }
}

/// The functions that read the stack's one secret are told its ARN, the
/// others not even that, and no secret value reaches a function's
/// environment (nor a parameter that could).
#[test]
fn no_secret_value_in_any_function_environment() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        globals[vars::SECRET_ARN].is_null(),
        "not every function reads it"
    );
    for (id, props) in template_functions(&template) {
        let endpoint = endpoint_of(&id, &props);
        let arn = text(&props["Environment"]["Variables"][vars::SECRET_ARN]);
        assert_eq!(
            arn.as_deref(),
            endpoint.reads_secret().then_some("AppSecret"),
            "{id}"
        );
    }
    let environments = std::iter::once(globals.clone()).chain(
        template_functions(&template)
            .into_iter()
            .map(|(_, props)| props["Environment"]["Variables"].clone()),
    );
    for variables in environments {
        for field in secrets::FIELDS {
            assert!(variables[*field].is_null(), "{field} in an environment");
        }
    }
    for (name, parameter) in template["Parameters"].as_mapping().unwrap() {
        assert!(
            parameter["NoEcho"].is_null(),
            "{name:?}: a secret parameter"
        );
    }
    let secret = &template["Resources"]["AppSecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
}

/// The endpoint a function of the template deploys.
fn endpoint_of(id: &str, props: &Value) -> Endpoint {
    let uri = text(&props["CodeUri"]).unwrap();
    let name = built_function(&uri);
    Endpoint::ALL
        .into_iter()
        .find(|e| e.function_name() == name)
        .unwrap_or_else(|| panic!("{id}: no endpoint serves {name}"))
}

/// Each (IAM action, resource) a function's policies allow; resources as
/// the template names them (`CallsTable.Arn`, `AppSecret`, ...).
fn grants(id: &str, props: &Value) -> BTreeSet<(String, String)> {
    let mut granted = BTreeSet::new();
    for policy in props["Policies"].as_sequence().into_iter().flatten() {
        let statements = policy["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{id}: an inline policy, not a managed or SAM one"));
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "{id}");
            assert!(statement["Condition"].is_null(), "{id}");
            let resource = text(&statement["Resource"])
                .unwrap_or_else(|| panic!("{id}: one resource per statement"));
            for action in statement["Action"].as_sequence().unwrap() {
                let action = action.as_str().unwrap();
                assert!(!action.contains('*'), "{id}: {action}");
                granted.insert((action.to_owned(), resource.clone()));
            }
        }
    }
    granted
}

/// What `Endpoint::needs` says the function's code calls, as the grants
/// that allow exactly that.
fn needed(endpoint: Endpoint) -> BTreeSet<(String, String)> {
    let needs = endpoint.needs();
    let pair = |action: &str, resource: &str| (action.to_owned(), resource.to_owned());
    let mut needed: BTreeSet<(String, String)> = needs
        .table
        .iter()
        .map(|action| pair(&action.iam(), "CallsTable.Arn"))
        .collect();
    if endpoint.reads_secret() {
        needed.insert(pair("secretsmanager:GetSecretValue", "AppSecret"));
    }
    if needs.open_sessions_index {
        let index = format!("${{CallsTable.Arn}}/index/{}", TABLE.open_sessions.name);
        needed.insert(pair("dynamodb:Query", &index));
    }
    if needs.post_to_connections {
        needed.insert(pair(
            "execute-api:ManageConnections",
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${WebSocketStage}/POST/@connections/*",
        ));
    }
    if endpoint.caller() == Caller::Stream {
        // What Lambda's poller does with the function's role: read this
        // table's stream, and describe a batch that failed every attempt.
        for action in [
            "DescribeStream",
            "GetRecords",
            "GetShardIterator",
            "ListStreams",
        ] {
            needed.insert(pair(&format!("dynamodb:{action}"), "CallsTable.StreamArn"));
        }
        needed.insert(pair("sqs:SendMessage", "StreamFailuresQueue.Arn"));
    }
    needed
}

/// Each function's role allows exactly what its code calls
/// (`shared/src/handlers/needs.rs`): a permission missing fails a call at
/// the worst moment (start-call lacked the `GetItem` its write's retry
/// makes), one too many is reach a stranger could use.
#[test]
fn each_function_is_granted_exactly_what_its_code_needs() {
    let template = template();
    for (id, props) in template_functions(&template) {
        let endpoint = endpoint_of(&id, &props);
        assert_eq!(grants(&id, &props), needed(endpoint), "{id}");
        // Nothing SAM would add behind the policies' back: no managed
        // policy, no event that brings one (stream and queue events do).
        assert!(props["ManagedPolicyArns"].is_null(), "{id}");
        assert!(props["Role"].is_null(), "{id}");
        for (name, event) in props["Events"].as_mapping().into_iter().flatten() {
            let kind = text(&event["Type"]).unwrap();
            assert!(
                ["HttpApi", "Schedule"].contains(&kind.as_str()),
                "{id}: event {name:?} of type {kind}"
            );
        }
    }
}

/// A stream batch that fails every attempt is described in an encrypted
/// queue rather than dropped unseen, and the alarms watch it.
#[test]
fn a_stream_batch_that_keeps_failing_goes_to_an_encrypted_queue() {
    let template = template();
    let mapping = event_source_mapping(&template, "StreamPublisherFunction");
    assert_eq!(
        text(&mapping["DestinationConfig"]["OnFailure"]["Destination"]).as_deref(),
        Some("StreamFailuresQueue.Arn")
    );
    assert!(mapping["MaximumRetryAttempts"].as_u64().unwrap() <= 2);
    assert_eq!(mapping["BisectBatchOnFunctionError"], Value::Bool(true));
    let queue = &template["Resources"]["StreamFailuresQueue"];
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    assert_eq!(
        queue["Properties"]["SqsManagedSseEnabled"],
        Value::Bool(true),
        "encrypted at rest"
    );
    // Kept longer than a long weekend: the records stay in the stream for
    // 24 hours, the description of what failed for 14 days.
    assert_eq!(queue["Properties"]["MessageRetentionPeriod"], 1_209_600);
}

#[test]
fn the_table_is_the_one_the_store_and_tests_create() {
    use warm_transfer_core::store::table::TABLE;
    let template = template();
    let table = &template["Resources"]["CallsTable"]["Properties"];
    assert_eq!(table["BillingMode"], TABLE.billing_mode);
    let keys: Vec<(String, String)> = table["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                text(&k["AttributeName"]).unwrap(),
                text(&k["KeyType"]).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            (TABLE.partition_key.to_owned(), "HASH".to_owned()),
            (TABLE.sort_key.to_owned(), "RANGE".to_owned())
        ]
    );
    let definitions: Vec<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| {
            (
                text(&d["AttributeName"]).unwrap(),
                text(&d["AttributeType"]).unwrap(),
            )
        })
        .collect();
    let index = &TABLE.open_sessions;
    assert_eq!(
        definitions,
        [
            (TABLE.partition_key, "S"),
            (TABLE.sort_key, "S"),
            (index.partition_key, "S"),
            (index.sort_key, "N"),
        ]
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
    );
    // The reconciler's sparse index of open sessions.
    let indexes = table["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 1);
    let gsi = &indexes[0];
    assert_eq!(text(&gsi["IndexName"]).unwrap(), index.name);
    let index_keys: Vec<(String, String)> = gsi["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                text(&k["AttributeName"]).unwrap(),
                text(&k["KeyType"]).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        index_keys,
        vec![
            (index.partition_key.to_owned(), "HASH".to_owned()),
            (index.sort_key.to_owned(), "RANGE".to_owned())
        ]
    );
    assert_eq!(
        text(&gsi["Projection"]["ProjectionType"]).unwrap(),
        index.projection
    );
    let ttl = &table["TimeToLiveSpecification"];
    assert_eq!(text(&ttl["AttributeName"]).unwrap(), TABLE.ttl_attribute);
    assert_eq!(ttl["Enabled"], Value::Bool(true));
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::Bool(true)
    );
    assert_eq!(
        text(&table["DeletionProtectionEnabled"]).as_deref(),
        Some("TableDeletionProtection")
    );
}

/// Every HTTP route has its 5xx-rate and throttle alarms, reading the
/// access log's per-route metrics under the route key API Gateway logs.
#[test]
fn every_route_has_its_5xx_and_throttle_alarms() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let alarm_routes = |metric: &str| -> BTreeSet<String> {
        resources
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .flat_map(|alarm| {
                let props = &alarm["Properties"];
                let direct = (text(&props["MetricName"]).as_deref() == Some(metric))
                    .then(|| props["Dimensions"].clone());
                let in_math = props["Metrics"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["MetricStat"]["Metric"]["MetricName"] == metric)
                    .map(|m| m["MetricStat"]["Metric"]["Dimensions"].clone());
                direct.into_iter().chain(in_math).collect::<Vec<_>>()
            })
            .filter_map(|dims| {
                let dim = &dims.as_sequence()?[0];
                (dim["Name"] == "Route").then(|| text(&dim["Value"]))?
            })
            .collect()
    };
    let routes: BTreeSet<String> = Endpoint::ALL
        .into_iter()
        .filter(|e| e.http().is_some())
        .map(|e| format!("{} {}", e.method(), e.route()))
        .collect();
    assert_eq!(alarm_routes("Api5xx"), routes);
    assert_eq!(alarm_routes("ApiRequests"), routes);
    assert_eq!(alarm_routes("ApiThrottled"), routes);

    // The access log carries the route key these dimensions come from, and
    // nothing that could hold a phone number or a token.
    let format =
        text(&template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"])
            .unwrap();
    let line: serde_json::Value = serde_json::from_str(
        &format
            .replace("$context.status", "200")
            .replace("$context.responseLatency", "1")
            .replace("$context.requestTimeEpoch", "1"),
    )
    .expect("the access log format is JSON");
    for field in [
        "requestId",
        "routeKey",
        "status",
        "responseLatencyMs",
        "integrationError",
    ] {
        assert!(!line[field].is_null(), "{field}");
    }
    for leak in ["path", "querystring", "identity", "header", "authorizer"] {
        assert!(
            !format.to_lowercase().contains(leak),
            "{leak} in the access log"
        );
    }
}

/// Each checkov exception is in the template with its reason.
#[test]
fn every_security_check_skipped_says_why() {
    let template = template();
    let mut skipped = 0;
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        for skip in resource["Metadata"]["checkov"]["skip"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let check = text(&skip["id"]).unwrap();
            assert!(check.starts_with("CKV"), "{id:?}: {check}");
            let reason = text(&skip["comment"]).unwrap_or_default();
            assert!(reason.len() > 40, "{id:?}: {check} needs its reason");
            skipped += 1;
        }
    }
    assert!(skipped > 0);
}

/// A parameter's default, as a whole number.
fn default_of(template: &Value, parameter: &str) -> u64 {
    let default = &template["Parameters"][parameter]["Default"];
    default
        .as_u64()
        .unwrap_or_else(|| panic!("{parameter}: default {default:?}"))
}

/// The parameter holding a function's reserved concurrency: Twilio's
/// webhooks are guaranteed theirs, the front end's and the anonymous
/// routes' are also their cap.
fn concurrency_parameter(endpoint: Endpoint) -> &'static str {
    match endpoint.caller() {
        Caller::Twilio if endpoint.route().starts_with("/events/") => "CallbackConcurrency",
        Caller::Twilio => "TwimlConcurrency",
        Caller::FrontEnd => "FrontEndConcurrency",
        Caller::Public | Caller::WebSocket => "AnonymousConcurrency",
        Caller::Schedule | Caller::Stream => "BackgroundConcurrency",
    }
}

fn number(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a whole number: {v:?}"))
}

/// Every function reserves its group's concurrency (unless
/// `ReservedConcurrency` is off), sized by the capacity arithmetic of
/// docs/operations.md; every route admits what its function's reservation
/// serves and no more, and at least the margin over the traffic it works out.
#[test]
fn capacity_reservations_and_throttles_follow_the_capacity_arithmetic() {
    let template = template();
    let capacity = super::Capacity::from_docs();
    let expected = |parameter: &str| match parameter {
        "CallbackConcurrency" => capacity.webhook_concurrency(capacity.callbacks_per_call),
        "TwimlConcurrency" => capacity.webhook_concurrency(capacity.twiml_per_call),
        "FrontEndConcurrency" => capacity.front_end_concurrency(),
        "AnonymousConcurrency" => capacity.anonymous_concurrency(),
        "BackgroundConcurrency" => capacity.background,
        other => panic!("{other}"),
    };
    let switch = &template["Parameters"]["ReservedConcurrency"];
    assert_eq!(text(&switch["Default"]).as_deref(), Some("on"));
    let condition =
        serde_norway::to_string(&template["Conditions"]["ReservesConcurrency"]).unwrap();
    assert!(condition.contains("ReservedConcurrency"), "{condition}");
    let mut total = 0;
    for (id, props) in template_functions(&template) {
        let endpoint = endpoint_of(&id, &props);
        let parameter = concurrency_parameter(endpoint);
        let reserved = serde_norway::to_string(&props["ReservedConcurrentExecutions"]).unwrap();
        assert!(
            reserved.contains("ReservesConcurrency")
                && reserved.contains(&format!("!Ref {parameter}\n"))
                && reserved.contains("AWS::NoValue"),
            "{id}: {reserved}"
        );
        let default = default_of(&template, parameter);
        assert_eq!(default, expected(parameter), "{parameter}");
        total += default;
    }
    let api = &template["Resources"]["HttpApi"]["Properties"];
    // Twilio's routes: the reservation serves the route's limit, which is
    // at least `margin` times the centre's traffic on that route.
    for endpoint in Endpoint::ALL
        .into_iter()
        .filter(|e| e.caller() == Caller::Twilio)
    {
        let key = format!("{} {}", endpoint.method(), endpoint.route());
        let settings = &api["RouteSettings"][key.as_str()];
        let reserved = default_of(&template, concurrency_parameter(endpoint));
        let rate = number(&settings["ThrottlingRateLimit"]);
        assert_eq!(rate, reserved * 1000 / capacity.webhook_ms, "{key}");
        assert_eq!(number(&settings["ThrottlingBurstLimit"]), reserved, "{key}");
        let per_call = if endpoint == Endpoint::StatusCallback {
            capacity.callbacks_per_call
        } else {
            capacity.twiml_per_call
        };
        let traffic = capacity.calls_per_sec() * per_call as f64;
        assert!(
            rate as f64 >= capacity.margin as f64 * traffic - 1e-9,
            "{key}: {rate}/s for {traffic:.1}/s"
        );
    }
    // The front-end routes and the console page share the default limit;
    // the WebSocket API's $connect and $disconnect the stage's.
    let default = &api["DefaultRouteSettings"];
    assert_eq!(
        number(&default["ThrottlingRateLimit"]),
        capacity.front_end_per_sec
    );
    assert_eq!(capacity.front_end_per_sec, capacity.anonymous_per_sec);
    let burst = number(&default["ThrottlingBurstLimit"]);
    assert!(burst <= capacity.front_end_concurrency() && burst <= capacity.anonymous_concurrency());
    let stage = &template["Resources"]["WebSocketStage"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        number(&stage["ThrottlingRateLimit"]),
        capacity.anonymous_per_sec
    );
    assert!(number(&stage["ThrottlingBurstLimit"]) <= capacity.anonymous_concurrency());
    // The figures docs/operations.md shows are the ones its arithmetic gives.
    let doc = std::fs::read_to_string(super::operations_doc()).unwrap();
    for shown in [
        format!("{:.1} calls/s", capacity.calls_per_sec()),
        format!(
            "{:.0} webhook requests/s",
            capacity.twilio_requests_per_sec()
        ),
        format!(
            "{} webhook requests in all",
            capacity.twiml_per_call + capacity.callbacks_per_call
        ),
        format!("{total} concurrent executions in all"),
        format!("a quota of at least {}", total + 100),
    ] {
        assert!(doc.contains(&shown), "docs/operations.md says {shown:?}");
    }
}

/// The blind spots of issue 26: each has its alarm, sent where the others go.
#[test]
fn operations_have_alarms_on_the_reconciler_the_stream_the_table_and_the_account() {
    let template = template();
    let alarms: Vec<&Value> = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|r| &r["Properties"])
        .collect();
    // (namespace, metric, dimension, its value) of every metric an alarm reads.
    let watched: Vec<(String, String, Option<String>, Option<String>)> = alarms
        .iter()
        .flat_map(|alarm| {
            let direct = alarm["MetricName"].is_string().then(|| (*alarm).clone());
            let in_math = alarm["Metrics"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|m| m["MetricStat"].is_mapping())
                .map(|m| m["MetricStat"]["Metric"].clone());
            direct.into_iter().chain(in_math).collect::<Vec<_>>()
        })
        .map(|metric| {
            let dims = metric["Dimensions"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            (
                text(&metric["Namespace"]).unwrap(),
                text(&metric["MetricName"]).unwrap(),
                dims.first().and_then(|d| text(&d["Name"])),
                dims.first().and_then(|d| text(&d["Value"])),
            )
        })
        .collect();
    let watches = |namespace: &str, metric: &str, dimension: Option<(&str, &str)>| {
        watched.iter().any(|(n, m, d, v)| {
            n == namespace
                && m == metric
                && (d.as_deref(), v.as_deref())
                    == dimension.map_or((None, None), |(d, v)| (Some(d), Some(v)))
        })
    };
    let function = Some(("FunctionName", "ReconcilerFunction"));
    assert!(
        watches("AWS/Lambda", "Errors", function),
        "reconciler errors"
    );
    let publisher = Some(("FunctionName", "StreamPublisherFunction"));
    assert!(
        watches("AWS/Lambda", "IteratorAge", publisher),
        "stream lag"
    );
    assert!(watches("AWS/Lambda", "Errors", publisher), "stream errors");
    let queue = Some(("QueueName", "StreamFailuresQueue.QueueName"));
    assert!(
        watches("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue),
        "batches dropped"
    );
    let table = Some(("TableName", "CallsTable"));
    assert!(watches("AWS/DynamoDB", "ReadThrottleEvents", table));
    assert!(watches("AWS/DynamoDB", "WriteThrottleEvents", table));
    assert!(
        watches("AWS/Lambda", "ConcurrentExecutions", None),
        "account concurrency, no dimension"
    );
    for alarm in alarms {
        let name = text(&alarm["AlarmName"]).unwrap();
        let actions = serde_norway::to_string(&alarm["AlarmActions"]).unwrap();
        assert!(actions.contains("AlarmTopic"), "{name}: {actions}");
    }
}

/// History, the only audit trail, lives its own time, a stack parameter
/// whose default is the code's.
#[test]
fn history_retention_is_a_parameter_apart_from_the_session_ttl() {
    use warm_transfer_core::config::DEFAULT_HISTORY_TTL_DAYS;
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        text(&globals[vars::HISTORY_TTL_DAYS]).as_deref(),
        Some("HistoryRetentionDays")
    );
    assert_eq!(
        default_of(&template, "HistoryRetentionDays"),
        DEFAULT_HISTORY_TTL_DAYS
    );
    assert!(
        default_of(&template, "HistoryRetentionDays") >= 365,
        "a year at least"
    );
    assert!(default_of(&template, "SessionTtlHours") < 24 * DEFAULT_HISTORY_TTL_DAYS);
}

/// checkov's exceptions say what is true of the function they are on: no
/// function skips the reserved-concurrency check (each has one), and a
/// function outside a VPC is not said to call what it never calls.
#[test]
fn checkov_skips_are_true_of_their_function() {
    let template = template();
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        let id = id.as_str().unwrap();
        let skips: Vec<(String, String)> = resource["Metadata"]["checkov"]["skip"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|skip| (text(&skip["id"]).unwrap(), text(&skip["comment"]).unwrap()))
            .collect();
        assert!(
            !skips.iter().any(|(check, _)| check == "CKV_AWS_115"),
            "{id}: reserved concurrency is set, not skipped"
        );
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let endpoint = endpoint_of(id, &resource["Properties"]);
        for (check, reason) in &skips {
            if endpoint.needs().twilio_rest {
                continue;
            }
            assert!(!reason.contains("Twilio (internet)"), "{id}: {check}");
            if !endpoint.reads_secret() {
                assert!(!reason.contains("Secrets Manager"), "{id}: {check}");
            }
            // The open-sessions index is DynamoDB too (the board reads only it).
            if endpoint.needs().table.is_empty() && !endpoint.needs().open_sessions_index {
                assert!(!reason.contains("DynamoDB"), "{id}: {check}");
            }
        }
    }
}

/// The console's push timing (`PUSH_TIMING` in its page): each wait's
/// [min, max] seconds, drawn uniformly.
struct PushTiming {
    first_read: (f64, f64),
    then_read: (f64, f64),
    quiet_read: (f64, f64),
}

impl PushTiming {
    fn from_console() -> Self {
        let page = std::fs::read_to_string(workspace().join("shared/console/index.html")).unwrap();
        let json = page
            .lines()
            .find_map(|l| l.trim().strip_prefix("const PUSH_TIMING = "))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("the console states its push timing on one line");
        let timing: serde_json::Value = serde_json::from_str(json).unwrap();
        let range = |name: &str| {
            let pair = timing[name].as_array().unwrap_or_else(|| panic!("{name}"));
            let (min, max) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
            assert!(0.0 < min && min <= max, "{name}: {min}..{max}");
            (min, max)
        };
        Self {
            first_read: range("firstReadSecs"),
            then_read: range("thenReadSecs"),
            quiet_read: range("quietReadSecs"),
        }
    }
}

/// The highest expected rate (per second) at which `consoles` that all lost
/// push at the same moment read the call (and try push again: one of each
/// per round), over ten minutes: the renewal density of a first wait drawn
/// from `first` and every later one from `then`, in 0.1 s steps. Exact
/// arithmetic on the distributions, not a simulation.
fn peak_rounds_per_sec(consoles: f64, first: (f64, f64), then: (f64, f64)) -> f64 {
    const STEP: f64 = 0.1;
    const STEPS: usize = 6000;
    let uniform = |(min, max): (f64, f64)| {
        let (from, to) = ((min / STEP).round() as usize, (max / STEP).round() as usize);
        let to = to.max(from + 1);
        let mut density = vec![0.0; STEPS];
        for p in &mut density[from..to.min(STEPS)] {
            *p = 1.0 / (to - from) as f64;
        }
        density
    };
    let (first, then) = (uniform(first), uniform(then));
    let then: Vec<(usize, f64)> = then
        .into_iter()
        .enumerate()
        .filter(|(_, p)| *p > 0.0)
        .collect();
    // rounds[i]: the chance a console has a round in step i.
    let mut rounds = vec![0.0; STEPS];
    for i in 0..STEPS {
        let later: f64 = then
            .iter()
            .filter(|(j, _)| *j <= i)
            .map(|(j, p)| p * rounds[i - j])
            .sum();
        rounds[i] = first[i] + later;
    }
    rounds.iter().fold(0.0, |peak: f64, r| peak.max(*r)) * consoles / STEP
}

/// Issue 26, finding 5: with push down each console read its call every 8 s
/// and reconnected in step with the others: 1,000 agents made 125 reads/s
/// against the route's 100/s. The console's waits are random now; this
/// works out what 1,000 consoles that lose push at the same moment ask of
/// `GET /calls/{callSid}` and of the WebSocket API's `$connect`, with the
/// agents' own traffic on top, against the limits in template.yaml.
#[test]
fn a_thousand_consoles_without_push_stay_within_the_route_limits() {
    let template = template();
    let capacity = super::Capacity::from_docs();
    let timing = PushTiming::from_console();
    let number = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v:?}"));
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let read_route = format!(
        "{} {}",
        Endpoint::GetCall.method(),
        Endpoint::GetCall.route()
    );
    let read_limit = match &api["RouteSettings"][read_route.as_str()] {
        Value::Mapping(settings) => number(&settings["ThrottlingRateLimit"]),
        _ => number(&api["DefaultRouteSettings"]["ThrottlingRateLimit"]),
    };
    let ws = &template["Resources"]["WebSocketStage"]["Properties"]["DefaultRouteSettings"];
    let connect_limit = number(&ws["ThrottlingRateLimit"]);
    let consoles = capacity.agents as f64;
    // The agents' own: a read when a call opens and after each of its (at
    // most four) actions while push is down; one connect per call opened.
    let own_reads = 5.0 * capacity.calls_per_sec();
    let own_connects = capacity.calls_per_sec();

    let down = peak_rounds_per_sec(consoles, timing.first_read, timing.then_read);
    assert!(
        down + own_reads <= read_limit,
        "push down: {down:.1} reads/s + {own_reads:.1} of the agents' own > {read_limit}/s"
    );
    assert!(
        down + own_connects <= connect_limit,
        "push down: {down:.1} connects/s + {own_connects:.1} > {connect_limit}/s"
    );
    // Push up, every console quiet: one read per quiet spell.
    let mean = (timing.quiet_read.0 + timing.quiet_read.1) / 2.0;
    let quiet = consoles / mean;
    assert!(
        quiet + own_reads <= read_limit,
        "push up: {quiet:.1} reads/s"
    );

    // The arithmetic can fail: consoles in step (no jitter), as before, and
    // the old 8 s reads even spread evenly, break the limit.
    let in_step = peak_rounds_per_sec(consoles, (1.0, 1.0), (8.0, 8.0));
    assert!(in_step > read_limit, "{in_step}");
    let spread = peak_rounds_per_sec(consoles, (0.1, 8.0), (8.0, 8.0));
    assert!(spread >= 120.0, "{spread}");
}
