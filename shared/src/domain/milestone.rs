//! What a change of a session achieved, in the words an operator counts:
//! a transfer requested, answered, handed over, failed (and why) or
//! cancelled, and a customer found alone. Derived from the session before
//! and after one committed change, so each is counted once whichever
//! handler (or the reconciler) made the change.

use super::session::CallSession;
use super::transfer::TransferState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    TransferRequested,
    /// The second agent picked up.
    TransferAnswered,
    /// The first agent left with the second one on the call.
    TransferHandedOver,
    TransferFailed(FailReason),
    TransferCancelled,
    /// The guarantee broke: the customer is in the room with no agent
    /// present or ringing (the product then sends them to the fallback).
    CustomerLeftAlone,
}

wire_enum!(
    /// Why a transfer ended without a handover.
    FailReason {
        Busy => "busy",
        NoAnswer => "no-answer",
        /// The second agent's call failed or was cancelled.
        CallFailed => "call-failed",
        /// The second agent hung up before the handover.
        TargetLeft => "target-left",
        /// Twilio refused the customer's redirect or the participant.
        NotPlaced => "not-placed",
        /// The call ended while the transfer was under way.
        CallEnded => "call-ended",
    }
);

impl Milestone {
    /// The milestones of the change from `before` to `after`.
    pub fn between(before: &CallSession, after: &CallSession) -> Vec<Milestone> {
        let mut out = Vec::new();
        let new_transfer = match (&before.transfer, &after.transfer) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => old.requested_at != new.requested_at,
        };
        if new_transfer {
            out.push(Milestone::TransferRequested);
        }
        let was = if new_transfer {
            None
        } else {
            before.transfer_state()
        };
        let now = after.transfer_state();
        if let Some(now) = now.filter(|now| Some(*now) != was) {
            let answered = |s: Option<TransferState>| {
                s.is_some_and(|s| s.target_on_the_line() || s == TransferState::FirstAgentLeft)
            };
            if answered(Some(now)) && !answered(was) {
                out.push(Milestone::TransferAnswered);
            }
            let failed = |reason| Some(Milestone::TransferFailed(reason));
            let ending = match now {
                TransferState::FirstAgentLeft => Some(Milestone::TransferHandedOver),
                TransferState::Cancelled => Some(Milestone::TransferCancelled),
                TransferState::TargetBusy => failed(FailReason::Busy),
                TransferState::TargetNoAnswer => failed(FailReason::NoAnswer),
                TransferState::TargetFailed => failed(FailReason::CallFailed),
                TransferState::TargetLeft => failed(FailReason::TargetLeft),
                TransferState::Failed => failed(FailReason::NotPlaced),
                TransferState::Ended if was.is_some_and(TransferState::is_active) => {
                    failed(FailReason::CallEnded)
                }
                _ => None,
            };
            out.extend(ending);
        }
        if after.customer_alone() && !before.customer_alone() {
            out.push(Milestone::CustomerLeftAlone);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{
        ConferenceEvent, LegObservation, LegStatus, Observation, RoomParticipant, TransferKind,
    };
    use crate::ids::{CallSid, PhoneNumber};

    const AGENT: &str = "CA00000000000000000000000000000001";
    const CUSTOMER: &str = "CA00000000000000000000000000000002";
    const TARGET: &str = "CA00000000000000000000000000000003";

    fn leg(call: &str, status: LegStatus, sequence: u32) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(call).unwrap(),
            status,
            sequence: Some(sequence),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn target(status: LegStatus, sequence: u32) -> Observation {
        Observation::TargetLeg {
            attempt: 1,
            observation: leg(TARGET, status, sequence),
        }
    }

    fn joined(who: RoomParticipant) -> Observation {
        Observation::Conference {
            event: ConferenceEvent::Join,
            participant: Some(who),
            sequence: None,
            conference: None,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// A call whose first agent and customer both answered.
    fn connected() -> CallSession {
        let phone = |n| PhoneNumber::parse(n).unwrap();
        let mut s = CallSession::start(
            CallSid::parse(AGENT).unwrap(),
            phone("+15550100001"),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        );
        s.observe(Observation::AgentLeg(leg(AGENT, LegStatus::InProgress, 2)));
        s.observe(Observation::CustomerLeg(leg(
            CUSTOMER,
            LegStatus::InProgress,
            2,
        )));
        s
    }

    /// A connected call with a transfer requested, the customer and first
    /// agent in the room.
    fn transferring(requested_at: OffsetDateTime) -> CallSession {
        let phone = |n| PhoneNumber::parse(n).unwrap();
        let mut s = connected();
        s.request_transfer(
            phone("+15550100003"),
            TransferKind::Warm,
            None,
            requested_at,
        )
        .unwrap();
        s.observe(joined(RoomParticipant::Customer));
        s.observe(joined(RoomParticipant::FirstAgent));
        s
    }

    /// The milestones of one change.
    fn step(s: &mut CallSession, change: impl FnOnce(&mut CallSession)) -> Vec<Milestone> {
        let before = s.clone();
        change(s);
        Milestone::between(&before, s)
    }

    #[test]
    fn a_handover_is_requested_answered_and_handed_over_once_each() {
        let before = transferring(OffsetDateTime::UNIX_EPOCH);
        let mut s = before.clone();
        s.transfer = None;
        assert_eq!(
            Milestone::between(&s, &before),
            [Milestone::TransferRequested]
        );
        let mut s = before;
        assert_eq!(
            step(&mut s, |s| {
                s.observe(target(LegStatus::Ringing, 1));
            }),
            []
        );
        let answered = |s: &mut CallSession| {
            s.observe(target(LegStatus::InProgress, 2));
        };
        assert_eq!(step(&mut s, answered), [Milestone::TransferAnswered]);
        assert_eq!(
            step(&mut s, answered),
            [],
            "a repeated callback counts nothing"
        );
        assert_eq!(
            step(&mut s, |s| s.first_agent_leaves().unwrap()),
            [Milestone::TransferHandedOver]
        );
        // The second agent hangs up after the handover: the customer is
        // alone until the product releases them.
        assert_eq!(
            step(&mut s, |s| {
                s.observe(target(LegStatus::Completed, 3));
            }),
            [Milestone::CustomerLeftAlone]
        );
    }

    #[test]
    fn lost_callbacks_still_count_the_answer_with_the_handover() {
        let mut s = transferring(OffsetDateTime::UNIX_EPOCH);
        s.observe(target(LegStatus::Ringing, 1));
        let handed_over = step(&mut s, |s| {
            s.observe(target(LegStatus::InProgress, 2));
            s.observe(Observation::AgentLeg(leg(AGENT, LegStatus::Completed, 3)));
        });
        assert_eq!(
            handed_over,
            [Milestone::TransferAnswered, Milestone::TransferHandedOver]
        );
    }

    #[test]
    fn failures_carry_their_reason_and_a_retry_is_a_new_request() {
        for (status, reason) in [
            (LegStatus::Busy, FailReason::Busy),
            (LegStatus::NoAnswer, FailReason::NoAnswer),
            (LegStatus::Failed, FailReason::CallFailed),
        ] {
            let mut s = transferring(OffsetDateTime::UNIX_EPOCH);
            assert_eq!(
                step(&mut s, |s| {
                    s.observe(target(status, 2));
                }),
                [Milestone::TransferFailed(reason)]
            );
            let again = step(&mut s, |s| {
                let later = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(1);
                let phone = PhoneNumber::parse("+15550100004").unwrap();
                s.request_transfer(phone, TransferKind::Warm, None, later)
                    .unwrap();
            });
            assert_eq!(again, [Milestone::TransferRequested], "{status:?}");
        }
        let mut s = transferring(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            step(&mut s, |s| s
                .fail_transfer(1, "21220".into(), true)
                .unwrap()),
            [Milestone::TransferFailed(FailReason::NotPlaced)]
        );
    }

    #[test]
    fn a_blind_transfer_counts_the_answer_as_the_handover_and_a_busy_one_strands() {
        let phone = |n| PhoneNumber::parse(n).unwrap();
        let mut s = connected();
        let requested = step(&mut s, |s| {
            s.request_transfer(
                phone("+15550100003"),
                TransferKind::Cold,
                None,
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
            s.customer_redirected(1).unwrap();
            s.observe(Observation::AgentLeg(leg(AGENT, LegStatus::Completed, 5)));
            s.observe(target(LegStatus::Ringing, 1));
        });
        assert_eq!(requested, [Milestone::TransferRequested]);
        let mut busy = s.clone();
        assert_eq!(
            step(&mut busy, |s| {
                s.observe(target(LegStatus::Busy, 2));
            }),
            [
                Milestone::TransferFailed(FailReason::Busy),
                Milestone::CustomerLeftAlone
            ]
        );
        assert_eq!(
            step(&mut s, |s| {
                s.observe(target(LegStatus::InProgress, 2));
            }),
            [Milestone::TransferAnswered, Milestone::TransferHandedOver]
        );
    }

    #[test]
    fn a_cancel_and_a_call_ending_mid_transfer() {
        let mut s = transferring(OffsetDateTime::UNIX_EPOCH);
        s.observe(target(LegStatus::Ringing, 1));
        assert_eq!(
            step(&mut s, |s| s.cancel_transfer().unwrap()),
            [Milestone::TransferCancelled]
        );
        let mut s = transferring(OffsetDateTime::UNIX_EPOCH);
        s.observe(target(LegStatus::Ringing, 1));
        let ended = step(&mut s, |s| {
            s.observe(Observation::CustomerLeg(leg(
                CUSTOMER,
                LegStatus::Completed,
                3,
            )));
        });
        assert_eq!(ended, [Milestone::TransferFailed(FailReason::CallEnded)]);
    }
}
