//! Conference rooms as Twilio documents them: when a conference starts,
//! what a waiting participant hears, who fixes the status callback, how
//! participants leave and how a conference ends, and the events it sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use warm_transfer_core::domain::LegStatus;

use super::Sim;
use super::engine::{Dialed, Wake, timestamp};
use super::recordings::Recorded;
use super::twiml::{self, RecordingRequest, RoomOptions, Verb};
use super::webhook::{CallbackInfo, CallbackKind, Hook};
use super::world::{
    EndReason, Interrupt, Location, Member, Room, RoomCallback, RoomRecording, WaitAudio, World,
};

/// A wait document being run for a member of a room.
struct WaitDocument {
    room_sid: String,
    sid: String,
    /// Where it came from: relative redirects resolve against it.
    url: String,
}

/// How a member left a room, for `participant-leave`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leave {
    /// `ParticipantCallStatus`.
    pub status: &'static str,
    /// `ReasonParticipantLeft`.
    pub reason: &'static str,
    /// Removed through the API rather than by its own call.
    pub kicked: bool,
}

impl Leave {
    pub const HUNG_UP: Leave = Leave {
        status: "completed",
        reason: "participant_hung_up",
        kicked: false,
    };
    pub const REDIRECTED: Leave = Leave {
        status: "in-progress",
        reason: "participant_updated_via_api",
        kicked: false,
    };
}

/// How a member's stay in a room ended without an interrupt of its own call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// Removed: the conference ended, or the participant was deleted.
    Removed,
    /// Its wait URL failed: it dropped out.
    WaitFailed,
}

/// Twilio: a label must be at most 128 characters, not shaped like a Call
/// SID, without `/` (twilio-rules 1.11, 3.5, [e16023] [e16024]).
pub(crate) fn label_malformed(label: &str) -> bool {
    let sid_like = label.len() == 34
        && label.starts_with("CA")
        && label[2..].chars().all(|c| c.is_ascii_hexdigit());
    label.chars().count() > 128
        || sid_like
        || label.contains('/')
        || label.to_ascii_lowercase().contains("%2f")
}

pub(crate) fn wait_audio(url: Option<&str>, method: Option<&str>) -> WaitAudio {
    // Twilio: no waitUrl plays the default classical playlist, waitUrl=""
    // is silence; waitMethod defaults to POST when a waitUrl is given
    // (twilio-rules 1.4, 1.7, [conf#waiturl] [conf#wait-method]).
    match url {
        None => WaitAudio::Default,
        Some("") => WaitAudio::Silence,
        Some(url) => WaitAudio::Url {
            url: url.to_owned(),
            method: method.map_or_else(|| "POST".to_owned(), str::to_ascii_uppercase),
        },
    }
}

fn subscription(event: &str) -> &'static str {
    match event {
        "conference-start" => "start",
        "conference-end" => "end",
        "participant-join" => "join",
        "participant-leave" => "leave",
        "participant-mute" | "participant-unmute" => "mute",
        "participant-hold" | "participant-unhold" => "hold",
        "participant-modify" => "modify",
        _ => "",
    }
}

impl Sim {
    /// The live room of that name, created (`init`, not started) if none is.
    /// Twilio: a room name belongs to the account; every call dialing it ends
    /// up in the same room (twilio-rules 1.1, 3.1, [conf] [part#create]).
    pub(crate) fn room_for(&self, name: &str) -> String {
        let new_sid = self.new_sid("CF");
        self.with_world(|w| {
            if let Some(room) = w.room(name) {
                return room.sid.clone();
            }
            w.add_room(Room {
                sid: new_sid.clone(),
                name: name.to_owned(),
                members: Vec::new(),
                started: false,
                ended: false,
                configured: false,
                callback: None,
                next_sequence: 0,
                recording: None,
            });
            new_sid
        })
    }

    /// Twilio: the first participant fixes the room's statusCallback and
    /// events; later values are ignored, by TwiML or REST (twilio-rules 1.13,
    /// 1.14, [conf#status-callback] [part]). Assumed the same for `record`
    /// and `recordingStatusCallback` (U10).
    pub(crate) fn configure_room(
        w: &mut World,
        room_sid: &str,
        callback: Option<RoomCallback>,
        recording: Option<RecordingRequest>,
    ) -> bool {
        let Some(room) = w.room_by_sid_mut(room_sid) else {
            return false;
        };
        if room.configured {
            return false;
        }
        room.configured = true;
        room.callback = callback;
        room.recording = recording.map(|request| RoomRecording {
            request,
            running: None,
        });
        true
    }

    /// A participant event or conference event, queued behind the room's
    /// earlier ones. Sent only if the first participant subscribed to it.
    pub(crate) fn room_event(
        self: &Arc<Self>,
        room_sid: &str,
        event: &str,
        member: Option<&Member>,
        extra: Vec<(String, String)>,
    ) {
        let prepared = self.with_world(|w| {
            let number = member.and_then(|m| w.leg(&m.sid)).map(|l| l.to.clone());
            let room = w.room_by_sid_mut(room_sid)?;
            let name = room.name.clone();
            let callback = room
                .callback
                .clone()
                .filter(|c| c.events.iter().any(|e| e == subscription(event)));
            let sequence = room.next_sequence;
            if callback.is_some() {
                room.next_sequence += 1;
            }
            Some((name, callback, sequence, number))
        });
        let Some((name, callback, sequence, number)) = prepared else {
            return;
        };
        let who = number.clone().unwrap_or_default();
        self.log(format!("  room {name}: {event} {who}"));
        let Some(callback) = callback else {
            return;
        };
        // Twilio: every event carries ConferenceSid, FriendlyName, AccountSid,
        // SequenceNumber, Timestamp, StatusCallbackEvent (twilio-rules 2.1,
        // [conf#status-callback-parameters]).
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("ConferenceSid".into(), room_sid.into()),
            ("FriendlyName".into(), name),
            ("StatusCallbackEvent".into(), event.into()),
            ("SequenceNumber".into(), sequence.to_string()),
            ("Timestamp".into(), timestamp()),
        ];
        // Twilio: participant events carry CallSid, Muted, Hold, Coaching,
        // EndConferenceOnExit, StartConferenceOnEnter, ParticipantLabel
        // (twilio-rules 2.3, [conf#status-callback-parameters]).
        if let Some(member) = member {
            params.push(("CallSid".into(), member.sid.clone()));
            if let Some(label) = &member.label {
                params.push(("ParticipantLabel".into(), label.clone()));
            }
            params.extend([
                ("Muted".into(), member.muted.to_string()),
                ("Hold".into(), member.hold.to_string()),
                ("Coaching".into(), member.coaching.to_string()),
                ("EndConferenceOnExit".into(), member.end_on_exit.to_string()),
                (
                    "StartConferenceOnEnter".into(),
                    member.start_on_enter.to_string(),
                ),
            ]);
        }
        params.extend(extra);
        let hook = Hook {
            url: callback.url,
            method: callback.method,
            params,
            what: format!("conference {event} {who}"),
            token: self.new_token(),
        };
        let info = CallbackInfo {
            kind: CallbackKind::Conference,
            event: event.to_owned(),
            number,
            label: member.and_then(|m| m.label.clone()),
        };
        self.send_callback(room_sid, hook, info);
    }

    /// A member is now in the room: `participant-join`, then
    /// `conference-start` if it starts now.
    pub(crate) fn joined(self: &Arc<Self>, room_sid: &str, sid: &str) {
        let member = self.with_world(|w| {
            let Some(room) = w.room_by_sid_mut(room_sid) else {
                return (None, false, None);
            };
            // Twilio: a conference starts once two participants are in it and
            // one of them has startConferenceOnEnter (twilio-rules 1.2,
            // [conf#start-conference-on-enter]).
            let starts = !room.started
                && room.joined().count() >= 2
                && room.joined().any(|m| m.start_on_enter);
            room.started |= starts;
            let record = room
                .recording
                .as_ref()
                .filter(|_| starts)
                .map(|r| r.request.clone());
            (room.member(sid).cloned(), starts, record)
        });
        let (member, starts, record) = member;
        let Some(member) = member else {
            return;
        };
        self.room_event(room_sid, "participant-join", Some(&member), Vec::new());
        if starts {
            self.room_event(room_sid, "conference-start", None, Vec::new());
        }
        // Twilio: record-from-start records from the moment the first two
        // participants are bridged, that is the conference's start
        // (twilio-rules 7.1, [conf#record]).
        if let Some(request) = record {
            let running = self.recording_started(&request, Recorded::Conference { sid: room_sid });
            self.with_world(|w| {
                if let Some(recording) = w
                    .room_by_sid_mut(room_sid)
                    .and_then(|r| r.recording.as_mut())
                {
                    recording.running = Some(running);
                }
            });
        }
    }

    /// `<Dial><Conference>`: joins the room and stays until removed (Ok,
    /// the `<Dial>` is over) or the call is interrupted (Err, after leaving).
    pub(crate) async fn join_room(
        self: &Arc<Self>,
        sid: &str,
        options: &RoomOptions,
    ) -> Result<Dialed, Interrupt> {
        let number = self.number_of(sid);
        if let Some(label) = options.label.as_deref().filter(|l| label_malformed(l)) {
            // Twilio: error 16023, the call carries on (twilio-rules 1.11, [e16023]).
            self.application_error(
                &number,
                format!("participantLabel {label:?} rejected (error 16023)"),
            );
            return Ok(Dialed::NotAdded);
        }
        let room_sid = self.room_for(&options.name);
        let callback = options.status_callback.clone().map(|url| RoomCallback {
            url,
            method: options.callback_method.clone(),
            // U16: a statusCallback without statusCallbackEvent gets no events.
            events: options.events.clone(),
        });
        let added = self.with_world(|w| {
            let label_taken = options.label.as_ref().is_some_and(|label| {
                w.room_by_sid(&room_sid)
                    .is_some_and(|r| r.members.iter().any(|m| m.label.as_ref() == Some(label)))
            });
            if label_taken {
                return Err(());
            }
            let first =
                Self::configure_room(w, &room_sid, callback.clone(), options.record.clone());
            let room = w.room_by_sid_mut(&room_sid).ok_or(())?;
            room.members.push(Member {
                sid: sid.to_owned(),
                label: options.label.clone(),
                start_on_enter: options.start_on_enter,
                end_on_exit: options.end_on_exit,
                muted: options.muted,
                hold: false,
                coaching: false,
                coached: None,
                wait: wait_audio(options.wait_url.as_deref(), options.wait_method.as_deref()),
                via_rest: false,
                joined: true,
            });
            if let Some(leg) = w.leg_mut(sid) {
                leg.location = Location::InRoom(options.name.clone());
            }
            Ok(first)
        });
        match added {
            Err(()) => {
                // Twilio: a label in use logs 16025 and the call is not added
                // (twilio-rules 1.11, [e16025]).
                self.application_error(
                    &number,
                    format!(
                        "participantLabel {:?} already in room {} (error 16025)",
                        options.label, options.name
                    ),
                );
                return Ok(Dialed::NotAdded);
            }
            Ok(false) if callback.is_some() => self.log(format!(
                "  {number}'s conference statusCallback ignored: the first participant's wins"
            )),
            Ok(_) => {}
        }
        self.log(format!("  {number} joins room {}", options.name));
        self.joined(&room_sid, sid);
        // Twilio: DialCallStatus is `answered` for a conference; no
        // DialCallSid nor DialCallDuration (twilio-rules 5.7, 5.8, [dial#dialcallstatus]).
        match self.stay_in_room(&room_sid, sid).await? {
            Left::Removed => Ok(Dialed::Done(vec![(
                "DialCallStatus".into(),
                "answered".into(),
            )])),
            // Assumed `failed`: Twilio documents no value for this case.
            Left::WaitFailed => Ok(Dialed::Done(vec![(
                "DialCallStatus".into(),
                "failed".into(),
            )])),
        }
    }

    /// In the room until removed or interrupted; plays the wait audio each
    /// time the member starts waiting.
    pub(crate) async fn stay_in_room(
        self: &Arc<Self>,
        room_sid: &str,
        sid: &str,
    ) -> Result<Left, Interrupt> {
        let mut waiting = false;
        loop {
            let (room, me) = (room_sid.to_owned(), sid.to_owned());
            let was_waiting = waiting;
            let changed = move |w: &World| {
                let member = w
                    .room_by_sid(&room)
                    .is_some_and(|r| !r.ended && r.member(&me).is_some());
                !member || w.is_waiting(&room, &me) != was_waiting
            };
            match self.wait(sid, None, changed).await {
                Wake::Interrupted(interrupt) => {
                    let leave = match interrupt {
                        Interrupt::HangUp(_) => Leave::HUNG_UP,
                        // Twilio: a participant's call redirected to new TwiML
                        // leaves the conference (twilio-rules 3.6, 4.8, [part]).
                        Interrupt::Redirect(_) => Leave::REDIRECTED,
                    };
                    self.remove_member(room_sid, sid, leave);
                    return Err(interrupt);
                }
                Wake::Condition | Wake::Timeout => {}
            }
            let (member, now_waiting) = self.with_world(|w| {
                let member = w
                    .room_by_sid(room_sid)
                    .filter(|r| !r.ended)
                    .and_then(|r| r.member(sid).cloned());
                (member, w.is_waiting(room_sid, sid))
            });
            let Some(member) = member else {
                self.with_world(|w| {
                    if let Some(leg) = w
                        .leg_mut(sid)
                        .filter(|l| matches!(l.location, Location::InRoom(_)))
                    {
                        leg.location = Location::Nowhere;
                    }
                });
                return Ok(Left::Removed);
            };
            waiting = now_waiting;
            if waiting && !self.play_wait_audio(room_sid, &member).await {
                self.remove_member(
                    room_sid,
                    sid,
                    Leave {
                        status: "in-progress",
                        reason: "participant_add_failed",
                        kicked: false,
                    },
                );
                return Ok(Left::WaitFailed);
            }
        }
    }

    /// What a member hears while waiting; false if its wait URL failed.
    async fn play_wait_audio(self: &Arc<Self>, room_sid: &str, member: &Member) -> bool {
        let number = self.number_of(&member.sid);
        match &member.wait {
            WaitAudio::Default => {
                self.log(format!(
                    "  {number} hears Twilio's default classical music (no waitUrl)"
                ));
                self.with_world(|w| {
                    w.default_music
                        .entry(number.clone())
                        .or_default()
                        .push(Instant::now())
                });
                true
            }
            WaitAudio::Silence => {
                self.log(format!("  {number} waits in silence (waitUrl=\"\")"));
                true
            }
            WaitAudio::Url { url, method } => {
                let extra = vec![("ConferenceSid".to_owned(), room_sid.to_owned())];
                let fetched = self
                    .call_webhook(&member.sid, url, method, extra, "waitUrl")
                    .await;
                // Twilio: if the waitUrl request fails the call leaves the
                // conference and moves on (twilio-rules 1.5, 1.6, [conf#waiturl]).
                let result = fetched
                    .map_err(|e| format!("{} (error {})", e.text, e.code))
                    .and_then(|body| {
                        if body.trim_start().starts_with('<') {
                            let verbs = twiml::parse(&body)?;
                            twiml::check_wait_document(&verbs)?;
                            Ok(verbs)
                        } else {
                            // Audio (MP3/WAV) plays as is.
                            Ok(Vec::new())
                        }
                    });
                match result {
                    Ok(verbs) => {
                        self.log(format!("  {number} hears the wait audio of {url}"));
                        if !verbs.is_empty() {
                            let doc = WaitDocument {
                                room_sid: room_sid.to_owned(),
                                sid: member.sid.clone(),
                                url: url.clone(),
                            };
                            tokio::spawn(self.clone().run_wait_document(doc, verbs));
                        }
                        true
                    }
                    Err(error) => {
                        self.application_error(&number, format!("waitUrl {url}: {error}"));
                        false
                    }
                }
            }
        }
    }

    /// Runs a wait document while its member waits: `<Say>` and `<Play>`
    /// are heard, `<Pause>` waits, `<Redirect>` fetches the next document
    /// (an empty one reloads the same); once the verbs run out the member
    /// hears silence (twilio-rules 1.5, [conf#waiturl]). Stops as soon as
    /// the member no longer waits (the room started, they left).
    async fn run_wait_document(self: Arc<Self>, doc: WaitDocument, first: Vec<Verb>) {
        let hears = |sim: &Sim, on: bool| {
            sim.with_world(|w| {
                if let Some(leg) = w.leg_mut(&doc.sid) {
                    leg.hears_wait_loop = on && leg.is_live();
                }
            })
        };
        hears(&self, true);
        self.clone().wait_document_turns(&doc, first).await;
        hears(&self, false);
    }

    async fn wait_document_turns(self: Arc<Self>, doc: &WaitDocument, first: Vec<Verb>) {
        let number = self.number_of(&doc.sid);
        let waiting = |sim: &Sim| sim.with_world(|w| w.is_waiting(&doc.room_sid, &doc.sid));
        let mut verbs = first;
        let mut url = doc.url.clone();
        loop {
            let mut next: Option<(String, String)> = None;
            for verb in verbs {
                if !waiting(&self) {
                    return;
                }
                let heard = match verb {
                    Verb::Say(_) | Verb::Play { .. } => {
                        self.with_world(|w| {
                            w.messages.insert(number.clone(), Instant::now());
                        });
                        Duration::from_millis(50)
                    }
                    Verb::Pause(seconds) => Duration::from_secs(seconds.into()),
                    Verb::Redirect { url: to, method } => {
                        let to = if to.is_empty() {
                            url.clone()
                        } else {
                            super::engine::resolve(Some(&url), &to)
                        };
                        next = Some((to, method));
                        break;
                    }
                    _ => Duration::ZERO,
                };
                let until = Instant::now() + self.scaled(heard);
                while Instant::now() < until {
                    if !waiting(&self) {
                        return;
                    }
                    tokio::time::sleep(self.config.poll.max(Duration::from_millis(5))).await;
                }
            }
            let Some((to, method)) = next else {
                self.log(format!("  {number}'s wait audio ran out: silence"));
                return;
            };
            if !waiting(&self) {
                return;
            }
            let extra = vec![("ConferenceSid".to_owned(), doc.room_sid.clone())];
            let fetched = self
                .call_webhook(&doc.sid, &to, &method, extra, "waitUrl")
                .await
                .map_err(|e| format!("{} (error {})", e.text, e.code))
                .and_then(|body| {
                    let verbs = twiml::parse(&body)?;
                    twiml::check_wait_document(&verbs)?;
                    Ok(verbs)
                });
            match fetched {
                Ok(next_verbs) => {
                    verbs = next_verbs;
                    url = to;
                }
                Err(error) => {
                    if waiting(&self) {
                        self.application_error(&number, format!("waitUrl {to}: {error}"));
                    }
                    return;
                }
            }
        }
    }

    /// Takes a member (joined or still ringing) out of its room and sends
    /// `participant-leave`; ends the room if that member had
    /// endConferenceOnExit or was the last. False if it was not there.
    pub(crate) fn remove_member(self: &Arc<Self>, room_sid: &str, sid: &str, leave: Leave) -> bool {
        let removed = self.with_world(|w| {
            let room = w.room_by_sid_mut(room_sid).filter(|r| !r.ended)?;
            let index = room.members.iter().position(|m| m.sid == sid)?;
            let member = room.members.remove(index);
            let name = room.name.clone();
            // Twilio: `end` fires when the last participant leaves or one
            // with endConferenceOnExit leaves (twilio-rules 1.8, 1.18, 2.4,
            // [conf#end-conference-on-exit] [conf#status-callback-parameters]).
            let ends = if member.joined && member.end_on_exit {
                Some(if leave.kicked {
                    "participant-with-end-conference-on-exit-kicked"
                } else {
                    "participant-with-end-conference-on-exit-left"
                })
            } else if room.members.is_empty() {
                Some(if leave.kicked {
                    "last-participant-kicked"
                } else {
                    "last-participant-left"
                })
            } else {
                None
            };
            if let Some(leg) = w.leg_mut(sid) {
                if leg.location == Location::InRoom(name) {
                    leg.location = Location::Nowhere;
                }
                leg.ringing_into = None;
            }
            Some((member, ends))
        });
        let Some((member, ends)) = removed else {
            return false;
        };
        // Twilio: participant-leave carries ParticipantCallStatus and
        // ReasonParticipantLeft, with underscores (twilio-rules 2.5, [cl-2023]).
        self.room_event(
            room_sid,
            "participant-leave",
            Some(&member),
            vec![
                ("ParticipantCallStatus".into(), leave.status.into()),
                ("ReasonParticipantLeft".into(), leave.reason.into()),
            ],
        );
        if let Some(reason) = ends {
            self.end_room(room_sid, reason, Some(&member));
        }
        true
    }

    /// Ends a conference: everyone drops out. TwiML participants' `<Dial>`
    /// finish and their calls carry on; REST participants are hung up
    /// (U3), those still ringing canceled.
    pub(crate) fn end_room(
        self: &Arc<Self>,
        room_sid: &str,
        reason: &'static str,
        ending: Option<&Member>,
    ) {
        let kicked = self.with_world(|w| {
            let room = w.room_by_sid_mut(room_sid).filter(|r| !r.ended)?;
            room.ended = true;
            let name = room.name.clone();
            let recording = room.recording.take();
            let kicked: Vec<Member> = room.members.drain(..).collect();
            for member in &kicked {
                if let Some(leg) = w.leg_mut(&member.sid) {
                    if leg.location == Location::InRoom(name.clone()) {
                        leg.location = Location::Nowhere;
                    }
                    leg.ringing_into = None;
                }
            }
            Some((kicked, recording))
        });
        let Some((kicked, recording)) = kicked else {
            return;
        };
        let member_reason = if reason == "conference-ended-via-api" {
            "conference_ended_via_api"
        } else {
            "moderator_ended_conference"
        };
        for member in &kicked {
            let status = match (member.via_rest, member.joined) {
                (false, _) => "in-progress",
                (true, true) => {
                    self.interrupt(&member.sid, Interrupt::HangUp(EndReason::BridgeEnded));
                    "completed"
                }
                (true, false) => {
                    self.interrupt(&member.sid, Interrupt::HangUp(EndReason::Api));
                    "canceled"
                }
            };
            self.room_event(
                room_sid,
                "participant-leave",
                Some(member),
                vec![
                    ("ParticipantCallStatus".into(), status.into()),
                    ("ReasonParticipantLeft".into(), member_reason.into()),
                ],
            );
        }
        // Twilio: conference-end adds ReasonConferenceEnded (hyphens),
        // CallSidEndingConference, ParticipantLabelEndingConference and
        // Reason (twilio-rules 2.4, [conf#status-callback-parameters] [cl-2020]).
        let mut extra = vec![
            ("ReasonConferenceEnded".to_owned(), reason.to_owned()),
            ("Reason".to_owned(), reason.replace('-', " ")),
        ];
        if let Some(member) = ending {
            extra.push(("CallSidEndingConference".into(), member.sid.clone()));
            if let Some(label) = &member.label {
                extra.push(("ParticipantLabelEndingConference".into(), label.clone()));
            }
        }
        self.room_event(room_sid, "conference-end", None, extra);
        // Twilio: the conference's recording ends with it (twilio-rules 7.1).
        if let Some(RoomRecording {
            request,
            running: Some(running),
        }) = recording
        {
            self.recording_completed(&request, Recorded::Conference { sid: room_sid }, &running);
        }
    }

    /// A participant added with the REST API, already a (ringing) member of
    /// its room: ring (heard in the room with early media), then join.
    pub(crate) async fn run_participant(
        self: Arc<Self>,
        sid: String,
        room_sid: String,
        timeout: std::time::Duration,
    ) {
        if !self.answer(&sid, Some(timeout)).await {
            // Twilio: a REST participant that never answered leaves with its
            // call status (twilio-rules 2.5, U12, [cl-2023]).
            let status = self
                .with_world(|w| w.leg(&sid).map(|l| l.status))
                .unwrap_or(LegStatus::Failed);
            let status = match status {
                LegStatus::Busy => "busy",
                LegStatus::NoAnswer => "no-answer",
                LegStatus::Canceled => "canceled",
                _ => "failed",
            };
            self.remove_member(
                &room_sid,
                &sid,
                Leave {
                    status,
                    reason: "participant_add_failed",
                    kicked: false,
                },
            );
            return;
        }
        let joined = self.with_world(|w| {
            let name = w.room_by_sid(&room_sid).filter(|r| !r.ended)?.name.clone();
            let room = w.room_by_sid_mut(&room_sid)?;
            room.members.iter_mut().find(|m| m.sid == sid)?.joined = true;
            let leg = w.leg_mut(&sid)?;
            leg.ringing_into = None;
            leg.location = Location::InRoom(name.clone());
            Some(name)
        });
        let Some(name) = joined else {
            self.end_leg(&sid, LegStatus::Completed, EndReason::BridgeEnded);
            return;
        };
        self.log(format!("  {} joins room {name}", self.number_of(&sid)));
        self.joined(&room_sid, &sid);
        match self.stay_in_room(&room_sid, &sid).await {
            Ok(Left::Removed) => self.end_leg(&sid, LegStatus::Completed, EndReason::BridgeEnded),
            Ok(Left::WaitFailed) => {
                self.end_leg(&sid, LegStatus::Completed, EndReason::ApplicationError)
            }
            Err(Interrupt::HangUp(reason)) => self.end_leg(&sid, LegStatus::Completed, reason),
            Err(Interrupt::Redirect(target)) => self.run_twiml(&sid, target, Vec::new()).await,
        }
    }
}
