//! compare: rows sorted by method then seed, mean ± sample std per method against hand-computed
//! numbers, and the CSV and Markdown files.

mod report_support;

use grawa_train::report::{compare, compare_dirs, load_runs, MeanStd};
use report_support::three_runs;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn mean_and_sample_std_by_hand() {
    // [1, 2, 4]: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9; / (n - 1) = 7/3.
    let m = MeanStd::of(&[1.0, 2.0, 4.0]);
    assert_eq!(m.n, 3);
    assert!(close(m.mean, 7.0 / 3.0));
    assert!(close(m.std.unwrap(), (7.0f64 / 3.0).sqrt()));
    let one = MeanStd::of(&[0.5]);
    assert_eq!((one.mean, one.std), (0.5, None));
}

#[test]
fn rows_sorted_by_method_then_seed_and_grouped_means() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = load_runs(&three_runs(tmp.path())).unwrap();
    let cmp = compare(&runs);

    let order: Vec<(&str, u64)> = cmp
        .rows
        .iter()
        .map(|r| (r.method.as_str(), r.seed))
        .collect();
    assert_eq!(order, [("lgrawa", 0), ("lgrawa", 1), ("mgrawa (async)", 0)]);
    assert_eq!(cmp.rows[0].lambda_max, Some(12.0));
    assert_eq!(cmp.rows[2].lambda_max, None);
    assert_eq!(cmp.rows[2].rounds, 7);
    assert!(cmp.rows[0].dir.ends_with("c-lgrawa-0"));

    // lgrawa over seeds 0 and 1: accuracy 0.90, 0.94 -> mean 0.92, std |0.04| / sqrt(2) = 0.028284;
    // loss 0.30, 0.20 -> 0.25 ± 0.070711; wall 10, 14 -> 12 ± 2.828427; lambda_max 12, 10 ->
    // 11 ± 1.414214.
    assert_eq!(cmp.methods.len(), 2);
    let l = &cmp.methods[0];
    assert_eq!((l.method.as_str(), l.runs), ("lgrawa", 2));
    assert!(close(l.test_accuracy.mean, 0.92));
    assert!(close(l.test_accuracy.std.unwrap(), 0.04 / 2f64.sqrt()));
    assert!(close(l.test_loss.mean, 0.25));
    assert!(close(l.test_loss.std.unwrap(), 0.1 / 2f64.sqrt()));
    assert!(close(l.wall_seconds.mean, 12.0));
    assert!(close(l.wall_seconds.std.unwrap(), 4.0 / 2f64.sqrt()));
    let lam = l.lambda_max.unwrap();
    assert!(close(lam.mean, 11.0) && close(lam.std.unwrap(), 2f64.sqrt()));

    // One async MGRAWA run: no spread, and no lambda_max.
    let m = &cmp.methods[1];
    assert_eq!((m.method.as_str(), m.runs), ("mgrawa (async)", 1));
    assert_eq!(m.test_accuracy.mean, 0.85);
    assert_eq!(m.test_accuracy.std, None);
    assert!(m.lambda_max.is_none());
}

#[test]
fn text_table_is_aligned_and_shows_the_hand_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let text = compare_dirs(&three_runs(tmp.path()), None, None).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "method          seed  test acc (%)  test loss  lambda_max  rounds  wall (s)"
    );
    assert_eq!(
        lines[1],
        "lgrawa             0         90.00     0.3000      12.000       4      10.0"
    );
    assert_eq!(
        lines[2],
        "lgrawa             1         94.00     0.2000      10.000       4      14.0"
    );
    assert_eq!(
        lines[3],
        "mgrawa (async)     0         85.00     0.4500           -       7       9.5"
    );
    assert!(lines[5].starts_with("mean ± std over seeds"), "{text}");
    assert_eq!(
        lines[7],
        "lgrawa             2  92.00 ± 2.83  0.2500 ± 0.0707  11.000 ± 1.414  12.0 ± 2.8"
    );
    assert_eq!(
        lines[8],
        "mgrawa (async)     1         85.00           0.4500               -         9.5"
    );
}

#[test]
fn writes_csv_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = three_runs(tmp.path());
    let csv_path = tmp.path().join("out/compare.csv");
    let md_path = tmp.path().join("compare.md");
    std::fs::create_dir_all(csv_path.parent().unwrap()).unwrap();
    compare_dirs(&dirs, Some(&csv_path), Some(&md_path)).unwrap();

    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "method",
            "algo",
            "schedule",
            "seed",
            "status",
            "test_accuracy",
            "test_loss",
            "lambda_max",
            "rounds",
            "wall_seconds",
            "run",
            "val_accuracy",
            "link_seconds",
            "worker_speed"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][0], "lgrawa");
    assert_eq!(&rows[0][5], "0.9");
    assert_eq!(&rows[0][7], "12");
    assert!(rows[0][10].ends_with("c-lgrawa-0"));
    assert_eq!(
        rows[2].iter().take(10).collect::<Vec<_>>(),
        [
            "mgrawa (async)",
            "mgrawa",
            "async",
            "0",
            "done",
            "0.85",
            "0.45",
            "",
            "7",
            "9.5"
        ]
    );

    let md = std::fs::read_to_string(&md_path).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "### Runs");
    assert_eq!(
        lines[2],
        "| method         | seed | test acc (%) | test loss | lambda_max | rounds | wall (s) |"
    );
    assert_eq!(
        lines[3],
        "| :------------- | ---: | -----------: | --------: | ---------: | -----: | -------: |"
    );
    assert_eq!(
        lines[6],
        "| mgrawa (async) |    0 |        85.00 |    0.4500 |          - |      7 |      9.5 |"
    );
    assert!(md.contains("### Mean ± std over seeds"));
    assert!(md.contains("| lgrawa         |    2 | 92.00 ± 2.83 | 0.2500 ± 0.0707 | 11.000 ± 1.414 | 12.0 ± 2.8 |"), "{md}");
    assert!(!tmp.path().join("compare.md.tmp").exists());
}

#[test]
fn no_runs_or_a_bad_run_is_an_error() {
    let none: [&str; 0] = [];
    assert!(compare_dirs(&none, None, None).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = three_runs(tmp.path());
    dirs.push(tmp.path().join("not-a-run"));
    let msg = compare_dirs(&dirs, None, None).unwrap_err().to_string();
    assert!(msg.contains("not-a-run"), "{msg}");
}

#[test]
fn validation_link_speeds_per_class_and_the_verdict_when_runs_have_them() {
    use report_support::{repro_run, write_repro_run, ReproRun};
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    // MGRAWA 0.90, 0.91, 0.92 against DDP 0.80, 0.81, 0.82: difference 10 points, both stds 1
    // point, Welch t = 10 / sqrt(2/3) = 12.25 at 4 df: p = 2.5e-4 (SciPy ttest_ind(equal_var=False)
    // gives 0.000256); one pair, so Holm leaves it: for GRAWA, supported. Interval 10 ± t_{0.975,4}
    // x 0.8165 = 10 ± 2.27 -> [7.73, 12.27].
    for seed in 0..3u64 {
        let a = 0.01 * seed as f64;
        dirs.push(write_repro_run(
            tmp.path(),
            &format!("m{seed}"),
            &repro_run("mgrawa", seed, 0.90 + a),
        ));
        dirs.push(write_repro_run(
            tmp.path(),
            &format!("d{seed}"),
            &ReproRun {
                worker_speed: Some(vec![1.0, 0.5]),
                ..repro_run("ddp", seed, 0.80 + a)
            },
        ));
    }
    let s = std::fs::read_to_string(dirs[0].join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
    v["per_class_accuracy"] = serde_json::json!([0.95, 0.85]);
    std::fs::write(dirs[0].join("summary.json"), v.to_string()).unwrap();

    let text = compare_dirs(&dirs, None, None).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "method  seed  test acc (%)  val acc (%)  test loss  lambda_max  rounds  wall (s)  link (s)  worker speeds"
    );
    // Validation is accuracy - 0.01; link: 6 rounds x 250 ms.
    assert_eq!(
        lines[1],
        "ddp        0         80.00        79.00     0.3000       8.000       0      61.5       1.5          1,0.5"
    );
    assert!(text.contains("per-class test accuracy (%)\nmethod  seed  class 0  class 1\nmgrawa     0    95.00    85.00\n"), "{text}");
    assert!(
        text.contains("GRAWA against the others on final test accuracy (Welch's t, p Holm-corrected over 1 pair): supported"),
        "{text}"
    );
    assert!(
        text.contains(
            "mgrawa - ddp                         +10.00  [+7.73, +12.27]     0.000  for GRAWA"
        ),
        "{text}"
    );
}
