//! The whole GPU self-test as a test (feature `cuda` only): every kernel on every visible GPU
//! against its CPU twin, peer copies checked bit for bit. Where the driver sees no GPU it says so
//! and passes, since there is nothing to check; where libcuda is missing the test binary does not
//! start at all. Carry the binary from `cargo test --release --features cuda --no-run` to a GPU
//! machine to run it there.
#![cfg(feature = "cuda")]

use grawa_train::gpus::check_all;
use grawa_train::selftest::Outcome;

#[test]
fn every_kernel_matches_its_cpu_twin_on_every_visible_gpu() {
    match check_all() {
        Outcome::NoDevice(reason) => {
            eprintln!("no GPU, nothing checked: {reason}");
            let count = grawa_train::gpus::gpu_count();
            assert!(matches!(count, Ok(0) | Err(_)), "{count:?}");
        }
        Outcome::NotBuilt => panic!("a build with the `cuda` feature reported it has none"),
        Outcome::Ran(report) => {
            eprintln!("{}", report.table());
            let failed: Vec<String> = report
                .failures()
                .map(|c| format!("GPU {} {} ({})", c.device, c.kernel, c.case))
                .collect();
            assert!(report.passed(), "failed: {failed:?}");
            assert_eq!(grawa_train::gpus::gpu_count(), Ok(report.devices.len()));
        }
    }
}
