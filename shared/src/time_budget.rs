//! How long an invocation may work. Lambda stops a function at its
//! timeout, mid-write or mid-request, with no answer; so each invocation
//! works to a deadline a margin before it ([`within`]) and the loops that
//! retry (the store's versioned update, the Twilio client) look at what is
//! left before another attempt ([`remaining`]). Past the deadline the work
//! is cut, the caller gets a 503 (Twilio retries its callbacks on it; the
//! console says try again), and the reconciler looks at the call later.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Kept back from the Lambda timeout: the answer is written and the log
/// lines flushed in this time.
pub const MARGIN: Duration = Duration::from_millis(500);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The deadline of an invocation that started now: a margin before the
/// function's `timeout`, or before Lambda's own deadline when that comes
/// first (`lambda_deadline_ms`, milliseconds since the Unix epoch, from the
/// invocation's context).
pub fn deadline(timeout: Duration, lambda_deadline_ms: Option<u64>) -> Instant {
    let now = Instant::now();
    let by_timeout = now + timeout;
    let by_lambda = lambda_deadline_ms.and_then(|ms| {
        let epoch_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(now + Duration::from_millis(ms).checked_sub(epoch_now)?)
    });
    by_lambda.map_or(by_timeout, |l| l.min(by_timeout)) - MARGIN.min(timeout)
}

/// Runs `work` to `deadline`: `None` when it was cut. Everything `work`
/// awaits sees the deadline through [`remaining`].
pub async fn within<F: Future>(deadline: Instant, work: F) -> Option<F::Output> {
    DEADLINE
        .scope(deadline, tokio::time::timeout_at(deadline, work))
        .await
        .ok()
}

/// Time left before the current invocation's deadline; `None` outside one
/// (tests, tools), where nothing is cut.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Whether another attempt taking up to `attempt` would end past the deadline.
pub fn too_late_for(attempt: Duration) -> bool {
    remaining().is_some_and(|left| left < attempt)
}

/// `timeout`, shortened to what is left of the invocation.
pub fn capped(timeout: Duration) -> Duration {
    remaining().map_or(timeout, |left| left.min(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_the_deadline_is_cut_and_loops_see_what_is_left() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let cut = within(deadline, async {
            assert!(remaining().unwrap() <= Duration::from_millis(300));
            assert!(!too_late_for(Duration::from_millis(10)));
            assert!(too_late_for(Duration::from_secs(3)));
            assert!(capped(Duration::from_secs(5)) <= Duration::from_millis(300));
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        assert_eq!(cut, None);
        assert_eq!(within(deadline, async { 7 }).await, Some(7));
        assert_eq!(remaining(), None, "no deadline outside an invocation");
        assert_eq!(capped(Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_deadline_is_a_margin_before_the_timeout_or_lambdas_own() {
        let now = Instant::now();
        let by_timeout = deadline(Duration::from_secs(5), None);
        assert!(by_timeout >= now + Duration::from_secs(5) - MARGIN);
        assert!(by_timeout <= now + Duration::from_secs(5) - MARGIN + Duration::from_millis(50));
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let sooner = deadline(Duration::from_secs(5), Some(epoch_ms + 2_000));
        assert!(sooner <= now + Duration::from_secs(2) - MARGIN + Duration::from_millis(5));
        assert!(sooner >= now + Duration::from_secs(2) - MARGIN - Duration::from_millis(50));
    }
}
