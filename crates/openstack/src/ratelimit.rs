//! A token-bucket rate limiter shared by every OpenStack call of one `Session`: callers wait
//! for their turn, they never get an error. It must not know about HTTP.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Requests per second and how many may go at once after a quiet period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    /// cloud.conf's defaults (`[Metadata] api-rate-limit`, `api-rate-burst`).
    fn default() -> Self {
        RateLimit {
            per_second: f64::from(model::config::DEFAULT_API_RATE_LIMIT),
            burst: model::config::DEFAULT_API_RATE_BURST,
        }
    }
}

impl RateLimit {
    /// The limit cloud.conf asks for; `None` when `api-rate-limit = 0` switches it off.
    pub fn from_config(metadata: &model::config::MetadataConfig) -> Option<RateLimit> {
        (metadata.api_rate_limit > 0).then(|| RateLimit {
            per_second: f64::from(metadata.api_rate_limit),
            burst: metadata.api_rate_burst.max(1),
        })
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let per_second = if limit.per_second.is_finite() && limit.per_second > 0.0 {
            limit.per_second
        } else {
            1.0
        };
        let limit = RateLimit {
            per_second,
            burst: limit.burst.max(1),
        };
        RateLimiter {
            limit,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limit.burst),
                last: Instant::now(),
            }),
        }
    }

    /// Takes one token, waiting for it if needed. Returns how long the caller waited.
    ///
    /// Tokens are reserved under the lock (the balance may go negative) and the wait happens
    /// outside it, so callers are served first-come first-served without holding the lock.
    pub async fn acquire(&self) -> Duration {
        let wait = {
            let mut b = self.bucket.lock().await;
            let now = Instant::now();
            let refill = now.duration_since(b.last).as_secs_f64() * self.limit.per_second;
            b.tokens = (b.tokens + refill).min(f64::from(self.limit.burst));
            b.last = now;
            b.tokens -= 1.0;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / self.limit.per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_waits() {
        let l = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(l.acquire().await, Duration::ZERO);
        }
        let w = l.acquire().await;
        assert!(
            w > Duration::ZERO && w <= Duration::from_millis(100),
            "{w:?}"
        );
    }
}
