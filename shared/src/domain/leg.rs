//! One call leg's status as Twilio reports it, and the rule that keeps
//! late, duplicate or out-of-order callbacks from moving it backwards.

use time::OffsetDateTime;

use crate::ids::CallSid;

wire_enum!(
    /// Twilio's `CallStatus` values.
    /// Serialised as the API names it (kebab-case, same as `as_str`).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    LegStatus {
        Queued => "queued",
        Initiated => "initiated",
        Ringing => "ringing",
        InProgress => "in-progress",
        Completed => "completed",
        Busy => "busy",
        NoAnswer => "no-answer",
        Failed => "failed",
        Canceled => "canceled",
    }
);

impl LegStatus {
    /// The call is over; nothing Twilio says afterwards changes that.
    pub fn is_final(self) -> bool {
        self.rank() == Self::FINAL_RANK
    }

    pub const FINAL_RANK: u8 = 4;

    /// Position in a call's life. A leg only ever moves to a higher rank, so
    /// a lower or equal one is a late or duplicate callback.
    pub fn rank(self) -> u8 {
        match self {
            LegStatus::Queued => 0,
            LegStatus::Initiated => 1,
            LegStatus::Ringing => 2,
            LegStatus::InProgress => 3,
            LegStatus::Completed
            | LegStatus::Busy
            | LegStatus::NoAnswer
            | LegStatus::Failed
            | LegStatus::Canceled => Self::FINAL_RANK,
        }
    }
}

/// What a status callback said about a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegObservation {
    pub call_sid: CallSid,
    pub status: LegStatus,
    /// Twilio's `SequenceNumber` (per call, from 0), when sent.
    pub sequence: Option<u32>,
    pub at: OffsetDateTime,
}

impl LegObservation {
    /// Whether this observation replaces `previous`: the leg moved forward.
    /// Ranks only grow, so a final status is never replaced, and a callback
    /// whose `SequenceNumber` is not newer than the stored one is stale.
    pub fn supersedes(&self, previous: Option<&LegObservation>) -> bool {
        let Some(previous) = previous else {
            return true;
        };
        if previous.call_sid != self.call_sid {
            // Another call claims this leg: keep the one seen first.
            return false;
        }
        if let (Some(new), Some(old)) = (self.sequence, previous.sequence) {
            if new <= old {
                return false;
            }
        }
        self.status.rank() > previous.status.rank()
    }
}

/// Where a participant is relative to the conference room. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Presence {
    #[default]
    Never,
    Joined,
    Left,
}

impl Presence {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Presence::Never,
            1 => Presence::Joined,
            _ => Presence::Left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(status: LegStatus, sequence: Option<u32>) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap(),
            status,
            sequence,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn statuses_round_trip_twilio_strings() {
        for status in LegStatus::ALL {
            assert_eq!(LegStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(LegStatus::parse("in_progress"), None);
    }

    #[test]
    fn statuses_serialise_as_twilio_names() {
        for status in LegStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::json!(status.as_str()));
        }
    }

    #[test]
    fn forward_moves_supersede_backward_and_duplicates_do_not() {
        let ringing = obs(LegStatus::Ringing, Some(1));
        assert!(ringing.supersedes(None));
        assert!(obs(LegStatus::InProgress, Some(2)).supersedes(Some(&ringing)));
        // Out of order: ringing (1) after in-progress (2).
        assert!(!ringing.supersedes(Some(&obs(LegStatus::InProgress, Some(2)))));
        // Duplicate.
        assert!(!ringing.supersedes(Some(&obs(LegStatus::Ringing, Some(1)))));
        // Final is final, even with a newer sequence number.
        assert!(
            !obs(LegStatus::Busy, Some(9)).supersedes(Some(&obs(LegStatus::Completed, Some(3))))
        );
        // Without sequence numbers the rank decides.
        assert!(obs(LegStatus::Completed, None).supersedes(Some(&obs(LegStatus::Ringing, None))));
        assert!(!obs(LegStatus::Ringing, None).supersedes(Some(&obs(LegStatus::Completed, None))));
        // A stale sequence number loses even with a higher rank.
        assert!(
            !obs(LegStatus::Completed, Some(1)).supersedes(Some(&obs(LegStatus::Ringing, Some(2))))
        );
    }

    #[test]
    fn another_call_cannot_take_over_a_leg() {
        let mut other = obs(LegStatus::Completed, Some(5));
        other.call_sid = CallSid::parse("CAffffffffffffffffffffffffffffffff").unwrap();
        assert!(!other.supersedes(Some(&obs(LegStatus::Ringing, Some(1)))));
    }
}
