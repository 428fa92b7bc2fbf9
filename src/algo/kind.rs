//! Names and settings: which algorithm, which schedule, and the resolved hyper-parameters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `--algo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlgoKind {
    /// One worker, plain SGD (the default with one worker).
    Sgd,
    Mgrawa,
    Lgrawa,
    Ddp,
    DdpSam,
    LocalSgd,
    Easgd,
    Lsgd,
}

impl AlgoKind {
    /// Every algorithm, as `--help` lists them.
    pub const ALL: [AlgoKind; 8] = [
        AlgoKind::Sgd,
        AlgoKind::Mgrawa,
        AlgoKind::Lgrawa,
        AlgoKind::Ddp,
        AlgoKind::DdpSam,
        AlgoKind::LocalSgd,
        AlgoKind::Easgd,
        AlgoKind::Lsgd,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AlgoKind::Sgd => "sgd",
            AlgoKind::Mgrawa => "mgrawa",
            AlgoKind::Lgrawa => "lgrawa",
            AlgoKind::Ddp => "ddp",
            AlgoKind::DdpSam => "ddp-sam",
            AlgoKind::LocalSgd => "local-sgd",
            AlgoKind::Easgd => "easgd",
            AlgoKind::Lsgd => "lsgd",
        }
    }

    /// True for the GRAWA variants.
    pub fn is_grawa(self) -> bool {
        matches!(self, AlgoKind::Mgrawa | AlgoKind::Lgrawa)
    }

    /// True for algorithms that average parameters in rounds every `tau` steps.
    pub fn has_rounds(self) -> bool {
        self.default(AlgoFlag::Tau).is_some()
    }

    /// This algorithm's default for `flag`, `None` where the flag does not apply. The one table
    /// of the algorithms' settings (docs/design.md section 3): validation, `--help` and the
    /// resolved configuration all read it.
    pub fn default(self, flag: AlgoFlag) -> Option<f64> {
        use AlgoFlag::*;
        use AlgoKind::*;
        match (flag, self) {
            (Tau, Mgrawa | Lgrawa | LocalSgd) => Some(32.0),
            (Tau, Easgd | Lsgd) => Some(4.0),
            (Pull, Mgrawa | Lgrawa) => Some(0.5),
            (Pull, Lsgd) => Some(0.1),
            (Prox, Mgrawa | Lgrawa) => Some(0.01),
            (Prox, Lsgd) => Some(0.1),
            (Beta, Easgd) => Some(0.1),
            (Rho, DdpSam) => Some(0.05),
            (WeightPower, Mgrawa | Lgrawa) => Some(1.0),
            _ => None,
        }
    }

    /// The schedules this algorithm can run under: gradient all-reduce needs every worker at every
    /// step, so DDP and SAM are synchronous only.
    pub fn schedules(self) -> &'static [ScheduleKind] {
        if self.has_rounds() {
            &[
                ScheduleKind::Sync,
                ScheduleKind::Permits,
                ScheduleKind::Async,
            ]
        } else {
            &[ScheduleKind::Sync]
        }
    }
}

impl fmt::Display for AlgoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AlgoKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AlgoKind::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = AlgoKind::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown algorithm '{s}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A flag that only some algorithms take; [`AlgoKind::default`] says which, and with what default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoFlag {
    Tau,
    Pull,
    Prox,
    Beta,
    Rho,
    WeightPower,
}

impl AlgoFlag {
    /// The flag's name on the command line, without dashes.
    pub fn name(self) -> &'static str {
        match self {
            AlgoFlag::Tau => "tau",
            AlgoFlag::Pull => "pull",
            AlgoFlag::Prox => "prox",
            AlgoFlag::Beta => "beta",
            AlgoFlag::Rho => "rho",
            AlgoFlag::WeightPower => "weight-power",
        }
    }

    /// The algorithms that take the flag, as a phrase: "mgrawa, lgrawa and lsgd".
    pub fn takers(self) -> String {
        let names: Vec<&str> = AlgoKind::ALL
            .iter()
            .filter(|k| k.default(self).is_some())
            .map(|k| k.name())
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            Some((only, _)) => only.to_string(),
            None => String::new(),
        }
    }

    /// The defaults, grouped by value: "32 for mgrawa, lgrawa, local-sgd; 4 for easgd, lsgd".
    pub fn defaults(self) -> String {
        let mut groups: Vec<(f64, Vec<&str>)> = Vec::new();
        for k in AlgoKind::ALL {
            if let Some(v) = k.default(self) {
                match groups.iter_mut().find(|(g, _)| *g == v) {
                    Some((_, names)) => names.push(k.name()),
                    None => groups.push((v, vec![k.name()])),
                }
            }
        }
        groups
            .iter()
            .map(|(v, names)| format!("{v} for {}", names.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The `--help` line: what the flag means, then its defaults from the table.
    pub fn help(self) -> String {
        let what = match self {
            AlgoFlag::Tau => "Local steps between rounds.",
            AlgoFlag::Pull => {
                "Pull strength lambda toward the center (GRAWA) or the leader (lsgd)."
            }
            AlgoFlag::Prox => {
                "Proximal coefficient p: after every local step x <- (1 - p/tau) x + (p/tau) z \
                 toward the last center or leader; 0 turns it off."
            }
            AlgoFlag::Beta => "EASGD's moving rate beta.",
            AlgoFlag::Rho => "SAM's neighbourhood radius rho.",
            AlgoFlag::WeightPower => "GRAWA weights are proportional to 1/norm^POWER: 1 or 2.",
        };
        format!("{what} Default: {}.", self.defaults())
    }
}

/// `--schedule`: how local steps and rounds interleave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Every worker takes exactly tau steps, then all meet.
    Sync,
    /// M*tau step permits per round, first come first served, then all meet.
    Permits,
    /// Nobody waits: snapshots every tau steps, pulls toward the newest center.
    Async,
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScheduleKind::Sync => "sync",
            ScheduleKind::Permits => "permits",
            ScheduleKind::Async => "async",
        })
    }
}

impl FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(ScheduleKind::Sync),
            "permits" => Ok(ScheduleKind::Permits),
            "async" => Ok(ScheduleKind::Async),
            _ => Err(format!(
                "unknown schedule '{s}': expected one of sync, permits, async"
            )),
        }
    }
}

/// `--norm-source`: where GRAWA's gradient norms come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormSource {
    /// A fresh probe batch from the whole training set at the round.
    Probe,
    /// A bias-corrected average of the local steps' gradient norms since the last round.
    Accumulated,
}

impl FromStr for NormSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "probe" => Ok(NormSource::Probe),
            "accumulated" => Ok(NormSource::Accumulated),
            _ => Err(format!(
                "unknown norm source '{s}': expected probe or accumulated"
            )),
        }
    }
}

/// The resolved settings of an algorithm; `None` where a setting does not apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlgoConfig {
    pub kind: AlgoKind,
    pub schedule: ScheduleKind,
    /// Local steps between rounds.
    pub tau: Option<u64>,
    /// Pull strength lambda (GRAWA, LSGD).
    pub pull: Option<f32>,
    /// Proximal coefficient p (GRAWA, LSGD); None: no proximal step.
    pub prox: Option<f32>,
    /// EASGD's moving rate.
    pub beta: Option<f32>,
    /// SAM's neighbourhood radius.
    pub rho: Option<f32>,
    pub norm_source: Option<NormSource>,
    /// GRAWA weights ~ 1/norm^power.
    pub weight_power: Option<f64>,
    /// GRAWA probe batch size.
    pub probe_samples: Option<usize>,
    /// Async: the most local steps a worker may run past its last snapshot without a center
    /// built from it.
    pub max_staleness: Option<u64>,
}

impl AlgoConfig {
    /// The value of `flag`: the one this configuration holds, else the algorithm's default from
    /// the one table of settings ([`AlgoKind::default`]; a resolved configuration holds every
    /// value, one made by hand may leave them out); 0 where the flag does not apply.
    pub fn setting(&self, flag: AlgoFlag) -> f64 {
        let given = match flag {
            AlgoFlag::Tau => self.tau.map(|t| t as f64),
            AlgoFlag::Pull => self.pull.map(f64::from),
            AlgoFlag::Prox => self.prox.map(f64::from),
            AlgoFlag::Beta => self.beta.map(f64::from),
            AlgoFlag::Rho => self.rho.map(f64::from),
            AlgoFlag::WeightPower => self.weight_power,
        };
        given.or_else(|| self.kind.default(flag)).unwrap_or(0.0)
    }
}
