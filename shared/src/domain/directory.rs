//! Who can take a call: the agents of the directory, their teams and their
//! presence. Presence is derived, never taken on the console's word for
//! "busy": an agent is busy while a call of the product has them on the
//! line or ringing (the session says, [`CallSession::has_on_the_line`]) or
//! while a fresh reservation holds them for a call about to ring them.
//! Away is the agent's own switch; offline is a console gone quiet.

use std::time::Duration;

use time::OffsetDateTime;

use super::names::{AgentId, TeamName};
use super::session::CallSession;
use crate::ids::{CallSid, PhoneNumber};

/// How often a signed-in console says it is still there.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// A console silent this long is offline: two heartbeats missed, plus the
/// slack of a browser that throttles timers in a background tab (at most
/// once a minute in Chrome), so one late beat never flips an agent offline.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(150);

/// How long a reservation holds an agent before the call it was made for
/// records them: the transfer request's round trips to the store and to
/// Twilio, with room to spare. After that, what the call says decides.
pub const RESERVATION_HOLD: Duration = Duration::from_secs(15);

/// Who an agent is, as their sign-in says: refreshed by every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub id: AgentId,
    /// How colleagues see them in the picker.
    pub name: String,
    /// The phone a transfer to them rings first.
    pub numbers: Vec<PhoneNumber>,
    pub teams: Vec<TeamName>,
}

/// An agent as the directory holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAgent {
    pub profile: AgentProfile,
    /// Set by the agent: not to be offered calls.
    pub away: bool,
    /// The console's last heartbeat; none once they signed out.
    pub seen_at: Option<OffsetDateTime>,
    /// Since when they are free to take calls, as far as their own switch
    /// goes (signed in, or back from away).
    pub available_since: OffsetDateTime,
    /// The call that last rang them or that they placed: it says whether
    /// they are on it.
    pub call: Option<CallSid>,
    /// A team or colleague transfer holds them until then.
    pub reserved_until: Option<OffsetDateTime>,
    /// Bumped by every write; a reservation is conditional on it.
    pub version: u64,
}

wire_enum!(
    /// What a colleague sees next to an agent's name.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    Availability {
        Available => "available",
        /// On a call or ringing.
        Busy => "busy",
        Away => "away",
        Offline => "offline",
    }
);

/// The directory's answer for one agent: their presence and, when
/// available, since when they have been idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub availability: Availability,
    pub idle_since: OffsetDateTime,
}

impl DirectoryAgent {
    /// A new entry at first sign-in.
    pub fn signed_in(profile: AgentProfile, now: OffsetDateTime) -> Self {
        Self {
            profile,
            away: false,
            seen_at: Some(now),
            available_since: now,
            call: None,
            reserved_until: None,
            version: 0,
        }
    }

    /// Their presence at `now`, given the call their entry points at (as
    /// stored now; none when it is gone or they never had one). Busy wins
    /// over everything: someone on a call is on it whatever their switch.
    pub fn presence(&self, call: Option<&CallSession>, now: OffsetDateTime) -> Presence {
        let numbers = &self.profile.numbers;
        let on_call = call.is_some_and(|c| c.has_on_the_line(numbers));
        let reserved = self.reserved_until.is_some_and(|until| until > now);
        let online = self.seen_at.is_some_and(|seen| now - seen < OFFLINE_AFTER);
        let availability = if on_call || reserved {
            Availability::Busy
        } else if !online {
            Availability::Offline
        } else if self.away {
            Availability::Away
        } else {
            Availability::Available
        };
        // Idle since the later of their switch and the end of their last call.
        let left = call.and_then(|c| c.left_at(numbers));
        let idle_since = left.map_or(self.available_since, |left| left.max(self.available_since));
        Presence {
            availability,
            idle_since,
        }
    }

    pub fn in_team(&self, team: &TeamName) -> bool {
        self.profile.teams.contains(team)
    }

    /// The number a transfer to them rings.
    pub fn phone(&self) -> Option<&PhoneNumber> {
        self.profile.numbers.first()
    }

    /// Holds them for `call` until the reservation lapses. The store
    /// writes it on condition that the entry is still the one read.
    pub fn reserve(&mut self, call: &CallSid, now: OffsetDateTime) {
        self.call = Some(call.clone());
        self.reserved_until = Some(now + RESERVATION_HOLD);
    }
}

impl DirectoryAgent {
    /// Whether a colleague would see this entry differently from `before`
    /// (a heartbeat that only says "still here" changes nothing shown).
    pub fn shown_differently(&self, before: &DirectoryAgent) -> bool {
        self.profile != before.profile
            || self.away != before.away
            || self.seen_at.is_some() != before.seen_at.is_some()
            || self.available_since != before.available_since
            || self.call != before.call
            || self.reserved_until != before.reserved_until
    }
}

/// Whether a change of a call from `before` to `after` changes anyone's
/// presence: someone came on the line or left it.
pub fn presence_moved(before: &CallSession, after: &CallSession) -> bool {
    let people = |s: &CallSession| -> Vec<PhoneNumber> {
        let mut numbers = vec![s.agent_number.clone()];
        numbers.extend(s.owner.as_ref().map(|o| o.number.clone()));
        numbers.extend(s.transfer.as_ref().map(|t| t.target.clone()));
        numbers
    };
    let mut everyone = people(before);
    everyone.extend(people(after));
    everyone.into_iter().any(|number| {
        let one = std::slice::from_ref(&number);
        before.has_on_the_line(one) != after.has_on_the_line(one)
    })
}

/// The members of a team to offer a call to, in order: available ones
/// only, the longest idle first (ties by id, so two routers agree), none
/// of `passed` (already tried on this call).
pub fn first_available<'a>(
    members: impl IntoIterator<Item = (&'a DirectoryAgent, Presence)>,
    passed: &[AgentId],
) -> Vec<&'a DirectoryAgent> {
    let mut free: Vec<(&DirectoryAgent, OffsetDateTime)> = members
        .into_iter()
        .filter(|(agent, presence)| {
            presence.availability == Availability::Available
                && agent.phone().is_some()
                && !passed.contains(&agent.profile.id)
        })
        .map(|(agent, presence)| (agent, presence.idle_since))
        .collect();
    free.sort_by(|(a, a_idle), (b, b_idle)| {
        a_idle
            .cmp(b_idle)
            .then_with(|| a.profile.id.cmp(&b.profile.id))
    });
    free.into_iter().map(|(agent, _)| agent).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::NameError;

    fn agent(id: &str, seen: i64, since: i64) -> DirectoryAgent {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        DirectoryAgent {
            seen_at: Some(at(seen)),
            available_since: at(since),
            ..DirectoryAgent::signed_in(
                AgentProfile {
                    id: AgentId::parse(id).unwrap(),
                    name: id.to_owned(),
                    numbers: vec![PhoneNumber::parse("+15550100003").unwrap()],
                    teams: vec![TeamName::parse("billing").unwrap()],
                },
                at(since),
            )
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_000).unwrap()
    }

    #[test]
    fn presence_is_busy_while_reserved_then_back_to_the_switch() {
        let mut a = agent("a", 990, 100);
        assert_eq!(
            a.presence(None, now()).availability,
            Availability::Available
        );
        a.reserve(
            &CallSid::parse("CA00000000000000000000000000000001").unwrap(),
            now(),
        );
        assert_eq!(a.presence(None, now()).availability, Availability::Busy);
        let later = now() + RESERVATION_HOLD;
        assert_eq!(
            a.presence(None, later).availability,
            Availability::Available
        );
        a.away = true;
        assert_eq!(a.presence(None, later).availability, Availability::Away);
    }

    #[test]
    fn a_quiet_console_is_offline_and_a_late_beat_is_not() {
        let a = agent("a", 1_000 - 149, 100);
        assert_eq!(
            a.presence(None, now()).availability,
            Availability::Available
        );
        let a = agent("a", 1_000 - 150, 100);
        assert_eq!(a.presence(None, now()).availability, Availability::Offline);
        let signed_out = DirectoryAgent {
            seen_at: None,
            ..agent("a", 990, 100)
        };
        assert_eq!(
            signed_out.presence(None, now()).availability,
            Availability::Offline
        );
    }

    #[test]
    fn the_longest_idle_available_member_comes_first_and_the_passed_over_never() {
        let (a, b, c) = (
            agent("a", 990, 300),
            agent("b", 990, 100),
            agent("c", 990, 200),
        );
        let mut away = agent("d", 990, 50);
        away.away = true;
        let members = [&a, &b, &c, &away];
        let order = |passed: &[AgentId]| -> Vec<String> {
            first_available(
                members.iter().map(|m| (*m, m.presence(None, now()))),
                passed,
            )
            .into_iter()
            .map(|m| m.profile.name.clone())
            .collect()
        };
        assert_eq!(order(&[]), ["b", "c", "a"]);
        assert_eq!(order(&[AgentId::parse("b").unwrap()]), ["c", "a"]);
    }

    #[test]
    fn names_are_checked() {
        assert!(TeamName::parse("billing-2").is_ok());
        for bad in ["", "Billing", "bill ing", &"x".repeat(65)] {
            assert_eq!(TeamName::parse(bad), Err(NameError::Team), "{bad:?}");
        }
        assert!(AgentId::parse("local-bob").is_ok());
        assert_eq!(AgentId::parse("a\nb"), Err(NameError::AgentId));
    }
}
