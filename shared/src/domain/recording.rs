//! Recordings of the customer's conversation, as Twilio's recording status
//! callbacks report them. They live in the call's history; the list of a
//! call's recordings is derived from it.

wire_enum!(
    /// What a recording covers.
    RecordingSource {
        /// The first agent's `<Dial>` bridge with the customer, until the
        /// customer moved to the room (Twilio's `DialVerb`).
        Bridge => "bridge",
        /// The conference room, from its start to its end, across every
        /// transfer in it (Twilio's `Conference`).
        Room => "room",
    }
);

impl RecordingSource {
    /// From a callback's `RecordingSource`.
    pub fn from_twilio(value: &str) -> Option<Self> {
        match value {
            "DialVerb" => Some(RecordingSource::Bridge),
            "Conference" => Some(RecordingSource::Room),
            _ => None,
        }
    }
}

wire_enum!(
    /// A callback's `RecordingStatus`.
    RecordingStatus {
        InProgress => "in-progress",
        Completed => "completed",
        /// Nothing audible was recorded: there is no file.
        Absent => "absent",
        Failed => "failed",
    }
);

/// One Twilio recording (`RE…`). No phone number, no URL: the SID is how
/// it is found in the Twilio account, which alone holds the audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub sid: String,
    pub source: RecordingSource,
    pub status: RecordingStatus,
    /// Seconds, once Twilio knows it.
    pub duration_secs: Option<u32>,
}

impl Recording {
    /// A recording; `None` unless `sid` is a recording SID (RE and 32
    /// hexadecimal digits).
    pub fn new(
        sid: &str,
        source: RecordingSource,
        status: RecordingStatus,
        duration_secs: Option<u32>,
    ) -> Option<Self> {
        let valid = sid.len() == 34
            && sid.starts_with("RE")
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self {
            sid: sid.to_owned(),
            source,
            status,
            duration_secs,
        })
    }

    /// The history entry's kind.
    pub fn describe(&self) -> String {
        format!(
            "{} recording {}",
            self.source.as_str(),
            self.status.as_str()
        )
    }

    /// The history entry's detail: which recording, how long.
    pub fn detail(&self) -> String {
        match self.duration_secs {
            Some(secs) => format!("{} ({secs} s)", self.sid),
            None => self.sid.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::HistoryEvent;

    const SID: &str = "RE0123456789abcdef0123456789abcdef";

    fn recording(sid: &str, status: RecordingStatus, secs: Option<u32>) -> Recording {
        Recording::new(sid, RecordingSource::Room, status, secs).unwrap()
    }

    #[test]
    fn only_recording_sids_are_accepted() {
        let source = RecordingSource::Bridge;
        let status = RecordingStatus::Completed;
        assert!(Recording::new(SID, source, status, Some(3)).is_some());
        for bad in [
            "CA0123456789abcdef0123456789abcdef",
            "RE123",
            "RE0123456789abcdef0123456789abcdeg",
        ] {
            assert!(Recording::new(bad, source, status, None).is_none(), "{bad}");
        }
        assert_eq!(
            RecordingSource::from_twilio("DialVerb"),
            Some(RecordingSource::Bridge)
        );
        assert_eq!(
            RecordingSource::from_twilio("Conference"),
            Some(RecordingSource::Room)
        );
        assert_eq!(RecordingSource::from_twilio("RecordVerb"), None);
    }

    #[test]
    fn the_history_lists_each_recording_once_with_its_latest_status() {
        let now = OffsetDateTime::now_utc();
        let other = "RE00000000000000000000000000000001";
        let events = vec![
            HistoryEvent::twilio(now, "customer in-progress", None),
            HistoryEvent::recorded(now, recording(SID, RecordingStatus::InProgress, None)),
            HistoryEvent::recorded(now, recording(other, RecordingStatus::Completed, Some(4))),
            HistoryEvent::recorded(now, recording(SID, RecordingStatus::Completed, Some(42))),
            // Delivered twice.
            HistoryEvent::recorded(now, recording(SID, RecordingStatus::Completed, Some(42))),
        ];
        assert_eq!(
            HistoryEvent::recordings(&events),
            vec![
                recording(SID, RecordingStatus::Completed, Some(42)),
                recording(other, RecordingStatus::Completed, Some(4)),
            ]
        );
        let entry = &events[3];
        assert_eq!(entry.kind, "room recording completed");
        assert_eq!(
            entry.detail.as_deref(),
            Some("RE0123456789abcdef0123456789abcdef (42 s)")
        );
    }
}
