//! Circuit breaker: closed -> open after `failure_threshold` consecutive failures -> after
//! `cooldown`, half-open: one probe call is let through -> closed on its success, open again
//! (for another cooldown) on its failure. While open, and while a probe is out, callers are
//! refused at once (the tier answers them with a miss / no-op without touching Redis).
//!
//! Pure: time is passed in, so the state machine is tested with a hand-moved clock. A probe
//! whose outcome never arrives (its task was dropped) does not wedge the breaker: after
//! another cooldown a new probe is let through.

use std::time::{Duration, Instant};

/// A source of "now", injectable for tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The state seen from outside (`health().circuit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// `'closed' | 'open' | 'half-open'`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit (>= 1).
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe is let through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

/// Whether a call may go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead; `probe` is true for the one half-open probe.
    Yes { probe: bool },
    /// Refused: answer without calling Redis.
    No,
}

/// What a recorded outcome did to the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    inner: Inner,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            cfg: BreakerConfig {
                failure_threshold: cfg.failure_threshold.max(1),
                cooldown: cfg.cooldown,
            },
            inner: Inner::Closed { failures: 0 },
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.cfg
    }

    /// The state as reported: an open circuit whose cool-down has run out reports
    /// half-open (the next call is the probe).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.inner {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if now < until => CircuitState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Asks to make a call now.
    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.inner {
            Inner::Closed { .. } => Admit::Yes { probe: false },
            Inner::Open { until } => {
                if now >= until {
                    self.inner = Inner::HalfOpen { probe_since: now };
                    Admit::Yes { probe: true }
                } else {
                    Admit::No
                }
            }
            Inner::HalfOpen { probe_since } => {
                if now.saturating_duration_since(probe_since) >= self.cfg.cooldown {
                    // The previous probe never reported: let another one through.
                    self.inner = Inner::HalfOpen { probe_since: now };
                    Admit::Yes { probe: true }
                } else {
                    Admit::No
                }
            }
        }
    }

    /// Records a successful call. Any success shows Redis answering, so it closes the circuit.
    pub fn on_success(&mut self) -> Transition {
        let was_closed = matches!(self.inner, Inner::Closed { .. });
        self.inner = Inner::Closed { failures: 0 };
        if was_closed {
            Transition::None
        } else {
            Transition::Closed
        }
    }

    /// Records a failed call (error or timeout). `probe` says whether it was the half-open
    /// probe; a late failure of a call admitted earlier does not reopen a half-open circuit.
    pub fn on_failure(&mut self, now: Instant, probe: bool) -> Transition {
        match self.inner {
            Inner::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.cfg.failure_threshold {
                    self.inner = Inner::Open {
                        until: now + self.cfg.cooldown,
                    };
                    Transition::Opened
                } else {
                    self.inner = Inner::Closed { failures };
                    Transition::None
                }
            }
            Inner::HalfOpen { .. } if probe => {
                self.inner = Inner::Open {
                    until: now + self.cfg.cooldown,
                };
                Transition::Opened
            }
            Inner::HalfOpen { .. } | Inner::Open { .. } => Transition::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock the test moves by hand.
    struct ManualClock(Mutex<Instant>);

    impl ManualClock {
        fn new() -> Self {
            ManualClock(Mutex::new(Instant::now()))
        }
        fn advance(&self, d: Duration) {
            let mut t = self.0.lock().unwrap();
            *t += d;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            cooldown: Duration::from_millis(1000),
        })
    }

    /// A breaker just opened by three failures.
    fn opened(clock: &ManualClock) -> Breaker {
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(clock.now(), false);
        }
        assert_eq!(b.state(clock.now()), CircuitState::Open);
        b
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let clock = ManualClock::new();
        let mut b = breaker();
        for _ in 0..2 {
            assert_eq!(b.admit(clock.now()), Admit::Yes { probe: false });
            assert_eq!(b.on_failure(clock.now(), false), Transition::None);
        }
        assert_eq!(b.state(clock.now()), CircuitState::Closed);
        assert_eq!(b.on_failure(clock.now(), false), Transition::Opened);
        assert_eq!(b.state(clock.now()), CircuitState::Open);
        assert_eq!(b.admit(clock.now()), Admit::No);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let clock = ManualClock::new();
        let mut b = breaker();
        b.on_failure(clock.now(), false);
        b.on_failure(clock.now(), false);
        assert_eq!(b.on_success(), Transition::None);
        b.on_failure(clock.now(), false);
        b.on_failure(clock.now(), false);
        assert_eq!(b.state(clock.now()), CircuitState::Closed);
    }

    #[test]
    fn half_open_after_cooldown_lets_one_probe_through() {
        let clock = ManualClock::new();
        let mut b = opened(&clock);
        clock.advance(Duration::from_millis(999));
        assert_eq!(b.admit(clock.now()), Admit::No);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
        // Only one probe at a time.
        assert_eq!(b.admit(clock.now()), Admit::No);
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
        assert_eq!(b.on_success(), Transition::Closed);
        assert_eq!(b.state(clock.now()), CircuitState::Closed);
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: false });
    }

    #[test]
    fn failed_probe_reopens_for_another_cooldown() {
        let clock = ManualClock::new();
        let mut b = opened(&clock);
        clock.advance(Duration::from_millis(1000));
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
        clock.advance(Duration::from_millis(50));
        assert_eq!(b.on_failure(clock.now(), true), Transition::Opened);
        assert_eq!(b.state(clock.now()), CircuitState::Open);
        clock.advance(Duration::from_millis(999));
        assert_eq!(b.admit(clock.now()), Admit::No);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
    }

    #[test]
    fn late_failure_of_a_non_probe_does_not_reopen() {
        let clock = ManualClock::new();
        let mut b = opened(&clock);
        clock.advance(Duration::from_millis(1000));
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
        assert_eq!(b.on_failure(clock.now(), false), Transition::None);
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cooldown() {
        let clock = ManualClock::new();
        let mut b = opened(&clock);
        clock.advance(Duration::from_millis(1000));
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
        clock.advance(Duration::from_millis(999));
        assert_eq!(b.admit(clock.now()), Admit::No);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.admit(clock.now()), Admit::Yes { probe: true });
    }

    #[test]
    fn threshold_zero_behaves_as_one() {
        let clock = ManualClock::new();
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 0,
            cooldown: Duration::from_millis(10),
        });
        assert_eq!(b.on_failure(clock.now(), false), Transition::Opened);
    }
}
