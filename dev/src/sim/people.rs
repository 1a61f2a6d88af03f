//! How the simulated people behave when their phone rings.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    After(Duration),
    Busy,
    /// Rings this long, then declines (the network reports busy).
    DeclineAfter(Duration),
    NoAnswer,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    pub answer: Answer,
    /// Hang up this long after answering.
    pub hang_up_after: Option<Duration>,
}

impl Script {
    pub fn answer_after(delay: Duration) -> Self {
        Self {
            answer: Answer::After(delay),
            hang_up_after: None,
        }
    }

    pub fn busy() -> Self {
        Self {
            answer: Answer::Busy,
            hang_up_after: None,
        }
    }

    pub fn decline_after(delay: Duration) -> Self {
        Self {
            answer: Answer::DeclineAfter(delay),
            hang_up_after: None,
        }
    }

    pub fn no_answer() -> Self {
        Self {
            answer: Answer::NoAnswer,
            hang_up_after: None,
        }
    }

    pub fn fail() -> Self {
        Self {
            answer: Answer::Fail,
            hang_up_after: None,
        }
    }

    pub fn then_hang_up_after(mut self, after: Duration) -> Self {
        self.hang_up_after = Some(after);
        self
    }
}

impl Default for Script {
    fn default() -> Self {
        Self::answer_after(Duration::from_millis(300))
    }
}
