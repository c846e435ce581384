//! Login attempt limits, per username and per client address (governor's keyed GCRA limiter).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Two keyed limiters; an attempt must pass both.
pub struct LoginLimiter {
    by_user: DefaultKeyedRateLimiter<String>,
    by_addr: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl LoginLimiter {
    /// `per_minute` attempts per key and minute (burst equal to the minute's allowance).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(n);
        Self {
            by_user: RateLimiter::keyed(quota),
            by_addr: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts an attempt; `Err(seconds)` says how long to wait when a limit is hit.
    pub fn check(&self, username: &str, addr: Option<IpAddr>) -> Result<(), u64> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(self.clock.now()).as_secs().max(1)
        };
        self.by_user
            .check_key(&username.to_lowercase())
            .map_err(wait)?;
        if let Some(addr) = addr {
            self.by_addr.check_key(&addr).map_err(wait)?;
        }
        if self.by_user.len() > 100_000 {
            self.by_user.retain_recent();
            self.by_addr.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_in_a_minute_is_refused_per_user_and_per_address() {
        let l = LoginLimiter::new(10);
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        for _ in 0..10 {
            assert!(l.check("alice", Some(a)).is_ok());
        }
        assert!(l.check("alice", Some(b)).is_err(), "per user");
        assert!(l.check("bob", Some(a)).is_err(), "per address");
        assert!(l.check("bob", Some(b)).is_ok());
    }
}
