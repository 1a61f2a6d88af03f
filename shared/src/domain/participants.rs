//! The call's people, each with their role and their leg: the one place
//! that says which legs a session knows of and whose they are. The
//! reconciler fetches these legs, the deadline waits on them, the history
//! names them.

use super::leg::{LegObservation, LegStatus};
use super::session::CallSession;
use crate::ids::{CallSid, PhoneNumber};

wire_enum!(
    /// Who a participant is on the call.
    Role {
        /// The agent the call rang first (leg 1).
        FirstAgent => "first agent",
        Customer => "customer",
        /// The agent the current transfer rings.
        SecondAgent => "second agent",
        /// The agent a transfer handed the call to, now handing it on.
        HandingOn => "agent transferring on",
        /// Listening, whispering or barging in: never one of the agents.
        Supervisor => "supervisor",
        /// A number the agent added to the call: never one of the agents.
        OutsideParty => "outside party",
    }
);

/// One of the call's people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant<'a> {
    pub role: Role,
    pub number: &'a PhoneNumber,
    /// Their call, once Twilio reported it.
    pub leg: Option<&'a LegObservation>,
}

impl CallSession {
    /// Everybody on the call now, in the order they came.
    pub fn participants(&self) -> Vec<Participant<'_>> {
        let first = Participant {
            role: Role::FirstAgent,
            number: &self.agent_number,
            leg: self.agent_leg.as_ref(),
        };
        let customer = Participant {
            role: Role::Customer,
            number: &self.customer_number,
            leg: self.customer_leg.as_ref(),
        };
        let handing_on = self.owner.as_ref().map(|owner| Participant {
            role: Role::HandingOn,
            number: &owner.number,
            leg: owner.leg.as_ref(),
        });
        let second = self.transfer.as_ref().map(|transfer| Participant {
            role: Role::SecondAgent,
            number: &transfer.target,
            leg: transfer.target_leg.as_ref(),
        });
        let supervisor = self.supervision.as_ref().map(|s| Participant {
            role: Role::Supervisor,
            number: &s.number,
            leg: s.leg.as_ref(),
        });
        let party = self.party.as_ref().map(|p| Participant {
            role: Role::OutsideParty,
            number: &p.number,
            leg: p.leg.as_ref(),
        });
        [
            Some(first),
            Some(customer),
            handing_on,
            second,
            supervisor,
            party,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Whether `leg` was last reported answered and not yet over: ending it
    /// takes a hang-up alone (`Status=completed`), no cancel before it.
    pub fn leg_answered(&self, leg: &CallSid) -> bool {
        self.participants().into_iter().any(|p| {
            p.leg
                .is_some_and(|l| l.call_sid == *leg && l.status == LegStatus::InProgress)
        })
    }

    /// Whose call `leg` is, if the session knows it.
    pub fn role_of_leg(&self, leg: &CallSid) -> Option<Role> {
        // Leg 1's SID names the session, reported or not.
        if *leg == self.id && self.inbound.is_none() {
            return Some(Role::FirstAgent);
        }
        self.participants()
            .into_iter()
            .find(|p| p.leg.is_some_and(|l| l.call_sid == *leg))
            .map(|p| p.role)
    }
}
