//! How legs live: ringing, answering, running TwiML, bridging, and the
//! status callbacks Twilio sends along the way. Conference rooms are in
//! `rooms.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use warm_transfer_core::domain::LegStatus;

use super::Sim;
use super::people::Answer;
use super::recordings::{Recorded, Running};
use super::twiml::{self, Dial, DialTarget, Verb};
use super::webhook::{CallbackInfo, CallbackKind, Hook, HookError};
use super::world::{EndReason, Interrupt, Leg, Location, Target, World};

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
    Fetch(Target, Vec<(String, String)>),
    End(EndReason),
}

/// How a `<Dial>` finished: the parameters of its action request, or no
/// action at all (the call carries on with the next verb).
pub(crate) enum Dialed {
    Done(Vec<(String, String)>),
    /// Twilio: a `<Conference>` the call could not join; the call carries
    /// on with the next verb (twilio-rules 1.11, [conf#participant-label]).
    NotAdded,
}

fn interrupt_flow(interrupt: Interrupt) -> Flow {
    match interrupt {
        Interrupt::Redirect(target) => Flow::Fetch(target, Vec::new()),
        Interrupt::HangUp(reason) => Flow::End(reason),
    }
}

pub(crate) fn timestamp() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc2822)
        .unwrap_or_default()
}

/// A URL of a TwiML document, resolved against the document it came from
/// (Twilio accepts relative URLs).
pub(crate) fn resolve(base: Option<&str>, url: &str) -> String {
    base.and_then(|b| reqwest::Url::parse(b).ok())
        .and_then(|b| b.join(url).ok())
        .map_or_else(|| url.to_owned(), |u| u.to_string())
}

/// A new call leg.
pub(crate) struct NewLeg<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub parent: Option<&'a str>,
    pub direction: &'static str,
    pub status_callback: Option<String>,
    pub callback_method: Option<String>,
    pub callback_events: Vec<String>,
    pub label: Option<String>,
    pub fallback: Option<(String, String)>,
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

    pub(crate) fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut world);
        world.observe_situations();
        out
    }

    /// For the waits' polls, which change nothing a situation depends on:
    /// no situation is looked at again.
    fn peek_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut world)
    }

    pub(crate) fn number_of(&self, sid: &str) -> String {
        self.with_world(|w| w.leg(sid).map(|l| l.to.clone()))
            .unwrap_or_default()
    }

    /// Records an application error that hit this number's call.
    pub(crate) fn application_error(&self, number: &str, text: String) {
        self.log(format!("  !! application error: {text}"));
        self.with_world(|w| w.application_errors.push((number.to_owned(), text)));
    }

    pub(crate) fn create_leg(&self, new: NewLeg<'_>) -> String {
        let sid = self.new_sid("CA");
        let leg = Leg {
            sid: sid.clone(),
            parent: new.parent.map(str::to_owned),
            to: new.to.to_owned(),
            from: new.from.to_owned(),
            direction: new.direction,
            status: LegStatus::Queued,
            status_callback: new.status_callback,
            // Twilio: StatusCallbackMethod defaults to POST (twilio-rules 4.1, [call]).
            callback_method: new
                .callback_method
                .map_or_else(|| "POST".to_owned(), |m| m.to_ascii_uppercase()),
            callback_events: new.callback_events,
            next_sequence: 0,
            interrupt: None,
            location: Location::Nowhere,
            ended_by: None,
            label: new.label,
            ringing_into: None,
            answered_at: None,
            fallback: new.fallback,
            call_token: None,
            hears_wait_loop: false,
        };
        self.with_world(|w| w.add_leg(leg));
        self.log(format!("leg {} created ({})", new.to, new.direction));
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
        condition: impl Fn(&World) -> bool,
    ) -> Wake {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let woke = self.peek_world(|w| {
                if let Some(interrupt) = w.take_interrupt(sid) {
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
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Moves a leg to a new status and queues its status callback, as Twilio does.
    pub(crate) fn set_status(
        self: &Arc<Self>,
        sid: &str,
        status: LegStatus,
        reason: Option<EndReason>,
    ) {
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
            // Twilio: `answered` reports CallStatus=in-progress, `completed`
            // fires for every end (twilio-rules 5.4, [call]).
            let event = match status {
                LegStatus::Queued => return None,
                LegStatus::Initiated => "initiated",
                LegStatus::Ringing => "ringing",
                LegStatus::InProgress => "answered",
                _ => "completed",
            };
            // Twilio: `completed` only when no event is named (twilio-rules 4.1, 5.6, [call] [number]).
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
        // Twilio: progress events carry Timestamp, CallbackSource and a
        // SequenceNumber from 0 (twilio-rules 5.2, [call]); only `completed`
        // carries CallDuration and Duration (twilio-rules 5.3, [call]).
        let mut params = self.call_params(&leg);
        params.push(("CallStatus".into(), status.as_str().into()));
        params.push(("SequenceNumber".into(), sequence.to_string()));
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("Timestamp".into(), timestamp()));
        if status.is_final() {
            let seconds = leg.answered_at.map_or(0, |a| a.elapsed().as_secs());
            params.push(("CallDuration".into(), seconds.to_string()));
            params.push(("Duration".into(), seconds.div_ceil(60).to_string()));
        }
        let hook = Hook {
            url,
            method: leg.callback_method.clone(),
            params,
            what: format!("status callback {} {}", leg.to, status.as_str()),
            token: self.new_token(),
        };
        let info = CallbackInfo {
            kind: CallbackKind::Call,
            event: status.as_str().to_owned(),
            number: Some(leg.to.clone()),
            label: leg.label.clone(),
        };
        self.send_callback(&leg.sid, hook, info);
    }

    /// Twilio: every call webhook carries CallSid, AccountSid, From, To,
    /// ApiVersion, Direction; ParentCallSid only on child legs (twilio-rules
    /// 5.1, [call#statuscallback] [number]).
    pub(crate) fn call_params(&self, leg: &Leg) -> Vec<(String, String)> {
        let (to, from) = leg.twilio_to_from();
        let mut params = vec![
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), leg.sid.clone()),
            ("Direction".into(), leg.direction.into()),
            ("From".into(), from.to_owned()),
            ("To".into(), to.to_owned()),
        ];
        if let Some(parent) = &leg.parent {
            params.push(("ParentCallSid".into(), parent.clone()));
        }
        params
    }

    /// A webhook about a live leg (TwiML, wait audio), with the call's parameters.
    pub(crate) async fn call_webhook(
        &self,
        sid: &str,
        url: &str,
        method: &str,
        extra: Vec<(String, String)>,
        what: &str,
    ) -> Result<String, HookError> {
        let Some(leg) = self.with_world(|w| w.leg(sid).cloned()) else {
            return Err(HookError {
                code: 11200,
                text: "unknown leg".into(),
            });
        };
        let mut params = self.call_params(&leg);
        params.push(("CallStatus".into(), leg.status.as_str().into()));
        params.extend(extra);
        let hook = Hook {
            url: url.to_owned(),
            method: method.to_owned(),
            params,
            what: format!("{what} for {}", leg.to),
            token: self.new_token(),
        };
        self.deliver(&hook).await
    }

    async fn fetch_twiml(
        &self,
        sid: &str,
        url: &str,
        method: &str,
        extra: Vec<(String, String)>,
    ) -> Result<Vec<Verb>, HookError> {
        let body = self.call_webhook(sid, url, method, extra, "TwiML").await?;
        twiml::parse(&body).map_err(|text| HookError { code: 12100, text })
    }

    /// The next document of a leg; on failure, its FallbackUrl; without one
    /// (or if that fails too) an application error that ends the leg (Err).
    async fn document(
        self: &Arc<Self>,
        sid: &str,
        target: &Target,
        extra: Vec<(String, String)>,
    ) -> Result<Vec<Verb>, ()> {
        let (url, error) = match target {
            Target::Twiml(doc) => match twiml::parse(doc) {
                Ok(verbs) => return Ok(verbs),
                Err(text) => ("(Twiml)".to_owned(), HookError { code: 12100, text }),
            },
            Target::Url { url, method } => {
                match self.fetch_twiml(sid, url, method, extra.clone()).await {
                    Ok(verbs) => return Ok(verbs),
                    Err(error) => (url.clone(), error),
                }
            }
        };
        let number = self.number_of(sid);
        let mut failure = format!("{url}: {} (error {})", error.text, error.code);
        let fallback = self.with_world(|w| w.leg(sid).and_then(|l| l.fallback.clone()));
        // Twilio: when the TwiML cannot be fetched or run, the fallback URL is
        // requested at once with ErrorCode and ErrorUrl (twilio-rules 6.11,
        // [reliab] [blog-fallback] [call]).
        if let Some((fallback, method)) = fallback.filter(|(f, _)| *f != url) {
            self.log(format!("  !! {failure}; trying the FallbackUrl"));
            let mut extra = extra;
            extra.push(("ErrorCode".into(), error.code.to_string()));
            extra.push(("ErrorUrl".into(), super::webhook::split_overrides(&url).0));
            match self.fetch_twiml(sid, &fallback, &method, extra).await {
                Ok(verbs) => return Ok(verbs),
                Err(e) => {
                    failure = format!(
                        "{failure}; fallback {fallback}: {} (error {})",
                        e.text, e.code
                    )
                }
            }
        }
        self.application_error(&number, failure);
        self.end_leg(sid, LegStatus::Completed, EndReason::ApplicationError);
        Err(())
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
    async fn ring(self: &Arc<Self>, sid: &str, max_wait: Option<Duration>) -> Ring {
        self.set_status(sid, LegStatus::Initiated, None);
        tokio::time::sleep(self.scaled(Duration::from_millis(20))).await;
        self.set_status(sid, LegStatus::Ringing, None);
        let number = self.number_of(sid);
        let script = self.script_for(&number);
        let give_up = max_wait.unwrap_or(Duration::from_secs(60));
        let (wait, answered) = match script.answer {
            Answer::After(delay) => {
                let delay = self.scaled(delay);
                (delay.min(give_up), delay <= give_up)
            }
            Answer::Busy | Answer::Fail => (self.scaled(Duration::from_millis(80)), false),
            Answer::DeclineAfter(delay) => (self.scaled(delay).min(give_up), false),
            Answer::NoAnswer => (give_up, false),
        };
        match self.wait(sid, Some(wait), |_| false).await {
            Wake::Interrupted(Interrupt::HangUp(_)) => {
                Ring::NotAnswered(LegStatus::Canceled, EndReason::Api)
            }
            Wake::Interrupted(_) => Ring::Interrupted,
            Wake::Condition | Wake::Timeout if answered => Ring::Answered,
            Wake::Condition | Wake::Timeout => match script.answer {
                Answer::Busy | Answer::DeclineAfter(_) => {
                    Ring::NotAnswered(LegStatus::Busy, EndReason::NotAnswered)
                }
                Answer::Fail => Ring::NotAnswered(LegStatus::Failed, EndReason::NotAnswered),
                _ => Ring::NotAnswered(LegStatus::NoAnswer, EndReason::NotAnswered),
            },
        }
    }

    fn schedule_hang_up(self: &Arc<Self>, sid: &str) {
        let number = self.number_of(sid);
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

    pub(crate) fn end_leg(self: &Arc<Self>, sid: &str, status: LegStatus, reason: EndReason) {
        self.set_status(sid, status, Some(reason));
    }

    /// Rings the leg; true once answered (status in-progress, the person's
    /// hang-up scheduled), otherwise the leg has ended as the ring did.
    pub(crate) async fn answer(self: &Arc<Self>, sid: &str, max_wait: Option<Duration>) -> bool {
        match self.ring(sid, max_wait).await {
            Ring::Answered => {
                self.set_status(sid, LegStatus::InProgress, None);
                self.schedule_hang_up(sid);
                true
            }
            Ring::NotAnswered(status, reason) => {
                self.end_leg(sid, status, reason);
                false
            }
            Ring::Interrupted => {
                self.end_leg(sid, LegStatus::Canceled, EndReason::Api);
                false
            }
        }
    }

    /// A call to one of the account's numbers: Twilio asks the number's
    /// voice URL (with `CallStatus=ringing` and the call's `CallToken`),
    /// and the call is answered by running what it answers. Twilio: "A
    /// call_token is generated when an incoming call is received on a
    /// Twilio number" (the `CallToken` field of participant create, [oai]);
    /// an incoming call's webhook carries the call's parameters with
    /// `Direction=inbound` ([voice webhooks]:
    /// twilio.com/docs/usage/webhooks/voice-webhooks).
    pub(crate) async fn run_inbound(self: Arc<Self>, sid: String, target: Target) {
        let token = self.with_world(|w| w.leg(&sid).and_then(|l| l.call_token.clone()));
        self.set_status(&sid, LegStatus::Ringing, None);
        let extra = token
            .map(|t| vec![("CallToken".to_owned(), t)])
            .unwrap_or_default();
        self.run_twiml(&sid, target, extra).await;
    }

    /// An inbound call is answered by the first document its number's
    /// webhook answers.
    fn answered_by_document(self: &Arc<Self>, sid: &str) {
        let ringing_in = self.with_world(|w| {
            w.leg(sid)
                .is_some_and(|l| l.direction == "inbound" && l.status == LegStatus::Ringing)
        });
        if ringing_in {
            self.set_status(sid, LegStatus::InProgress, None);
            self.schedule_hang_up(sid);
        }
    }

    /// A call created with the REST API: ring, then run its TwiML.
    pub(crate) async fn run_outbound(
        self: Arc<Self>,
        sid: String,
        target: Target,
        timeout: Duration,
    ) {
        if self.answer(&sid, Some(timeout)).await {
            self.run_twiml(&sid, target, Vec::new()).await;
        }
    }

    /// Runs TwiML documents on a live leg until it ends. Boxed: a dial
    /// runs child legs that may run TwiML of their own.
    pub(crate) fn run_twiml(
        self: &Arc<Self>,
        sid: &str,
        target: Target,
        extra: Vec<(String, String)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let sim = self.clone();
        let sid = sid.to_owned();
        Box::pin(async move { sim.run_documents(&sid, target, extra).await })
    }

    async fn run_documents(
        self: &Arc<Self>,
        sid: &str,
        target: Target,
        extra: Vec<(String, String)>,
    ) {
        let mut next = Some((target, extra));
        let mut base: Option<String> = None;
        while let Some((target, extra)) = next.take() {
            let Ok(verbs) = self.document(sid, &target, extra).await else {
                return;
            };
            self.answered_by_document(sid);
            if let Target::Url { url, .. } = &target {
                base = Some(url.clone());
            }
            for verb in verbs {
                match self.run_verb(sid, verb, base.as_deref()).await {
                    Flow::Next => continue,
                    Flow::Fetch(target, extra) => {
                        next = Some((target, extra));
                        break;
                    }
                    Flow::End(reason) => {
                        self.end_leg(sid, LegStatus::Completed, reason);
                        return;
                    }
                }
            }
            if next.is_none() {
                // Twilio: with no verb left the call ends (twilio-rules 5.9, [dial#action]).
                self.end_leg(sid, LegStatus::Completed, EndReason::Twiml);
            }
        }
    }

    async fn pause(&self, sid: &str, duration: Option<Duration>) -> Flow {
        match self.wait(sid, duration, |_| false).await {
            Wake::Interrupted(interrupt) => interrupt_flow(interrupt),
            _ => Flow::Next,
        }
    }

    fn heard_message(&self, sid: &str) {
        self.with_world(|w| {
            if let Some(number) = w.leg(sid).map(|l| l.to.clone()) {
                w.messages.insert(number, Instant::now());
            }
        });
    }

    async fn run_verb(self: &Arc<Self>, sid: &str, verb: Verb, base: Option<&str>) -> Flow {
        match verb {
            Verb::Say(text) => {
                self.log(format!("  says: {text}"));
                self.heard_message(sid);
                self.pause(sid, Some(self.scaled(Duration::from_millis(50))))
                    .await
            }
            Verb::Play { loops: 0, .. } => {
                self.heard_message(sid);
                self.pause(sid, None).await
            }
            Verb::Play { .. } => {
                self.heard_message(sid);
                self.pause(sid, Some(self.scaled(Duration::from_millis(200))))
                    .await
            }
            Verb::Pause(seconds) => {
                self.pause(sid, Some(self.scaled(Duration::from_secs(seconds.into()))))
                    .await
            }
            Verb::Hangup => Flow::End(EndReason::Twiml),
            Verb::Redirect { url, method } => Flow::Fetch(
                Target::Url {
                    url: resolve(base, &url),
                    method,
                },
                Vec::new(),
            ),
            Verb::Dial(dial) => self.dial(sid, *dial, base).await,
        }
    }

    async fn dial(self: &Arc<Self>, sid: &str, dial: Dial, base: Option<&str>) -> Flow {
        let action = dial.action.as_deref().map(|a| Target::Url {
            url: resolve(base, a),
            method: dial.method.clone(),
        });
        let result = match dial.target.clone() {
            DialTarget::Number {
                number,
                status_callback,
                events,
            } => {
                self.dial_number(sid, &dial, &number, status_callback, events)
                    .await
            }
            DialTarget::Conference(options) => self.join_room(sid, &options).await,
        };
        match result {
            Err(Interrupt::Redirect(target)) => {
                // Twilio: redirecting the parent during <Dial> still requests
                // the action URL but ignores its TwiML (twilio-rules 4.6, [cl-2021-dial]).
                if let Some(Target::Url { url, method }) = action {
                    let status = match dial.target {
                        DialTarget::Conference(_) => "answered",
                        DialTarget::Number { .. } => "completed",
                    };
                    let extra = vec![("DialCallStatus".to_owned(), status.to_owned())];
                    let _ = self
                        .call_webhook(sid, &url, &method, extra, "Dial action (ignored)")
                        .await;
                }
                Flow::Fetch(target, Vec::new())
            }
            Err(interrupt) => interrupt_flow(interrupt),
            Ok(Dialed::NotAdded) => Flow::Next,
            // Twilio: without an action the next verb runs; with one, the
            // action's TwiML takes over (twilio-rules 5.9, [dial#action]).
            Ok(Dialed::Done(extra)) => match action {
                None => Flow::Next,
                Some(action) => Flow::Fetch(action, extra),
            },
        }
    }

    /// `<Dial><Number>`: a child leg, bridged with the parent once answered.
    /// Ends when either side leaves; returns the action parameters.
    async fn dial_number(
        self: &Arc<Self>,
        parent: &str,
        dial: &Dial,
        number: &str,
        status_callback: Option<String>,
        events: Vec<String>,
    ) -> Result<Dialed, Interrupt> {
        let from = dial.caller_id.clone().unwrap_or_else(|| {
            self.with_world(|w| w.leg(parent).map(|l| l.from.clone()))
                .unwrap_or_default()
        });
        let child = self.create_leg(NewLeg {
            to: number,
            from: &from,
            parent: Some(parent),
            direction: "outbound-dial",
            status_callback,
            callback_method: None,
            callback_events: events,
            label: None,
            fallback: None,
        });
        self.log(format!("  dials {number}"));
        // Twilio: <Dial record> records the bridge, from ringing or from
        // answer (twilio-rules 7.5, [dial#record]).
        let record = dial.record.as_ref();
        let of = Recorded::Dial { parent };
        let mut recording = record
            .filter(|r| r.from_ringing)
            .map(|r| self.recording_started(r, of));
        let finish = |recording: Option<Running>| -> Option<String> {
            Some(self.recording_completed(record?, of, &recording?))
        };
        tokio::spawn(self.clone().run_child(child.clone(), parent.to_owned()));
        let timeout = self.scaled(Duration::from_secs(dial.timeout_secs.into()));
        let child_id = child.clone();
        let answered_or_over = move |w: &World| {
            w.leg(&child_id)
                .is_some_and(|c| c.status == LegStatus::InProgress || c.status.is_final())
        };
        // Twilio: DialCallStatus, DialCallSid, DialCallDuration (not when
        // the child was redirected), DialBridged, RecordingUrl with <Dial
        // record> (twilio-rules 5.7, 5.8, [dial#action]).
        let outcome = |status: &str, duration: Option<u64>, bridged: bool, url: Option<String>| {
            let mut extra = vec![
                ("DialCallStatus".to_owned(), status.to_owned()),
                ("DialCallSid".to_owned(), child.clone()),
                ("DialBridged".to_owned(), bridged.to_string()),
            ];
            if let Some(duration) = duration {
                extra.push(("DialCallDuration".to_owned(), duration.to_string()));
            }
            if let Some(url) = url {
                extra.push(("RecordingUrl".to_owned(), url));
            }
            Dialed::Done(extra)
        };
        match self.wait(parent, Some(timeout), answered_or_over).await {
            Wake::Interrupted(interrupt) => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::BridgeEnded));
                finish(recording);
                return Err(interrupt);
            }
            Wake::Timeout => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::NotAnswered));
                let url = finish(recording);
                return Ok(outcome("no-answer", Some(0), false, url));
            }
            Wake::Condition => {}
        }
        let status = self
            .with_world(|w| w.leg(&child).map(|c| c.status))
            .unwrap_or(LegStatus::Failed);
        if status.is_final() {
            let url = finish(recording);
            return Ok(outcome(status.as_str(), Some(0), false, url));
        }
        let bridged_at = Instant::now();
        if recording.is_none() {
            recording = record.map(|r| self.recording_started(r, of));
        }
        self.with_world(|w| {
            if let Some(p) = w.leg_mut(parent) {
                p.location = Location::Bridged(child.clone());
            }
        });
        self.log(format!("  bridged with {number}"));
        let child_id = child.clone();
        let parent_id = parent.to_owned();
        let bridge_over = move |w: &World| {
            w.leg(&child_id)
                .is_none_or(|c| c.location != Location::Bridged(parent_id.clone()))
        };
        let woke = self.wait(parent, None, bridge_over).await;
        self.with_world(|w| {
            if let Some(p) = w.leg_mut(parent) {
                p.location = Location::Nowhere;
            }
        });
        // The recording ends with the bridge, however it ended.
        let url = finish(recording);
        match woke {
            Wake::Interrupted(interrupt) => {
                self.interrupt(&child, Interrupt::HangUp(EndReason::BridgeEnded));
                Err(interrupt)
            }
            _ => {
                // U1: DialCallStatus after the child was redirected is
                // assumed `completed`, without DialCallDuration (twilio-rules 4.7).
                let redirected = self
                    .with_world(|w| w.leg(&child).map(|c| c.is_live()))
                    .unwrap_or(false);
                let duration = (!redirected).then(|| bridged_at.elapsed().as_secs());
                Ok(outcome("completed", duration, true, url))
            }
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
        let parent_gone = move |w: &World| w.leg(&parent_id).is_none_or(|p| p.status.is_final());
        match self.wait(&sid, None, parent_gone).await {
            Wake::Interrupted(Interrupt::Redirect(target)) => {
                // Twilio: redirecting the child takes it out of the bridge
                // (twilio-rules 4.7, [number]).
                self.log("  leaves the bridge (redirected)");
                self.with_world(|w| {
                    if let Some(leg) = w.leg_mut(&sid) {
                        leg.location = Location::Nowhere;
                    }
                });
                self.run_twiml(&sid, target, Vec::new()).await;
            }
            Wake::Interrupted(Interrupt::HangUp(reason)) => {
                self.end_leg(&sid, LegStatus::Completed, reason);
            }
            _ => self.end_leg(&sid, LegStatus::Completed, EndReason::BridgeEnded),
        }
    }
}
