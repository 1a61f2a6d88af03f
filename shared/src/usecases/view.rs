//! The JSON the front-end API answers with (see `shared/openapi.yaml`):
//! the domain, named for the console. A call, and the directory.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use std::collections::BTreeMap;

use crate::domain::{
    Actor, AgentId, Availability, CallSession, EventSource, HistoryEvent, LegObservation, Offer,
    Presence, SupervisorMode, TransferOutcome,
};
use crate::store::HistoryPage;
use crate::usecases::routing::Listed;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    call_sid: String,
    /// Grows with every change: a console keeps the newest it has seen,
    /// whether read or pushed.
    version: u64,
    state: &'static str,
    agent_number: String,
    /// Agent one, then after each handover the agent it was handed to.
    current_agent: String,
    customer_number: String,
    caller_id: String,
    created_at: String,
    agent_leg: Option<LegView>,
    customer_leg: Option<LegView>,
    /// The customer is on hold while the agents consult.
    customer_held: bool,
    /// What the signed-in agent may do with the call now, as the domain
    /// decides it (`CallSession::offers`): the console offers exactly these.
    actions: Vec<Offer>,
    transfer: Option<TransferView>,
    /// The supervisor on the call, while they are: shown to the agent too,
    /// listening included (nobody is listened to unawares).
    #[serde(skip_serializing_if = "Option::is_none")]
    supervisor: Option<SupervisorView>,
    /// The agent's request for a supervisor, until one joins.
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<HelpView>,
    /// The outside party on the call, while they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    party: Option<PartyView>,
    /// Earlier transfer attempts: with `transfer`, every hop of the call.
    hops: Vec<HopView>,
    /// Repairs the reconciler made after lost callbacks (history entries
    /// whose source is `reconciler`).
    repairs: usize,
    /// What Twilio recorded of the conversation (recording on), from the
    /// recording callbacks in the history.
    recordings: Vec<RecordingView>,
    events: Vec<EventView>,
    /// Set when the call has history older than `events`: read on with
    /// `?historyBefore=` this value.
    #[serde(skip_serializing_if = "Option::is_none")]
    history_before: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordingView {
    sid: String,
    /// `bridge` (agent one and the customer) or `room` (the conference).
    source: &'static str,
    status: &'static str,
    duration_secs: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LegView {
    call_sid: String,
    status: &'static str,
    at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferView {
    attempt: u32,
    kind: &'static str,
    /// The agent handing the call over: agent one, or an agent transferring it on.
    from: String,
    to: String,
    state: &'static str,
    reason: Option<String>,
    requested_at: String,
    target_leg: Option<LegView>,
    /// The colleague this attempt rings, when the transfer named one or a team.
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<MemberView>,
    /// A team transfer: the team and who was passed over, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<TeamRouteView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartyView {
    /// The number the agent added.
    number: String,
    /// Their phone joined the room (false while it rings).
    joined: bool,
}

impl PartyView {
    fn of(session: &CallSession) -> Option<Self> {
        session
            .party
            .as_ref()
            .filter(|p| p.live() && !session.is_ended())
            .map(|p| PartyView {
                number: p.number.as_str().to_owned(),
                joined: p.presence == Presence::Joined,
            })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelpView {
    /// The agent who asked.
    by: String,
    at: String,
}

impl HelpView {
    fn of(session: &CallSession) -> Option<Self> {
        session.help_waiting().map(|h| HelpView {
            by: h.by.clone(),
            at: text(h.at),
        })
    }
}

impl SupervisorView {
    fn of(session: &CallSession) -> Option<Self> {
        session
            .supervision
            .as_ref()
            .filter(|s| s.live() && !session.is_ended())
            .map(|s| SupervisorView {
                id: s.supervisor.clone(),
                mode: s.mode,
                joined: s.presence == Presence::Joined,
            })
    }
}

/// The supervisors' board: the calls in progress, those asking for help
/// first, then the longest running.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardView {
    calls: Vec<BoardCallView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BoardCallView {
    call_sid: String,
    state: &'static str,
    /// The agent the call belongs to now (supervisors see numbers).
    current_agent: String,
    created_at: String,
    duration_secs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supervisor: Option<SupervisorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<HelpView>,
}

/// Whether the supervisors' board shows `after` otherwise than `before`
/// (its line, at the same instant), or it is a new call: supervisors then
/// read the board again.
pub fn board_moved(before: Option<&CallSession>, after: &CallSession) -> bool {
    let Some(before) = before else {
        return true;
    };
    let now = after.created_at;
    let line =
        |s: &CallSession| serde_json::to_value(BoardView::new(std::slice::from_ref(s), now)).ok();
    line(before) != line(after)
}

impl BoardView {
    pub fn new(sessions: &[CallSession], now: OffsetDateTime) -> Self {
        let mut sorted: Vec<&CallSession> = sessions.iter().collect();
        sorted.sort_by_key(|s| (s.help_waiting().is_none(), s.created_at));
        Self {
            calls: sorted
                .into_iter()
                .map(|s| BoardCallView {
                    call_sid: s.id.to_string(),
                    state: s.state().as_str(),
                    current_agent: s.current_agent().as_str().to_owned(),
                    created_at: text(s.created_at),
                    duration_secs: (now - s.created_at).whole_seconds().max(0),
                    transfer_state: s.transfer_state().map(|t| t.as_str()),
                    supervisor: SupervisorView::of(s),
                    help: HelpView::of(s),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SupervisorView {
    /// Who, as their sign-in names them.
    id: String,
    mode: SupervisorMode,
    /// Their phone joined the room (false while it rings).
    joined: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberView {
    id: String,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PassedView {
    id: String,
    name: String,
    /// How their attempt ended (`target-busy`, `target-no-answer`, `target-failed`).
    why: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TeamRouteView {
    name: String,
    passed: Vec<PassedView>,
    /// Nobody was left to ring.
    exhausted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HopView {
    attempt: u32,
    kind: &'static str,
    from: String,
    to: String,
    requested_at: String,
    outcome: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    at: String,
    source: &'static str,
    kind: String,
    detail: Option<String>,
    /// Who did it (front-end actions): the signed-in agent's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}

fn text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn leg(leg: &Option<LegObservation>) -> Option<LegView> {
    leg.as_ref().map(|l| LegView {
        call_sid: l.call_sid.to_string(),
        status: l.status.as_str(),
        at: text(l.at),
    })
}

impl CallView {
    /// The call as `actor` sees it. The console's own user typed these
    /// numbers; the API shows them whole.
    pub fn new(session: &CallSession, actor: &Actor, events: Vec<HistoryEvent>) -> Self {
        let transfer = session.transfer.as_ref().map(|t| TransferView {
            attempt: t.attempt,
            kind: t.kind.as_str(),
            from: session.handing_over_agent().as_str().to_owned(),
            to: t.target.as_str().to_owned(),
            state: session
                .transfer_state()
                .map(|s| s.as_str())
                .unwrap_or_default(),
            reason: match &t.outcome {
                Some(TransferOutcome::Failed { reason }) => Some(reason.clone()),
                _ => None,
            },
            requested_at: text(t.requested_at),
            target_leg: leg(&t.target_leg),
            member: t.member.as_ref().map(|m| MemberView {
                id: m.id.as_str().to_owned(),
                name: m.name.clone(),
            }),
            team: t.route.as_ref().map(|r| TeamRouteView {
                name: r.team.as_str().to_owned(),
                passed: r
                    .passed
                    .iter()
                    .map(|p| PassedView {
                        id: p.member.id.as_str().to_owned(),
                        name: p.member.name.clone(),
                        why: p.why.as_str(),
                    })
                    .collect(),
                exhausted: r.exhausted,
            }),
        });
        Self {
            call_sid: session.id.to_string(),
            version: session.version,
            state: session.state().as_str(),
            agent_number: session.agent_number.as_str().to_owned(),
            current_agent: session.current_agent().as_str().to_owned(),
            customer_number: session.customer_number.as_str().to_owned(),
            caller_id: session.caller_id.as_str().to_owned(),
            created_at: text(session.created_at),
            agent_leg: leg(&session.agent_leg),
            customer_leg: leg(&session.customer_leg),
            customer_held: session.customer_held,
            actions: session.offers(actor, OffsetDateTime::now_utc()),
            transfer,
            supervisor: SupervisorView::of(session),
            help: HelpView::of(session),
            party: PartyView::of(session),
            hops: session
                .hops
                .iter()
                .map(|hop| HopView {
                    attempt: hop.attempt,
                    kind: hop.kind.as_str(),
                    from: hop.from.as_str().to_owned(),
                    to: hop.to.as_str().to_owned(),
                    requested_at: text(hop.requested_at),
                    outcome: hop.outcome.as_str(),
                })
                .collect(),
            repairs: events
                .iter()
                .filter(|e| e.source == EventSource::Reconciler)
                .count(),
            recordings: HistoryEvent::recordings(&events)
                .into_iter()
                .map(|r| RecordingView {
                    sid: r.sid,
                    source: r.source.as_str(),
                    status: r.status.as_str(),
                    duration_secs: r.duration_secs,
                })
                .collect(),
            events: events.into_iter().map(EventView::from).collect(),
            history_before: None,
        }
    }

    /// The call with one page of its history (repairs and recordings are
    /// those of the page).
    pub fn with_history(session: &CallSession, actor: &Actor, page: HistoryPage) -> Self {
        Self {
            history_before: page.earlier.map(|cursor| cursor.as_str().to_owned()),
            ..Self::new(session, actor, page.events)
        }
    }
}

impl From<HistoryEvent> for EventView {
    fn from(e: HistoryEvent) -> Self {
        EventView {
            at: text(e.at),
            source: e.source.as_str(),
            kind: e.kind,
            detail: e.detail,
            actor: e.actor,
        }
    }
}

/// One agent of the directory, as a colleague sees them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    id: String,
    name: String,
    teams: Vec<String>,
    availability: Availability,
    /// Since when an available agent has been idle (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_since: Option<String>,
    /// Supervisors only: numbers identify people.
    #[serde(skip_serializing_if = "Option::is_none")]
    numbers: Option<Vec<String>>,
}

impl AgentView {
    /// `numbers`: whether the viewer may see phone numbers (a supervisor).
    pub fn new(listed: &Listed, numbers: bool) -> Self {
        let profile = &listed.agent.profile;
        let availability = listed.presence.availability;
        Self {
            id: profile.id.as_str().to_owned(),
            name: profile.name.clone(),
            teams: profile
                .teams
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            availability,
            idle_since: (availability == Availability::Available)
                .then(|| text(listed.presence.idle_since)),
            numbers: numbers.then(|| {
                profile
                    .numbers
                    .iter()
                    .map(|n| n.as_str().to_owned())
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct TeamView {
    name: String,
    members: usize,
    available: usize,
}

/// The directory as `GET /directory` answers it, and as pushed (without
/// numbers, and without `me`: every listener gets the same frame).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryView {
    /// The signed-in agent's own id, so the console leaves them out.
    me: Option<String>,
    agents: Vec<AgentView>,
    teams: Vec<TeamView>,
    /// A caller's call ringing the signed-in agent's phone (`GET
    /// /directory` only): who is calling, for which team, since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    incoming: Option<IncomingView>,
}

/// A customer's call offered to the agent who reads it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingView {
    call_sid: String,
    /// The caller's number: the agent's phone shows it too.
    caller: String,
    team: String,
    /// When the caller started waiting (RFC 3339).
    waiting_since: String,
}

impl IncomingView {
    /// The offer `session` makes to the agent on `numbers`, if it rings them.
    pub fn of(session: &CallSession, numbers: &[crate::ids::PhoneNumber]) -> Option<Self> {
        let inbound = session.inbound.as_ref()?;
        session.rings_for_caller(numbers).then(|| Self {
            call_sid: session.id.to_string(),
            caller: session.customer_number.as_str().to_owned(),
            team: inbound.team.as_str().to_owned(),
            waiting_since: text(inbound.since),
        })
    }
}

impl DirectoryView {
    /// With the offer ringing the reader's phone, if any.
    pub fn with_incoming(mut self, incoming: Option<IncomingView>) -> Self {
        self.incoming = incoming;
        self
    }

    pub fn new(listed: &[Listed], me: Option<&AgentId>, numbers: bool) -> Self {
        let mut sorted: Vec<&Listed> = listed.iter().collect();
        sorted.sort_by(|a, b| a.agent.profile.name.cmp(&b.agent.profile.name));
        let mut teams: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for entry in &sorted {
            let available = entry.presence.availability == Availability::Available;
            for team in &entry.agent.profile.teams {
                let counts = teams.entry(team.as_str()).or_default();
                counts.0 += 1;
                counts.1 += usize::from(available);
            }
        }
        Self {
            me: me.map(|id| id.as_str().to_owned()),
            agents: sorted.iter().map(|l| AgentView::new(l, numbers)).collect(),
            teams: teams
                .into_iter()
                .map(|(name, (members, available))| TeamView {
                    name: name.to_owned(),
                    members,
                    available,
                })
                .collect(),
            incoming: None,
        }
    }
}
