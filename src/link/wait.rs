//! Waiting for the modelled link: after the real copy, sleep (never spin) until the modelled
//! time has passed since the collective started; under `--schedule async`, hold a reply back
//! until its instant instead, while the worker keeps stepping.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What is left of `modelled` at `now` for a collective that started at `started` (zero once it
/// has passed: a real copy slower than the model costs what it cost).
pub fn remaining(started: Instant, modelled: Duration, now: Instant) -> Duration {
    (started + modelled).saturating_duration_since(now)
}

/// Sleeps until at least `modelled` has passed since `started`; returns `modelled` in
/// milliseconds (the `link_ms` of the event).
pub fn hold(started: Instant, modelled: Duration) -> f64 {
    let left = remaining(started, modelled, Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
    modelled.as_secs_f64() * 1e3
}

/// The instant a reply sent at `sent` over a collective of `modelled` time may be applied.
pub fn ready_at(sent: Instant, modelled: Duration) -> Instant {
    sent + modelled
}

/// Replies in flight to one worker, in the order they were sent, each usable from its instant.
/// Delivery is in order, like a stream: a reply waits for the ones sent before it.
#[derive(Debug)]
pub struct Delayed<T> {
    queue: VecDeque<(Instant, T)>,
}

impl<T> Default for Delayed<T> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
        }
    }
}

impl<T> Delayed<T> {
    /// Puts `item` in flight, usable from `ready_at`.
    pub fn push(&mut self, ready_at: Instant, item: T) {
        self.queue.push_back((ready_at, item));
    }

    /// The oldest item in flight if its instant has come by `now` (call it at each step boundary
    /// until it returns `None`).
    pub fn pop_ready(&mut self, now: Instant) -> Option<T> {
        match self.queue.front() {
            Some((at, _)) if *at <= now => self.queue.pop_front().map(|(_, item)| item),
            _ => None,
        }
    }

    /// Items still in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// The run's total modelled link time and payload bytes (`summary.json`'s `link_seconds` and
/// `bytes`); shared by every thread that calls the link.
#[derive(Debug, Default)]
pub struct LinkMeter {
    nanos: AtomicU64,
    bytes: AtomicU64,
}

impl LinkMeter {
    /// Counts one collective of `modelled` time moving `bytes`.
    pub fn add(&self, modelled: Duration, bytes: u64) {
        let nanos = u64::try_from(modelled.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Modelled seconds so far.
    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Payload bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_is_what_is_left_of_the_model() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(remaining(t0, ms(10), t0), ms(10));
        assert_eq!(remaining(t0, ms(10), t0 + ms(4)), ms(6));
        // The real copy took longer than the model: nothing left.
        assert_eq!(remaining(t0, ms(10), t0 + ms(25)), Duration::ZERO);
    }

    #[test]
    fn hold_waits_at_least_the_modelled_time() {
        let t0 = Instant::now();
        let ms = hold(t0, Duration::from_millis(15));
        assert!(t0.elapsed() >= Duration::from_millis(15));
        assert!((ms - 15.0).abs() < 1e-9, "{ms}");
        // A start long past: no sleep is needed, the modelled time is still reported.
        let past = Instant::now() - Duration::from_secs(5);
        assert!((hold(past, Duration::from_millis(3)) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn delayed_replies_arrive_in_order_from_their_instant() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Delayed::default();
        d.push(ready_at(t0, ms(10)), "a");
        d.push(ready_at(t0, ms(5)), "b");
        assert_eq!(d.pop_ready(t0 + ms(4)), None);
        // "b" is ready at 5 ms but was sent after "a": it waits for it.
        assert_eq!(d.pop_ready(t0 + ms(7)), None);
        assert_eq!(d.pop_ready(t0 + ms(10)), Some("a"));
        assert_eq!(d.pop_ready(t0 + ms(10)), Some("b"));
        assert_eq!(d.pop_ready(t0 + ms(99)), None);
        assert!(d.is_empty());
    }

    #[test]
    fn meter_adds_time_and_bytes() {
        let m = LinkMeter::default();
        m.add(Duration::from_micros(1500), 100);
        m.add(Duration::from_micros(500), 28);
        assert!((m.seconds() - 0.002).abs() < 1e-12);
        assert_eq!(m.bytes(), 128);
    }
}
