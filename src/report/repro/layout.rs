//! The folder `scripts/reproduce.sh` writes, read back:
//!
//! ```text
//! OUT/manifest.txt                   key<TAB>value: command, mode, base (the setting the MLP
//!                                    parts vary), target_fraction
//! OUT/machine.txt                    key: value lines about the machine
//! OUT/timings.tsv                    part<TAB>seconds<TAB>status<TAB>finished at<TAB>load average
//! OUT/accuracy/<setting>/<run>/      every algorithm x seed, one folder per setting
//! OUT/crowding/<run>/                more workers (the base setting's runs are the first count)
//! OUT/communication/<run>/           other tau (the base setting's runs are the default tau)
//! OUT/ablation/<variant>/<run>/      GRAWA with one knob changed from the base setting
//! ```
//!
//! A run folder is a folder with a `config.json`; one without `summary.json` is unfinished (still
//! running, interrupted, failed or diverged) and is listed, not used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::error::ReportError;
use crate::report::runs::RunData;

/// One group of runs under a folder (a setting, an ablation variant, a part).
pub struct Group {
    /// The folder's name (`mnist-mlp`, `accumulated`, `crowding`).
    pub name: String,
    pub runs: Vec<RunData>,
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
    /// `accuracy/<setting>`, sorted by name.
    pub settings: Vec<Group>,
    pub crowding: Vec<RunData>,
    pub communication: Vec<RunData>,
    /// `ablation/<variant>`, sorted by name.
    pub ablations: Vec<Group>,
    /// Run folders without `summary.json`.
    pub unfinished: Vec<PathBuf>,
}

impl Layout {
    /// Reads the folder `root` written by `scripts/reproduce.sh`.
    pub fn load(root: &Path) -> Result<Self, ReportError> {
        if !root.is_dir() {
            return Err(ReportError::invalid(root, None, "not a folder"));
        }
        let mut unfinished = Vec::new();
        let mut groups = |part: &str| -> Result<Vec<Group>, ReportError> {
            subfolders(&root.join(part))?
                .into_iter()
                .filter(|d| !is_run(d))
                .map(|d| {
                    Ok(Group {
                        name: file_name(&d),
                        runs: load_runs_in(&d, &mut unfinished)?,
                    })
                })
                .filter(|g| g.as_ref().map_or(true, |g| !g.runs.is_empty()))
                .collect()
        };
        let settings = groups("accuracy")?;
        let ablations = groups("ablation")?;
        let crowding = load_runs_in(&root.join("crowding"), &mut unfinished)?;
        let communication = load_runs_in(&root.join("communication"), &mut unfinished)?;
        Ok(Layout {
            root: root.to_path_buf(),
            manifest: read_pairs(&root.join("manifest.txt"), '\t')?
                .into_iter()
                .collect(),
            machine: read_pairs(&root.join("machine.txt"), ':')?,
            timings: read_timings(&root.join("timings.tsv"))?,
            settings,
            crowding,
            communication,
            ablations,
            unfinished,
        })
    }

    /// The setting the MLP parts (crowding, communication, ablations) vary: `base` in the
    /// manifest.
    pub fn base(&self) -> Option<&Group> {
        let name = self.manifest.get("base")?;
        self.settings.iter().find(|g| &g.name == name)
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
