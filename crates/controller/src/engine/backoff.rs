//! Retry timing: capped, jittered exponential backoff and the bases and caps the engine uses
//! for busy load balancers, awaited wake-ups, errors and plans that keep producing steps.
//! Uses no sibling module.

use std::time::Duration;

use rand::Rng;

/// Capped, jittered exponential backoff. `attempt` starts at 0.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(cap);
    // ±20% jitter spreads the retries of many Services that went busy at the same moment.
    let factor = rand::thread_rng().gen_range(0.8..=1.2);
    capped.mul_f64(factor)
}

pub(super) const BUSY_BASE: Duration = Duration::from_millis(500);
pub(super) const BUSY_CAP: Duration = Duration::from_secs(20);
/// When the backend will wake the Service as its LB settles, the retry is only a safety net
/// (a wake-up lost with a failed listing): far apart, so waiting costs no calls of its own.
pub(super) const WOKEN_BASE: Duration = Duration::from_secs(10);
pub(super) const WOKEN_CAP: Duration = Duration::from_secs(60);
pub(super) const ERROR_BASE: Duration = Duration::from_secs(1);
pub(super) const ERROR_CAP: Duration = Duration::from_secs(300);
/// Consecutive passes that executed steps without converging before the engine stops asking
/// again at once: protects the cloud from a plan that never converges.
pub(super) const MAX_PROGRESS_STREAK: u32 = 40;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        for attempt in 0..40 {
            let d = backoff(attempt, BUSY_BASE, BUSY_CAP);
            assert!(
                d <= BUSY_CAP.mul_f64(1.2) + Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
            assert!(
                d >= BUSY_BASE.mul_f64(0.8) - Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(0, ERROR_BASE, ERROR_CAP) <= Duration::from_millis(1200));
        assert!(backoff(30, ERROR_BASE, ERROR_CAP) >= Duration::from_secs(240));
    }
}
