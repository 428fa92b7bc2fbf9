//! A modelled interconnect (`--link`). Every worker of this program is a thread in one process,
//! so a collective costs a memory copy and nothing more; a run that should feel a real network
//! waits, after the real copy, until the time an ideal implementation of that collective needs on
//! the link has passed. This module is the model and the waiting, apart from any transport:
//!
//! - [`Link`]: a bandwidth B (bytes/s, per direction) and a per-message latency L (s), parsed from
//!   `--link BANDWIDTH,LATENCY` or a named preset ([`presets`]);
//! - the cost of each collective ([`Link::all_reduce`], [`Link::broadcast`],
//!   [`Link::all_gather`], [`Link::exchange`]), by the formulas of docs/design.md section 7
//!   ("Modelled interconnect"), with their sources;
//! - the waits: [`hold`] (sleep until the modelled time has passed since the call started) and,
//!   for `--schedule async`, [`Delayed`] (a reply becomes usable at an instant; the worker keeps
//!   stepping and applies it at its first step boundary after that instant);
//! - [`LinkMeter`]: the run's total modelled time and bytes, for `summary.json`.
//!
//! # Where the transport calls it
//!
//! `comm::Linked` wraps the run's transport: after each collective call's real copy it charges
//! the call [`Link::time`] of its primitive, for the bytes it really moves and its participants,
//! and [`hold`]s a lockstep call until that time has passed; under `async` the hub stamps the
//! reply with [`ready_at`] and the worker keeps it in [`Delayed`] until then. Across processes
//! (`mpirun`) the ranks' real transport already costs something: the model then applies to the
//! cross-rank part only. Without `--link` nothing is wrapped and every number is as before.

mod parse;
pub mod presets;
mod wait;

use std::time::Duration;

use serde::Serialize;

pub use presets::Preset;
pub use wait::{hold, ready_at, remaining, Delayed, LinkMeter};

/// A link: bandwidth per direction and per-message latency, and the preset it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// B: bytes per second, in each direction.
    pub bandwidth_bytes_per_s: f64,
    /// L: seconds per message (per step of a collective).
    pub latency_s: f64,
    /// The preset's name (`--link 10gbe`); absent for `--link BANDWIDTH,LATENCY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

/// A collective as the transport performs it, with the bytes it really moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collective {
    /// Every participant holds `bytes` and ends with their sum (or mean).
    AllReduce { bytes: u64, participants: usize },
    /// One participant's `bytes` reach every other one.
    Broadcast { bytes: u64, participants: usize },
    /// Every participant contributes its piece and ends with all of them, `total_bytes` in all.
    AllGather {
        total_bytes: u64,
        participants: usize,
    },
    /// A worker and the center: the worker sends `bytes` and receives `bytes` back (async).
    Exchange { bytes: u64 },
}

impl Collective {
    /// The payload bytes of the collective, as `bytes` in the metrics counts them.
    pub fn bytes(&self) -> u64 {
        match *self {
            Collective::AllReduce { bytes, .. }
            | Collective::Broadcast { bytes, .. }
            | Collective::Exchange { bytes } => bytes,
            Collective::AllGather { total_bytes, .. } => total_bytes,
        }
    }
}

impl Link {
    /// A link of `bandwidth_bytes_per_s` and `latency_s`, not from a preset.
    pub fn new(bandwidth_bytes_per_s: f64, latency_s: f64) -> Self {
        Self {
            bandwidth_bytes_per_s,
            latency_s,
            preset: None,
        }
    }

    /// Ring all-reduce of `bytes` over `participants`: `2(M-1)/M * S/B + 2(M-1) L`.
    pub fn all_reduce(&self, bytes: u64, participants: usize) -> Duration {
        seconds(ring_all_reduce(self.terms(bytes), participants))
    }

    /// Pipelined chain broadcast of `bytes` to `participants` (the root included):
    /// `S/B + (M-1) L`.
    pub fn broadcast(&self, bytes: u64, participants: usize) -> Duration {
        seconds(chain_broadcast(self.terms(bytes), participants))
    }

    /// Ring all-gather of `total_bytes` (all pieces together) over `participants`:
    /// `(M-1)/M * S/B + (M-1) L`.
    pub fn all_gather(&self, total_bytes: u64, participants: usize) -> Duration {
        seconds(ring_all_gather(self.terms(total_bytes), participants))
    }

    /// An async exchange with the center: `bytes` up, then `bytes` back, `2 (S/B + L)`.
    pub fn exchange(&self, bytes: u64) -> Duration {
        seconds(exchange(self.terms(bytes)))
    }

    /// The modelled time of `op`.
    pub fn time(&self, op: Collective) -> Duration {
        match op {
            Collective::AllReduce {
                bytes,
                participants,
            } => self.all_reduce(bytes, participants),
            Collective::Broadcast {
                bytes,
                participants,
            } => self.broadcast(bytes, participants),
            Collective::AllGather {
                total_bytes,
                participants,
            } => self.all_gather(total_bytes, participants),
            Collective::Exchange { bytes } => self.exchange(bytes),
        }
    }

    /// The two terms every formula is built from: S/B and L, in seconds.
    fn terms(&self, bytes: u64) -> Terms {
        Terms {
            transfer: bytes as f64 / self.bandwidth_bytes_per_s,
            latency: self.latency_s,
        }
    }
}

/// S/B (seconds to push the payload through one link) and L (seconds per message).
#[derive(Clone, Copy)]
struct Terms {
    transfer: f64,
    latency: f64,
}

/// Patarasuk and Yuan (2009), Thakur, Rabenseifner and Gropp (2005): a reduce-scatter then an
/// all-gather around the ring, 2(M-1) steps of S/M bytes each.
fn ring_all_reduce(t: Terms, m: usize) -> f64 {
    if m < 2 {
        return 0.0;
    }
    let m = m as f64;
    2.0 * (m - 1.0) / m * t.transfer + 2.0 * (m - 1.0) * t.latency
}

/// The pipelined chain: the root puts S on its link once (S/B) and the last participant is M-1
/// hops away ((M-1) L). Pješivac-Grbović et al. (2007) model the chain with k segments as
/// (M-2+k)(L + S/(kB)); each of its two terms is at least ours, so this is the ideal it tends to.
fn chain_broadcast(t: Terms, m: usize) -> f64 {
    if m < 2 {
        return 0.0;
    }
    t.transfer + (m as f64 - 1.0) * t.latency
}

/// Thakur, Rabenseifner and Gropp (2005): the ring all-gather, M-1 steps of S/M bytes each.
fn ring_all_gather(t: Terms, m: usize) -> f64 {
    if m < 2 {
        return 0.0;
    }
    let m = m as f64;
    (m - 1.0) / m * t.transfer + (m - 1.0) * t.latency
}

/// Two point-to-point messages in Hockney's model (1994), L + S/B each, one after the other: the
/// center's reply is built from the worker's snapshot, so it cannot start before it has arrived.
fn exchange(t: Terms) -> f64 {
    2.0 * (t.transfer + t.latency)
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 Gbit/s = 1.25e9 bytes/s, 25 us; one megabyte (1e6 bytes), so S/B = 0.8 ms.
    fn ten_gbe() -> Link {
        Link::new(1.25e9, 25e-6)
    }

    fn close(d: Duration, want_s: f64) {
        let got = d.as_secs_f64();
        assert!((got - want_s).abs() < 1e-9, "got {got} s, want {want_s} s");
    }

    #[test]
    fn all_reduce_matches_the_hand_derived_ring() {
        // 2*3/4 * 0.8 ms + 2*3*25 us = 1.2 ms + 0.15 ms.
        close(ten_gbe().all_reduce(1_000_000, 4), 1.35e-3);
        // Two participants: 2*1/2 * 0.8 ms + 2*25 us.
        close(ten_gbe().all_reduce(1_000_000, 2), 0.85e-3);
        // One participant moves nothing.
        close(ten_gbe().all_reduce(1_000_000, 1), 0.0);
    }

    #[test]
    fn broadcast_is_the_pipelined_chain() {
        // 0.8 ms + 3 * 25 us.
        close(ten_gbe().broadcast(1_000_000, 4), 0.875e-3);
        close(ten_gbe().broadcast(1_000_000, 1), 0.0);
    }

    #[test]
    fn all_gather_is_the_ring() {
        // 3/4 * 0.8 ms + 3 * 25 us.
        close(ten_gbe().all_gather(1_000_000, 4), 0.675e-3);
        // 16 workers gathering 16 x 8 bytes: 15/16 * 128/1.25e9 + 15 * 25 us.
        close(
            ten_gbe().all_gather(128, 16),
            15.0 / 16.0 * 128.0 / 1.25e9 + 375e-6,
        );
    }

    #[test]
    fn exchange_is_there_and_back() {
        // 2 * (0.8 ms + 25 us).
        close(ten_gbe().exchange(1_000_000), 1.65e-3);
        close(ten_gbe().exchange(0), 50e-6);
    }

    #[test]
    fn time_dispatches_to_each_formula_and_counts_bytes() {
        let l = Link::new(25e9, 2e-6);
        let ops = [
            Collective::AllReduce {
                bytes: 4_000_000,
                participants: 8,
            },
            Collective::Broadcast {
                bytes: 4_000_000,
                participants: 8,
            },
            Collective::AllGather {
                total_bytes: 4_000_000,
                participants: 8,
            },
            Collective::Exchange { bytes: 4_000_000 },
        ];
        let want = [
            l.all_reduce(4_000_000, 8),
            l.broadcast(4_000_000, 8),
            l.all_gather(4_000_000, 8),
            l.exchange(4_000_000),
        ];
        for (op, w) in ops.iter().zip(want) {
            assert_eq!(l.time(*op), w);
            assert_eq!(op.bytes(), 4_000_000);
        }
        // 25 GB/s, 2 us, 4 MB over 8: 2*7/8 * 160 us + 14 * 2 us = 308 us.
        close(want[0], 308e-6);
    }
}
