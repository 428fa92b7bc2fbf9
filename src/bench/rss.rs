//! Peak resident memory of this process: `VmHWM` ("high water mark") in /proc/self/status, the
//! same figure `scripts/bench_pytorch.py` reads for PyTorch. None off Linux.

/// The `VmHWM` line of a /proc/PID/status text, in MiB.
pub fn parse_vm_hwm(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: f64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value / 1024.0),
        Some(_) => None,
    }
}

/// Peak resident set size of this process so far, in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    parse_vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark() {
        let text =
            "Name:\tgrawa-train\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_vm_hwm(text), Some(200.0));
        assert_eq!(parse_vm_hwm("VmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_on_linux() {
        if cfg!(target_os = "linux") {
            let mb = peak_rss_mb().expect("VmHWM in /proc/self/status");
            assert!(mb > 1.0, "{mb}");
        }
    }
}
