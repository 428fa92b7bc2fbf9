//! The little state every thread of a run shares: stop flags, step counters, permits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// State shared by every thread of a run.
pub struct Shared {
    /// Raised by SIGINT/SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Raised when a worker fails, so the others stop (async) rather than wait.
    pub abort: AtomicBool,
    /// Local steps taken by all workers together.
    pub total_steps: AtomicU64,
    /// Permits schedule: steps handed out this round, and how many may be.
    pub permits_taken: AtomicU64,
    pub permits_allowed: AtomicU64,
    /// Async: each worker's local steps, and the step of its newest snapshot the hub
    /// has taken in (u64::MAX once it has finished: it holds nobody back any more).
    pub steps: Vec<AtomicU64>,
    pub acked: Vec<AtomicU64>,
    pub start: Instant,
}

impl Shared {
    /// Fresh shared state for a run of `workers` workers starting now.
    pub fn new(interrupt: Arc<AtomicBool>, workers: usize) -> Self {
        Self {
            steps: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            interrupt,
            abort: AtomicBool::new(false),
            total_steps: AtomicU64::new(0),
            permits_taken: AtomicU64::new(0),
            permits_allowed: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Seconds since the run started.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// True once the run should wind down early (signal or a failed worker).
    pub fn stopping(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    /// Takes one local-step permit if any is left this round.
    pub fn take_permit(&self) -> bool {
        self.permits_taken.fetch_add(1, Ordering::SeqCst)
            < self.permits_allowed.load(Ordering::SeqCst)
    }

    /// The oldest snapshot step the hub holds of a worker still running.
    pub fn oldest_acked(&self) -> u64 {
        self.acked
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Async staleness: how many local steps the most advanced worker is past the oldest
    /// snapshot of a running worker (0 when every running worker is at its snapshot).
    pub fn staleness(&self) -> u64 {
        let oldest = self.oldest_acked();
        let ahead = self
            .steps
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .max()
            .unwrap_or(0);
        if oldest == u64::MAX {
            0
        } else {
            ahead.saturating_sub(oldest)
        }
    }

    /// Opens a new permits round with `n` permits (called while every worker waits at the round).
    pub fn open_permits(&self, n: u64) {
        self.permits_allowed.store(n, Ordering::SeqCst);
        self.permits_taken.store(0, Ordering::SeqCst);
    }
}
