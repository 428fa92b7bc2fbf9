//! TensorBoard event files: read back record by record with a reader written here (its own
//! CRC-32C and protobuf decoding), every checksum checked, every scalar compared with the run's
//! metrics.jsonl; and, where the `tensorboard` Python package is installed, loaded by its own
//! reader (`EventAccumulator`). Without it that part says so and passes.

mod run_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use run_support::{argv, events, run_bin};
use serde_json::Value;

/// CRC-32C bit by bit (polynomial 0x82f63b78, reflected), as RFC 3720 defines it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of an event file, each checked against both its CRCs.
fn records(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(
            len_crc,
            masked(len_bytes),
            "length CRC of the record at {at}"
        );
        let data = &bytes[at + 12..at + 12 + len];
        let data_crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, masked(data), "data CRC of the record at {at}");
        out.push(data.to_vec());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len(), "no trailing bytes");
    out
}

/// A protobuf field: (number, varint value or fixed bits, or bytes).
enum Field {
    Int(u64),
    Bytes(Vec<u8>),
}

fn fields(mut b: &[u8]) -> Vec<(u64, Field)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let f = match key & 7 {
            0 => Field::Int(varint(&mut b)),
            1 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                b = &b[8..];
                Field::Int(v)
            }
            5 => {
                let v = u32::from_le_bytes(b[..4].try_into().unwrap());
                b = &b[4..];
                Field::Int(v as u64)
            }
            2 => {
                let n = varint(&mut b) as usize;
                let v = b[..n].to_vec();
                b = &b[n..];
                Field::Bytes(v)
            }
            t => panic!("wire type {t}"),
        };
        out.push((key >> 3, f));
    }
    out
}

/// One decoded event.
#[derive(Debug, Default)]
struct Event {
    wall_time: f64,
    step: u64,
    file_version: Option<String>,
    scalars: Vec<(String, f32)>,
    session_start: bool,
}

fn decode(data: &[u8]) -> Event {
    let mut e = Event::default();
    for (n, f) in fields(data) {
        match (n, f) {
            (1, Field::Int(bits)) => e.wall_time = f64::from_bits(bits),
            (2, Field::Int(v)) => e.step = v,
            (3, Field::Bytes(s)) => e.file_version = Some(String::from_utf8(s).unwrap()),
            (5, Field::Bytes(summary)) => {
                for (_, value) in fields(&summary) {
                    let Field::Bytes(value) = value else {
                        panic!("Summary.value")
                    };
                    let (mut tag, mut v) = (String::new(), f32::NAN);
                    for (k, f) in fields(&value) {
                        match (k, f) {
                            (1, Field::Bytes(t)) => tag = String::from_utf8(t).unwrap(),
                            (2, Field::Int(bits)) => v = f32::from_bits(bits as u32),
                            _ => panic!("unexpected Summary.Value field {k}"),
                        }
                    }
                    e.scalars.push((tag, v));
                }
            }
            (6, Field::Bytes(log)) => {
                e.session_start = matches!(fields(&log).first(), Some((1, Field::Int(1))));
            }
            (n, _) => panic!("unexpected Event field {n}"),
        }
    }
    e
}

fn event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// (tag, step) -> value over every scalar of the file.
fn scalars(events: &[Event]) -> BTreeMap<(String, u64), f32> {
    let mut out = BTreeMap::new();
    for e in events {
        for (tag, v) in &e.scalars {
            assert!(
                out.insert((tag.clone(), e.step), *v).is_none(),
                "{tag} twice at {}",
                e.step
            );
        }
    }
    out
}

/// Adds (tag, step) -> value when the metrics value is a number (a null, NaN in the run, is
/// left out of the event file too).
fn put(want: &mut BTreeMap<(String, u64), f32>, tag: impl Into<String>, step: u64, v: &Value) {
    if let Some(x) = v.as_f64() {
        want.insert((tag.into(), step), x as f32);
    }
}

/// What the event file of the run in `out` should hold, from its metrics.jsonl (two workers).
fn expected(out: &Path) -> BTreeMap<(String, u64), f32> {
    let mut want = BTreeMap::new();
    // Training windows at steps 20, 40, 60: the workers' mean loss and lr, summed images/s.
    let steps = events(out, "steps");
    for s in [20u64, 40, 60] {
        let at: Vec<&Value> = steps.iter().filter(|v| v["step"] == s).collect();
        assert_eq!(at.len(), 2);
        let mean = |k: &str| (at.iter().map(|v| v[k].as_f64().unwrap()).sum::<f64>() / 2.0) as f32;
        let sum = at
            .iter()
            .map(|v| v["images_per_second"].as_f64().unwrap())
            .sum::<f64>() as f32;
        want.insert(("train/loss".to_string(), s), mean("train_loss"));
        want.insert(("train/lr".to_string(), s), mean("lr"));
        want.insert(("train/images_per_second".to_string(), s), sum);
    }
    // Evaluations and rounds at total_steps / 2 workers.
    for e in events(out, "eval") {
        let s = e["total_steps"].as_u64().unwrap() / 2;
        put(&mut want, "test/accuracy", s, &e["test_accuracy"]);
        put(&mut want, "test/loss", s, &e["test_loss"]);
        put(&mut want, "train/loss_since_eval", s, &e["train_loss"]);
        put(&mut want, "test/center_accuracy", s, &e["center_accuracy"]);
        for (i, a) in e["worker_accuracy"].as_array().unwrap().iter().enumerate() {
            put(&mut want, format!("test/worker_accuracy/worker{i}"), s, a);
        }
        for (i, a) in e["per_class"].as_array().unwrap().iter().enumerate() {
            put(&mut want, format!("test/class_accuracy/class{i}"), s, a);
        }
    }
    let rounds = events(out, "round");
    assert_eq!(rounds.len(), 6);
    for r in rounds {
        let s = r["total_steps"].as_u64().unwrap() / 2;
        // LGRAWA: worker-major per layer; each worker's mean over its layers.
        let w: Vec<f64> = r["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let per = w.len() / 2;
        for i in 0..2 {
            let mean = w[i * per..(i + 1) * per].iter().sum::<f64>() / per as f64;
            want.insert((format!("round/weight/worker{i}"), s), mean as f32);
        }
        for k in [
            "lambda",
            "gather_ms",
            "compute_ms",
            "scatter_ms",
            "link_ms",
            "staleness",
        ] {
            put(&mut want, format!("round/{k}"), s, &r[k]);
        }
    }
    want
}

/// Two LGRAWA workers over a modelled link: every scalar of the event file is a figure of
/// metrics.jsonl, and every figure the file should hold is there.
#[test]
fn the_event_file_holds_the_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = run_bin(&argv(
        &[
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--workers",
            "2",
            "--algo",
            "lgrawa",
            "--steps",
            "60",
            "--tau",
            "10",
            "--eval-every",
            "20",
            "--eval-workers",
            "--per-class",
            "--link",
            "10gbe",
            "--synthetic-train",
            "1000",
            "--synthetic-test",
            "200",
            "--batch-size",
            "16",
            "--threads",
            "2",
            "--quiet",
        ],
        &out,
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = event_file(&out);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let secs: u64 = name.split('.').nth(3).unwrap().parse().unwrap();
    let decoded: Vec<Event> = records(&path).iter().map(|r| decode(r)).collect();
    assert_eq!(decoded[0].file_version.as_deref(), Some("brain.Event:2"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for e in &decoded {
        assert!(
            e.wall_time >= secs as f64 && e.wall_time <= now,
            "real wall time: {}",
            e.wall_time
        );
    }
    let got = scalars(&decoded);
    let want = expected(&out);
    assert_eq!(got, want);
    python_reader_agrees(&out, &got);
}

/// The flatness figures join the newest file; a resumed run's file starts with a session start
/// after its checkpoint's step, so TensorBoard drops what the earlier file holds from there on.
#[test]
fn flatness_and_resumed_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut tb = grawa_train::tensorboard::Scalars::create(dir, 4, 4, None, None).unwrap();
    tb.finish().unwrap();
    drop(tb);
    std::thread::sleep(std::time::Duration::from_millis(10));
    let mut resumed = grawa_train::tensorboard::Scalars::create(dir, 4, 4, None, Some(7)).unwrap();
    resumed.finish().unwrap();
    drop(resumed);
    let report = grawa_train::flatness::FlatnessReport {
        lambda_max: 12.5,
        ritz_sum: 100.25,
        hutchinson_trace: 80.0,
        hutchinson_stderr: 1.0,
        iterations: 1,
        starts: 1,
        samples: 1,
        hutchinson: 1,
        loss: 0.5,
        parameters: 1,
        products: 1,
        kinks: 0,
        per_start: Vec::new(),
        seconds: 0.0,
    };
    grawa_train::tensorboard::record_flatness(dir, 30, &report).unwrap();
    let files = grawa_train::tensorboard::event_files(dir);
    assert_eq!(files.len(), 2);
    let first: Vec<Event> = records(&files[0]).iter().map(|r| decode(r)).collect();
    assert_eq!(first.len(), 1, "the first file is untouched");
    let second: Vec<Event> = records(&files[1]).iter().map(|r| decode(r)).collect();
    assert!(second[1].session_start && second[1].step == 7);
    let got = scalars(&second);
    assert_eq!(got[&("flatness/lambda_max".to_string(), 30)], 12.5);
    assert_eq!(got[&("flatness/ritz_sum".to_string(), 30)], 100.25);
    assert_eq!(got[&("flatness/hutchinson_trace".to_string(), 30)], 80.0);
}

#[test]
fn no_tensorboard_writes_no_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = run_bin(&argv(
        &[
            "--dataset",
            "synthetic",
            "--model",
            "mlp",
            "--steps",
            "5",
            "--synthetic-train",
            "200",
            "--synthetic-test",
            "50",
            "--batch-size",
            "16",
            "--no-tensorboard",
            "--quiet",
        ],
        &out,
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(grawa_train::tensorboard::event_files(&out).is_empty());
    assert_eq!(
        run_support::json(&out.join("config.json"))["tensorboard"],
        false
    );
}

/// TensorBoard's own reader on the run's folder, when Python has the `tensorboard` package
/// (GRAWA_TB_PYTHON names the interpreter; default python3). Its scalars must be ours.
fn python_reader_agrees(out: &Path, ours: &BTreeMap<(String, u64), f32>) {
    let asked = std::env::var("GRAWA_TB_PYTHON").ok();
    let python = asked.clone().unwrap_or_else(|| "python3".into());
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;
    let probe = std::process::Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        // Named explicitly, the reader must be there; by default its absence only skips.
        assert!(
            asked.is_none(),
            "GRAWA_TB_PYTHON={python} has no tensorboard package"
        );
        eprintln!(
            "tensorboard (Python) not installed for {python}: TensorBoard's own reader not run"
        );
        return;
    }
    let o = std::process::Command::new(&python)
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs: BTreeMap<String, Vec<(u64, f32)>> = serde_json::from_slice(&o.stdout).unwrap();
    let mut flat = BTreeMap::new();
    for (tag, points) in theirs {
        for (step, v) in points {
            flat.insert((tag.clone(), step), v);
        }
    }
    assert_eq!(&flat, ours, "EventAccumulator reads what we wrote");
}
