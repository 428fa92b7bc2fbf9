//! The report's opening: how the runs were made (command, machine, wall time per part, runs that
//! did not finish: the script's record, read from its folder), and the settings (from the run
//! records).

use super::layout::Layout;
use super::markdown::table as markdown_table;
use super::setting::Setting;

/// `1 h 02 min 03 s`, `4 min 05 s` or `7.5 s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".to_string();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

/// The command, the machine and the wall time of each part.
pub fn how_it_ran(layout: &Layout) -> String {
    let mut out = String::from("## How it was run\n\n");
    match layout.manifest.get("command") {
        Some(c) => out.push_str(&format!("```bash\n{c}\n```\n\n")),
        None => out.push_str("(no manifest.txt: the command is not recorded)\n\n"),
    }
    if let Some(mode) = layout.manifest.get("mode") {
        out.push_str(&format!("Mode: {mode}.\n\n"));
    }
    out.push_str(&notes(layout));
    if !layout.machine.is_empty() {
        out.push_str("Machine (as `scripts/reproduce.sh` recorded it):\n\n");
        for (k, v) in &layout.machine {
            out.push_str(&format!("- {k}: {v}\n"));
        }
        out.push('\n');
    }
    out.push_str(&timings(layout));
    out
}

/// The script's own words on its choices: the manifest's `note: TOPIC` lines, by topic.
fn notes(layout: &Layout) -> String {
    let notes: Vec<String> = layout
        .manifest
        .iter()
        .filter_map(|(k, v)| Some(format!("- {}: {v}\n", k.strip_prefix("note:")?.trim())))
        .collect();
    if notes.is_empty() {
        return String::new();
    }
    format!("The script's notes on its choices:\n\n{}\n", notes.concat())
}

fn timings(layout: &Layout) -> String {
    if layout.timings.is_empty() {
        return "No timings.tsv: the wall time is not recorded.\n\n".to_string();
    }
    // Parts in the order they first ran; each invocation of the script adds a line.
    struct Part<'a> {
        name: &'a str,
        seconds: f64,
        runs: usize,
        last: &'a super::layout::Timing,
    }
    let mut parts: Vec<Part> = Vec::new();
    for t in &layout.timings {
        match parts.iter_mut().find(|p| p.name == t.part) {
            Some(p) => {
                p.seconds += t.seconds;
                p.runs += 1;
                p.last = t;
            }
            None => parts.push(Part {
                name: &t.part,
                seconds: t.seconds,
                runs: 1,
                last: t,
            }),
        }
    }
    let total: f64 = parts.iter().map(|p| p.seconds).sum();
    let mut rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            vec![
                p.name.to_string(),
                duration(p.seconds),
                p.runs.to_string(),
                p.last.status.clone(),
                p.last.finished.clone(),
                p.last.load.clone(),
            ]
        })
        .collect();
    rows.push(vec![
        "**total**".to_string(),
        format!("**{}**", duration(total)),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let mut out = format!(
        "Wall time: **{}** over all parts, summed over every invocation of the script (it resumes, \
         so a part may have run in several invocations; from `timings.tsv`):\n\n",
        duration(total)
    );
    out.push_str(&markdown_table(
        &[
            "part",
            "wall time",
            "invocations",
            "last status",
            "last finished",
            "load average at its last start",
        ],
        &rows,
    ));
    out.push('\n');
    out
}

/// One row per accuracy setting from its first run: the flags every run of it shared.
pub fn settings(settings: &[Setting]) -> String {
    let rows: Vec<Vec<String>> = settings
        .iter()
        .filter_map(|g| {
            let r = g.first()?;
            let mut seeds: Vec<u64> = g.runs().map(|r| r.seed).collect();
            seeds.sort();
            seeds.dedup();
            let or_dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            Some(vec![
                g.name.clone(),
                r.dataset.clone(),
                r.model.clone(),
                r.workers.to_string(),
                or_dash(&r.link),
                or_dash(&r.worker_speed.replace(';', ",")),
                duration(r.budget_seconds),
                r.batch_size.map_or("-".to_string(), |b| b.to_string()),
                or_dash(&r.decay),
                or_dash(&r.eval_every),
                seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                g.runs().count().to_string(),
            ])
        })
        .collect();
    let mut out = String::from(
        "## Settings\n\n\
         The accuracy runs, from each setting's first run (every algorithm of a setting ran with \
         the same flags and the same budget, its learning rate aside; the other parts change one \
         flag of the base setting). Every run's figures are in the run table (`runs.csv`).\n\n",
    );
    out.push_str(&markdown_table(
        &[
            "setting",
            "data set",
            "model",
            "workers",
            "link",
            "worker speeds",
            "time budget",
            "batch",
            "lr decay",
            "eval every",
            "seeds",
            "runs",
        ],
        &rows,
    ));
    out.push('\n');
    out
}

/// The run folders without `summary.json`, if any.
pub fn unfinished(layout: &Layout) -> String {
    if layout.unfinished.is_empty() {
        return "Every run folder holds a finished run.\n\n".to_string();
    }
    let mut out = format!(
        "**{} run folders hold no finished run** (interrupted, failed or diverged; left out of \
         every table):\n\n",
        layout.unfinished.len()
    );
    for d in &layout.unfinished {
        let rel = d.strip_prefix(&layout.root).unwrap_or(d);
        out.push_str(&format!("- `{}`\n", rel.display()));
    }
    out.push('\n');
    out
}
