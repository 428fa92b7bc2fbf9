//! The modelled link (`--link`) in runs (in-process, synthetic data, the MLP): DDP's steps, a
//! GRAWA round, LSGD's broadcast and an async EASGD exchange carry the `link_ms` of their formulas
//! (docs/design.md section 7, written out here by hand; S from the model's parameters), and the
//! run spends it; under `async` a slow link does not slow the workers' steps, under `sync` it
//! does. Without `--link` nothing of it is written (and tests/reference_runs.rs holds the numbers).

mod run_support;

use std::path::Path;

use run_support::{events, json, run, run_config};
use serde_json::Value;

const BASE: [&str; 11] = [
    "--dataset",
    "synthetic",
    "--model",
    "mlp",
    "--synthetic-train",
    "2000",
    "--synthetic-test",
    "200",
    "--quiet",
    "--bn-recal-batches=1",
    "--lr=0.02",
];

/// 1 Gbit/s and 50 us: the MLP's 0.8 MB cost about 10 ms per all-reduce over 4 workers.
const LINK: &str = "1Gbit/s,50us";
const B: f64 = 1e9 / 8.0;
const L: f64 = 50e-6;

fn train(extra: &[&str], out: &Path) -> grawa_train::metrics::Summary {
    run(run_config(&[&BASE[..], extra].concat(), out), 120)
}

/// S: the bytes of the model's parameters (f32).
fn param_bytes(out: &Path) -> f64 {
    json(&out.join("config.json"))["parameters"]
        .as_f64()
        .unwrap()
        * 4.0
}

/// Ring all-reduce of s bytes over m: 2(m-1)/m s/B + 2(m-1) L.
fn ring_all_reduce(s: f64, m: f64) -> f64 {
    2.0 * (m - 1.0) / m * s / B + 2.0 * (m - 1.0) * L
}

/// Ring all-gather of s bytes in all over m: (m-1)/m s/B + (m-1) L.
fn ring_all_gather(s: f64, m: f64) -> f64 {
    (m - 1.0) / m * s / B + (m - 1.0) * L
}

/// Within 5 % of `want` seconds.
fn near(got_ms: f64, want_s: f64, what: &str) {
    let want = want_s * 1e3;
    assert!(
        (got_ms - want).abs() <= 0.05 * want,
        "{what}: link_ms {got_ms}, formula {want}"
    );
}

fn link_ms(e: &Value) -> f64 {
    e["link_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no link_ms: {e}"))
}

/// `--workers 4 --algo ddp --link 1Gbit/s,50us --steps 40`: every step's all-reduce is charged
/// the ring's time (20 steps per `steps` line), the summary adds them up, and the run spends
/// them.
#[test]
fn ddp_spends_the_ring_all_reduce_of_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let flags = [
        "--workers",
        "4",
        "--algo",
        "ddp",
        "--link",
        LINK,
        "--steps",
        "40",
    ];
    let s = train(&flags, &out);
    let step = ring_all_reduce(param_bytes(&out), 4.0);
    let lines = events(&out, "steps");
    assert_eq!(lines.len(), 8, "two lines per worker");
    for e in &lines {
        near(link_ms(e), 20.0 * step, "20 steps of DDP");
    }
    let total = s.link_seconds.expect("link_seconds");
    // Besides the 40 all-reduces: the statistics of the once-an-epoch meetings, a few us each.
    near(total * 1e3, 40.0 * step, "the run's link time");
    // Worker 0's steps 21 to 40 take at least their 20 all-reduces.
    let at = |n: u64| {
        let line = lines.iter().find(|e| e["worker"] == 0 && e["step"] == n);
        line.unwrap()["seconds"].as_f64().unwrap()
    };
    assert!(at(40) - at(20) >= 20.0 * step, "{lines:?}");
    assert!(s.bytes.expect("bytes") as f64 >= 40.0 * param_bytes(&out));
}

/// A GRAWA round (the statistics' all-gather, then the weighted all-reduce), an LSGD round (the
/// losses' all-gather, then the leader's broadcast) and an async EASGD exchange (S up, S back).
#[test]
fn rounds_carry_the_link_time_of_their_collectives() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--workers",
        "4",
        "--tau",
        "4",
        "--steps",
        "8",
        "--link",
        LINK,
    ];
    let run_of = |algo: &[&str], name: &str| {
        let out = dir.path().join(name);
        train(&[&common[..], algo].concat(), &out);
        let rounds = events(&out, "round");
        assert!(!rounds.is_empty(), "{name}: no round");
        (param_bytes(&out), rounds)
    };

    let (s, rounds) = run_of(&["--algo", "lgrawa"], "lgrawa");
    for r in &rounds {
        // Per worker: its step and its layer norms (4 workers' norms, worker-major).
        let numbers = 4 + r["norms"].as_array().unwrap().len();
        let want = ring_all_gather(8.0 * numbers as f64, 4.0) + ring_all_reduce(s, 4.0);
        near(link_ms(r), want, "a GRAWA round");
    }

    let (s, rounds) = run_of(&["--algo", "lsgd"], "lsgd");
    for r in &rounds {
        // Per worker: its step and its recent loss. The chain broadcast: S/B + (M-1) L.
        let want = ring_all_gather(8.0 * 8.0, 4.0) + s / B + 3.0 * L;
        near(link_ms(r), want, "an LSGD round");
    }

    let (s, rounds) = run_of(&["--algo", "easgd", "--schedule", "async"], "easgd");
    for r in &rounds {
        near(link_ms(r), 2.0 * (s / B + L), "an async EASGD exchange");
    }
}

/// EASGD over 2 workers, a round every step (a step takes a few ms). Under `async` the workers
/// do not wait for the link: on one whose exchange takes 3.3 s their images/s stays within noise
/// of a run without it, the run takes far less than its exchanges, and no reply arrives before
/// the run ends (none is applied, where the plain run applies them); on one of 35 ms the replies
/// do arrive and are applied. Under `sync` every round waits for the link: on the 35 ms one (about
/// 20 ms a round) the run takes at least the rounds' link time, at well under half the images/s.
#[test]
fn a_slow_link_slows_sync_rounds_and_not_async_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (slow, crawling) = ("50MB/s,1ms", "0.5MB/s,1ms");
    let base = ["--workers", "2", "--algo", "easgd", "--tau", "1"];
    let go = |schedule: &str, steps: &str, link: Option<&str>, name: &str| {
        let out = dir.path().join(name);
        let mut flags = base.to_vec();
        flags.extend(["--schedule", schedule, "--steps", steps]);
        if schedule == "async" {
            // Nobody held back by staleness: a worker waits only if the link makes it.
            flags.extend(["--max-staleness", "1000"]);
        }
        if let Some(l) = link {
            flags.extend(["--link", l]);
        }
        (train(&flags, &out), out)
    };
    let pulls = |out: &Path| events(out, "pull").len();

    // Long enough for images/s to average out a shared machine's noise.
    let (plain, plain_out) = go("async", "100", None, "async-plain");
    let (linked, out) = go("async", "100", Some(crawling), "async-crawling");
    let rounds_ms: f64 = events(&out, "round").iter().map(link_ms).sum();
    assert!(
        linked.train_seconds < rounds_ms / 1e3 / 10.0,
        "the async workers waited for the link: {} s for {rounds_ms} ms of exchanges",
        linked.train_seconds
    );
    let ratio = linked.images_per_second / plain.images_per_second;
    assert!(
        ratio > 0.5,
        "async images/s with the link / without: {ratio}"
    );
    assert!(pulls(&plain_out) > 0);
    assert_eq!(pulls(&out), 0, "a reply applied before its exchange's time");
    let (_, out) = go("async", "30", Some(slow), "async-slow");
    assert!(pulls(&out) > 0, "replies arrive once their time has come");
    // Without --link nothing of the link is written.
    let summary = json(&plain_out.join("summary.json"));
    assert!(summary.get("link_seconds").is_none() && summary.get("bytes").is_none());
    assert!(events(&plain_out, "round")
        .iter()
        .all(|r| r.get("link_ms").is_none()));

    let (plain, _) = go("sync", "30", None, "sync-plain");
    let (linked, out) = go("sync", "30", Some(slow), "sync-slow");
    let rounds_ms: f64 = events(&out, "round").iter().map(link_ms).sum();
    assert!(
        linked.train_seconds >= rounds_ms / 1e3,
        "sync rounds wait: {} s for {rounds_ms} ms",
        linked.train_seconds
    );
    let ratio = linked.images_per_second / plain.images_per_second;
    assert!(
        ratio < 0.5,
        "sync images/s with the link / without: {ratio}"
    );
}
