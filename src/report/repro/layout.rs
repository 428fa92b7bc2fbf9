//! The folder `scripts/reproduce.sh` writes, read back:
//!
//! ```text
//! OUT/manifest.txt                   key<TAB>value: command, mode, base (the setting the
//!                                    crowding and communication parts vary), and `note: TOPIC`
//!                                    lines (the script's words on its choices, shown as given)
//! OUT/machine.txt                    key: value lines about the machine
//! OUT/timings.tsv                    part<TAB>seconds<TAB>status<TAB>finished at<TAB>load average
//! OUT/grid/<setting>/<run>/          the learning-rate grid, scored on the validation split
//! OUT/lr.tsv                         the rates the grid chose (`--choose-lr`), kept: the script
//!                                    reads it; the report recomputes the choice from the grid
//! OUT/accuracy/<setting>/<run>/      every algorithm x seed, one folder per setting
//! OUT/crowding/<run>/                more workers, uneven speeds (the base setting's runs are
//!                                    the first count)
//! OUT/communication/<run>/           other tau (the base setting's runs are the default tau)
//! OUT/ablation/<variant>/<run>/      GRAWA with one knob changed from the base setting
//! ```
//!
//! A run folder is a folder with a `config.json`; one without `summary.json` is unfinished (still
//! running, interrupted, failed or diverged) and is listed, not used. Every finished run becomes
//! a record (`report::record`) tagged with its part and group: the folder within the part, or for
//! `crowding` and `communication` (whose runs sit directly in the part) the base setting they
//! vary, so the record says which setting it belongs to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::error::ReportError;
use crate::report::record::{records_of, RunRecord};
use crate::report::runs::RunData;

/// A finished run and where it sits.
pub struct Placed {
    pub part: String,
    pub group: String,
    pub run: RunData,
}

/// One line of `timings.tsv`: a part of the script, timed once per invocation.
pub struct Timing {
    pub part: String,
    pub seconds: f64,
    /// `done`, `interrupted` or `failed (exit N)`.
    pub status: String,
    pub finished: String,
    pub load: String,
}

/// Everything the report reads from the script's folder.
pub struct Layout {
    pub root: PathBuf,
    pub manifest: BTreeMap<String, String>,
    /// `(key, value)` in file order.
    pub machine: Vec<(String, String)>,
    pub timings: Vec<Timing>,
    /// Every finished run, part by part, each part's groups sorted by name.
    pub runs: Vec<Placed>,
    /// Run folders without `summary.json`.
    pub unfinished: Vec<PathBuf>,
}

/// Parts whose runs sit in a folder per group.
const GROUPED: [&str; 3] = ["grid", "accuracy", "ablation"];
/// Parts whose runs sit directly in them (they vary the base setting).
const FLAT: [&str; 2] = ["crowding", "communication"];

impl Layout {
    /// Reads the folder `root` written by `scripts/reproduce.sh`.
    pub fn load(root: &Path) -> Result<Self, ReportError> {
        if !root.is_dir() {
            return Err(ReportError::invalid(root, None, "not a folder"));
        }
        let manifest: BTreeMap<String, String> = read_pairs(&root.join("manifest.txt"), '\t')?
            .into_iter()
            .collect();
        let base = manifest.get("base").cloned().unwrap_or_default();
        let mut unfinished = Vec::new();
        let mut runs = Vec::new();
        for part in GROUPED {
            for d in subfolders(&root.join(part))?
                .into_iter()
                .filter(|d| !is_run(d))
            {
                let group = file_name(&d);
                for run in load_runs_in(&d, &mut unfinished)? {
                    runs.push(Placed {
                        part: part.to_string(),
                        group: group.clone(),
                        run,
                    });
                }
            }
        }
        for part in FLAT {
            for run in load_runs_in(&root.join(part), &mut unfinished)? {
                runs.push(Placed {
                    part: part.to_string(),
                    group: base.clone(),
                    run,
                });
            }
        }
        Ok(Layout {
            root: root.to_path_buf(),
            manifest,
            machine: read_pairs(&root.join("machine.txt"), ':')?,
            timings: read_timings(&root.join("timings.tsv"))?,
            runs,
            unfinished,
        })
    }

    /// The record of every finished run (`report::record`), in the order of [`Layout::runs`].
    pub fn records(&self) -> Vec<RunRecord> {
        let placed: Vec<(&str, &str, &RunData)> = self
            .runs
            .iter()
            .map(|p| (p.part.as_str(), p.group.as_str(), &p.run))
            .collect();
        records_of(&placed)
    }

    /// The run of the record `r` (by part, group and folder name).
    pub fn run_of(&self, r: &RunRecord) -> Option<&RunData> {
        self.runs
            .iter()
            .find(|p| {
                p.part == r.part
                    && p.group == r.group
                    && p.run.dir.file_name() == Some(std::ffi::OsStr::new(&r.run))
            })
            .map(|p| &p.run)
    }
}

fn is_run(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

fn file_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The folders directly in `dir`, sorted; none when `dir` does not exist.
fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ReportError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// The finished runs directly in `dir` (unfinished ones go to `unfinished`).
fn load_runs_in(dir: &Path, unfinished: &mut Vec<PathBuf>) -> Result<Vec<RunData>, ReportError> {
    let mut runs = Vec::new();
    for d in subfolders(dir)?.into_iter().filter(|d| is_run(d)) {
        if d.join("summary.json").is_file() {
            runs.push(RunData::load(&d)?);
        } else {
            unfinished.push(d);
        }
    }
    Ok(runs)
}

/// `key<sep>value` lines of `path` (none when it does not exist), trimmed; blank lines skipped.
fn read_pairs(path: &Path, sep: char) -> Result<Vec<(String, String)>, ReportError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(sep) {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.trim().to_string(), String::new()),
        })
        .collect())
}

fn read_timings(path: &Path) -> Result<Vec<Timing>, ReportError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            let seconds = f.get(1).and_then(|s| s.trim().parse::<f64>().ok());
            match (f.first(), seconds) {
                (Some(part), Some(seconds)) => Ok(Timing {
                    part: part.to_string(),
                    seconds,
                    status: f.get(2).unwrap_or(&"").to_string(),
                    finished: f.get(3).unwrap_or(&"").to_string(),
                    load: f.get(4).unwrap_or(&"").to_string(),
                }),
                _ => Err(ReportError::invalid(
                    path,
                    Some(i + 1),
                    "expected part<TAB>seconds<TAB>status<TAB>finished<TAB>load",
                )),
            }
        })
        .collect()
}
