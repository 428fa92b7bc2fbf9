//! plot: the expected SVG and PNG files, PNGs that are real PNGs of the chart size, SVGs that carry
//! the run labels, axis titles and worker legends.

mod report_support;

use std::path::Path;

use grawa_train::report::plot::CHART_SIZE;
use grawa_train::report::{load_runs, plot, plot_dirs};
use report_support::{three_runs, write_run, Fixture, DDP_METRICS};

fn ddp_run(root: &Path, name: &str) -> std::path::PathBuf {
    write_run(
        root,
        name,
        &Fixture {
            algo: "ddp",
            schedule: "sync",
            seed: 0,
            test_accuracy: 0.9,
            test_loss: 0.3,
            wall_seconds: 2.0,
            rounds: 1,
            lambda_max: None,
        },
        DDP_METRICS,
    )
}

/// The contents of the SVG's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Checks the PNG signature and reads the width and height from the IHDR chunk.
fn png_size(path: &Path) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR", "{}", path.display());
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20), bytes.len())
}

#[test]
fn writes_every_chart_as_svg_and_png() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = three_runs(tmp.path());
    dirs.push(ddp_run(tmp.path(), "d-ddp-0"));
    let out = tmp.path().join("plots/nested");
    let files = plot_dirs(&dirs, &out).unwrap();

    let mut names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = [
        "test_accuracy_vs_time",
        "test_accuracy_vs_rounds",
        "test_loss_vs_time",
        "test_loss_vs_rounds",
        // One weights chart per GRAWA run; none for DDP (its rounds carry no weights).
        "weights_lgrawa_s0",
        "weights_lgrawa_s1",
        "weights_mgrawa_async_s0",
    ]
    .iter()
    .flat_map(|s| [format!("{s}.png"), format!("{s}.svg")])
    .collect();
    expected.sort();
    assert_eq!(names, expected);

    for f in &files {
        assert!(f.starts_with(&out) && f.is_file(), "{}", f.display());
        if f.extension().unwrap() == "png" {
            let (w, h, len) = png_size(f);
            assert_eq!((w, h), CHART_SIZE, "{}", f.display());
            assert!(len > 10_000, "{}: only {len} bytes", f.display());
        } else {
            let svg = std::fs::read_to_string(f).unwrap();
            assert!(svg.starts_with("<svg"), "{}", f.display());
            assert!(svg.len() > 2_000, "{}", f.display());
        }
    }
}

#[test]
fn svgs_carry_run_labels_axis_titles_and_worker_legends() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = three_runs(tmp.path());
    dirs.push(ddp_run(tmp.path(), "d-ddp-0"));
    let out = tmp.path().join("plots");
    plot_dirs(&dirs, &out).unwrap();
    let read = |name: &str| svg_texts(&std::fs::read_to_string(out.join(name)).unwrap());
    let has = |texts: &[String], t: &str| texts.iter().any(|x| x == t);

    for chart in [
        "test_accuracy_vs_time.svg",
        "test_accuracy_vs_rounds.svg",
        "test_loss_vs_time.svg",
        "test_loss_vs_rounds.svg",
    ] {
        let svg = read(chart);
        for label in ["lgrawa s0", "lgrawa s1", "mgrawa (async) s0", "ddp s0"] {
            assert!(has(&svg, label), "{chart} lacks {label}: {svg:?}");
        }
    }
    let acc = read("test_accuracy_vs_time.svg");
    assert!(has(&acc, "test accuracy (%)") && has(&acc, "training time (s)"));
    assert!(has(&acc, "test accuracy (%) against training time"));
    let loss = read("test_loss_vs_rounds.svg");
    assert!(has(&loss, "test loss") && has(&loss, "rounds"));

    let w = read("weights_lgrawa_s0.svg");
    assert!(has(
        &w,
        "GRAWA weights per worker: lgrawa s0 (mean over 2 layers)"
    ));
    for label in [
        "worker 0",
        "worker 1",
        "worker 2",
        "uniform 1/3",
        "round",
        "weight",
    ] {
        assert!(has(&w, label), "weights chart lacks {label}: {w:?}");
    }
    let w = read("weights_mgrawa_async_s0.svg");
    assert!(has(&w, "GRAWA weights per worker: mgrawa (async) s0"));
}

#[test]
fn runs_sharing_a_label_are_told_apart_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ddp_run(tmp.path(), "first");
    let b = ddp_run(tmp.path(), "second");
    let out = tmp.path().join("plots");
    plot(&load_runs(&[a, b]).unwrap(), &out).unwrap();
    let svg = svg_texts(&std::fs::read_to_string(out.join("test_loss_vs_time.svg")).unwrap());
    assert!(svg.iter().any(|t| t == "ddp s0 (first)"), "{svg:?}");
    assert!(svg.iter().any(|t| t == "ddp s0 (second)"), "{svg:?}");
}

#[test]
fn no_runs_or_an_unwritable_folder_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(plot(&[], tmp.path()).is_err());
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let runs = load_runs(&[ddp_run(tmp.path(), "r")]).unwrap();
    let msg = plot(&runs, &file.join("plots")).unwrap_err().to_string();
    assert!(msg.contains("a-file"), "{msg}");
}

#[test]
fn runs_with_a_modelled_link_get_the_link_panel() {
    let tmp = tempfile::tempdir().unwrap();
    // Without a link: no such chart.
    let out = tmp.path().join("plain");
    let files = plot_dirs(&three_runs(tmp.path()), &out).unwrap();
    assert!(!files.iter().any(|f| f.to_string_lossy().contains("link")));
    // With one: accuracy over cumulative link seconds, two panels, both labelled.
    let runs = [
        report_support::write_repro_run(
            tmp.path(),
            "m",
            &report_support::repro_run("mgrawa", 1, 0.9),
        ),
        report_support::write_repro_run(tmp.path(), "d", &report_support::repro_run("ddp", 1, 0.8)),
    ];
    let out = tmp.path().join("link");
    let files = plot_dirs(&runs, &out).unwrap();
    let svg = out.join("test_accuracy_and_link_vs_time.svg");
    let png = out.join("test_accuracy_and_link_vs_time.png");
    assert!(files.contains(&svg) && files.contains(&png), "{files:?}");
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for want in [
        "test accuracy against training time",
        "modelled link time, cumulative (--link)",
        "link seconds",
        "mgrawa s1",
        "ddp s1",
    ] {
        assert!(texts.iter().any(|t| t == want), "no '{want}' in {texts:?}");
    }
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Twice as tall as one panel's half: 1.5 chart heights (width 960, height 900 in the IHDR).
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(height, CHART_SIZE.1 * 3 / 2);
}
