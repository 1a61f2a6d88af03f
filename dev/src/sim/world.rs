//! The simulator's state: call legs, conference rooms, the timeline, and
//! what the customer heard at every moment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use warm_transfer_core::domain::LegStatus;

/// Why a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The person hung up their own phone.
    Person,
    /// A REST request (`Status=completed` / `canceled`, participant removed).
    Api,
    /// `<Hangup>`, or the end of the TwiML document.
    Twiml,
    /// The other side of a bridge went away.
    BridgeEnded,
    /// Busy, no answer, failed.
    NotAnswered,
    /// Invalid TwiML or a failing webhook: Twilio's "application error".
    ApplicationError,
}

/// Something asked of a leg's runner from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    Redirect(String),
    HangUp(EndReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Nowhere,
    Bridged(String),
    InRoom(String),
}

#[derive(Debug, Clone)]
pub struct Leg {
    pub sid: String,
    pub parent: Option<String>,
    pub to: String,
    pub from: String,
    pub direction: &'static str,
    pub status: LegStatus,
    pub status_callback: Option<String>,
    pub callback_events: Vec<String>,
    pub next_sequence: u32,
    pub interrupt: Option<Interrupt>,
    pub location: Location,
    pub ended_by: Option<EndReason>,
    pub label: Option<String>,
    /// Room whose members hear this leg ring (early media).
    pub ringing_into: Option<String>,
    pub answered_at: Option<Instant>,
}

impl Leg {
    pub fn is_live(&self) -> bool {
        !self.status.is_final()
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub sid: String,
    pub label: Option<String>,
    pub end_on_exit: bool,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub sid: String,
    pub name: String,
    pub members: Vec<Member>,
    pub started: bool,
    pub ended: bool,
    pub status_callback: Option<String>,
    pub events: Vec<String>,
    pub next_sequence: u32,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: Duration,
    pub text: String,
}

/// What a watched person hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Situation {
    NotCalled,
    Ringing,
    /// Talking with at least one other person.
    Connected,
    /// In a room alone, or between two places.
    Alone,
    Ended(EndReason),
}

#[derive(Default)]
pub struct World {
    pub legs: Vec<Leg>,
    pub rooms: Vec<Room>,
    pub timeline: Vec<Entry>,
    pub violations: Vec<String>,
    pub application_errors: Vec<String>,
    pub faults: HashMap<super::Operation, Vec<(u16, u32, String)>>,
    /// Per watched number: its situation changes, in order.
    pub situations: HashMap<String, Vec<(Instant, Situation)>>,
}

impl World {
    pub fn leg(&self, sid: &str) -> Option<&Leg> {
        self.legs.iter().find(|l| l.sid == sid)
    }

    pub fn leg_mut(&mut self, sid: &str) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.sid == sid)
    }

    /// The live conference of that name, if any.
    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().rev().find(|r| r.name == name && !r.ended)
    }

    /// The most recent leg of a phone number (as called party).
    pub fn leg_of_number(&self, number: &str) -> Option<&Leg> {
        self.legs.iter().rev().find(|l| l.to == number)
    }

    fn others_talking_in(&self, room: &str, except: &str) -> bool {
        self.room(room).is_some_and(|r| {
            r.members.iter().any(|m| {
                m.sid != except
                    && self
                        .leg(&m.sid)
                        .is_some_and(|l| l.status == LegStatus::InProgress)
            })
        })
    }

    pub fn situation_of(&self, number: &str) -> Situation {
        let Some(leg) = self.leg_of_number(number) else {
            return Situation::NotCalled;
        };
        match leg.status {
            s if s.is_final() => Situation::Ended(leg.ended_by.unwrap_or(EndReason::Twiml)),
            LegStatus::InProgress => match &leg.location {
                Location::Bridged(other) => {
                    if self
                        .leg(other)
                        .is_some_and(|o| o.status == LegStatus::InProgress)
                    {
                        Situation::Connected
                    } else {
                        Situation::Alone
                    }
                }
                Location::InRoom(room) if self.others_talking_in(room, &leg.sid) => {
                    Situation::Connected
                }
                _ => Situation::Alone,
            },
            _ => Situation::Ringing,
        }
    }

    /// Records the watched numbers' situations after a change.
    pub fn observe_situations(&mut self) {
        let now = Instant::now();
        let numbers: Vec<String> = self.situations.keys().cloned().collect();
        for number in numbers {
            let situation = self.situation_of(&number);
            let log = self.situations.entry(number).or_default();
            if log.last().map(|(_, s)| *s) != Some(situation) {
                log.push((now, situation));
            }
        }
    }
}
