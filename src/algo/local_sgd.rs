//! Local SGD: every tau steps all workers are replaced by their uniform average.

use super::policy::{Mix, Plan, Policy, WorkerStats};

/// Uniform averaging with a full pull (lambda = 1).
pub struct LocalSgd;

impl Policy for LocalSgd {
    fn decide(&mut self, _: &[WorkerStats]) -> Plan {
        Plan {
            mix: Some(Mix::Mean),
            lambda: 1.0,
            norms: None,
        }
    }
}
