//! The WebSocket API's `$connect` and `$disconnect`. A console connects to
//! follow one call: `?callSid=CA...` (or the directory's presence:
//! `?directory=1`, any signed-in agent), its ID token offered as a WebSocket
//! subprotocol beside [`SUBPROTOCOL`] (a browser cannot set other headers
//! on a WebSocket, and a URL is what proxies, access logs and HAR exports
//! record: the token is never read from it). A WebSocket API has no JWT
//! authorizer, so the token is verified here exactly as the HTTP API's
//! authorizer does, and the answer names [`SUBPROTOCOL`] as the one chosen,
//! as a browser requires. Only the call's current agent or a supervisor is
//! let in, as for `GET /calls/{callSid}`; anyone else is refused before the
//! connection exists, so nothing about the call ever reaches them.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use http::HeaderValue;
use time::OffsetDateTime;

use super::PushApp;
use crate::auth::Claims;
use crate::domain::Action;
use crate::ids::CallSid;
use crate::store::Subscriber;
use crate::web::ApiError;

/// The subprotocol a console asks for; its token rides beside it.
pub const SUBPROTOCOL: &str = "warm-transfer";

/// Connections one agent may have following one call: a console in a few
/// tabs, with room for connections whose `$disconnect` was lost (the
/// publisher drops those on their first 410). It bounds what one change of
/// a call costs the publisher, whoever connects.
pub const MAX_SUBSCRIPTIONS_PER_AGENT: usize = 5;

/// Answers `$connect`: 200 lets the connection open, anything else refuses it.
pub async fn connect(
    app: &PushApp,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    match subscribe(app, event).await {
        Ok(()) => {
            let mut response = reply(http::StatusCode::OK, "{}".to_owned());
            response.headers.insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
            response
        }
        Err(error) => {
            tracing::info!(%error, "connection refused");
            let response = error.into_response();
            reply(
                response.status(),
                String::from_utf8_lossy(response.body().as_ref()).into_owned(),
            )
        }
    }
}

async fn subscribe(app: &PushApp, event: &ApiGatewayWebsocketProxyRequest) -> Result<(), ApiError> {
    let connection_id = connection_id(event)?;
    let query = &event.query_string_parameters;
    // Following the directory (presence) rather than a call.
    let call = match (query.first("callSid"), query.first("directory")) {
        (Some(sid), None) => {
            Some(CallSid::parse(sid).map_err(|e| ApiError::bad_request("callSid", e.to_string()))?)
        }
        (None, Some("1")) => None,
        _ => {
            return Err(ApiError::bad_request(
                "callSid",
                "name a call (callSid=CA...) or the directory (directory=1)",
            ));
        }
    };
    let token = offered_token(&event.headers).ok_or(ApiError::Unauthorized)?;
    let keys = app.keys.as_ref().ok_or(ApiError::Unauthorized)?;
    let claims = keys.verify(&token).await.map_err(|refused| {
        // The reason only: a token is never logged.
        tracing::info!(%refused, "token refused");
        ApiError::Unauthorized
    })?;
    let claims = Claims::from_json(claims);
    let actor = app
        .agents
        .actor(&claims)
        .map_err(|_| ApiError::Unauthorized)?;
    let until = claims
        .expires()
        .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
        .ok_or(ApiError::Unauthorized)?;
    let Some(call) = call else {
        return subscribe_directory(app, connection_id, actor, until).await;
    };
    let session = app
        .store
        .get_session(&call)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such call".into()))?;
    actor.may(Action::Read, &session)?;
    let listeners = app.subscriptions.subscribers(&call).await?;
    room_for_another(&listeners, &actor, "one call")?;
    app.subscriptions
        .subscribe(
            &call,
            &Subscriber {
                connection_id: connection_id.to_owned(),
                actor,
                until,
                since: OffsetDateTime::now_utc(),
            },
        )
        .await?;
    tracing::info!(call = %call, "subscribed");
    Ok(())
}

/// Refuses a connection past [`MAX_SUBSCRIPTIONS_PER_AGENT`] of this
/// agent's following `what` (a call, the directory).
fn room_for_another(
    listeners: &[Subscriber],
    actor: &crate::domain::Actor,
    what: &str,
) -> Result<(), ApiError> {
    let theirs = listeners.iter().filter(|s| s.actor.id == actor.id).count();
    if theirs >= MAX_SUBSCRIPTIONS_PER_AGENT {
        return Err(ApiError::TooManyRequests(format!(
            "at most {MAX_SUBSCRIPTIONS_PER_AGENT} connections follow {what} per agent; close another tab"
        )));
    }
    Ok(())
}

/// Any signed-in agent may follow the directory: it shows names and
/// presence, never numbers. Capped per agent like a call's listeners.
async fn subscribe_directory(
    app: &PushApp,
    connection_id: &str,
    actor: crate::domain::Actor,
    until: OffsetDateTime,
) -> Result<(), ApiError> {
    let listeners = app.subscriptions.directory_subscribers().await?;
    room_for_another(&listeners, &actor, "the directory")?;
    app.subscriptions
        .subscribe_directory(&Subscriber {
            connection_id: connection_id.to_owned(),
            actor,
            until,
            since: OffsetDateTime::now_utc(),
        })
        .await?;
    tracing::info!("subscribed to the directory");
    Ok(())
}

/// The token offered in `Sec-WebSocket-Protocol` beside [`SUBPROTOCOL`]:
/// `warm-transfer, <token>` (one header, or several).
fn offered_token(headers: &http::HeaderMap) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if !offered.contains(&SUBPROTOCOL) {
        return None;
    }
    let mut tokens = offered.into_iter().filter(|p| *p != SUBPROTOCOL);
    match (tokens.next(), tokens.next()) {
        (Some(token), None) => Some(token.to_owned()),
        _ => None,
    }
}

/// Answers `$disconnect` (API Gateway ignores the answer): the connection's
/// subscription goes. If this is lost, the next post answers 410 and the
/// publisher drops it; TTL removes whatever is left.
pub async fn disconnect(
    app: &PushApp,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let result = match connection_id(event) {
        Ok(id) => app
            .subscriptions
            .disconnected(id)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => reply(http::StatusCode::OK, "{}".to_owned()),
        Err(error) => {
            tracing::warn!(%error, "disconnect not recorded");
            let response = error.into_response();
            reply(
                response.status(),
                String::from_utf8_lossy(response.body().as_ref()).into_owned(),
            )
        }
    }
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<&str, ApiError> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::bad_request("connectionId", "missing from the request context"))
}

/// The answer when the invocation's time ran out: the connection is
/// refused, and the console tries again with jitter.
pub fn out_of_time() -> ApiGatewayProxyResponse {
    reply(
        http::StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"out of time, try again"}"#.to_owned(),
    )
}

fn reply(status: http::StatusCode, body: String) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status.as_u16());
    response.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.body = Some(Body::Text(body));
    response
}
