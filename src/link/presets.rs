//! Named links for `--link PRESET`: each link's peak data rate per direction and a per-message
//! latency, with where each figure comes from (also in `--help` and docs/design.md section 7).
//! Peak rates, not achieved ones: a real collective reaches less (NCCL's own topology model
//! assumes 24 GB/s for PCIe 4.0 x16 and 12 GB/s for 100 Gbit/s); give `BANDWIDTH,LATENCY` for a
//! measured figure.

/// A named link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub bandwidth_bytes_per_s: f64,
    pub latency_s: f64,
    /// Where the figures come from, for `--help`.
    pub source: &'static str,
}

/// NCCL's per-step latencies in its own cost model (`hwLat` in NCCL's `src/graph/tuning.cc`, the
/// ring with the low-latency protocol): network 2.7 us, PCIe 1.0 us, NVLink 0.6 us.
const NCCL_NET_LATENCY_S: f64 = 2.7e-6;
const NCCL_PCI_LATENCY_S: f64 = 1.0e-6;
const NCCL_NVLINK_LATENCY_S: f64 = 0.6e-6;

/// Every preset, in the order `--help` lists them.
pub const PRESETS: [Preset; 5] = [
    Preset {
        name: "10gbe",
        // 10 Gbit/s (IEEE 802.3ae) / 8.
        bandwidth_bytes_per_s: 1.25e9,
        latency_s: 20e-6,
        source: "10 Gbit/s line rate; 20 us between applications over TCP, measured by Hurwitz \
                 and Feng, Hot Interconnects 2003",
    },
    Preset {
        name: "100gbe",
        // 100 Gbit/s (IEEE 802.3bj) / 8.
        bandwidth_bytes_per_s: 12.5e9,
        latency_s: NCCL_NET_LATENCY_S,
        source: "100 Gbit/s line rate; NCCL's per-step network latency with RDMA over Ethernet, \
                 from its cost model in src/graph/tuning.cc",
    },
    Preset {
        name: "hdr-ib",
        // HDR InfiniBand: 4 lanes of 50 Gbit/s = 200 Gbit/s per direction.
        bandwidth_bytes_per_s: 25e9,
        latency_s: NCCL_NET_LATENCY_S,
        source: "HDR InfiniBand, 200 Gbit/s per direction; NCCL's per-step network latency; the \
                 ConnectX-6 adapter alone is under 0.6 us",
    },
    Preset {
        name: "pcie4-x16",
        // 16 GT/s x 16 lanes x 128/130 (encoding) / 8 bits = 31.5 GB/s per direction.
        bandwidth_bytes_per_s: 16e9 * 16.0 * 128.0 / 130.0 / 8.0,
        latency_s: NCCL_PCI_LATENCY_S,
        source: "PCIe 4.0 x16: 16 GT/s x 16 lanes, 128b/130b encoding, per direction; NCCL \
                 assumes 24 GB/s achievable; NCCL's per-step PCIe latency",
    },
    Preset {
        name: "nvlink4",
        // H100 SXM: 18 NVLink 4 links, 900 GB/s both directions together.
        bandwidth_bytes_per_s: 450e9,
        latency_s: NCCL_NVLINK_LATENCY_S,
        source: "NVLink 4 on an H100 SXM: 900 GB/s in all per NVIDIA's H100 datasheet, 450 per \
                 direction; NCCL's per-step NVLink latency",
    },
];

/// The preset called `name`, if any.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The presets' names, for error messages: "10gbe, 100gbe, ...".
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--link`'s help: the form, the units and every preset with its figures and their source.
pub fn help() -> String {
    let mut text = String::from(
        "Model an interconnect: every collective (DDP's all-reduce, a round's exchanges) then \
         takes at least the time an ideal implementation needs on this link for the bytes it \
         moves, waited for after the real copy (formulas and sources: docs/design.md section 7). \
         Under --schedule async a reply reaches its worker that much later, and the worker steps \
         on meanwhile. Across mpirun ranks the model covers the cross-rank part only (its \
         participants are the ranks). BANDWIDTH,LATENCY, e.g. 10Gbit/s,25us or 25GB/s,2us \
         (bandwidth per direction, 1Mbit/s to 1000000GB/s, in Gbit/s, Mbit/s, GB/s or MB/s; \
         latency per message, up to 1s, in ns, us, ms or s), or a preset (peak rates per \
         direction). Presets:",
    );
    for p in &PRESETS {
        text.push_str(&format!(
            "\n  {}: {} GB/s, {} us ({})",
            p.name,
            short(p.bandwidth_bytes_per_s / 1e9),
            short(p.latency_s * 1e6),
            p.source
        ));
    }
    text
}

/// `x` with at most three decimals and no trailing zeros: 1.25, 31.508, 450, 2.7.
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_figures_are_the_documented_ones() {
        let want = [
            ("10gbe", 1.25e9, 20e-6),
            ("100gbe", 12.5e9, 2.7e-6),
            ("hdr-ib", 25e9, 2.7e-6),
            ("pcie4-x16", 31.507_692_307_692_308e9, 1e-6),
            ("nvlink4", 450e9, 0.6e-6),
        ];
        for (name, b, l) in want {
            let p = find(name).unwrap_or_else(|| panic!("no preset {name}"));
            assert!((p.bandwidth_bytes_per_s - b).abs() < 1.0, "{name}");
            assert!((p.latency_s - l).abs() < 1e-15, "{name}");
        }
        assert_eq!(PRESETS.len(), want.len());
        assert!(find("ethernet").is_none());
    }

    #[test]
    fn help_lists_every_preset_with_its_figures() {
        let h = help();
        for line in [
            "10gbe: 1.25 GB/s, 20 us",
            "100gbe: 12.5 GB/s, 2.7 us",
            "hdr-ib: 25 GB/s, 2.7 us",
            "pcie4-x16: 31.508 GB/s, 1 us",
            "nvlink4: 450 GB/s, 0.6 us",
        ] {
            assert!(h.contains(line), "{line} not in: {h}");
        }
    }
}
