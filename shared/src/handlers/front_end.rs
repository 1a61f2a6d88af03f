//! The front-end API: start a call, read it, transfer, cancel, leave.
//! Each handler validates its input, applies one domain command through the
//! store, then asks Twilio for the side effects in the order the call flow
//! needs.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::app::App;
use super::input::{call_sid, idempotency_key, json_body, may_dial, phone, required};
use super::placement::{self, Placement, record_failure, record_placement};
use super::request;
use super::routing;
use super::webhook_urls::{HoldPurpose, RoomRole};
use crate::domain::{
    Action, Actor, CallSession, CustomerDestination, FollowUp, HistoryEvent, Presence,
    RoomParticipant, TransferDecision, TransferKind, TransferState,
};
use crate::domain::{AgentId, TeamName};
use crate::ids::{CallSid, PhoneNumber};
use crate::metrics::{self, Metric};
use crate::store::{HistoryCursor, update_returning};
use crate::twilio::{CallStatusEvent, CreateCall, HttpMethod, Participant, TwilioError};
use crate::usecases::transfer::record_transfer_to;
use crate::usecases::view::CallView;
use crate::usecases::{self, follow_up, history};
use crate::web::ApiError;
use crate::web::responses::json;

/// How long the first agent's phone rings before the call is given up.
const AGENT_RING_SECS: u32 = 30;

/// How often, and how far apart, an uncertain redirect is looked up before
/// the customer is taken to be still on the bridge.
const REDIRECT_LOOKUPS: usize = 6;
const REDIRECT_LOOKUP_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

// Required fields are `Option`s checked by `required`, so a missing one is
// named in the error like any other bad field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartCallBody {
    agent_number: Option<String>,
    customer_number: Option<String>,
    #[serde(default)]
    caller_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransferBody {
    /// A number: the API's first form, the same as `number`.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    number: Option<String>,
    /// A colleague, by their directory id.
    #[serde(default)]
    agent: Option<String>,
    /// A team: its longest idle available member, then the next.
    #[serde(default)]
    team: Option<String>,
    /// `warm` (the default) or `cold`.
    #[serde(default)]
    kind: Option<String>,
}

/// Where a transfer goes, as the request named it.
enum TransferTo {
    /// With the field that named it (`to` or `number`).
    Number(&'static str, PhoneNumber),
    Agent(AgentId),
    Team(TeamName),
}

impl TransferBody {
    /// Exactly one of `to`/`number`, `agent` and `team`.
    fn target(&self) -> Result<TransferTo, ApiError> {
        let named = [&self.to, &self.number, &self.agent, &self.team]
            .iter()
            .filter(|v| v.is_some())
            .count();
        match named {
            0 => {
                return Err(ApiError::bad_request(
                    "to",
                    "is required (or name an agent or a team)",
                ));
            }
            1 => {}
            _ => {
                return Err(ApiError::bad_request(
                    "body",
                    "name exactly one of to (or number), agent and team",
                ));
            }
        }
        if let Some(agent) = &self.agent {
            return AgentId::parse(agent)
                .map(TransferTo::Agent)
                .map_err(|e| ApiError::bad_request("agent", e.to_string()));
        }
        if let Some(team) = &self.team {
            return TeamName::parse(team)
                .map(TransferTo::Team)
                .map_err(|e| ApiError::bad_request("team", e.to_string()));
        }
        let field = if self.to.is_some() { "to" } else { "number" };
        let raw = self
            .to
            .as_deref()
            .or(self.number.as_deref())
            .unwrap_or_default();
        phone(field, raw).map(|number| TransferTo::Number(field, number))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HoldBody {
    held: Option<bool>,
}

pub async fn start_call(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let body: StartCallBody = json_body(req)?;
    let agent = phone("agentNumber", required("agentNumber", &body.agent_number)?)?;
    // The call rings this number first: it must be the actor's own.
    actor.may_call_from(&agent)?;
    let customer = phone(
        "customerNumber",
        required("customerNumber", &body.customer_number)?,
    )?;
    if agent == customer {
        return Err(ApiError::bad_request(
            "customerNumber",
            "must differ from agentNumber",
        ));
    }
    let caller_id = match body.caller_id.as_deref() {
        Some(raw) => phone("callerId", raw)?,
        None => app.config.default_caller_id.clone(),
    };
    let policy = &app.config.dial_policy;
    policy
        .may_dial(&customer)
        .map_err(|refused| ApiError::bad_request("customerNumber", refused.to_string()))?;
    policy
        .may_show(&caller_id)
        .map_err(|refused| ApiError::bad_request("callerId", refused.to_string()))?;
    take_allowance(app, actor).await?;
    let urls = app.urls(req)?;

    // The call SID Twilio returns is the session's key, so the call comes first.
    let call = app
        .services
        .twilio
        .create_call(&CreateCall {
            status_callback: Some(urls.agent_leg_events()),
            status_callback_event: CallStatusEvent::ALL.to_vec(),
            status_callback_method: Some(HttpMethod::Post),
            timeout: Some(AGENT_RING_SECS),
            fallback_url: Some(urls.fallback(RoomRole::FirstAgent)),
            ..CreateCall::new(
                agent.clone(),
                caller_id.clone(),
                urls.dial_customer(&customer, &caller_id),
            )
        })
        .await
        .map_err(upstream("start the call"))?;
    let sid = CallSid::parse(&call.sid)
        .map_err(|_| ApiError::Upstream("Twilio answered with an invalid call SID".into()))?;

    let now = OffsetDateTime::now_utc();
    let session = CallSession::start(sid.clone(), agent, customer, caller_id, now);
    let created = app.services.store.create_session(&session);
    let started = HistoryEvent::api(actor, now, "call started", None);
    let logged = history::record(app.services.store.as_ref(), &sid, &started);
    // The agent's directory entry points at the call: busy while it lasts.
    let placed = async {
        if let Ok(me) = super::directory::profile(app, req, actor) {
            usecases::routing::placed_call(&app.services, &me.id, &sid).await;
        }
    };
    let (created, (), ()) = futures::join!(created, logged, placed);
    if let Err(error) = created {
        // Without a session the call could never be transferred: take it back
        // before the agent answers rather than leave a call nobody can manage.
        tracing::error!(%error, call = %sid, "session not stored; cancelling the call");
        if let Err(error) = app.services.twilio.end_call(&sid).await {
            tracing::error!(%error, call = %sid, "unmanageable call could not be cancelled");
        }
        return Err(error.into());
    }
    tracing::info!(call = %sid, "call started");
    Ok(json(
        StatusCode::CREATED,
        &CallView::new(&session, actor, Vec::new()),
    ))
}

/// Entries of history one read returns at most: a transferred call writes
/// 20 to 40, a call handed on many times a few more. Older ones are read
/// page by page with `historyBefore`.
pub const HISTORY_PAGE: usize = 100;

pub async fn get_call(app: &App, req: &Request, actor: &Actor) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let before = match request::query_param(req, "historyBefore") {
        Some(text) => Some(HistoryCursor::parse(&text).ok_or_else(|| {
            ApiError::bad_request("historyBefore", "must be a cursor this API returned")
        })?),
        None => None,
    };
    // Who may read comes first: a refused request costs one item read,
    // however long the call's history.
    let session = app.stored_call(&sid).await?;
    actor.may(Action::Read, &session)?;
    let page = app
        .services
        .store
        .history_page(&sid, before.as_ref(), HISTORY_PAGE)
        .await?;
    Ok(json(
        StatusCode::OK,
        &CallView::with_history(&session, actor, page),
    ))
}

pub async fn start_transfer(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let body: TransferBody = json_body(req)?;
    let to = body.target()?;
    let kind = match body.kind.as_deref() {
        None => TransferKind::Warm,
        Some(kind) => TransferKind::parse(kind)
            .ok_or_else(|| ApiError::bad_request("kind", "must be warm or cold"))?,
    };
    let key = idempotency_key(req)?;
    let urls = app.urls(req)?;
    if let TransferTo::Number(field, target) = &to {
        may_dial(app, field, target)?;
    }
    take_allowance(app, actor).await?;
    let now = OffsetDateTime::now_utc();
    let callee = match to {
        TransferTo::Number(_, number) => Some(routing::number(app, number, &sid, now).await),
        TransferTo::Agent(id) => {
            routing::colleague(app, actor, &sid, &id, key.as_deref(), now).await?
        }
        TransferTo::Team(team) => {
            routing::team_member(app, actor, &sid, &team, key.as_deref(), now).await?
        }
    };
    let Some(callee) = callee else {
        // The same request again (its idempotency key): as recorded.
        let session = app.stored_call(&sid).await?;
        return Ok(json(
            StatusCode::OK,
            &CallView::new(&session, actor, Vec::new()),
        ));
    };
    let target = callee.number.clone();

    // Round trip 1: the transfer is durable before Twilio hears of it, so the
    // `<Dial action>` webhook that the redirect triggers finds it. Whose call
    // it is, is decided on the same read as the transfer.
    let mine = |s: &CallSession| Ok(actor.may(Action::Transfer, s)?);
    let store = app.services.store.as_ref();
    let recorded = record_transfer_to(store, &sid, &callee, kind, key, now, &mine).await;
    let (decision, session) = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            routing::release(app, &callee, &sid).await;
            return Err(error.into());
        }
    };
    if decision == TransferDecision::Existing {
        routing::release(app, &callee, &sid).await;
        return Ok(json(
            StatusCode::OK,
            &CallView::new(&session, actor, Vec::new()),
        ));
    }
    // A new transfer to a number that is none of the deployment's agents':
    // worth an alarm when many (counted once, not for a replay or a refusal).
    let known = callee.member.is_some()
        || app
            .config
            .agents
            .numbers
            .values()
            .flatten()
            .any(|n| *n == target);
    if !known {
        metrics::count(Metric::TransfersOutside, None);
    }
    // What the transfer asks of Twilio is the domain's to say.
    let Some(plan) = session.transfer_plan() else {
        return Err(ApiError::Unavailable("transfer not recorded".into()));
    };

    // Round trip 2: redirect the customer and ring the second agent together.
    let customer_room = match plan.destination {
        CustomerDestination::WaitingRoom => urls.waiting_room(&plan.room),
        CustomerDestination::Room => urls.conference(&plan.room, RoomRole::Customer),
    };
    let redirect = async {
        // None when an earlier attempt moved the customer: only the second agent is new.
        match &plan.redirect_customer {
            Some(customer) => Some(
                app.services
                    .twilio
                    .redirect_call(customer, &customer_room)
                    .await,
            ),
            None => None,
        }
    };
    let ring = placement::ring_agent(app, &urls, &sid, &plan);
    // Logged once recorded (a refused request leaves no trace in the call's
    // history), alongside the Twilio round trip rather than after it.
    let what = format!("{} transfer requested", kind.as_str());
    let requested = HistoryEvent::api(actor, now, what, Some(routing::describe(&callee)));
    let logged = history::record(app.services.store.as_ref(), &sid, &requested);
    let lifted = lift_anchor(app, &session, plan.lift_anchor);
    let hold = async {
        if !plan.hold_customer {
            return false;
        }
        let music = Some(urls.hold_audio(HoldPurpose::Wait));
        match follow_up::hold_customer(&app.services, &session, true, music).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, call = %sid, "customer not put on hold for a blind transfer");
                false
            }
        }
    };
    let (redirected, rang, (), lifted, waiting) =
        futures::join!(redirect, ring, logged, lifted, hold);
    let room_sid = rang.as_ref().ok().and_then(|p| p.conference_sid.clone());

    let moved = match &redirected {
        None | Some(Ok(_)) => true,
        // Twilio may have moved the customer before failing: sending the
        // redirect again would pull them out of the room. Look instead.
        Some(Err(error)) if error.is_uncertain() => {
            tracing::warn!(%error, call = %sid, "redirect outcome unknown; looking the customer up");
            customer_reached_room(app, &session, room_sid.as_deref()).await
        }
        Some(Err(_)) => false,
    };
    let failure = match (&redirected, &rang) {
        (Some(Err(error)), _) if !moved => Some(format!("customer could not be moved: {error}")),
        (_, Err(error)) => Some(format!("second agent could not be called: {error}")),
        _ => None,
    };
    let attempt = plan.attempt;
    let Some(reason) = failure else {
        let free_to_go = plan.frees_the_agent(waiting, lifted.is_some());
        let placement = Placement {
            attempt,
            room_sid,
            lifted,
            waiting,
        };
        let session = record_placement(app, session, placement, &rang).await;
        if free_to_go {
            free_agent_handing_over(app, actor, &session).await;
        }
        tracing::info!(call = %sid, attempt, "transfer under way");
        return Ok(json(
            StatusCode::ACCEPTED,
            &CallView::new(&session, actor, Vec::new()),
        ));
    };
    // The customer is still bridged with the first agent, so a second agent
    // ringing into an empty room must be called off.
    if let (false, Ok(participant)) = (moved, &rang) {
        call_off_second_agent(app, participant).await;
    }
    tracing::warn!(call = %sid, attempt, %reason, "transfer failed");
    routing::release(app, &callee, &sid).await;
    record_failure(app, Some(actor), &sid, attempt, &reason, moved).await;
    Err(ApiError::Upstream(reason))
}

/// After a blind transfer from the room, with the customer on hold and the
/// next agent ringing (and ending the room if they go), the agent handing
/// over is hung up: free at once, as a blind transfer promises. Should
/// that fail, they are still in the room and may hang up themselves.
async fn free_agent_handing_over(app: &App, actor: &Actor, session: &CallSession) {
    let Some(from) = session.handing_over_call() else {
        return;
    };
    if let Err(error) = app.services.twilio.hang_up_call(from).await {
        tracing::warn!(%error, call = %session.id, "agent handing over blind not hung up");
        return;
    }
    let event = HistoryEvent::api(
        actor,
        OffsetDateTime::now_utc(),
        "agent left: the customer waits on hold for the next agent",
        None,
    );
    history::record(app.services.store.as_ref(), &session.id, &event).await;
}

/// An agent who was handed the call (with `attempt`) and now transfers it
/// on stops ending the room on leaving, so hanging up early leaves the
/// customer with the agent being called. Recorded as done with the
/// transfer's placement.
async fn lift_anchor(app: &App, session: &CallSession, attempt: Option<u32>) -> Option<FollowUp> {
    let attempt = attempt?;
    match follow_up::anchor_room_on(&app.services, session, attempt, false).await {
        Ok(()) => Some(FollowUp::LiftAnchor { attempt }),
        Err(error) => {
            tracing::warn!(%error, call = %session.id, "the agent transferring on still ends the room");
            None
        }
    }
}

/// Hangs up a second agent who was dialled into a room the customer never
/// reached.
async fn call_off_second_agent(app: &App, participant: &Participant) {
    let Ok(target) = CallSid::parse(&participant.call_sid) else {
        return;
    };
    if let Err(error) = app.services.twilio.end_call(&target).await {
        tracing::warn!(%error, "second agent ringing into an empty room could not be called off");
    }
}

/// After a redirect whose outcome Twilio did not tell: is the customer in
/// the room? Asked of Twilio (the room's `customer` participant) and of the
/// stored session (a join callback) a few times while the move settles.
pub(super) async fn customer_reached_room(
    app: &App,
    session: &CallSession,
    room_sid: Option<&str>,
) -> bool {
    let label = RoomParticipant::Customer.label();
    for _ in 0..REDIRECT_LOOKUPS {
        tokio::time::sleep(REDIRECT_LOOKUP_PAUSE).await;
        if let Ok(Some(stored)) = app.services.store.get_session(&session.id).await {
            if stored.customer_presence != Presence::Never {
                return true;
            }
        }
        let room = match room_sid {
            Some(room) => Ok(room.to_owned()),
            None => follow_up::room_sid(&app.services, session).await,
        };
        if let Ok(room) = room {
            if app
                .services
                .twilio
                .fetch_participant(&room, &label)
                .await
                .is_ok()
            {
                return true;
            }
        }
    }
    false
}

pub async fn cancel_transfer(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    // Whether agent two was on the line, as the write that cancelled saw
    // it: no read of its own, and no gap for the state to move in.
    let cancel = |s: &mut CallSession| {
        actor.may(Action::CancelTransfer, s)?;
        let on_the_line = s
            .transfer_state()
            .is_some_and(TransferState::target_on_the_line);
        s.cancel_transfer()?;
        Ok(on_the_line)
    };
    let store = app.services.store.as_ref();
    let (taking_back, session) = update_returning(store, &sid, &cancel).await?;
    let what = if taking_back == Some(true) {
        "transfer taken back"
    } else {
        "transfer cancelled"
    };
    let cancelled = HistoryEvent::api(actor, OffsetDateTime::now_utc(), what, None);
    history::record(app.services.store.as_ref(), &sid, &cancelled).await;
    // Agent two is hung up (ringing or on the line) and a held customer
    // taken off hold, so the first agent has them back. A second agent
    // whose call is not known yet is called off by its first callback.
    follow_up::carry_out(&app.services, &session).await;
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}

/// Puts the customer on hold while the agents consult, or takes them off
/// it (`{"held": false}`: back to everybody talking, a three-way call).
pub async fn hold_customer(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    let body: HoldBody = json_body(req)?;
    let held = body
        .held
        .ok_or_else(|| ApiError::bad_request("held", "is required"))?;
    let urls = app.urls(req)?;
    // Refuse before touching the call; record once Twilio has done it.
    let current = app.stored_call(&sid).await?;
    actor.may(Action::Hold, &current)?;
    current.clone().hold_customer(held)?;
    let hold_url = held.then(|| urls.hold_audio(HoldPurpose::Hold));
    if let Err(error) = follow_up::hold_customer(&app.services, &current, held, hold_url).await {
        tracing::warn!(%error, call = %sid, held, "customer's hold not changed");
        let gone = ("the customer is not in the room", current.state().as_str());
        return Err(ApiError::from_follow_up(error, gone, "change the hold"));
    }
    let session = app
        .services
        .store
        .update(&sid, &|s: &mut CallSession| s.hold_customer(held))
        .await?;
    let what = if held {
        "customer on hold: agents consult"
    } else {
        "customer taken off hold"
    };
    let event = HistoryEvent::api(actor, OffsetDateTime::now_utc(), what, None);
    history::record(app.services.store.as_ref(), &sid, &event).await;
    // If the consult lost an agent meanwhile, the customer comes back now.
    follow_up::carry_out(&app.services, &session).await;
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}

pub async fn leave_call(
    app: &App,
    req: &Request,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let sid = call_sid(req)?;
    // Refuse before touching the call, but record only once Twilio has hung
    // up: a failed hang-up must not leave the state saying the agent is gone.
    let mut current = app.stored_call(&sid).await?;
    actor.may(Action::Leave, &current)?;
    if current.customer_held {
        // Completing a consult: the customer comes off hold first, so they
        // hear agent two the moment agent one is gone.
        resume_before_leaving(app, &current).await?;
        current = app
            .services
            .store
            .update(&sid, &|s: &mut CallSession| s.hold_customer(false))
            .await?;
    }
    current.clone().first_agent_leaves()?;
    // First make the second agent the room's anchor, so that when they say
    // goodbye the customer is not left in a room with nobody.
    let anchored = current
        .transfer
        .as_ref()
        .filter(|transfer| !transfer.target_anchors_room)
        .map(|transfer| FollowUp::AnchorRoomOnTarget {
            attempt: transfer.attempt,
        });
    let gone = ("the second agent is no longer in the room", "target-left");
    anchor_before_leaving(app, &current, &anchored, gone, "update the second agent").await?;
    // An owner handing the call on still ends the room on leaving if
    // lifting that at the transfer's start did not get through.
    let lifted = current
        .owner
        .as_ref()
        .filter(|owner| owner.anchors_room)
        .map(|owner| FollowUp::LiftAnchor {
            attempt: owner.attempt,
        });
    let gone = ("the agent is no longer in the room", "first-agent-left");
    anchor_before_leaving(app, &current, &lifted, gone, "update the agent leaving").await?;
    // Hanging up the agent's call leaves the room to the customer and the
    // second agent: neither leg 1 nor an owner handing on ends the room.
    let from = current
        .handing_over_call()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the leaving agent's call is not known yet".into()))?;
    if let Err(error) = app.services.twilio.hang_up_call(&from).await {
        tracing::warn!(%error, call = %sid, "the leaving agent's call could not be hung up");
        return Err(upstream("hang up the agent leaving")(error));
    }
    let left = |s: &mut CallSession| {
        for done in anchored.iter().chain(&lifted) {
            s.follow_up_done(done);
        }
        s.first_agent_leaves()
    };
    let recorded = app.services.store.update(&sid, &left);
    let what = if current.owner.is_some() {
        "agent left after handing on"
    } else {
        "first agent left"
    };
    let event = HistoryEvent::api(actor, OffsetDateTime::now_utc(), what, None);
    let logged = history::record(app.services.store.as_ref(), &sid, &event);
    let (recorded, ()) = futures::join!(recorded, logged);
    let session = recorded?;
    Ok(json(
        StatusCode::OK,
        &CallView::new(&session, actor, Vec::new()),
    ))
}

/// Changes who ends the room on leaving (`change` is an anchor follow-up),
/// before an agent leaves. A refusal means that participant is gone: a
/// conflict in state `gone.1`.
async fn anchor_before_leaving(
    app: &App,
    session: &CallSession,
    change: &Option<FollowUp>,
    gone: (&str, &str),
    what: &str,
) -> Result<(), ApiError> {
    let (attempt, anchors) = match change {
        Some(FollowUp::AnchorRoomOnTarget { attempt }) => (*attempt, true),
        Some(FollowUp::LiftAnchor { attempt }) => (*attempt, false),
        _ => return Ok(()),
    };
    follow_up::anchor_room_on(&app.services, session, attempt, anchors)
        .await
        .map_err(|error| {
            tracing::warn!(%error, call = %session.id, attempt, anchors, "room's anchor not changed");
            ApiError::from_follow_up(error, gone, what)
        })
}

async fn resume_before_leaving(app: &App, session: &CallSession) -> Result<(), ApiError> {
    follow_up::hold_customer(&app.services, session, false, None)
        .await
        .map_err(|error| {
            tracing::warn!(%error, call = %session.id, "customer could not be taken off hold");
            ApiError::Upstream(format!(
                "Twilio could not take the customer off hold: {error}"
            ))
        })
}

/// One from the agent's per-minute allowance of calls and transfers: a
/// stolen sign-in cannot dial faster than a person does.
pub(super) async fn take_allowance(app: &App, actor: &Actor) -> Result<(), ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let minute = now - now.rem_euclid(60);
    let limit = app.config.agent_dials_per_minute;
    if app
        .services
        .store
        .take_allowance(&actor.id, minute, limit)
        .await?
    {
        Ok(())
    } else {
        tracing::warn!(limit, "agent over the calls-and-transfers limit");
        metrics::count(Metric::AgentLimitRefusals, None);
        Err(ApiError::TooManyRequests(format!(
            "at most {limit} calls and transfers a minute; try again shortly"
        )))
    }
}

fn upstream(what: &'static str) -> impl Fn(TwilioError) -> ApiError {
    move |error| ApiError::Upstream(format!("Twilio could not {what}: {error}"))
}
