//! How a session and a history event are laid out as DynamoDB items.
//! Typed attributes, not a JSON blob: the observation writes compare leg
//! ranks and presences inside their condition expressions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::StoreError;
use crate::domain::{
    AgentId, CallSession, EventSource, HelpRequest, HistoryEvent, Hop, Inbound, LegObservation,
    LegStatus, Member, OutsideParty, Owner, PassedOver, Presence, Recording, RecordingSource,
    RecordingStatus, Supervision, SupervisorMode, TeamName, TeamRoute, Transfer, TransferKind,
    TransferOutcome, TransferState,
};
use crate::ids::{CallSid, PhoneNumber, RoomName};

pub type Item = HashMap<String, AttributeValue>;

pub const SESSION_SK: &str = "SESSION";
pub const EVENT_PREFIX: &str = "EVENT#";
/// A claim to end one of the call's legs (`END#<leg SID>`).
pub const LEG_END_PREFIX: &str = "END#";
/// Partition of a team's queue of waiting callers (`QUEUE#<team>`), one
/// entry per caller (`WAIT#<nanos since waiting, 20 digits>#<call SID>`).
pub const QUEUE_PREFIX: &str = "QUEUE#";
pub const WAIT_PREFIX: &str = "WAIT#";

/// The sort key of a caller's queue entry: by when they started waiting.
pub fn wait_sort_key(since: OffsetDateTime, call: &CallSid) -> String {
    format!(
        "{WAIT_PREFIX}{:020}#{call}",
        since.unix_timestamp_nanos().max(0)
    )
}

/// Partition of an agent's per-minute allowance of calls and transfers.
pub const ALLOWANCE_PREFIX: &str = "ALLOWANCE#";

/// Attribute-name prefixes of the three legs.
pub const AGENT: &str = "agent";
pub const CUSTOMER: &str = "customer";
pub const TARGET: &str = "target";
pub const OWNER: &str = "owner";
pub const SUPERVISOR: &str = "supervisor";
pub const PARTY: &str = "party";

pub fn pk(id: &CallSid) -> String {
    format!("CALL#{id}")
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn time_text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

pub(super) fn required<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    get_s(item, name).ok_or_else(|| corrupt(name))
}

pub(super) fn time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(required(item, name)?, &Rfc3339).map_err(|_| corrupt(name))
}

fn phone(item: &Item, name: &str) -> Result<PhoneNumber, StoreError> {
    PhoneNumber::parse(required(item, name)?).map_err(|_| corrupt(name))
}

/// The attributes of one leg observation, under a prefix.
pub fn leg_attributes(prefix: &str, leg: &LegObservation) -> Vec<(String, AttributeValue)> {
    let mut attributes = vec![
        (format!("{prefix}_sid"), s(leg.call_sid.as_str())),
        (format!("{prefix}_status"), s(leg.status.as_str())),
        (format!("{prefix}_rank"), n(leg.status.rank())),
        (format!("{prefix}_at"), s(time_text(leg.at))),
    ];
    if let Some(sequence) = leg.sequence {
        attributes.push((format!("{prefix}_seq"), n(sequence)));
    }
    attributes
}

fn leg(item: &Item, prefix: &str) -> Result<Option<LegObservation>, StoreError> {
    let Some(sid) = get_s(item, &format!("{prefix}_sid")) else {
        return Ok(None);
    };
    let status_name = format!("{prefix}_status");
    Ok(Some(LegObservation {
        call_sid: CallSid::parse(sid).map_err(|_| corrupt(prefix))?,
        status: LegStatus::parse(required(item, &status_name)?)
            .ok_or_else(|| corrupt(&status_name))?,
        sequence: get_n(item, &format!("{prefix}_seq")),
        at: time(item, &format!("{prefix}_at"))?,
    }))
}

/// Attributes of the open-sessions index and the reconciler's claim (see
/// [`super::table::TABLE`]): present only while the session is not settled.
pub const OPEN_SHARD: &str = "open_shard";
pub const CHECK_AT: &str = "check_at";
/// Epoch seconds until which one reconciler run holds the session.
pub const CHECK_LEASE: &str = "check_lease";

/// What a session item carries besides the session, kept across rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemMeta {
    /// TTL: epoch seconds after which DynamoDB deletes the item.
    pub expires_at: i64,
    /// A reconciler run's claim, kept so a callback written meanwhile does
    /// not hand the session to a second run.
    pub check_lease: Option<i64>,
}

impl ItemMeta {
    pub fn read(item: &Item) -> Option<Self> {
        Some(Self {
            expires_at: get_n(item, "expires_at")?,
            check_lease: get_n(item, CHECK_LEASE),
        })
    }
}

/// The index shard a session belongs to: fixed by its SID, spread evenly
/// (SIDs end in random hex digits).
pub fn open_shard(id: &CallSid) -> String {
    let last = id.as_str().chars().last().and_then(|c| c.to_digit(16));
    format!("OPEN#{}", last.unwrap_or(0) % super::table::OPEN_SHARDS)
}

/// The session item as of `now`: the index attributes say when the
/// reconciler must next look at it ([`CallSession::next_check`]), and are
/// left out once it is settled, which takes it out of the index.
pub fn session_item(session: &CallSession, meta: ItemMeta, now: OffsetDateTime) -> Item {
    let mut item = session_attributes(session, meta.expires_at);
    if let Some(check_at) = session.next_check(now) {
        item.insert(OPEN_SHARD.into(), s(open_shard(&session.id)));
        item.insert(CHECK_AT.into(), n(check_at.unix_timestamp()));
        if let Some(lease) = meta.check_lease {
            item.insert(CHECK_LEASE.into(), n(lease));
        }
    }
    item
}

fn session_attributes(session: &CallSession, expires_at: i64) -> Item {
    let mut item: Item = [
        ("pk", s(pk(&session.id))),
        ("sk", s(SESSION_SK)),
        ("version", n(session.version)),
        ("expires_at", n(expires_at)),
        ("agent_number", s(session.agent_number.as_str())),
        ("customer_number", s(session.customer_number.as_str())),
        ("caller_id", s(session.caller_id.as_str())),
        ("created_at", s(time_text(session.created_at))),
        ("customer_presence", n(session.customer_presence.as_u8())),
        (
            "first_agent_presence",
            n(session.first_agent_presence.as_u8()),
        ),
        ("room_ended", AttributeValue::Bool(session.room_ended)),
        (
            "customer_moved",
            AttributeValue::Bool(session.customer_moved),
        ),
        (
            "customer_released",
            AttributeValue::Bool(session.customer_released),
        ),
        ("customer_held", AttributeValue::Bool(session.customer_held)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (prefix, observed) in [
        (AGENT, &session.agent_leg),
        (CUSTOMER, &session.customer_leg),
    ] {
        if let Some(observed) = observed {
            item.extend(leg_attributes(prefix, observed));
        }
    }
    if let Some(room_sid) = &session.room_sid {
        item.insert("room_sid".into(), s(room_sid));
    }
    if let Some(owner) = &session.owner {
        item.insert("o_attempt".into(), n(owner.attempt));
        item.insert("o_number".into(), s(owner.number.as_str()));
        item.insert("o_presence".into(), n(owner.presence.as_u8()));
        item.insert(
            "o_anchors_room".into(),
            AttributeValue::Bool(owner.anchors_room),
        );
        if let Some(leg) = &owner.leg {
            item.extend(leg_attributes(OWNER, leg));
        }
    }
    if let Some(sv) = &session.supervision {
        item.extend(supervision_attributes(sv));
    }
    if let Some(party) = &session.party {
        item.insert("p_visit".into(), n(party.visit));
        item.insert("p_by".into(), s(&party.added_by));
        item.insert("p_number".into(), s(party.number.as_str()));
        item.insert("p_presence".into(), n(party.presence.as_u8()));
        item.insert("p_dropping".into(), AttributeValue::Bool(party.dropping));
        item.insert("p_added_at".into(), s(time_text(party.added_at)));
        if let Some(observed) = &party.leg {
            item.extend(leg_attributes(PARTY, observed));
        }
    }
    if let Some(help) = &session.help {
        item.insert("help_by".into(), s(&help.by));
        item.insert("help_at".into(), s(time_text(help.at)));
    }
    if !session.hops.is_empty() {
        let hops = session.hops.iter().map(hop_attribute).collect();
        item.insert("hops".into(), AttributeValue::L(hops));
    }
    if let Some(t) = &session.transfer {
        item.insert("t_attempt".into(), n(t.attempt));
        item.insert("t_kind".into(), s(t.kind.as_str()));
        item.insert("t_consulted".into(), AttributeValue::Bool(t.consulted));
        item.insert(
            "t_anchors_room".into(),
            AttributeValue::Bool(t.target_anchors_room),
        );
        item.insert("t_target".into(), s(t.target.as_str()));
        item.insert("t_room".into(), s(t.room.as_str()));
        item.insert("t_requested_at".into(), s(time_text(t.requested_at)));
        item.insert("t_presence".into(), n(t.target_presence.as_u8()));
        if let Some(key) = &t.idempotency_key {
            item.insert("t_key".into(), s(key));
        }
        if let Some(target_leg) = &t.target_leg {
            item.extend(leg_attributes(TARGET, target_leg));
        }
        let (outcome, reason) = match &t.outcome {
            None => (None, None),
            Some(TransferOutcome::Failed { reason }) => (Some("failed"), Some(reason.as_str())),
            Some(TransferOutcome::Cancelled) => (Some("cancelled"), None),
            Some(TransferOutcome::FirstAgentLeft) => (Some("first-agent-left"), None),
        };
        if let Some(outcome) = outcome {
            item.insert("t_outcome".into(), s(outcome));
        }
        if let Some(reason) = reason {
            item.insert("t_reason".into(), s(reason));
        }
        if let Some(member) = &t.member {
            item.insert("t_member".into(), member_attribute(member));
        }
        if let Some(route) = &t.route {
            item.insert("t_route".into(), route_attribute(route));
        }
    }
    if let Some(inbound) = &session.inbound {
        item.insert("i_team".into(), s(inbound.team.as_str()));
        item.insert("i_since".into(), s(time_text(inbound.since)));
        item.insert("i_until".into(), s(time_text(inbound.until)));
        item.insert(
            "i_wait_over".into(),
            AttributeValue::Bool(inbound.wait_over),
        );
        if let Some(token) = &inbound.call_token {
            item.insert("i_token".into(), s(token));
        }
    }
    item
}

fn inbound(item: &Item) -> Result<Option<Inbound>, StoreError> {
    let Some(team) = get_s(item, "i_team") else {
        return Ok(None);
    };
    Ok(Some(Inbound {
        team: TeamName::parse(team).map_err(|_| corrupt("i_team"))?,
        since: time(item, "i_since")?,
        until: time(item, "i_until")?,
        call_token: get_s(item, "i_token").map(str::to_owned),
        wait_over: get_bool(item, "i_wait_over"),
    }))
}

/// The supervisor on the call: `sv_` attributes, their phone's leg as
/// `supervisor_...`.
fn supervision_attributes(sv: &Supervision) -> Vec<(String, AttributeValue)> {
    let mut attributes: Vec<(String, AttributeValue)> = [
        ("sv_visit", n(sv.visit)),
        ("sv_by", s(&sv.supervisor)),
        ("sv_number", s(sv.number.as_str())),
        ("sv_mode", s(sv.mode.as_str())),
        ("sv_agent_call", s(sv.agent_call.as_str())),
        ("sv_presence", n(sv.presence.as_u8())),
        ("sv_leaving", AttributeValue::Bool(sv.leaving)),
        ("sv_requested_at", s(time_text(sv.requested_at))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(observed) = &sv.leg {
        attributes.extend(leg_attributes(SUPERVISOR, observed));
    }
    attributes
}

fn supervision(item: &Item) -> Result<Option<Supervision>, StoreError> {
    let Some(visit) = get_n::<u32>(item, "sv_visit") else {
        return Ok(None);
    };
    Ok(Some(Supervision {
        visit,
        supervisor: required(item, "sv_by")?.to_owned(),
        number: phone(item, "sv_number")?,
        mode: SupervisorMode::parse(required(item, "sv_mode")?)
            .ok_or_else(|| corrupt("sv_mode"))?,
        agent_call: CallSid::parse(required(item, "sv_agent_call")?)
            .map_err(|_| corrupt("sv_agent_call"))?,
        leg: leg(item, SUPERVISOR)?,
        presence: Presence::from_u8(get_n(item, "sv_presence").unwrap_or(0)),
        leaving: get_bool(item, "sv_leaving"),
        requested_at: time(item, "sv_requested_at")?,
    }))
}

fn member_attribute(member: &Member) -> AttributeValue {
    AttributeValue::M(
        [
            ("id".to_owned(), s(member.id.as_str())),
            ("name".to_owned(), s(&member.name)),
        ]
        .into(),
    )
}

fn member(value: &AttributeValue) -> Result<Member, StoreError> {
    let AttributeValue::M(map) = value else {
        return Err(corrupt("member"));
    };
    Ok(Member {
        id: AgentId::parse(required(map, "id")?).map_err(|_| corrupt("member.id"))?,
        name: required(map, "name")?.to_owned(),
    })
}

/// A team transfer's route: its team, limits and who was passed over.
fn route_attribute(route: &TeamRoute) -> AttributeValue {
    let passed = route
        .passed
        .iter()
        .map(|p| {
            AttributeValue::M(
                [
                    ("member".to_owned(), member_attribute(&p.member)),
                    ("why".to_owned(), s(p.why.as_str())),
                ]
                .into(),
            )
        })
        .collect();
    AttributeValue::M(
        [
            ("team".to_owned(), s(route.team.as_str())),
            ("passed".to_owned(), AttributeValue::L(passed)),
            ("rung".to_owned(), n(route.rung)),
            ("max_members".to_owned(), n(route.max_members)),
            ("until".to_owned(), s(time_text(route.until))),
            (
                "exhausted".to_owned(),
                AttributeValue::Bool(route.exhausted),
            ),
        ]
        .into(),
    )
}

fn route(value: &AttributeValue) -> Result<TeamRoute, StoreError> {
    let AttributeValue::M(map) = value else {
        return Err(corrupt("route"));
    };
    let passed = match map.get("passed") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|entry| {
                let AttributeValue::M(entry) = entry else {
                    return Err(corrupt("route.passed"));
                };
                Ok(PassedOver {
                    member: member(entry.get("member").ok_or_else(|| corrupt("route.passed"))?)?,
                    why: TransferState::parse(required(entry, "why")?)
                        .ok_or_else(|| corrupt("route.passed.why"))?,
                })
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    Ok(TeamRoute {
        team: TeamName::parse(required(map, "team")?).map_err(|_| corrupt("route.team"))?,
        passed,
        rung: get_n(map, "rung").ok_or_else(|| corrupt("route.rung"))?,
        max_members: get_n(map, "max_members").ok_or_else(|| corrupt("route.max_members"))?,
        until: time(map, "until")?,
        exhausted: get_bool(map, "exhausted"),
    })
}

pub fn session_from_item(item: &Item) -> Result<CallSession, StoreError> {
    let id = required(item, "pk")?
        .strip_prefix("CALL#")
        .and_then(|sid| CallSid::parse(sid).ok())
        .ok_or_else(|| corrupt("pk"))?;
    let transfer = match get_n::<u32>(item, "t_attempt") {
        None => None,
        Some(attempt) => Some(Transfer {
            attempt,
            // Sessions stored before blind transfers existed were all warm.
            kind: match get_s(item, "t_kind") {
                None => TransferKind::Warm,
                Some(kind) => TransferKind::parse(kind).ok_or_else(|| corrupt("t_kind"))?,
            },
            consulted: get_bool(item, "t_consulted"),
            target: phone(item, "t_target")?,
            room: RoomName::parse(required(item, "t_room")?).map_err(|_| corrupt("t_room"))?,
            idempotency_key: get_s(item, "t_key").map(str::to_owned),
            requested_at: time(item, "t_requested_at")?,
            target_leg: leg(item, TARGET)?,
            target_presence: Presence::from_u8(get_n(item, "t_presence").unwrap_or(0)),
            target_anchors_room: get_bool(item, "t_anchors_room"),
            outcome: match get_s(item, "t_outcome") {
                None => None,
                Some("failed") => Some(TransferOutcome::Failed {
                    reason: get_s(item, "t_reason").unwrap_or_default().to_owned(),
                }),
                Some("cancelled") => Some(TransferOutcome::Cancelled),
                Some("first-agent-left") => Some(TransferOutcome::FirstAgentLeft),
                Some(_) => return Err(corrupt("t_outcome")),
            },
            member: item.get("t_member").map(member).transpose()?,
            route: item.get("t_route").map(route).transpose()?,
        }),
    };
    let owner = match get_n::<u32>(item, "o_attempt") {
        None => None,
        Some(attempt) => Some(Owner {
            attempt,
            number: phone(item, "o_number")?,
            leg: leg(item, OWNER)?,
            presence: Presence::from_u8(get_n(item, "o_presence").unwrap_or(0)),
            anchors_room: get_bool(item, "o_anchors_room"),
        }),
    };
    let hops = match item.get("hops") {
        None => Vec::new(),
        Some(AttributeValue::L(hops)) => hops.iter().map(hop).collect::<Result<_, _>>()?,
        Some(_) => return Err(corrupt("hops")),
    };
    Ok(CallSession {
        id,
        owner,
        hops,
        agent_number: phone(item, "agent_number")?,
        customer_number: phone(item, "customer_number")?,
        caller_id: phone(item, "caller_id")?,
        created_at: time(item, "created_at")?,
        agent_leg: leg(item, AGENT)?,
        customer_leg: leg(item, CUSTOMER)?,
        customer_presence: Presence::from_u8(get_n(item, "customer_presence").unwrap_or(0)),
        first_agent_presence: Presence::from_u8(get_n(item, "first_agent_presence").unwrap_or(0)),
        room_ended: get_bool(item, "room_ended"),
        customer_moved: get_bool(item, "customer_moved"),
        customer_held: get_bool(item, "customer_held"),
        room_sid: get_s(item, "room_sid").map(str::to_owned),
        customer_released: get_bool(item, "customer_released"),
        transfer,
        inbound: inbound(item)?,
        supervision: supervision(item)?,
        party: match get_n::<u32>(item, "p_visit") {
            None => None,
            Some(visit) => Some(OutsideParty {
                visit,
                added_by: required(item, "p_by")?.to_owned(),
                number: phone(item, "p_number")?,
                leg: leg(item, PARTY)?,
                presence: Presence::from_u8(get_n(item, "p_presence").unwrap_or(0)),
                dropping: get_bool(item, "p_dropping"),
                added_at: time(item, "p_added_at")?,
            }),
        },
        help: match get_s(item, "help_by") {
            None => None,
            Some(by) => Some(HelpRequest {
                by: by.to_owned(),
                at: time(item, "help_at")?,
            }),
        },
        version: get_n(item, "version").ok_or_else(|| corrupt("version"))?,
    })
}

/// One earlier transfer attempt, as an entry of the session's `hops` list.
fn hop_attribute(hop: &Hop) -> AttributeValue {
    let map: Item = [
        ("attempt", n(hop.attempt)),
        ("kind", s(hop.kind.as_str())),
        ("from", s(hop.from.as_str())),
        ("to", s(hop.to.as_str())),
        ("requested_at", s(time_text(hop.requested_at))),
        ("outcome", s(hop.outcome.as_str())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    AttributeValue::M(map)
}

fn hop(value: &AttributeValue) -> Result<Hop, StoreError> {
    let AttributeValue::M(map) = value else {
        return Err(corrupt("hops"));
    };
    Ok(Hop {
        attempt: get_n(map, "attempt").ok_or_else(|| corrupt("hops.attempt"))?,
        kind: TransferKind::parse(required(map, "kind")?).ok_or_else(|| corrupt("hops.kind"))?,
        from: phone(map, "from")?,
        to: phone(map, "to")?,
        requested_at: time(map, "requested_at")?,
        outcome: TransferState::parse(required(map, "outcome")?)
            .ok_or_else(|| corrupt("hops.outcome"))?,
    })
}

/// Sort key of a history entry: time first so a query returns them in
/// order, then a random suffix so two entries never collide.
pub fn event_sort_key(at: OffsetDateTime) -> String {
    let nanos = at.unix_timestamp_nanos().max(0);
    format!("{EVENT_PREFIX}{nanos:020}#{:08x}", rand::random::<u32>())
}

pub fn event_item(id: &CallSid, event: &HistoryEvent, expires_at: i64) -> Item {
    let mut item: Item = [
        ("pk", s(pk(id))),
        ("sk", s(event_sort_key(event.at))),
        ("expires_at", n(expires_at)),
        ("at", s(time_text(event.at))),
        ("source", s(event.source.as_str())),
        ("kind", s(&event.kind)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(detail) = &event.detail {
        item.insert("detail".into(), s(detail));
    }
    if let Some(recording) = &event.recording {
        item.insert("rec_sid".into(), s(&recording.sid));
        item.insert("rec_source".into(), s(recording.source.as_str()));
        item.insert("rec_status".into(), s(recording.status.as_str()));
        if let Some(secs) = recording.duration_secs {
            item.insert("rec_secs".into(), n(secs));
        }
    }
    if let Some(actor) = &event.actor {
        item.insert("actor".into(), s(actor));
    }
    item
}

fn recording(item: &Item) -> Result<Option<Recording>, StoreError> {
    let Some(sid) = get_s(item, "rec_sid") else {
        return Ok(None);
    };
    let source = RecordingSource::parse(required(item, "rec_source")?)
        .ok_or_else(|| corrupt("rec_source"))?;
    let status = RecordingStatus::parse(required(item, "rec_status")?)
        .ok_or_else(|| corrupt("rec_status"))?;
    Recording::new(sid, source, status, get_n(item, "rec_secs"))
        .map(Some)
        .ok_or_else(|| corrupt("rec_sid"))
}

pub fn event_from_item(item: &Item) -> Result<HistoryEvent, StoreError> {
    Ok(HistoryEvent {
        at: time(item, "at")?,
        source: EventSource::parse(required(item, "source")?).ok_or_else(|| corrupt("source"))?,
        kind: required(item, "kind")?.to_owned(),
        detail: get_s(item, "detail").map(str::to_owned),
        recording: recording(item)?,
        actor: get_s(item, "actor").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_entry_round_trips() {
        let id = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let recording = Recording::new(
            "RE0123456789abcdef0123456789abcdef",
            RecordingSource::Bridge,
            RecordingStatus::Completed,
            Some(17),
        )
        .unwrap();
        for event in [
            HistoryEvent::recorded(at, recording),
            HistoryEvent::twilio(at, "customer completed", None),
        ] {
            let item = event_item(&id, &event, 0);
            assert_eq!(event_from_item(&item).unwrap(), event);
        }
        let mut item = event_item(
            &id,
            &HistoryEvent::recorded(
                at,
                Recording::new(
                    "RE0123456789abcdef0123456789abcdef",
                    RecordingSource::Room,
                    RecordingStatus::Completed,
                    None,
                )
                .unwrap(),
            ),
            0,
        );
        item.insert("rec_source".into(), s("voicemail"));
        assert!(matches!(
            event_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
    }
}
