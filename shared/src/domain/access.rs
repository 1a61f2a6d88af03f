//! Who may do what: an agent acts only from their own numbers and only on
//! the calls that are theirs now; a supervisor may act on every call. Pure
//! rules over the session: the handlers learn who is asking (the identity
//! provider's verified claims) and ask here.

use time::OffsetDateTime;

use super::action::{AccessDenied, Action, Offer};
use super::session::CallSession;
use super::supervisor::SupervisorMode;
use super::transfer::TransferKind;
use crate::ids::PhoneNumber;

/// The signed-in person behind a front-end request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// How the history names them (their e-mail, or the provider's subject).
    pub id: String,
    /// The phones they answer: a call they start rings one of these, and a
    /// call whose current agent is one of these is theirs.
    pub numbers: Vec<PhoneNumber>,
    /// Member of the supervisor group: may read and act on every call.
    pub supervisor: bool,
}

impl Actor {
    fn answers(&self, number: &PhoneNumber) -> bool {
        self.numbers.iter().any(|own| own == number)
    }

    /// A call rings its first agent's phone, so an agent (supervisors too)
    /// may start calls only from a number of their own.
    pub fn may_call_from(&self, agent_number: &PhoneNumber) -> Result<(), AccessDenied> {
        if self.answers(agent_number) {
            Ok(())
        } else if self.numbers.is_empty() {
            Err(AccessDenied::NoNumber)
        } else {
            Err(AccessDenied::NotYourNumber)
        }
    }

    /// An agent reads and acts on a call only while they are its current
    /// agent (after a handover, the second agent); a supervisor always may.
    /// Supervising is the supervisor group's alone, whoever's call it is;
    /// asking for help, the call's agent's alone.
    pub fn may(&self, action: Action, session: &CallSession) -> Result<(), AccessDenied> {
        if action == Action::Supervise && !self.supervisor {
            return Err(AccessDenied::NotSupervisor);
        }
        if action == Action::AskForHelp && !self.answers(session.current_agent()) {
            return Err(AccessDenied::NotYourCall(action));
        }
        if self.supervisor || self.answers(session.current_agent()) {
            Ok(())
        } else if self.answers(&session.agent_number) {
            Err(AccessDenied::HandedOver(action))
        } else {
            Err(AccessDenied::NotYourCall(action))
        }
    }
}

impl CallSession {
    /// What `actor` may do with the call now: each change the domain would
    /// accept from them, tried on a copy of the session. A change that
    /// would change nothing (a second cancel, resuming a customer not on
    /// hold) is not offered. The console shows exactly these.
    pub fn offers(&self, actor: &Actor, now: OffsetDateTime) -> Vec<Offer> {
        Offer::ALL
            .into_iter()
            .filter(|offer| actor.may(offer.action(), self).is_ok())
            .filter(|offer| {
                let mut tried = self.clone();
                tried.try_offer(*offer, actor, now).is_ok() && tried != *self
            })
            .collect()
    }

    /// The command behind an offer, as its endpoint gives it.
    fn try_offer(
        &mut self,
        offer: Offer,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), super::DomainError> {
        // A supervisor joins from their own phone.
        let supervise = |s: &mut Self, mode| {
            let number = actor.numbers.first().ok_or(AccessDenied::NoNumber)?;
            s.supervise(&actor.id, number.clone(), mode, now)
                .map(|_| ())
        };
        match offer {
            Offer::Transfer => {
                // Any number off the call stands for the one the agent types.
                let target = ["+15550109999", "+15550109998", "+15550109997"]
                    .into_iter()
                    .filter_map(|n| PhoneNumber::parse(n).ok())
                    .find(|n| *n != self.customer_number && n != self.handing_over_agent())
                    .ok_or(super::DomainError::TargetOnTheCall)?;
                self.request_transfer(target, TransferKind::Warm, None, now)
                    .map(|_| ())
            }
            Offer::CancelTransfer => self.cancel_transfer(),
            Offer::Hold => self.hold_customer(true),
            Offer::Resume => self.hold_customer(false),
            // Leaving takes a held customer off hold first (the leave
            // endpoint does the same), so nobody is left on hold.
            Offer::Leave => {
                self.hold_customer(false)?;
                self.first_agent_leaves()
            }
            Offer::Listen => supervise(self, SupervisorMode::Listen),
            Offer::Whisper => supervise(self, SupervisorMode::Whisper),
            Offer::Barge => supervise(self, SupervisorMode::Barge),
            Offer::StopSupervising => {
                self.stop_supervising();
                Ok(())
            }
            Offer::AskForHelp => self.ask_for_help(&actor.id, now),
            // Any number off the call stands for the one the agent types.
            Offer::AddParty => {
                let number = ["+15550109996", "+15550109995", "+15550109994"]
                    .into_iter()
                    .filter_map(|n| PhoneNumber::parse(n).ok())
                    .find(|n| {
                        *n != self.customer_number
                            && n != self.current_agent()
                            && self.supervision.as_ref().is_none_or(|s| s.number != *n)
                    })
                    .ok_or(super::DomainError::TargetOnTheCall)?;
                self.add_party(&actor.id, number, now)
            }
            Offer::DropParty => {
                self.drop_party();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{LegObservation, LegStatus, Observation, TransferKind};
    use crate::ids::CallSid;

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn actor(id: &str, numbers: &[&str], supervisor: bool) -> Actor {
        Actor {
            id: id.to_owned(),
            numbers: numbers.iter().map(|n| phone(n)).collect(),
            supervisor,
        }
    }

    fn leg(sid: &str, status: LegStatus, sequence: u32) -> LegObservation {
        LegObservation {
            call_sid: CallSid::parse(sid).unwrap(),
            status,
            sequence: Some(sequence),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    const A: &str = "+15550100001";
    const B: &str = "+15550100003";
    const LEG1: &str = "CA00000000000000000000000000000001";

    /// A's call, connected, with a transfer to B whose phone answered.
    fn transfer_answered() -> CallSession {
        let mut s = CallSession::start(
            CallSid::parse(LEG1).unwrap(),
            phone(A),
            phone("+15550100002"),
            phone("+15005550006"),
            OffsetDateTime::UNIX_EPOCH,
        );
        s.observe(Observation::AgentLeg(leg(LEG1, LegStatus::InProgress, 1)));
        s.observe(Observation::CustomerLeg(leg(
            "CA00000000000000000000000000000002",
            LegStatus::InProgress,
            1,
        )));
        s.request_transfer(
            phone(B),
            TransferKind::Warm,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        s.customer_redirected(1).unwrap();
        s.observe(Observation::TargetLeg {
            attempt: 1,
            observation: leg(
                "CA00000000000000000000000000000003",
                LegStatus::InProgress,
                2,
            ),
        });
        s
    }

    #[test]
    fn calls_start_only_from_the_actors_own_numbers() {
        let alice = actor("alice", &[A, "+15550100009"], false);
        assert_eq!(alice.may_call_from(&phone(A)), Ok(()));
        assert_eq!(alice.may_call_from(&phone("+15550100009")), Ok(()));
        assert_eq!(
            alice.may_call_from(&phone(B)),
            Err(AccessDenied::NotYourNumber)
        );
        let boss = actor("boss", &[], true);
        assert_eq!(boss.may_call_from(&phone(A)), Err(AccessDenied::NoNumber));
    }

    #[test]
    fn only_the_current_agent_or_a_supervisor_acts_on_a_call() {
        let alice = actor("alice", &[A], false);
        let bob = actor("bob", &[B], false);
        let boss = actor("boss", &[], true);
        let mut s = transfer_answered();
        for action in [
            Action::Read,
            Action::Transfer,
            Action::CancelTransfer,
            Action::Hold,
            Action::Leave,
        ] {
            assert_eq!(alice.may(action, &s), Ok(()));
            assert_eq!(bob.may(action, &s), Err(AccessDenied::NotYourCall(action)));
            assert_eq!(boss.may(action, &s), Ok(()));
        }
        s.first_agent_leaves().unwrap();
        assert_eq!(bob.may(Action::Read, &s), Ok(()), "handed over to bob");
        let refused = alice.may(Action::Read, &s).unwrap_err();
        assert_eq!(refused, AccessDenied::HandedOver(Action::Read));
        assert!(refused.to_string().contains("second agent's"), "{refused}");
        assert_eq!(boss.may(Action::Read, &s), Ok(()));
    }

    #[test]
    fn the_call_offers_what_the_domain_would_accept_from_the_actor_and_nothing_else() {
        use Offer::*;
        let alice = actor("alice", &[A], false);
        let bob = actor("bob", &[B], false);
        let boss = actor("boss", &[], true);
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut s = transfer_answered();
        // B's phone answered: A may take back, consult or leave; not
        // transfer again, nor resume a customer who is not on hold.
        assert_eq!(
            s.offers(&alice, now),
            vec![CancelTransfer, Hold, Leave, AskForHelp]
        );
        assert_eq!(s.offers(&bob, now), vec![], "not bob's call yet");
        assert_eq!(
            s.offers(&boss, now),
            vec![CancelTransfer, Hold, Leave],
            "the agent's moves; help is the agent's to ask for"
        );
        s.hold_customer(true).unwrap();
        assert_eq!(
            s.offers(&alice, now),
            vec![CancelTransfer, Resume, Leave, AskForHelp]
        );
        // Each offer is a command the domain accepts; each other one it
        // refuses or it would change nothing.
        for offer in Offer::ALL {
            let mut tried = s.clone();
            let accepted = tried.try_offer(offer, &alice, now).is_ok() && tried != s;
            assert_eq!(
                s.offers(&alice, now).contains(&offer),
                accepted,
                "{offer:?}"
            );
        }
        s.first_agent_leaves().unwrap_err();
        s.hold_customer(false).unwrap();
        s.first_agent_leaves().unwrap();
        assert_eq!(s.offers(&alice, now), vec![], "handed over");
        assert_eq!(
            s.offers(&bob, now),
            vec![Transfer, AskForHelp, AddParty],
            "bob may transfer on"
        );
        s.observe(Observation::CustomerLeg(leg(
            "CA00000000000000000000000000000002",
            LegStatus::Completed,
            9,
        )));
        assert_eq!(s.offers(&boss, now), vec![], "the call ended");
    }

    #[test]
    fn only_supervisors_supervise_and_are_offered_the_modes_they_are_not_in() {
        use Offer::*;
        let alice = actor("alice", &[A], false);
        let sam = actor("sam", &["+15550100009"], true);
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut s = transfer_answered();
        assert_eq!(
            alice.may(Action::Supervise, &s),
            Err(AccessDenied::NotSupervisor)
        );
        assert_eq!(sam.may(Action::Supervise, &s), Ok(()));
        let offers = s.offers(&sam, now);
        assert!(
            offers.ends_with(&[Listen, Barge]),
            "no whisper before the agent is in the room: {offers:?}"
        );
        s.observe(Observation::Conference {
            event: crate::domain::ConferenceEvent::Join,
            participant: Some(crate::domain::RoomParticipant::FirstAgent),
            sequence: None,
            conference: None,
            at: now,
        });
        let offers = s.offers(&sam, now);
        assert!(
            offers.ends_with(&[Listen, Whisper, Barge]),
            "no stop before joining: {offers:?}"
        );
        assert!(!s.offers(&alice, now).contains(&Listen));
        s.supervise("sam", phone("+15550100009"), SupervisorMode::Whisper, now)
            .unwrap();
        let offers = s.offers(&sam, now);
        assert!(
            offers.ends_with(&[Leave, StopSupervising]),
            "no switch while their phone rings: {offers:?}"
        );
        s.observe(Observation::Conference {
            event: crate::domain::ConferenceEvent::Join,
            participant: Some(crate::domain::RoomParticipant::Supervisor { visit: 1 }),
            sequence: None,
            conference: None,
            at: now,
        });
        let offers = s.offers(&sam, now);
        assert!(
            offers.ends_with(&[Listen, Barge, StopSupervising]),
            "{offers:?}"
        );
        assert_eq!(
            s.offers(&alice, now),
            vec![CancelTransfer, Hold, Leave],
            "the agent's own moves only"
        );
    }

    #[test]
    fn a_blind_transfer_offers_no_take_back_and_no_consult() {
        let alice = actor("alice", &[A], false);
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut s = transfer_answered();
        s.transfer.as_mut().unwrap().kind = TransferKind::Cold;
        let offers = s.offers(&alice, now);
        assert!(!offers.contains(&Offer::CancelTransfer), "{offers:?}");
        assert!(!offers.contains(&Offer::Hold), "{offers:?}");
    }
}
