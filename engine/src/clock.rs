//! The run's clock: what "now" is when deciding whether a step fits in the outage window.
//!
//! Window decisions read the time through [`Clock`] rather than the system directly, so tests can
//! run a whole window (the pause at its end, the resume in the next one) without waiting for
//! real hours to pass: [`ManualClock`] in unit tests, and the `RUNBOOK_FAKE_NOW` environment
//! variable for end-to-end tests and rehearsals ([`OffsetClock`]: the run believes it started at
//! that instant, and time then passes at the real rate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time that can also wait until a given time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;

    /// Resolves once [`Clock::now`] is at or past `until`.
    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = until.duration_since(Timestamp::now());
        Box::pin(async move {
            if let Ok(wait) = std::time::Duration::try_from(wait) {
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// The system clock shifted so that it read `start` when it was created.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset: SignedDuration,
}

impl OffsetClock {
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            offset: start.duration_since(Timestamp::now()),
        }
    }

    /// The clock `RUNBOOK_FAKE_NOW` asks for (an RFC 3339 instant), if it is set.
    ///
    /// # Errors
    /// The variable is set but is not an RFC 3339 instant.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var("RUNBOOK_FAKE_NOW") {
            Ok(text) => text
                .parse::<Timestamp>()
                .map(|t| Some(Self::starting_at(t)))
                .map_err(|e| format!("RUNBOOK_FAKE_NOW=`{text}` is not an RFC 3339 instant: {e}")),
            Err(_) => Ok(None),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.offset)
            .expect("the offset of a parsed timestamp stays in range")
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let real = until
            .checked_sub(self.offset)
            .unwrap_or_else(|_| Timestamp::now());
        SystemClock.sleep_until(real)
    }
}

/// A clock that only moves when told to; sleeping jumps it forward. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().expect("the clock lock is never poisoned");
        *now = now.checked_add(by).expect("tests stay in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("the clock lock is never poisoned")
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut now = self.now.lock().expect("the clock lock is never poisoned");
        if until > *now {
            *now = until;
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_starts_at_the_fake_instant_and_runs_on() {
        let start: Timestamp = "2026-11-23T21:59:00Z".parse().expect("valid");
        let clock = OffsetClock::starting_at(start);
        let now = clock.now();
        assert!(now >= start);
        assert!(now.duration_since(start) < SignedDuration::from_secs(5));
    }

    #[test]
    fn a_manual_clock_jumps_when_it_sleeps() {
        let start: Timestamp = "2026-11-23T21:59:00Z".parse().expect("valid");
        let clock = ManualClock::new(start);
        clock.advance(SignedDuration::from_secs(30));
        assert_eq!(clock.now(), "2026-11-23T21:59:30Z".parse().expect("valid"));
        let until: Timestamp = "2026-11-23T22:00:00Z".parse().expect("valid");
        futures_lite_block(clock.sleep_until(until));
        assert_eq!(clock.now(), until);
    }

    fn futures_lite_block(f: Pin<Box<dyn Future<Output = ()> + Send + '_>>) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f);
    }
}
