//! The reconciler: repairs calls whose Twilio callbacks were lost.
//!
//! Twilio does not send a callback again once it was answered (or failed
//! after connecting), so a Lambda error or a throttle can lose one for good.
//! On a schedule (EventBridge, every minute by default) the reconciler
//! queries the sparse open-sessions index for the sessions whose deadline
//! ([`CallSession::next_check`]) passed without progress, claims each (one
//! run per session, however many run at once), asks Twilio what is true and
//! hands that to the same domain rules a callback goes through:
//!
//! - each known leg is fetched (leg 1 = the session id, the customer's leg,
//!   the current transfer's second agent); an unknown customer leg is found
//!   as leg 1's child call, an unknown second agent in the room;
//! - the live room's participants say who joined, and who is gone;
//! - what moves the session forward is applied with [`CallStore::observe`],
//!   then [`follow_up::carry_out`] does what the session now needs (end a
//!   leg nobody needs, make the second agent the room's anchor, end a room
//!   a customer is alone in), each confirmed before it counts.
//!
//! An uncertain answer from Twilio (5xx, timeout, an unreadable body) or
//! any refusal leaves the session as it is: it is looked at again on its
//! next deadline, never guessed. A 429 also ends the run's work early.
//! Every repair is one history entry with source `reconciler` and one JSON
//! log line.

use crate::metrics::{self, Repair};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Services, follow_up, history};
use crate::domain::{
    CallSession, ConferenceEvent, FollowUp, HistoryEvent, LegObservation, LegStatus, Observation,
    Observed, Presence, Role, RoomParticipant,
};
use crate::ids::CallSid;
use crate::store::{DueSession, StoreError};
use crate::twilio::{
    ConferenceStatus, ListCalls, ListConferences, Participant, ParticipantStatus, TwilioError,
};

/// Sessions taken per pass; the rest wait for the next pass.
pub const BATCH: usize = 200;
/// Sessions checked at once: bounds the requests in flight to Twilio.
pub const CONCURRENCY: usize = 4;
/// One session's check (its look at Twilio and its repairs) is cut after
/// this; it is looked at again on its next check.
pub const CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(6);
/// How long a claimed session belongs to one run: longer than a check, so
/// two runs never check one session at once; it also spaces a session's
/// checks (see `claim_check`).
pub const LEASE: time::Duration = time::Duration::seconds(10);
/// An invocation asks for due sessions again this often...
pub const POLL: std::time::Duration = std::time::Duration::from_secs(3);
/// ...for this long: until the next scheduled invocation (every minute) is
/// about to take over, so the index is read every `POLL` without a gap.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(57);

/// The longest a customer left alone waits to be released when every
/// callback that would have said so is lost: a session with a decision
/// pending is checked at most `LEASE` (or `RECHECK_SOON`) after its last
/// check or write, found by the next pass (`POLL`), and repaired within a
/// check (`CHECK_BUDGET`, in practice a second or two).
pub fn longest_wait_alone() -> std::time::Duration {
    let spacing = LEASE.max(crate::domain::RECHECK_SOON);
    std::time::Duration::try_from(spacing).unwrap_or_default() + POLL + CHECK_BUDGET
}
/// History `kind` of a callback the reconciler recovered from Twilio.
pub const RECOVERED: &str = "reconciler: lost callback recovered";
/// The history's text for a team transfer the reconciler ended.
pub const ROUTE_ENDED: &str = "reconciler: team transfer ended";
/// The history's text for a caller's wait the reconciler ended.
pub const WAIT_ENDED: &str = "reconciler: maximum wait reached";
/// History `kind` of a follow-up the reconciler carried out.
pub const REPAIRED: &str = "reconciler: repaired";

/// What one run did (also the function's result, in its invocation log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Sessions the index said were due.
    pub due: usize,
    /// Claimed and compared with Twilio.
    pub checked: usize,
    /// Claimed by another run first.
    pub taken: usize,
    /// Twilio's answer was uncertain or refused: looked at again next time.
    pub uncertain: usize,
    /// Not started because Twilio throttled this run.
    pub deferred: usize,
    /// Repairs made (history entries with source `reconciler`).
    pub repairs: usize,
}

enum Outcome {
    Taken,
    Checked { repairs: usize },
    Uncertain,
    Deferred,
}

/// Why a session was left alone this time.
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error(transparent)]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Skip {
    fn throttled(&self) -> bool {
        matches!(self, Skip::Twilio(error) if error.status() == Some(429))
    }
}

/// One scheduled invocation: passes over the due sessions every [`POLL`]
/// until [`WINDOW`] is over or the invocation's `deadline` is too near for
/// another check. A pass that fails (the store unavailable) ends it.
pub async fn run_until(
    services: &Services,
    deadline: tokio::time::Instant,
) -> Result<RunReport, StoreError> {
    let started = tokio::time::Instant::now();
    let stop = deadline.min(started + WINDOW);
    let mut total = RunReport::default();
    loop {
        let pass = run(services, OffsetDateTime::now_utc()).await?;
        total.add(&pass);
        let next = tokio::time::Instant::now() + POLL;
        // The next pass must have room for a whole check before the deadline.
        if next >= stop || next + CHECK_BUDGET >= deadline {
            return Ok(total);
        }
        tokio::time::sleep_until(next).await;
    }
}

impl RunReport {
    fn add(&mut self, pass: &RunReport) {
        self.due += pass.due;
        self.checked += pass.checked;
        self.taken += pass.taken;
        self.uncertain += pass.uncertain;
        self.deferred += pass.deferred;
        self.repairs += pass.repairs;
    }
}

/// One pass over the sessions due at `now`.
pub async fn run(services: &Services, now: OffsetDateTime) -> Result<RunReport, StoreError> {
    let due = services.store.due_sessions(now, BATCH).await?;
    let throttled = AtomicBool::new(false);
    let mut report = RunReport {
        due: due.len(),
        ..RunReport::default()
    };
    let outcomes: Vec<Outcome> = futures::stream::iter(due)
        .map(|due| check(services, due, now, &throttled))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Outcome::Taken => report.taken += 1,
            Outcome::Checked { repairs } => {
                report.checked += 1;
                report.repairs += repairs;
            }
            Outcome::Uncertain => report.uncertain += 1,
            Outcome::Deferred => report.deferred += 1,
        }
    }
    tracing::info!(
        due = report.due,
        checked = report.checked,
        taken = report.taken,
        uncertain = report.uncertain,
        deferred = report.deferred,
        repairs = report.repairs,
        "reconciler run"
    );
    Ok(report)
}

async fn check(
    services: &Services,
    due: DueSession,
    now: OffsetDateTime,
    throttled: &AtomicBool,
) -> Outcome {
    if throttled.load(Ordering::Relaxed) {
        return Outcome::Deferred;
    }
    let call = due.session.id.clone();
    match services.store.claim_check(&due, now, now + LEASE).await {
        Ok(true) => {}
        Ok(false) => return Outcome::Taken,
        Err(error) => {
            tracing::warn!(%error, %call, "reconciler could not claim the session");
            return Outcome::Uncertain;
        }
    }
    // Cut at its budget (or the invocation's deadline, if sooner): a cut
    // check leaves the session for its next one, as any uncertainty does.
    let budget = crate::time_budget::capped(CHECK_BUDGET);
    let cut_at = tokio::time::Instant::now() + budget;
    let Some(checked) = crate::time_budget::within(cut_at, reconcile(services, due.session)).await
    else {
        tracing::warn!(%call, ?budget, "reconciler check cut at its time budget");
        return Outcome::Uncertain;
    };
    match checked {
        Ok(repairs) => Outcome::Checked { repairs },
        Err(skip) => {
            if skip.throttled() {
                throttled.store(true, Ordering::Relaxed);
            }
            tracing::warn!(error = %skip, %call, "reconciler left the session for its next check");
            Outcome::Uncertain
        }
    }
}

/// Compares one claimed session with Twilio and repairs it. The count of
/// repairs made.
async fn reconcile(services: &Services, session: CallSession) -> Result<usize, Skip> {
    let observations = look(services, &session).await?;
    let mut repairs = 0;
    let mut current = session;
    // Only what moves the session forward is written (a healthy call
    // costs no write at all).
    for observation in observations {
        if current.clone().observe(observation.clone()) == Observed::Ignored {
            continue;
        }
        let describe = observation.describe();
        // Ignored when a callback got there between the look and the write.
        if let (Observed::Applied, Some(next)) =
            services.store.observe(&current.id, observation).await?
        {
            current = next;
            record(
                services,
                &current.id,
                RECOVERED,
                describe,
                Repair::LostCallback,
            )
            .await;
            repairs += 1;
        }
    }
    // A team's next member still unrung since the last look: the handler
    // that should have rung them is gone. The reconciler does not dial
    // (it cannot know that handler's dial did not get through): it ends
    // the route, and the follow-ups below treat it as a failed transfer.
    if let Some(after) = current.next_member_due() {
        let over = |s: &mut CallSession| s.route_exhausted(after);
        if let Ok(next) = services.store.update(&current.id, &over).await {
            current = next;
            let detail = "the team's next member was never rung".to_owned();
            record(
                services,
                &current.id,
                ROUTE_ENDED,
                detail,
                Repair::RouteEnded,
            )
            .await;
            repairs += 1;
        }
    }
    // A caller past their maximum wait whose wait loop did not end it
    // (it stopped asking, or failed): ended here, so they reach the
    // fallback rather than wait on.
    let now = OffsetDateTime::now_utc();
    if current.wait_due_to_end(now) {
        let over = |s: &mut CallSession| s.end_wait(now).map(|_| ());
        if let Ok(next) = services.store.update(&current.id, &over).await {
            current = next;
            let detail = "nobody answered in time".to_owned();
            record(services, &current.id, WAIT_ENDED, detail, Repair::WaitEnded).await;
            repairs += 1;
        }
    }
    let needed = current.follow_ups();
    if needed.is_empty() {
        return Ok(repairs);
    }
    follow_up::carry_out(services, &current).await;
    repairs += confirm(services, &current, needed).await?;
    Ok(repairs)
}

/// Which follow-ups took effect: an ended leg is fetched again (and its end
/// applied), the others are recorded on the session by `carry_out`.
async fn confirm(
    services: &Services,
    before: &CallSession,
    needed: Vec<FollowUp>,
) -> Result<usize, Skip> {
    let mut repairs = 0;
    for follow_up in &needed {
        if let FollowUp::EndLeg(leg) = follow_up {
            let observation = match leg_observation(services, before, leg).await {
                Ok(Some(observation)) => observation,
                _ => continue,
            };
            let ended = matches!(&observation, Observation::AgentLeg(o)
                | Observation::CustomerLeg(o)
                | Observation::TargetLeg { observation: o, .. }
                | Observation::SupervisorLeg { observation: o, .. }
                | Observation::PartyLeg { observation: o, .. } if o.status.is_final());
            if ended {
                services.store.observe(&before.id, observation).await?;
                // A leg no longer on the session is an earlier attempt's agent.
                let role = before
                    .role_of_leg(leg)
                    .unwrap_or(Role::SecondAgent)
                    .as_str();
                record(
                    services,
                    &before.id,
                    REPAIRED,
                    format!("hung up the {role}'s leg"),
                    Repair::LegHungUp,
                )
                .await;
                repairs += 1;
            }
        }
    }
    let after = services
        .store
        .get_session(&before.id)
        .await?
        .unwrap_or_else(|| before.clone());
    let still_needed = after.follow_ups();
    for follow_up in &needed {
        let repair = match follow_up {
            FollowUp::EndLeg(_) => continue,
            FollowUp::AnchorRoomOnTarget { .. } => Repair::RoomAnchored,
            FollowUp::LiftAnchor { .. } => Repair::AnchorLifted,
            FollowUp::ReleaseCustomer => Repair::CustomerReleased,
            FollowUp::ResumeCustomer => Repair::CustomerResumed,
        };
        let detail = follow_up.done_text().unwrap_or_default();
        if !still_needed.contains(follow_up) {
            record(services, &before.id, REPAIRED, detail.to_owned(), repair).await;
            repairs += 1;
        }
    }
    Ok(repairs)
}

/// One history entry, one JSON log line and one count per repair.
async fn record(
    services: &Services,
    call: &CallSid,
    kind: &'static str,
    detail: String,
    repair: Repair,
) {
    tracing::info!(%call, repair = kind, detail = %detail, source = "reconciler", "repair");
    metrics::repair(repair);
    let event = HistoryEvent::reconciler(OffsetDateTime::now_utc(), kind, Some(detail));
    history::record(services.store.as_ref(), call, &event).await;
}

/// What Twilio says about the session's legs and room, as observations.
/// Any failure stops the look: nothing is applied from half an answer.
async fn look(services: &Services, session: &CallSession) -> Result<Vec<Observation>, Skip> {
    let now = OffsetDateTime::now_utc();
    let mut observations = Vec::new();
    // The legs known to be live (the domain's one definition), and the two
    // the session may not know yet: leg 1 before its first callback, and
    // the customer's, found as leg 1's child.
    let mut live_legs = Vec::new();
    // (An inbound session's SID is the caller's call: a leg it knows.)
    if session.agent_leg.is_none() && session.inbound.is_none() {
        live_legs.push(session.id.clone());
    }
    if session.customer_leg.is_none() {
        // The customer's callbacks never came: leg 1's child is the customer.
        let children = services
            .twilio
            .list_calls(&ListCalls {
                parent_call_sid: Some(session.id.clone()),
                page_size: Some(20),
                ..ListCalls::default()
            })
            .await?;
        if let Some(sid) = children.first().and_then(|c| CallSid::parse(&c.sid).ok()) {
            live_legs.push(sid);
        }
    }
    live_legs.extend(session.live_leg_sids());
    let transfer = session.transfer.as_ref();
    for leg in &live_legs {
        if let Some(observation) = leg_observation(services, session, leg).await? {
            observations.push(observation);
        }
    }
    if transfer.is_some() && !session.is_ended() {
        for observation in look_at_room(services, session, now).await? {
            // The second agent seen in the room for the first time: their leg.
            if let Observation::TargetLeg { .. } = observation {
                observations.insert(0, observation);
            } else {
                observations.push(observation);
            }
        }
    }
    Ok(observations)
}

/// A leg's status as Twilio has it now. `None` when the call is not one of
/// the session's legs or Twilio names a status the product does not know.
async fn leg_observation(
    services: &Services,
    session: &CallSession,
    leg: &CallSid,
) -> Result<Option<Observation>, TwilioError> {
    let call = services.twilio.fetch_call(leg).await?;
    let Some(status) = call.status.and_then(|s| LegStatus::parse(s.as_str())) else {
        return Ok(None);
    };
    Ok(as_observation(session, leg, status))
}

fn as_observation(session: &CallSession, leg: &CallSid, status: LegStatus) -> Option<Observation> {
    let observed = LegObservation {
        call_sid: leg.clone(),
        status,
        // A fetch has no sequence number: the rank alone says whether it
        // is news, so it never moves a leg backwards.
        sequence: None,
        at: OffsetDateTime::now_utc(),
    };
    // Leg 1 names an outbound session; an inbound one is named by the
    // caller's own call.
    if *leg == session.id && session.inbound.is_none() {
        return Some(Observation::AgentLeg(observed));
    }
    let transfer = session.transfer.as_ref();
    let is_target = transfer
        .and_then(|t| t.target_leg.as_ref())
        .is_some_and(|l| l.call_sid == *leg);
    if is_target {
        return transfer.map(|t| Observation::TargetLeg {
            attempt: t.attempt,
            observation: observed,
        });
    }
    let supervision = session
        .supervision
        .as_ref()
        .filter(|s| s.leg.as_ref().is_some_and(|l| l.call_sid == *leg));
    if let Some(supervision) = supervision {
        return Some(Observation::SupervisorLeg {
            visit: supervision.visit,
            observation: observed,
        });
    }
    let party = session
        .party
        .as_ref()
        .filter(|p| p.leg.as_ref().is_some_and(|l| l.call_sid == *leg));
    if let Some(party) = party {
        return Some(Observation::PartyLeg {
            visit: party.visit,
            observation: observed,
        });
    }
    // The owner's callbacks come under the attempt that brought them in.
    let owner = session
        .owner
        .as_ref()
        .filter(|o| o.leg.as_ref().is_some_and(|l| l.call_sid == *leg));
    if let Some(owner) = owner {
        return Some(Observation::TargetLeg {
            attempt: owner.attempt,
            observation: observed,
        });
    }
    let other_customer = session
        .customer_leg
        .as_ref()
        .is_some_and(|l| l.call_sid != *leg);
    (!other_customer).then_some(Observation::CustomerLeg(observed))
}

/// The live room's participants: who joined, who is no longer there, and
/// the current second agent's leg if no callback named it.
async fn look_at_room(
    services: &Services,
    session: &CallSession,
    now: OffsetDateTime,
) -> Result<Vec<Observation>, TwilioError> {
    let Some(transfer) = &session.transfer else {
        return Ok(Vec::new());
    };
    let rooms = services
        .twilio
        .list_conferences(&ListConferences {
            friendly_name: Some(transfer.room.as_str().to_owned()),
            status: None,
            page_size: Some(20),
        })
        .await?;
    // No live room: whether it ended or never started, the legs tell.
    let Some(room) = rooms
        .into_iter()
        .find(|room| room.status != Some(ConferenceStatus::Completed))
    else {
        return Ok(Vec::new());
    };
    let participants = services.twilio.list_participants(&room.sid).await?;
    Ok(room_observations(session, &participants, now))
}

fn room_observations(
    session: &CallSession,
    participants: &[Participant],
    now: OffsetDateTime,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let Some(transfer) = &session.transfer else {
        return out;
    };
    let current_target = RoomParticipant::SecondAgent {
        attempt: transfer.attempt,
    };
    let listed = |who: RoomParticipant| {
        participants
            .iter()
            .find(|p| p.label.as_deref() == Some(who.label().as_str()))
    };
    let conference = |event, who| Observation::Conference {
        event,
        participant: Some(who),
        sequence: None,
        conference: None,
        at: now,
    };
    if transfer.target_leg.is_none() {
        let found = listed(current_target).and_then(|p| CallSid::parse(&p.call_sid).ok());
        let status = listed(current_target).and_then(|p| match p.status? {
            ParticipantStatus::Connected => Some(LegStatus::InProgress),
            ParticipantStatus::Ringing => Some(LegStatus::Ringing),
            ParticipantStatus::Queued | ParticipantStatus::Connecting => Some(LegStatus::Initiated),
            ParticipantStatus::Complete | ParticipantStatus::Failed => None,
        });
        if let (Some(sid), Some(status)) = (found, status) {
            out.push(Observation::TargetLeg {
                attempt: transfer.attempt,
                observation: LegObservation {
                    call_sid: sid,
                    status,
                    sequence: None,
                    at: now,
                },
            });
        }
    }
    let presences = [
        (RoomParticipant::Customer, session.customer_presence),
        (RoomParticipant::FirstAgent, session.first_agent_presence),
        (current_target, transfer.target_presence),
    ];
    // After a handover, the agent transferring on came in with an earlier attempt.
    let owner = session.owner.as_ref().map(|o| {
        let who = RoomParticipant::SecondAgent { attempt: o.attempt };
        (who, o.presence)
    });
    for (who, stored) in presences.into_iter().chain(owner) {
        match listed(who) {
            Some(p)
                if p.status == Some(ParticipantStatus::Connected) && stored == Presence::Never =>
            {
                out.push(conference(ConferenceEvent::Join, who));
            }
            // A participant is listed only while in the room.
            None if stored == Presence::Joined => {
                out.push(conference(ConferenceEvent::Leave, who));
            }
            _ => {}
        }
    }
    out
}
