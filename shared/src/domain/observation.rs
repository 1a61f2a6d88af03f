//! What Twilio's callbacks tell the state machine.

use time::OffsetDateTime;

use super::leg::LegObservation;

wire_enum!(
    /// Conference events the product subscribes to, as a conference
    /// callback's `StatusCallbackEvent` names them.
    ConferenceEvent {
        Start => "conference-start",
        End => "conference-end",
        Join => "participant-join",
        Leave => "participant-leave",
    }
);

/// Who a conference participant is, from its `ParticipantLabel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomParticipant {
    Customer,
    FirstAgent,
    /// The second agent of one transfer attempt.
    SecondAgent {
        attempt: u32,
    },
    /// A supervisor, on their visit `visit` to the call.
    Supervisor {
        visit: u32,
    },
    /// The outside party the agent added (the `visit`-th).
    Party {
        visit: u32,
    },
}

impl RoomParticipant {
    pub const CUSTOMER_LABEL: &'static str = "customer";
    pub const FIRST_AGENT_LABEL: &'static str = "first-agent";
    const SECOND_AGENT_PREFIX: &'static str = "second-agent-";
    const SUPERVISOR_PREFIX: &'static str = "supervisor-";
    const PARTY_PREFIX: &'static str = "party-";

    pub fn label(self) -> String {
        match self {
            RoomParticipant::Customer => Self::CUSTOMER_LABEL.to_owned(),
            RoomParticipant::FirstAgent => Self::FIRST_AGENT_LABEL.to_owned(),
            RoomParticipant::SecondAgent { attempt } => {
                format!("{}{attempt}", Self::SECOND_AGENT_PREFIX)
            }
            RoomParticipant::Supervisor { visit } => {
                format!("{}{visit}", Self::SUPERVISOR_PREFIX)
            }
            RoomParticipant::Party { visit } => format!("{}{visit}", Self::PARTY_PREFIX),
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            Self::CUSTOMER_LABEL => Some(RoomParticipant::Customer),
            Self::FIRST_AGENT_LABEL => Some(RoomParticipant::FirstAgent),
            other => {
                let numbered =
                    |prefix: &str| other.strip_prefix(prefix).and_then(|n| n.parse().ok());
                numbered(Self::SECOND_AGENT_PREFIX)
                    .map(|attempt| RoomParticipant::SecondAgent { attempt })
                    .or_else(|| {
                        numbered(Self::SUPERVISOR_PREFIX)
                            .map(|visit| RoomParticipant::Supervisor { visit })
                    })
                    .or_else(|| {
                        numbered(Self::PARTY_PREFIX).map(|visit| RoomParticipant::Party { visit })
                    })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Leg 1, the first agent's call.
    AgentLeg(LegObservation),
    /// Leg 2, reported by the `<Number>` callbacks (ParentCallSid = session).
    CustomerLeg(LegObservation),
    /// Leg 3 of one transfer attempt, from its participant callbacks.
    TargetLeg {
        attempt: u32,
        observation: LegObservation,
    },
    /// A supervisor's phone, on their visit `visit` to the call.
    SupervisorLeg {
        visit: u32,
        observation: LegObservation,
    },
    /// The outside party's phone (the `visit`-th party).
    PartyLeg {
        visit: u32,
        observation: LegObservation,
    },
    Conference {
        event: ConferenceEvent,
        participant: Option<RoomParticipant>,
        sequence: Option<u32>,
        /// `ConferenceSid`: the room's name outlives one conference, and
        /// two conferences' callbacks come in no particular order.
        conference: Option<String>,
        at: OffsetDateTime,
    },
}

impl Observation {
    /// A line for the history, without phone numbers.
    pub fn describe(&self) -> String {
        match self {
            Observation::AgentLeg(o) => format!("first agent {}", o.status.as_str()),
            Observation::CustomerLeg(o) => format!("customer {}", o.status.as_str()),
            Observation::TargetLeg {
                attempt,
                observation,
            } => format!(
                "second agent {} (attempt {attempt})",
                observation.status.as_str()
            ),
            Observation::SupervisorLeg { visit, observation } => {
                format!("supervisor {} (visit {visit})", observation.status.as_str())
            }
            Observation::PartyLeg { visit, observation } => {
                format!("outside party {} ({visit})", observation.status.as_str())
            }
            Observation::Conference {
                event, participant, ..
            } => match participant {
                Some(p) => format!("{} {}", p.label(), event.as_str()),
                None => event.as_str().to_owned(),
            },
        }
    }
}

/// The effect of an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Applied,
    /// Duplicate, late, out of order, or about something no longer current.
    Ignored,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for p in [
            RoomParticipant::Customer,
            RoomParticipant::FirstAgent,
            RoomParticipant::SecondAgent { attempt: 3 },
            RoomParticipant::Supervisor { visit: 2 },
            RoomParticipant::Party { visit: 4 },
        ] {
            assert_eq!(RoomParticipant::from_label(&p.label()), Some(p));
        }
        assert_eq!(RoomParticipant::from_label("second-agent-x"), None);
        assert_eq!(RoomParticipant::from_label("supervisor"), None);
    }

    #[test]
    fn conference_events_parse_twilio_names() {
        for e in [
            ConferenceEvent::Start,
            ConferenceEvent::End,
            ConferenceEvent::Join,
            ConferenceEvent::Leave,
        ] {
            assert_eq!(ConferenceEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(ConferenceEvent::parse("participant-mute"), None);
    }
}
