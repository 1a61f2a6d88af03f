//! The simulator's state: call legs, conference rooms, the timeline, and
//! what the watched people heard at every moment.

use std::collections::{HashMap, HashSet, VecDeque};
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
    /// The other side of a bridge went away, or the conference of a REST
    /// participant ended.
    BridgeEnded,
    /// Busy, no answer, failed.
    NotAnswered,
    /// Invalid TwiML or a failing webhook: Twilio's "application error".
    ApplicationError,
}

/// Where a leg's next TwiML comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A URL fetched with this method (`GET` or `POST`).
    Url { url: String, method: String },
    /// A document given inline (`Twiml` on a call update).
    Twiml(String),
}

/// Something asked of a leg's runner from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    Redirect(Target),
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
    pub callback_method: String,
    pub callback_events: Vec<String>,
    pub next_sequence: u32,
    pub interrupt: Option<Interrupt>,
    pub location: Location,
    pub ended_by: Option<EndReason>,
    pub label: Option<String>,
    /// Room whose members hear this leg ring (a REST participant created
    /// with early media, still ringing).
    pub ringing_into: Option<String>,
    pub answered_at: Option<Instant>,
    /// `FallbackUrl` and `FallbackMethod` of a REST call.
    pub fallback: Option<(String, String)>,
    /// An inbound call's `CallToken` (sent with its voice webhook).
    pub call_token: Option<String>,
    /// Hears a wait document that keeps going (`<Redirect>` after
    /// `<Say>`/`<Play>`/`<Pause>`) while waiting in a room.
    pub hears_wait_loop: bool,
}

impl Leg {
    /// `To` and `From` as Twilio names them. A leg's `to` is the person on
    /// it (whose situation the simulator follows): on an inbound call that
    /// is the caller, Twilio's `From`.
    pub fn twilio_to_from(&self) -> (&str, &str) {
        if self.direction == "inbound" {
            (&self.from, &self.to)
        } else {
            (&self.to, &self.from)
        }
    }
}

impl Leg {
    pub fn is_live(&self) -> bool {
        !self.status.is_final()
    }
}

/// What a participant hears while waiting in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitAudio {
    /// No `waitUrl`: Twilio's default classical playlist.
    Default,
    /// `waitUrl=""`.
    Silence,
    Url {
        url: String,
        method: String,
    },
}

#[derive(Debug, Clone)]
pub struct Member {
    pub sid: String,
    pub label: Option<String>,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub hold: bool,
    pub coaching: bool,
    /// `CallSidToCoach`: while coaching, the one participant who hears them.
    pub coached: Option<String>,
    pub wait: WaitAudio,
    /// Added with the Participants API (hung up when the room ends) rather
    /// than by `<Dial><Conference>` (whose call carries on).
    pub via_rest: bool,
    /// In the room; false while a REST participant's phone rings.
    pub joined: bool,
}

/// The conference status callback, fixed by the first participant.
#[derive(Debug, Clone)]
pub struct RoomCallback {
    pub url: String,
    pub method: String,
    pub events: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub sid: String,
    pub name: String,
    /// Participants: joined, or (REST) still connecting.
    pub members: Vec<Member>,
    pub started: bool,
    pub ended: bool,
    /// Whether the first participant has fixed the callback (even to none).
    pub configured: bool,
    pub callback: Option<RoomCallback>,
    pub next_sequence: u32,
    /// The recording asked for by the first participant, once it runs.
    pub recording: Option<RoomRecording>,
}

/// A conference's recording: asked for, then running from the start.
#[derive(Debug, Clone)]
pub struct RoomRecording {
    pub request: super::twiml::RecordingRequest,
    /// Once the conference started.
    pub running: Option<super::recordings::Running>,
}

impl Member {
    /// Whether this member's voice reaches `listener` in the room.
    /// Twilio: a muted participant can listen but cannot speak (twilio-rules
    /// 1.10, [conf#muted]); a held participant hears the hold audio and is
    /// out of the mix (twilio-rules 3.7, [part#update]); a coach is heard by
    /// the participant coached only ([part]: `call_sid_to_coach`).
    pub fn heard_by(&self, listener: &str) -> bool {
        !self.muted && !self.hold && (!self.coaching || self.coached.as_deref() == Some(listener))
    }
}

impl Room {
    pub fn joined(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.joined)
    }

    pub fn member(&self, sid: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.sid == sid)
    }
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
    /// Talking with at least one other person: bridged with a live leg, or
    /// in a started conference with another member in progress and not on
    /// hold.
    Connected,
    /// Not talking with anyone, but in a room into which another party's
    /// phone rings with early media: they hear it ring.
    Waiting,
    /// On hold in a room where others are connected: an agent is there
    /// who can take them off hold (a consult). On hold with nobody there is
    /// [`Situation::Alone`].
    OnHold,
    /// In a room with nobody to talk to (hearing the wait audio), on hold,
    /// or between two places.
    Alone,
    Ended(EndReason),
}

/// A REST fault queued for the next request of an operation.
pub type FaultQueue = VecDeque<super::Fault>;

#[derive(Default)]
pub struct World {
    pub legs: Vec<Leg>,
    pub rooms: Vec<Room>,
    pub timeline: Vec<Entry>,
    pub violations: Vec<String>,
    /// Application errors: the number whose call it hit, and what happened.
    pub application_errors: Vec<(String, String)>,
    pub faults: HashMap<super::Operation, FaultQueue>,
    pub requests: HashMap<super::Operation, usize>,
    /// Call updates with `Url` or `Twiml` applied, per number.
    pub redirects: HashMap<String, usize>,
    /// When each number started hearing Twilio's default music.
    pub default_music: HashMap<String, Vec<Instant>>,
    /// When each number last heard a `<Say>` or `<Play>`.
    pub messages: HashMap<String, Instant>,
    /// Per watched number: its situation changes, in order.
    pub situations: HashMap<String, Vec<(Instant, Situation)>>,
    /// Every recording completed so far.
    pub recordings: Vec<super::Recording>,
    /// Indexes into `legs` and `rooms` (by SID, the latest leg of a called
    /// number, the latest room of a name): lookups stay O(1) with thousands
    /// of calls in the world.
    leg_by_sid: HashMap<String, usize>,
    leg_by_number: HashMap<String, usize>,
    room_by_sid: HashMap<String, usize>,
    room_by_name: HashMap<String, usize>,
    /// What changed since the last [`World::observe_situations`]: only the
    /// watched people near a change are looked at again, not every one.
    dirty_numbers: HashSet<String>,
    dirty_legs: HashSet<usize>,
    dirty_rooms: HashSet<usize>,
}

impl World {
    pub fn leg(&self, sid: &str) -> Option<&Leg> {
        self.leg_by_sid.get(sid).and_then(|&i| self.legs.get(i))
    }

    /// A leg to change: what it touches now and after the change is looked
    /// at again by the next [`World::observe_situations`].
    pub fn leg_mut(&mut self, sid: &str) -> Option<&mut Leg> {
        let i = *self.leg_by_sid.get(sid)?;
        self.mark_leg(i);
        self.legs.get_mut(i)
    }

    /// A leg whose pending interrupt is taken: no situation depends on it.
    pub fn take_interrupt(&mut self, sid: &str) -> Option<Interrupt> {
        let i = *self.leg_by_sid.get(sid)?;
        self.legs.get_mut(i)?.interrupt.take()
    }

    /// Follows this person's situation from now on.
    pub fn watch(&mut self, number: &str) {
        self.situations.entry(number.to_owned()).or_default();
        self.dirty_numbers.insert(number.to_owned());
    }

    pub fn add_leg(&mut self, leg: Leg) {
        let i = self.legs.len();
        self.leg_by_sid.insert(leg.sid.clone(), i);
        self.leg_by_number.insert(leg.to.clone(), i);
        self.legs.push(leg);
        self.mark_leg(i);
    }

    pub fn add_room(&mut self, room: Room) {
        let i = self.rooms.len();
        self.room_by_sid.insert(room.sid.clone(), i);
        self.room_by_name.insert(room.name.clone(), i);
        self.rooms.push(room);
        self.mark_room(i);
    }

    /// The live conference of that name, if any. (A room of a name is only
    /// made when no live one has it, so the latest is the only candidate.)
    pub fn room(&self, name: &str) -> Option<&Room> {
        self.room_by_name
            .get(name)
            .and_then(|&i| self.rooms.get(i))
            .filter(|r| !r.ended)
    }

    pub fn room_by_sid(&self, sid: &str) -> Option<&Room> {
        self.room_by_sid.get(sid).and_then(|&i| self.rooms.get(i))
    }

    pub fn room_by_sid_mut(&mut self, sid: &str) -> Option<&mut Room> {
        let i = *self.room_by_sid.get(sid)?;
        self.mark_room(i);
        self.rooms.get_mut(i)
    }

    /// The most recent leg of a phone number (as called party).
    pub fn leg_of_number(&self, number: &str) -> Option<&Leg> {
        self.leg_by_number
            .get(number)
            .and_then(|&i| self.legs.get(i))
    }

    fn number_of(&self, sid: &str) -> String {
        self.leg(sid).map(|l| l.to.clone()).unwrap_or_default()
    }

    /// The people whose situation may depend on leg `i` as it is now: its
    /// own, its bridge's other side, its parent, and everyone in the room it
    /// is in or rings into.
    fn near_leg(&mut self, i: usize) {
        let Some(leg) = self.legs.get(i) else {
            return;
        };
        let mut numbers = vec![leg.to.clone()];
        let mut rooms = Vec::new();
        let others = [
            match &leg.location {
                Location::Bridged(other) => Some(other.as_str()),
                _ => None,
            },
            leg.parent.as_deref(),
        ];
        for other in others.into_iter().flatten() {
            numbers.push(self.number_of(other));
        }
        for room in [
            match &leg.location {
                Location::InRoom(room) => Some(room.as_str()),
                _ => None,
            },
            leg.ringing_into.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            rooms.extend(self.room_by_name.get(room).copied());
        }
        self.dirty_numbers.extend(numbers);
        self.dirty_rooms.extend(rooms);
    }

    fn near_room(&mut self, i: usize) {
        let Some(room) = self.rooms.get(i) else {
            return;
        };
        let numbers: Vec<String> = room
            .members
            .iter()
            .map(|m| self.number_of(&m.sid))
            .collect();
        self.dirty_numbers.extend(numbers);
    }

    fn mark_leg(&mut self, i: usize) {
        if self.situations.is_empty() {
            return;
        }
        self.near_leg(i);
        self.dirty_legs.insert(i);
    }

    fn mark_room(&mut self, i: usize) {
        if self.situations.is_empty() {
            return;
        }
        self.near_room(i);
        self.dirty_rooms.insert(i);
    }

    /// Someone the member can talk with: the conference has started and
    /// another joined member is in progress and not on hold.
    fn others_talking_in(&self, room: &str, except: &str) -> bool {
        self.room(room).is_some_and(|r| {
            r.started
                && r.joined().any(|m| {
                    m.sid != except
                        && m.heard_by(except)
                        && self
                            .leg(&m.sid)
                            .is_some_and(|l| l.status == LegStatus::InProgress)
                })
        })
    }

    /// Whether `listener` hears `speaker` in the live room `room` (both
    /// joined). Nobody in a room hears a muted, held or coaching speaker
    /// but, for a coach, the one participant coached.
    pub fn hears(&self, room: &str, listener: &str, speaker: &str) -> bool {
        self.room(room).is_some_and(|r| {
            r.started
                && listener != speaker
                && r.joined().any(|m| m.sid == listener && !m.hold)
                && r.joined().any(|m| m.sid == speaker && m.heard_by(listener))
        })
    }

    /// A REST participant's phone ringing into the room with early media
    /// (such a participant is a member, not yet joined).
    fn ringing_into(&self, room: &str) -> bool {
        self.room(room).is_some_and(|r| {
            r.members.iter().any(|m| {
                self.leg(&m.sid)
                    .is_some_and(|l| l.is_live() && l.ringing_into.as_deref() == Some(room))
            })
        })
    }

    /// Whether a joined member hears the wait audio: the conference has not
    /// started, or nobody else is in it.
    pub fn is_waiting(&self, room_sid: &str, sid: &str) -> bool {
        self.room_by_sid(room_sid).is_some_and(|r| {
            r.member(sid).is_some_and(|m| m.joined)
                && (!r.started || r.joined().all(|m| m.sid == sid))
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
                Location::InRoom(room) => {
                    let held = self
                        .room(room)
                        .and_then(|r| r.member(&leg.sid))
                        .is_some_and(|m| m.hold);
                    if held && self.others_talking_in(room, &leg.sid) {
                        Situation::OnHold
                    } else if held {
                        Situation::Alone
                    } else if self.others_talking_in(room, &leg.sid) {
                        Situation::Connected
                    } else if self.ringing_into(room) {
                        Situation::Waiting
                    } else if leg.direction == "inbound" && leg.hears_wait_loop {
                        // A caller queued for an agent: the wait loop (their
                        // place, music) is what they were promised, not
                        // silence (README, "Taking calls").
                        Situation::Waiting
                    } else {
                        Situation::Alone
                    }
                }
                Location::Nowhere => Situation::Alone,
            },
            _ => Situation::Ringing,
        }
    }

    /// Records the situations of the watched people near what changed.
    pub fn observe_situations(&mut self) {
        if self.situations.is_empty() {
            return;
        }
        // After the change: what the changed legs and rooms touch now.
        for i in std::mem::take(&mut self.dirty_legs) {
            self.near_leg(i);
        }
        for i in std::mem::take(&mut self.dirty_rooms) {
            self.near_room(i);
        }
        let now = Instant::now();
        for number in std::mem::take(&mut self.dirty_numbers) {
            if self.situations.contains_key(&number) {
                self.record_situation(number, now);
            }
        }
        // Tests run debug builds: there every watched person is looked at
        // after each change, and a change the tracking above missed is a
        // violation (tests assert none).
        if cfg!(debug_assertions) {
            let numbers: Vec<String> = self.situations.keys().cloned().collect();
            for number in numbers {
                if self.record_situation(number.clone(), now) {
                    self.violations.push(format!(
                        "simulator: a change of {number}'s situation was not tracked"
                    ));
                }
            }
        }
    }

    /// Appends the number's situation if it changed; whether it did.
    fn record_situation(&mut self, number: String, now: Instant) -> bool {
        let situation = self.situation_of(&number);
        let log = self.situations.entry(number).or_default();
        let changed = log.last().map(|(_, s)| *s) != Some(situation);
        if changed {
            log.push((now, situation));
        }
        changed
    }

    /// Members' numbers (joined) and ringing numbers of a live room.
    pub fn room_view(&self, room: &Room) -> (Vec<String>, Vec<String>) {
        let members = room.joined().map(|m| self.number_of(&m.sid)).collect();
        let ringing = room
            .members
            .iter()
            .filter_map(|m| self.leg(&m.sid))
            .filter(|l| l.is_live() && l.ringing_into.as_deref() == Some(room.name.as_str()))
            .map(|l| l.to.clone())
            .collect();
        (members, ringing)
    }
}
