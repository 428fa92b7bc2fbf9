//! [`LinkTally`]: what a modelled link has charged, the exchange in progress and the run's
//! totals; `super::Linked` adds to it, the hub reads it through `Transport::link`.

use std::time::Duration;

use crate::link::LinkMeter;

/// The modelled time of the exchange in progress, and the run's totals.
#[derive(Debug, Default)]
pub struct LinkTally {
    pending: Duration,
    meter: LinkMeter,
    /// What a resumed run had spent before it stopped.
    before: (f64, u64),
}

impl LinkTally {
    /// Counts one collective of `modelled` time moving `bytes`.
    pub(super) fn add(&mut self, modelled: Duration, bytes: u64) {
        self.pending += modelled;
        self.meter.add(modelled, bytes);
    }

    /// The modelled time of the collectives since the last call: one exchange's.
    pub fn take(&mut self) -> Duration {
        std::mem::take(&mut self.pending)
    }

    /// The run's modelled seconds so far (`summary.json`'s `link_seconds`).
    pub fn seconds(&self) -> f64 {
        self.before.0 + self.meter.seconds()
    }

    /// The run's payload bytes so far (`summary.json`'s `bytes`): S for each collective.
    pub fn bytes(&self) -> u64 {
        self.before.1 + self.meter.bytes()
    }

    /// A tally that goes on from what a resumed run had spent (seconds, bytes).
    pub(super) fn resumed(before: (f64, u64)) -> Self {
        Self {
            before,
            ..Self::default()
        }
    }
}
