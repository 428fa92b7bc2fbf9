//! An accuracy setting (`accuracy/<name>`): its runs by method and its targets, from the run
//! records alone.

use std::collections::BTreeMap;

use super::methods::by_method;
use crate::report::record::{family, targets_of, RunRecord, MAIN_TARGET};

/// One setting, worked out.
pub struct Setting<'a> {
    pub name: String,
    /// Runs by method, in the report's method order.
    pub methods: Vec<(String, Vec<&'a RunRecord>)>,
    /// Each target of `record::TARGETS` (`None` without a finite accuracy).
    pub targets: [Option<f64>; 3],
}

impl<'a> Setting<'a> {
    /// The settings of `part` (`accuracy`), by group name; `targets` from [`targets_of`] over
    /// every record.
    pub fn of_part(
        records: &'a [RunRecord],
        part: &str,
        targets: &BTreeMap<String, [Option<f64>; 3]>,
    ) -> Vec<Setting<'a>> {
        let mut groups: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.part == part) {
            groups.entry(r.group.as_str()).or_default().push(r);
        }
        groups
            .into_iter()
            .map(|(name, runs)| Setting {
                name: name.to_string(),
                targets: targets.get(&family(runs[0])).copied().unwrap_or([None; 3]),
                methods: by_method(runs),
            })
            .collect()
    }

    /// The settings of the `accuracy` part.
    pub fn all(records: &'a [RunRecord]) -> Vec<Setting<'a>> {
        Setting::of_part(records, "accuracy", &targets_of(records))
    }

    /// The target the claims are judged on.
    pub fn main_target(&self) -> Option<f64> {
        self.targets[MAIN_TARGET]
    }

    /// The first run of the setting.
    pub fn first(&self) -> Option<&'a RunRecord> {
        self.methods.first().and_then(|(_, rs)| rs.first()).copied()
    }

    /// Every run of the setting.
    pub fn runs(&self) -> impl Iterator<Item = &'a RunRecord> + '_ {
        self.methods.iter().flat_map(|(_, rs)| rs.iter().copied())
    }

    /// A description from its first run: data set, model, workers, link, speeds.
    pub fn describe(&self) -> String {
        let Some(r) = self.first() else {
            return String::new();
        };
        let mut s = format!("{}, {}, {} workers", r.dataset, r.model, r.workers);
        if !r.link.is_empty() {
            s.push_str(&format!(", link {}", r.link));
        }
        if !r.worker_speed.is_empty() {
            s.push_str(&format!(
                ", worker speeds {}",
                r.worker_speed.replace(';', ",")
            ));
        }
        s
    }
}
