//! The self-test's device-free half: comparing a result with its reference, the report's verdict,
//! table and JSON, the exit status, and what a CPU build says. Expected errors are worked out by
//! hand from `element_error(got, want) = |got - want| / max(|want|, 1)`.

use grawa_train::selftest::{
    compare, element_error, Bandwidth, Check, Comparison, DeviceInfo, Outcome, PeerCopy, Report,
    F32_TOLERANCE,
};

#[test]
fn identical_buffers_have_zero_error() {
    let x = [1.5f32, -2.0, 0.0, 1e-30, 3.25e7];
    let c = compare(&x, &x);
    assert_eq!(c.elements, 5);
    assert_eq!(c.max_error, 0.0);
    assert_eq!(c.worst, None);
    assert_eq!(c.problem, None);
    assert!(c.passed(0.0));
}

#[test]
fn empty_buffers_pass() {
    let c = compare::<f32>(&[], &[]);
    assert_eq!(c.elements, 0);
    assert!(c.passed(0.0));
}

#[test]
fn error_is_relative_above_one_and_absolute_below() {
    // |2.002 - 2| / 2 = 1e-3 (relative); |0.5001 - 0.5| / 1 = 1e-4 (absolute, |want| < 1).
    assert!((element_error(2.002, 2.0) - 1e-3).abs() < 1e-12);
    assert!((element_error(0.5001, 0.5) - 1e-4).abs() < 1e-12);
    // A reference of 0 is judged on the absolute difference, not divided by zero.
    assert_eq!(element_error(1e-6, 0.0), 1e-6);
    assert_eq!(element_error(-4.0, 4.0), 2.0);
}

#[test]
fn a_wrong_element_fails_and_is_located() {
    let want = [1.0f32, 2.0, 3.0, 4.0];
    let got = [1.0f32, 2.0, 3.5, 4.0];
    let c = compare(&got, &want);
    // |3.5 - 3| / 3
    assert!((c.max_error - 0.5 / 3.0).abs() < 1e-12);
    assert_eq!(c.worst, Some(2));
    assert_eq!(c.problem, None);
    assert!(!c.passed(F32_TOLERANCE));
}

#[test]
fn the_tolerance_is_inclusive() {
    // 1 + 2^-20 is exact in f32 and f64: error 2^-20 (about 9.5e-7).
    let want = [1.0f32];
    let got = [1.0f32 + 2f32.powi(-20)];
    let c = compare(&got, &want);
    assert_eq!(c.max_error, 2f64.powi(-20));
    assert!(c.passed(2f64.powi(-20)));
    assert!(!c.passed(2f64.powi(-21)));
}

#[test]
fn one_ulp_at_f32_passes_the_f32_tolerance() {
    let want: Vec<f32> = (1..1000).map(|i| i as f32 * 0.37).collect();
    let got: Vec<f32> = want
        .iter()
        .map(|v| f32::from_bits(v.to_bits() + 1))
        .collect();
    let c = compare(&got, &want);
    assert!(c.max_error > 0.0 && c.max_error < 2.0 * f64::from(f32::EPSILON));
    assert!(c.passed(F32_TOLERANCE));
}

#[test]
fn nan_fails_on_either_side_whatever_the_tolerance() {
    let c = compare(&[1.0f32, f32::NAN], &[1.0, 2.0]);
    assert_eq!(c.worst, Some(1));
    assert!(c.problem.as_deref().unwrap().contains("element 1"));
    assert!(!c.passed(f64::INFINITY));

    let c = compare(&[1.0f32, 2.0], &[1.0, f32::NAN]);
    assert!(!c.passed(f64::INFINITY));
}

#[test]
fn infinities_fail_even_when_equal() {
    let c = compare(&[f32::INFINITY], &[f32::INFINITY]);
    assert!(c.problem.is_some());
    assert!(!c.passed(f64::INFINITY));
}

#[test]
fn different_lengths_fail() {
    let c = compare(&[1.0f32, 2.0], &[1.0, 2.0, 3.0]);
    assert_eq!(c.problem.as_deref(), Some("2 elements, reference has 3"));
    assert!(!c.passed(f64::INFINITY));
    let c = compare::<f32>(&[], &[0.0]);
    assert!(!c.passed(f64::INFINITY));
}

#[test]
fn f64_results_compare_too() {
    // Per-layer sums of squares come back in f64.
    let want = [1.0e9f64, 0.0, 12.5];
    let got = [1.0e9f64 + 1.0, 0.0, 12.5];
    let c = compare(&got, &want);
    assert!((c.max_error - 1e-9).abs() < 1e-18);
    assert!(c.passed(F32_TOLERANCE));
}

#[test]
fn a_failed_comparison_never_passes() {
    let c = Comparison::failed("launching pull failed");
    assert!(!c.passed(f64::INFINITY));
}

fn report(checks: Vec<Check>) -> Report {
    Report {
        driver: "13.0".into(),
        seed: 42,
        devices: vec![DeviceInfo {
            ordinal: 0,
            name: "Test GPU".into(),
            compute_capability: "9.0".into(),
            memory_gib: 79.1,
        }],
        checks,
        peer_copies: vec![PeerCopy {
            src: 0,
            dst: 1,
            peer_access: true,
            bytes: 256 << 20,
            gb_per_s: 41.5,
        }],
        bandwidth: vec![Bandwidth {
            device: 0,
            kernel: "pull".into(),
            bytes: 192 << 20,
            kernel_gb_per_s: 2400.0,
            copy_gb_per_s: 3000.0,
        }],
    }
}

fn ok_check(kernel: &str) -> Check {
    Check::new(
        0,
        kernel,
        "4 workers",
        compare(&[1.0f32], &[1.0]),
        F32_TOLERANCE,
    )
}

fn bad_check(kernel: &str) -> Check {
    Check::new(
        0,
        kernel,
        "4 workers",
        compare(&[1.0f32], &[2.0]),
        F32_TOLERANCE,
    )
}

#[test]
fn a_report_passes_only_when_every_check_does() {
    let good = report(vec![ok_check("pull"), ok_check("sgd_step")]);
    assert!(good.passed());
    assert_eq!(good.failures().count(), 0);

    let bad = report(vec![ok_check("pull"), bad_check("sgd_step")]);
    assert!(!bad.passed());
    let failed: Vec<&str> = bad.failures().map(|c| c.kernel.as_str()).collect();
    assert_eq!(failed, ["sgd_step"]);
}

#[test]
fn a_report_without_checks_fails() {
    assert!(!report(vec![]).passed());
    assert_eq!(Outcome::Ran(report(vec![])).exit_status(), 1);
}

#[test]
fn exit_status_means_the_same_everywhere() {
    assert_eq!(Outcome::NotBuilt.exit_status(), 0);
    assert_eq!(Outcome::NoDevice("no GPU".into()).exit_status(), 2);
    assert_eq!(
        Outcome::Ran(report(vec![ok_check("pull")])).exit_status(),
        0
    );
    assert_eq!(
        Outcome::Ran(report(vec![bad_check("pull")])).exit_status(),
        1
    );
}

#[test]
fn the_table_shows_each_check_and_the_verdict() {
    let t = report(vec![ok_check("pull"), bad_check("sgd_step")]).table();
    assert!(t.contains("CUDA driver 13.0, seed 42"), "{t}");
    assert!(t.contains("GPU 0: Test GPU, compute 9.0, 79.1 GiB"), "{t}");
    let pull = t.lines().find(|l| l.contains(" pull ")).unwrap();
    assert!(pull.trim_end().ends_with("ok"), "{pull}");
    let sgd = t.lines().find(|l| l.contains("sgd_step")).unwrap();
    assert!(sgd.contains("FAIL (worst at element 0)"), "{sgd}");
    assert!(t.contains("0 -> 1"), "{t}");
    // 2400 / 3000
    assert!(t.contains("0.80"), "{t}");
    assert!(t.contains("FAILED: 1 of 2 checks"), "{t}");

    let t = report(vec![ok_check("pull")]).table();
    assert!(t.contains("passed: 1 checks"), "{t}");
}

#[test]
fn the_table_names_a_problem() {
    let c = Check::new(
        1,
        "weighted_center",
        "4 workers",
        compare(&[f32::NAN], &[1.0]),
        F32_TOLERANCE,
    );
    let t = report(vec![c]).table();
    assert!(t.contains("FAIL: element 0: got NaN, reference 1"), "{t}");
}

#[test]
fn json_carries_status_and_report() {
    let out = Outcome::Ran(report(vec![bad_check("pull")])).render(true);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["report"]["seed"], 42);
    assert_eq!(v["report"]["checks"][0]["kernel"], "pull");
    assert_eq!(v["report"]["checks"][0]["passed"], false);
    assert_eq!(v["report"]["bandwidth"][0]["copy_gb_per_s"], 3000.0);

    let v: serde_json::Value =
        serde_json::from_str(&Outcome::NoDevice("the CUDA driver sees no GPU".into()).render(true))
            .unwrap();
    assert_eq!(v["status"], "no_device");
    assert_eq!(v["reason"], "the CUDA driver sees no GPU");

    let v: serde_json::Value = serde_json::from_str(&Outcome::NotBuilt.render(true)).unwrap();
    assert_eq!(v["status"], "not_built");
}

#[test]
fn no_device_is_one_line() {
    let out = Outcome::NoDevice("the CUDA driver sees no GPU".into()).render(false);
    assert_eq!(
        out,
        "grawa-train selftest: no GPU: the CUDA driver sees no GPU\n"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_cpu_build_says_why_there_is_nothing_to_test() {
    let out = Outcome::NotBuilt.render(false);
    assert!(
        out.starts_with("grawa-train selftest: nothing to test:"),
        "{out}"
    );
    assert!(out.contains("without the `cuda` feature"), "{out}");
    assert!(out.contains("--features cuda"), "{out}");
    assert_eq!(out.lines().count(), 1);

    let err = grawa_train::gpus::gpu_count().unwrap_err();
    assert!(err.contains("without the `cuda` feature"), "{err}");
    assert!(!err.contains('\n'));
}
