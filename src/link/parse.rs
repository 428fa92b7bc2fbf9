//! `--link BANDWIDTH,LATENCY` or `--link PRESET` into a [`Link`]. Units are decimal (1 GB/s =
//! 1e9 bytes/s, 1 Gbit/s = 1e9 bits/s), as link rates are quoted.

use std::str::FromStr;

use super::{presets, Link};

/// Bandwidth units and their bytes per second.
const BANDWIDTH_UNITS: [(&str, f64); 4] = [
    ("Gbit/s", 1e9 / 8.0),
    ("Mbit/s", 1e6 / 8.0),
    ("GB/s", 1e9),
    ("MB/s", 1e6),
];

/// Latency units and their seconds; "s" last, since the others end with it.
const LATENCY_UNITS: [(&str, f64); 5] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
];

/// The bandwidths a link may have, bytes/s: 1 Mbit/s to 1 PB/s. Beyond them a run would wait
/// for ever (or a collective take no time at all): no interconnect a run is studied over.
const BANDWIDTH_RANGE: std::ops::RangeInclusive<f64> = 125e3..=1e15;
/// The latencies a link may have, seconds: up to a second per message.
const LATENCY_RANGE: std::ops::RangeInclusive<f64> = 0.0..=1.0;

impl FromStr for Link {
    type Err = String;

    /// `10Gbit/s,25us`, `25GB/s,2us` or a preset's name; the message of an error says what was
    /// expected (clap puts the flag and the value in front of it).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = presets::find(s) {
            return Ok(Link {
                bandwidth_bytes_per_s: p.bandwidth_bytes_per_s,
                latency_s: p.latency_s,
                preset: Some(p.name.to_string()),
            });
        }
        let Some((bandwidth, latency)) = s.split_once(',') else {
            return Err(format!(
                "expected BANDWIDTH,LATENCY (e.g. 10Gbit/s,25us) or a preset ({})",
                presets::names()
            ));
        };
        let bandwidth = with_unit(bandwidth, &BANDWIDTH_UNITS)
            .filter(|b| BANDWIDTH_RANGE.contains(b))
            .ok_or_else(|| {
                format!(
                    "bandwidth '{}': expected a number with a unit (Gbit/s, Mbit/s, GB/s or MB/s) from 1Mbit/s to 1000000GB/s, e.g. 10Gbit/s",
                    bandwidth.trim()
                )
            })?;
        let latency = with_unit(latency, &LATENCY_UNITS)
            .filter(|l| LATENCY_RANGE.contains(l))
            .ok_or_else(|| {
                format!(
                    "latency '{}': expected a number with a unit (ns, us, ms or s) from 0 to 1s, e.g. 25us",
                    latency.trim()
                )
            })?;
        Ok(Link::new(bandwidth, latency))
    }
}

/// `text` as a finite number followed by one of `units`, scaled to the base unit.
fn with_unit(text: &str, units: &[(&str, f64)]) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))?;
    let value: f64 = number.trim().parse().ok()?;
    let scaled = value * scale;
    scaled.is_finite().then_some(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Link {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-12)
    }

    #[test]
    fn bandwidth_and_latency_with_every_unit() {
        let cases = [
            ("10Gbit/s,25us", 1.25e9, 25e-6),
            ("25GB/s,2us", 25e9, 2e-6),
            ("100Mbit/s,1ms", 12.5e6, 1e-3),
            ("500MB/s,800ns", 500e6, 800e-9),
            ("1.5GB/s,0.5s", 1.5e9, 0.5),
            (" 1Gbit/s , 50 µs ", 125e6, 50e-6),
            ("1GB/s,0us", 1e9, 0.0),
        ];
        for (text, b, l) in cases {
            let link = parse(text);
            assert!(near(link.bandwidth_bytes_per_s, b), "{text}: {link:?}");
            assert!(near(link.latency_s, l), "{text}: {link:?}");
            assert_eq!(link.preset, None);
        }
    }

    #[test]
    fn a_preset_keeps_its_name() {
        let link = parse("hdr-ib");
        assert_eq!(link.preset.as_deref(), Some("hdr-ib"));
        assert!(near(link.bandwidth_bytes_per_s, 25e9));
        for p in &presets::PRESETS {
            assert_eq!(parse(p.name).preset.as_deref(), Some(p.name));
        }
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let refused = [
            ("10Gbps,25us", "bandwidth '10Gbps'"),
            ("0GB/s,1us", "bandwidth '0GB/s'"),
            ("-1GB/s,1us", "bandwidth '-1GB/s'"),
            ("NaNGB/s,1us", "bandwidth 'NaNGB/s'"),
            ("infGB/s,1us", "bandwidth 'infGB/s'"),
            ("1GB/s,-3us", "latency '-3us'"),
            ("1GB/s,25", "latency '25'"),
            ("1GB/s,NaNus", "latency 'NaNus'"),
            ("0.1Mbit/s,1us", "bandwidth '0.1Mbit/s'"),
            ("2000000GB/s,1us", "bandwidth '2000000GB/s'"),
            ("1GB/s,2s", "latency '2s'"),
            ("1GB/s", "expected BANDWIDTH,LATENCY"),
            ("ethernet", "10gbe, 100gbe, hdr-ib, pcie4-x16, nvlink4"),
            ("", "expected BANDWIDTH,LATENCY"),
        ];
        for (text, needle) in refused {
            let err = text.parse::<Link>().expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
