//! The names the directory knows agents and teams by, checked where they
//! come in (a request, a claim, a stored item).

/// Why a name is not an agent id or a team name (the API answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be 1 to 128 printable characters")]
    AgentId,
    #[error("must be 1 to 64 lower-case letters, digits or dashes")]
    Team,
}

/// An agent's key in the directory: the identity provider's immutable
/// subject (`sub`), never a name the agent could change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let valid = (1..=128).contains(&text.len()) && !text.chars().any(char::is_control);
        valid
            .then(|| Self(text.to_owned()))
            .ok_or(NameError::AgentId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A team: the identity provider's group without its prefix (`team-billing`
/// is team `billing`), or a name of the static mapping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(text.to_owned())).ok_or(NameError::Team)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TeamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
