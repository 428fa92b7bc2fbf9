//! Algorithms without averaging rounds (single-worker SGD, DDP, DDP-SAM): their workers agree
//! through the gradient, and meet at rounds only to be evaluated.

use super::policy::{Plan, Policy, WorkerStats};

/// Nobody is pulled.
pub struct NoAveraging;

impl Policy for NoAveraging {
    fn decide(&mut self, _: &[WorkerStats]) -> Plan {
        Plan::default()
    }
}
