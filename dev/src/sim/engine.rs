//! How legs live: ringing, answering, running TwiML, bridging, conference
//! rooms, and the status callbacks Twilio sends along the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use warm_transfer_core::domain::LegStatus;
use warm_transfer_core::signature::sign_form;

use super::Sim;
use super::people::Answer;
use super::twiml::{self, Dial, DialTarget, RoomOptions, Verb};
use super::world::{EndReason, Interrupt, Leg, Location, Member, Room};

/// What woke a waiting leg.
pub enum Wake {
    Condition,
    Timeout,
    Interrupted(Interrupt),
}

/// How a dial that rang someone ended.
enum Ring {
    Answered,
    NotAnswered(LegStatus, EndReason),
    /// Redirected before answering: Twilio drops such a call.
    Interrupted,
}

/// What the runner does next after a verb.
enum Flow {
    Next,
    Fetch(String, Vec<(String, String)>),
    End(EndReason),
}

fn interrupt_flow(interrupt: Interrupt) -> Flow {
    match interrupt {
        Interrupt::Redirect(url) => Flow::Fetch(url, Vec::new()),
        Interrupt::HangUp(reason) => Flow::End(reason),
    }
}

fn callback_status(status: LegStatus) -> &'static str {
    status.as_str()
}

impl Sim {
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.config.time_scale)
    }

    pub(crate) fn log(&self, text: impl Into<String>) {
        let entry = super::world::Entry {
            at: self.started.elapsed(),
            text: text.into(),
        };
        if let Ok(mut world) = self.world.lock() {
            world.timeline.push(entry);
        }
    }

    pub(crate) fn new_sid(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}{:016x}{n:016x}", rand::random::<u64>())
    }

    pub(crate) fn with_world<T>(&self, f: impl FnOnce(&mut super::world::World) -> T) -> T {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut world);
        world.observe_situations();
        out
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_leg(
        &self,
        to: &str,
        from: &str,
        parent: Option<&str>,
        direction: &'static str,
        status_callback: Option<String>,
        callback_events: Vec<String>,
        label: Option<String>,
    ) -> String {
        let sid = self.new_sid("CA");
        let leg = Leg {
            sid: sid.clone(),
            parent: parent.map(str::to_owned),
            to: to.to_owned(),
            from: from.to_owned(),
            direction,
            status: LegStatus::Queued,
            status_callback,
            callback_events,
            next_sequence: 0,
            interrupt: None,
            location: Location::Nowhere,
            ended_by: None,
            label,
            ringing_into: None,
            answered_at: None,
        };
        self.with_world(|w| w.legs.push(leg));
        self.log(format!("leg {to} created ({direction})"));
        sid
    }

    /// Asks a leg's runner to do something; a hang-up wins over a redirect.
    pub(crate) fn interrupt(&self, sid: &str, interrupt: Interrupt) -> bool {
        self.with_world(|w| match w.leg_mut(sid) {
            Some(leg) if leg.is_live() => {
                if !matches!(leg.interrupt, Some(Interrupt::HangUp(_))) {
                    leg.interrupt = Some(interrupt);
                }
                true
            }
            _ => false,
        })
    }

    /// Waits for `condition`, a timeout or an interrupt of the leg.
    pub(crate) async fn wait(
        &self,
        sid: &str,
        timeout: Option<Duration>,
        condition: impl Fn(&super::world::World) -> bool,
    ) -> Wake {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let woke = self.with_world(|w| {
                if let Some(interrupt) = w.leg_mut(sid).and_then(|l| l.interrupt.take()) {
                    return Some(Wake::Interrupted(interrupt));
                }
                condition(w).then_some(Wake::Condition)
            });
            if let Some(wake) = woke {
                return wake;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Wake::Timeout;
            }
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    }

    /// Moves a leg to a new status and sends its status callback, as Twilio does.
    pub(crate) async fn set_status(&self, sid: &str, status: LegStatus, reason: Option<EndReason>) {
        let update = self.with_world(|w| {
            let leg = w.leg_mut(sid)?;
            if !leg.is_live() {
                return None;
            }
            leg.status = status;
            if status == LegStatus::InProgress {
                leg.answered_at = Some(Instant::now());
            }
            if status.is_final() {
                leg.ended_by = reason;
                leg.location = Location::Nowhere;
                leg.ringing_into = None;
                leg.interrupt = None;
            }
            let event = match status {
                LegStatus::Queued => return None,
                LegStatus::Initiated => "initiated",
                LegStatus::Ringing => "ringing",
                LegStatus::InProgress => "answered",
                _ => "completed",
            };
            let subscribed = leg.callback_events.iter().any(|e| e == event)
                || (event == "completed" && leg.callback_events.is_empty());
            let sequence = leg.next_sequence;
            if subscribed && leg.status_callback.is_some() {
                leg.next_sequence += 1;
            }
            Some((leg.clone(), subscribed, sequence))
        });
        let Some((leg, subscribed, sequence)) = update else {
            return;
        };
        self.log(format!(
            "{} {}{}",
            leg.to,
            status.as_str(),
            reason.map(|r| format!(" ({r:?})")).unwrap_or_default()
        ));
        let Some(url) = leg.status_callback.clone().filter(|_| subscribed) else {
            return;
        };
        let mut params = self.call_params(&leg);
        params.push(("CallStatus".into(), callback_status(status).into()));
        params.push(("SequenceNumber".into(), sequence.to_string()));
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push((
            "Timestamp".into(),
            OffsetDateTime::now_utc()
                .format(&Rfc2822)
                .unwrap_or_default(),
        ));
        if status.is_final() {
            let duration = leg.answered_at.map_or(0, |a| a.elapsed().as_secs());
            params.push(("CallDuration".into(), duration.to_string()));
        }
        let what = format!("status callback {} {}", leg.to, status.as_str());
        // Twilio does not retry a failed status callback; neither does this.
        let _ = self.post(&url, params, &what).await;
    }

    pub(crate) fn call_params(&self, leg: &Leg) -> Vec<(String, String)> {
        let mut params = vec![
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), leg.sid.clone()),
            ("Direction".into(), leg.direction.into()),
            ("From".into(), leg.from.clone()),
            ("To".into(), leg.to.clone()),
        ];
        if let Some(parent) = &leg.parent {
            params.push(("ParentCallSid".into(), parent.clone()));
        }
        params
    }

    /// A signed form POST to the product; returns the body of a 2xx answer.
    pub(crate) async fn post(
        &self,
        url: &str,
        params: Vec<(String, String)>,
        what: &str,
    ) -> Result<String, String> {
        let signature = sign_form(&self.config.auth_token, url, &params);
        let started = Instant::now();
        let result = self
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .header("User-Agent", "TwilioProxy/1.1")
            .form(&params)
            .send()
            .await;
        let outcome = match result {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
            Err(error) => Err(error.to_string()),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let path = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = path.find('/').map_or(path, |i| &path[i..]);
        match &outcome {
            Ok(_) => self.log(format!("  -> webhook {what}: POST {path} ok ({ms:.1} ms)")),
            Err(e) => self.log(format!("  -> webhook {what}: POST {path} FAILED {e}")),
        }
        outcome
    }

    async fn fetch_twiml(
        &self,
        sid: &str,
        url: &str,
        extra: Vec<(String, String)>,
    ) -> Result<Vec<Verb>, String> {
        let Some(leg) = self.with_world(|w| w.leg(sid).cloned()) else {
            return Err("unknown leg".into());
        };
        let mut params = self.call_params(&leg);
        params.push(("CallStatus".into(), leg.status.as_str().into()));
        params.extend(extra);
        let body = self
            .post(url, params, &format!("TwiML for {}", leg.to))
            .await?;
        twiml::parse(&body)
    }

    fn script_for(&self, number: &str) -> super::people::Script {
        self.scripts
            .lock()
            .ok()
            .and_then(|s| s.get(number).copied())
            .or_else(|| (self.config.default_script)(number))
            .unwrap_or_default()
    }

    /// Rings the leg's phone and lets the person decide.
    async fn ring(&self, sid: &str, max_wait: Option<Duration>) -> Ring {
        self.set_status(sid, LegStatus::Initiated, None).await;
        tokio::time::sleep(self.scaled(Duration::from_millis(20))).await;
        self.set_status(sid, LegStatus::Ringing, None).await;
        let number = self
            .with_world(|w| w.leg(sid).map(|l| l.to.clone()))
            .unwrap_or_default();
        let script = self.script_for(&number);
        let give_up = max_wait.unwrap_or(Duration::from_secs(60));
        let (wait, answered) = match script.answer {
            Answer::After(delay) => {
                let delay = self.scaled(delay);
                (delay.min(give_up), delay <= give_up)
            }
            Answer::Busy | Answer::Fail => (self.scaled(Duration::from_millis(80)), false),
            Answer::NoAnswer => (give_up, false),
        };
        match self.wait(sid, Some(wait), |_| false).await {
            Wake::Interrupted(Interrupt::HangUp(_)) => {
                Ring::NotAnswered(LegStatus::Canceled, EndReason::Api)
            }
            Wake::Interrupted(_) => Ring::Interrupted,
            Wake::Condition | Wake::Timeout if answered => Ring::Answered,
            Wake::Condition | Wake::Timeout => match script.answer {
                Answer::Busy => Ring::NotAnswered(LegStatus::Busy, EndReason::NotAnswered),
                Answer::Fail => Ring::NotAnswered(LegStatus::Failed, EndReason::NotAnswered),
                _ => Ring::NotAnswered(LegStatus::NoAnswer, EndReason::NotAnswered),
            },
        }
    }

    fn schedule_hang_up(self: &Arc<Self>, sid: &str) {
        let number = self
            .with_world(|w| w.leg(sid).map(|l| l.to.clone()))
            .unwrap_or_default();
        if let Some(after) = self.script_for(&number).hang_up_after {
            let sim = self.clone();
            let sid = sid.to_owned();
            let after = self.scaled(after);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if sim.interrupt(&sid, Interrupt::HangUp(EndReason::Person)) {
                    sim.log(format!("{number} hangs up"));
                }
            });
        }
    }

    pub(crate) async fn end_leg(&self, sid: &str, status: LegStatus, reason: EndReason) {
        self.set_status(sid, status, Some(reason)).await;
    }

    /// Rings the leg; true once answered (status in-progress, the person's
    /// hang-up scheduled), otherwise the leg has ended as the ring did.
    async fn answer(self: &Arc<Self>, sid: &str, max_wait: Option<Duration>) -> bool {
        match self.ring(sid, max_wait).await {
            Ring::Answered => {
                self.set_status(sid, LegStatus::InProgress, None).await;
                self.schedule_hang_up(sid);
                true
            }
            Ring::NotAnswered(status, reason) => {
                self.end_leg(sid, status, reason).await;
                false
            }
            Ring::Interrupted => {
                self.end_leg(sid, LegStatus::Canceled, EndReason::Api).await;
                false
            }
        }
    }

    /// A call created with the REST API: ring, then run its TwiML.
    pub(crate) async fn run_outbound(self: Arc<Self>, sid: String, url: String, timeout: Duration) {
        if self.answer(&sid, Some(timeout)).await {
            self.run_twiml(&sid, url, Vec::new()).await;
        }
    }

    /// Runs TwiML documents on a live leg until it ends. Boxed: a dial
    /// runs child legs that may run TwiML of their own.
    pub(crate) fn run_twiml(
        self: &Arc<Self>,
        sid: &str,
        url: String,
        extra: Vec<(String, String)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let sim = self.clone();
        let sid = sid.to_owned();
        Box::pin(async move { sim.run_documents(&sid, url, extra).await })
    }

    async fn run_documents(self: &Arc<Self>, sid: &str, url: String, extra: Vec<(String, String)>) {
        let mut next = Some((url, extra));
        while let Some((url, extra)) = next.take() {
            let verbs = match self.fetch_twiml(sid, &url, extra).await {
                Ok(verbs) => verbs,
                Err(error) => {
                    self.log(format!("  !! application error: {error}"));
                    self.with_world(|w| w.application_errors.push(format!("{url}: {error}")));
                    self.end_leg(sid, LegStatus::Completed, EndReason::ApplicationError)
                        .await;
                    return;
                }
            };
            for verb in verbs {
                match self.run_verb(sid, verb).await {
                    Flow::Next => continue,
                    Flow::Fetch(url, extra) => {
                        next = Some((url, extra));
                        break;
                    }
                    Flow::End(reason) => {
                        self.end_leg(sid, LegStatus::Completed, reason).await;
                        return;
                    }
                }
            }
            if next.is_none() {
                // The document ran out: Twilio hangs up.
                self.end_leg(sid, LegStatus::Completed, EndReason::Twiml)
                    .await;
            }
        }
    }

    async fn pause(&self, sid: &str, duration: Option<Duration>) -> Flow {
        match self.wait(sid, duration, |_| false).await {
            Wake::Interrupted(interrupt) => interrupt_flow(interrupt),
            _ => Flow::Next,
        }
    }

    async fn run_verb(self: &Arc<Self>, sid: &str, verb: Verb) -> Flow {
        match verb {
            Verb::Say(text) => {
                self.log(format!("  says: {text}"));
                self.pause(sid, Some(self.scaled(Duration::from_millis(50))))
                    .await
            }
            Verb::Play { loops: 0, .. } => self.pause(sid, None).await,
            Verb::Play { .. } => {
                self.pause(sid, Some(self.scaled(Duration::from_millis(200))))
                    .await
            }
            Verb::Pause(seconds) => {
                self.pause(sid, Some(self.scaled(Duration::from_secs(seconds.into()))))
                    .await
            }
            Verb::Hangup => Flow::End(EndReason::Twiml),
            Verb::Redirect(url) => Flow::Fetch(url, Vec::new()),
            Verb::Dial(dial) => self.dial(sid, dial).await,
        }
    }

    async fn dial(self: &Arc<Self>, sid: &str, dial: Dial) -> Flow {
        let started = Instant::now();
        let result = match dial.target.clone() {
            DialTarget::Number {
                number,
                status_callback,
                events,
            } => {
                self.dial_number(sid, &dial, &number, status_callback, events)
                    .await
            }
            DialTarget::Conference(options) => self
                .join_room(sid, &options)
                .await
                .map(|()| ("completed".to_owned(), None)),
        };
        match result {
            Err(interrupt) => interrupt_flow(interrupt),
            Ok((dial_status, child)) => match dial.action {
                None => Flow::Next,
                Some(action) => {
                    let mut extra = vec![
                        ("DialCallStatus".to_owned(), dial_status),
                        (
                            "DialCallDuration".to_owned(),
                            started.elapsed().as_secs().to_string(),
                        ),
                    ];
                    if let Some(child) = child {
                        extra.push(("DialCallSid".to_owned(), child));
                    }
                    Flow::Fetch(action, extra)
                }
            },
        }
    }

    /// `<Dial><Number>`: a child leg, bridged with the parent once answered.
    /// Ends when either side leaves; returns DialCallStatus and the child SID.
    async fn dial_number(
        self: &Arc<Self>,
        parent: &str,
        dial: &Dial,
        number: &str,
        status_callback: Option<String>,
        events: Vec<String>,
    ) -> Result<(String, Option<String>), Interrupt> {
        let from = dial.caller_id.clone().unwrap_or_else(|| {
            self.with_world(|w| w.leg(parent).map(|l| l.from.clone()))
                .unwrap_or_default()
        });
        let child = self.create_leg(
            number,
            &from,
            Some(parent),
            "outbound-dial",
            status_callback,
            events,
            None,
        );
        self.log(format!("  dials {number}"));
        tokio::spawn(self.clone().run_child(child.clone(), parent.to_owned()));
        let timeout = self.scaled(Duration::from_secs(dial.timeout_secs.into()));
        let child_id = child.clone();
        let answered_or_over = move |w: &super::world::World| {
            w.leg(&child_id)
                .is_some_and(|c| c.status == LegStatus::InProgress || c.status.is_final())
        };
        match self.wait(parent, Some(timeout), answered_or_over).await {
            Wake::Interrupted(interrupt) => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::BridgeEnded));
                return Err(interrupt);
            }
            Wake::Timeout => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::NotAnswered));
                return Ok(("no-answer".into(), Some(child)));
            }
            Wake::Condition => {}
        }
        let status = self
            .with_world(|w| w.leg(&child).map(|c| c.status))
            .unwrap_or(LegStatus::Failed);
        if status.is_final() {
            return Ok((status.as_str().to_owned(), Some(child)));
        }
        self.with_world(|w| {
            if let Some(p) = w.leg_mut(parent) {
                p.location = Location::Bridged(child.clone());
            }
        });
        self.log(format!("  bridged with {number}"));
        let child_id = child.clone();
        let parent_id = parent.to_owned();
        let bridge_over = move |w: &super::world::World| {
            w.leg(&child_id)
                .is_none_or(|c| c.location != Location::Bridged(parent_id.clone()))
        };
        let woke = self.wait(parent, None, bridge_over).await;
        self.with_world(|w| {
            if let Some(p) = w.leg_mut(parent) {
                p.location = Location::Nowhere;
            }
        });
        match woke {
            Wake::Interrupted(interrupt) => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::BridgeEnded));
                Err(interrupt)
            }
            _ => Ok(("completed".into(), Some(child))),
        }
    }

    /// The dialled party of a `<Dial><Number>`.
    async fn run_child(self: Arc<Self>, sid: String, parent: String) {
        // Bridged before it is answered, so the parent never sees it answered and unbridged.
        self.with_world(|w| {
            if let Some(leg) = w.leg_mut(&sid) {
                leg.location = Location::Bridged(parent.clone());
            }
        });
        if !self.answer(&sid, None).await {
            return;
        }
        let parent_id = parent.clone();
        let parent_gone =
            move |w: &super::world::World| w.leg(&parent_id).is_none_or(|p| p.status.is_final());
        match self.wait(&sid, None, parent_gone).await {
            Wake::Interrupted(Interrupt::Redirect(url)) => {
                self.log("  leaves the bridge (redirected)");
                self.with_world(|w| {
                    if let Some(leg) = w.leg_mut(&sid) {
                        leg.location = Location::Nowhere;
                    }
                });
                self.run_twiml(&sid, url, Vec::new()).await;
            }
            Wake::Interrupted(Interrupt::HangUp(reason)) => {
                self.end_leg(&sid, LegStatus::Completed, reason).await;
            }
            _ => {
                self.end_leg(&sid, LegStatus::Completed, EndReason::BridgeEnded)
                    .await
            }
        }
    }

    /// A participant added with the REST API: ring (heard in the room with
    /// early media), then join the room.
    pub(crate) async fn run_participant(
        self: Arc<Self>,
        sid: String,
        options: RoomOptions,
        timeout: Duration,
    ) {
        if !self.answer(&sid, Some(timeout)).await {
            return;
        }
        self.with_world(|w| {
            if let Some(leg) = w.leg_mut(&sid) {
                leg.ringing_into = None;
            }
        });
        match self.join_room(&sid, &options).await {
            Ok(()) => {
                self.end_leg(&sid, LegStatus::Completed, EndReason::BridgeEnded)
                    .await
            }
            Err(Interrupt::HangUp(reason)) => {
                self.end_leg(&sid, LegStatus::Completed, reason).await
            }
            Err(Interrupt::Redirect(url)) => self.run_twiml(&sid, url, Vec::new()).await,
        }
    }

    /// The room of that name, created (not yet started) if none is live.
    pub(crate) fn room_for(&self, name: &str) -> String {
        let new_sid = self.new_sid("CF");
        self.with_world(|w| {
            if let Some(room) = w.room(name) {
                return room.sid.clone();
            }
            w.rooms.push(Room {
                sid: new_sid.clone(),
                name: name.to_owned(),
                members: Vec::new(),
                started: false,
                ended: false,
                status_callback: None,
                events: Vec::new(),
                next_sequence: 0,
            });
            new_sid
        })
    }

    /// `<Dial><Conference>`: in the room until it ends (Ok) or the leg is
    /// interrupted (Err, after leaving).
    async fn join_room(
        self: &Arc<Self>,
        sid: &str,
        options: &RoomOptions,
    ) -> Result<(), Interrupt> {
        let room_sid = self.room_for(&options.name);
        let start = self.with_world(|w| {
            let label = options.label.clone();
            let room = w.rooms.iter_mut().find(|r| r.sid == room_sid)?;
            if room.status_callback.is_none() && options.status_callback.is_some() {
                room.status_callback = options.status_callback.clone();
                room.events = options.events.clone();
            }
            room.members.push(Member {
                sid: sid.to_owned(),
                label,
                end_on_exit: options.end_on_exit,
            });
            let starts = options.start_on_enter && !room.started;
            room.started |= starts;
            if let Some(leg) = w.leg_mut(sid) {
                leg.location = Location::InRoom(options.name.clone());
            }
            Some(starts)
        });
        let who = self
            .with_world(|w| w.leg(sid).map(|l| l.to.clone()))
            .unwrap_or_default();
        self.log(format!("  {who} joins room {}", options.name));
        if start == Some(true) {
            self.room_callback(&room_sid, "conference-start", "start", None)
                .await;
        }
        self.room_callback(
            &room_sid,
            "participant-join",
            "join",
            Some((sid, options.label.clone())),
        )
        .await;
        let room_id = room_sid.clone();
        let ended = move |w: &super::world::World| {
            w.rooms
                .iter()
                .find(|r| r.sid == room_id)
                .is_none_or(|r| r.ended)
        };
        match self.wait(sid, None, ended).await {
            Wake::Interrupted(interrupt) => {
                self.leave_room(&room_sid, sid).await;
                Err(interrupt)
            }
            _ => {
                self.with_world(|w| {
                    if let Some(leg) = w.leg_mut(sid) {
                        leg.location = Location::Nowhere;
                    }
                });
                Ok(())
            }
        }
    }

    /// A member leaves; a member with endConferenceOnExit, or the last one,
    /// ends the conference for everyone.
    async fn leave_room(&self, room_sid: &str, sid: &str) {
        let outcome = self.with_world(|w| {
            let room = w.rooms.iter_mut().find(|r| r.sid == room_sid)?;
            let index = room.members.iter().position(|m| m.sid == sid)?;
            let member = room.members.remove(index);
            let ends = member.end_on_exit || room.members.is_empty();
            let kicked: Vec<Member> = if ends {
                room.ended = true;
                room.members.drain(..).collect()
            } else {
                Vec::new()
            };
            if let Some(leg) = w.leg_mut(sid) {
                leg.location = Location::Nowhere;
            }
            Some((member.label, ends, kicked))
        });
        let Some((label, ends, kicked)) = outcome else {
            return;
        };
        self.room_callback(room_sid, "participant-leave", "leave", Some((sid, label)))
            .await;
        if ends {
            for other in kicked {
                self.room_callback(
                    room_sid,
                    "participant-leave",
                    "leave",
                    Some((&other.sid, other.label)),
                )
                .await;
            }
            self.room_callback(room_sid, "conference-end", "end", None)
                .await;
        }
    }

    /// A conference callback; `participant` is the member's call SID and label.
    async fn room_callback(
        &self,
        room_sid: &str,
        event: &str,
        subscription: &str,
        participant: Option<(&str, Option<String>)>,
    ) {
        let prepared = self.with_world(|w| {
            let room = w.rooms.iter_mut().find(|r| r.sid == room_sid)?;
            let url = room.status_callback.clone()?;
            if !room.events.iter().any(|e| e == subscription) {
                return None;
            }
            let sequence = room.next_sequence;
            room.next_sequence += 1;
            let name = room.name.clone();
            let member = participant.and_then(|(sid, label)| Some((w.leg(sid).cloned()?, label)));
            Some((url, sequence, name, member))
        });
        let Some((url, sequence, name, member)) = prepared else {
            self.log(format!("  room {room_sid}: {event}"));
            return;
        };
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("ConferenceSid".into(), room_sid.into()),
            ("FriendlyName".into(), name.clone()),
            ("StatusCallbackEvent".into(), event.into()),
            ("SequenceNumber".into(), sequence.to_string()),
            (
                "Timestamp".into(),
                OffsetDateTime::now_utc()
                    .format(&Rfc2822)
                    .unwrap_or_default(),
            ),
        ];
        if let Some((member, label)) = &member {
            params.push(("CallSid".into(), member.sid.clone()));
            if let Some(label) = label {
                params.push(("ParticipantLabel".into(), label.clone()));
            }
            params.extend([
                ("Muted".into(), "false".into()),
                ("Hold".into(), "false".into()),
                ("Coaching".into(), "false".into()),
            ]);
        }
        let who = member.map(|(m, _)| m.to).unwrap_or_default();
        let _ = self
            .post(&url, params, &format!("conference {event} {who}"))
            .await;
    }
}
