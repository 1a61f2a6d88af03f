//! The supervisors' board and the agents' help requests:
//! `GET /board` lists the calls in progress (their agent, state, duration,
//! supervisor and any request for help), for the supervisor group only;
//! `POST /calls/{callSid}/help` is an agent asking for a supervisor on
//! their call, which the board shows until one joins.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;

use super::app::App;
use super::input::call_sid;
use crate::domain::{AccessDenied, Action, Actor, CallSession, HistoryEvent};
use crate::store::update_returning;
use crate::usecases::history;
use crate::usecases::view::{BoardView, CallView};
use crate::web::ApiError;
use crate::web::responses::json;

/// Calls the board lists at most: a contact centre's calls in progress
/// (one per agent on a call) fit.
pub const BOARD_LIMIT: usize = 500;

/// Far enough ahead that every open call's next check falls before it:
/// the open-sessions index then lists them all.
const EVERY_OPEN_CALL: time::Duration = time::Duration::days(3650);

pub async fn get_board(
    app: &App,
    _req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    if !actor.supervisor {
        return Err(AccessDenied::NotSupervisor.into());
    }
    let now = OffsetDateTime::now_utc();
    // The sparse index holds exactly the calls not settled: its cost
    // grows with the calls in progress, never the table.
    let open = app
        .services
        .store
        .due_sessions(now + EVERY_OPEN_CALL, BOARD_LIMIT)
        .await?;
    let calls: Vec<CallSession> = open
        .into_iter()
        .map(|due| due.session)
        .filter(|session| !session.is_ended())
        .collect();
    Ok(json(StatusCode::OK, &BoardView::new(&calls, now)))
}

pub async fn ask_for_help(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let now = OffsetDateTime::now_utc();
    let ask = |s: &mut CallSession| {
        actor.may(Action::AskForHelp, s)?;
        let new = s.help.is_none();
        s.ask_for_help(&actor.id, now)?;
        Ok(new)
    };
    let store = app.services.store.as_ref();
    let (asked, session) = update_returning(store, &sid, &ask).await?;
    if asked == Some(true) {
        let event = HistoryEvent::api(actor, now, "agent asks for a supervisor", None);
        history::record(store, &sid, &event).await;
    }
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}
