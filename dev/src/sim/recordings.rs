//! Recordings as Twilio makes them: one per `<Dial record>` bridge and one
//! per recorded conference, each reported to its `recordingStatusCallback`
//! (twilio-rules 7), through the same callback queue and faults as every
//! status callback.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::twiml::RecordingRequest;
use super::webhook::{CallbackInfo, CallbackKind, Hook};
use super::{Recording, Sim};

/// What a recording belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Recorded<'a> {
    /// A `<Dial>` bridge: the parent call (twilio-rules 7.6).
    Dial { parent: &'a str },
    /// A conference, by its `CF…` SID.
    Conference { sid: &'a str },
}

impl Recorded<'_> {
    /// `RecordingSource`, as in Twilio's OpenAPI enum ([oai]).
    fn source(self) -> &'static str {
        match self {
            Recorded::Dial { .. } => "DialVerb",
            Recorded::Conference { .. } => "Conference",
        }
    }
}

/// A running recording: its SID and when it began.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub sid: String,
    pub since: Instant,
}

impl Sim {
    pub(crate) fn recording_started(
        self: &Arc<Self>,
        request: &RecordingRequest,
        of: Recorded<'_>,
    ) -> Running {
        let running = Running {
            sid: self.new_sid("RE"),
            since: Instant::now(),
        };
        self.log(format!(
            "  recording {} starts ({})",
            running.sid,
            of.source()
        ));
        self.recording_callback(request, of, &running, "in-progress", None);
        running
    }

    /// Ends a recording: kept for [`super::Simulator::recordings`], and
    /// reported. Returns its `RecordingUrl`.
    pub(crate) fn recording_completed(
        self: &Arc<Self>,
        request: &RecordingRequest,
        of: Recorded<'_>,
        running: &Running,
    ) -> String {
        // In Twilio's time, as people's delays are scaled.
        let seconds =
            (running.since.elapsed().as_secs_f64() / self.config.time_scale).round() as u64;
        // Twilio: conference recordings have one channel; a dual dial
        // recording two (twilio-rules 7.2, 7.5).
        let channels = if request.dual { 2 } else { 1 };
        let recording = Recording {
            sid: running.sid.clone(),
            source: of.source(),
            of: match of {
                Recorded::Dial { parent } => parent.to_owned(),
                Recorded::Conference { sid } => sid.to_owned(),
            },
            duration_secs: seconds,
            channels,
        };
        self.log(format!(
            "  recording {} completed ({seconds} s)",
            running.sid
        ));
        self.with_world(|w| w.recordings.push(recording));
        self.recording_callback(request, of, running, "completed", Some(seconds));
        self.recording_url(&running.sid)
    }

    fn recording_url(&self, sid: &str) -> String {
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/{}/Recordings/{sid}",
            self.config.account_sid
        )
    }

    /// Sends a recording status event if the request subscribed to it.
    fn recording_callback(
        self: &Arc<Self>,
        request: &RecordingRequest,
        of: Recorded<'_>,
        running: &Running,
        status: &str,
        seconds: Option<u64>,
    ) {
        let Some(url) = request.callback.clone() else {
            return;
        };
        if !request.events.iter().any(|e| e == status) {
            return;
        }
        let started = OffsetDateTime::now_utc() - running.since.elapsed();
        // Twilio: AccountSid, CallSid (the parent leg) or ConferenceSid,
        // RecordingSid, RecordingUrl, RecordingStatus, RecordingDuration,
        // RecordingChannels, RecordingStartTime, RecordingSource
        // (twilio-rules 7.2, 7.6, [conf#recording-status-callback]
        // [dial#recordingstatuscallback]).
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("RecordingSid".into(), running.sid.clone()),
            ("RecordingUrl".into(), self.recording_url(&running.sid)),
            ("RecordingStatus".into(), status.into()),
            (
                "RecordingChannels".into(),
                if request.dual { "2" } else { "1" }.into(),
            ),
            (
                "RecordingStartTime".into(),
                started.format(&Rfc2822).unwrap_or_default(),
            ),
            ("RecordingSource".into(), of.source().into()),
        ];
        match of {
            Recorded::Dial { parent } => params.push(("CallSid".into(), parent.into())),
            Recorded::Conference { sid } => params.push(("ConferenceSid".into(), sid.into())),
        }
        if let Some(seconds) = seconds {
            params.push(("RecordingDuration".into(), seconds.to_string()));
        }
        let hook = Hook {
            url,
            method: request.callback_method.clone(),
            params,
            what: format!("recording {} {status}", running.sid),
            token: self.new_token(),
        };
        let info = CallbackInfo {
            kind: CallbackKind::Recording,
            event: status.to_owned(),
            number: None,
            label: None,
        };
        self.send_callback(&running.sid, hook, info);
    }
}
