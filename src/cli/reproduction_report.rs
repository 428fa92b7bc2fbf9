//! `grawa-train reproduction-report RUNS --out FILE.md` (or `--from-csv runs.csv`): the report
//! of `scripts/reproduce.sh`'s runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};

/// Write the reproduction report (Markdown with verdicts per claim, tables and charts) from the
/// folder `scripts/reproduce.sh` filled, and the run table (runs.csv) beside the charts; or
/// recompute every verdict and table from such a run table alone (--from-csv, no charts).
#[derive(Parser, Debug)]
#[command(name = "grawa-train reproduction-report", max_term_width = 100)]
pub struct ReproductionArgs {
    /// The folder scripts/reproduce.sh wrote (accuracy/, crowding/, communication/, ablation/).
    #[arg(required_unless_present = "from_csv", conflicts_with = "from_csv")]
    pub runs: Option<PathBuf>,
    /// Recompute the report from this run table (e.g. docs/reproduction/runs.csv) alone.
    #[arg(long, value_name = "FILE")]
    pub from_csv: Option<PathBuf>,
    /// The Markdown file to write (e.g. docs/reproduction.md).
    #[arg(long)]
    pub out: PathBuf,
    /// Folder for the charts (PNG) and the run table [default: beside --out, named after it:
    /// docs/reproduction/].
    #[arg(long, conflicts_with = "from_csv")]
    pub plots: Option<PathBuf>,
}

/// `grawa-train reproduction-report ARGS` (the first argument is the command's name): prints the
/// files written.
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<ReproductionArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let plots = a
        .plots
        .unwrap_or_else(|| crate::report::repro::default_plots(&a.out));
    let written = match (&a.from_csv, &a.runs) {
        (Some(csv), _) => crate::report::reproduction_report_from_csv(csv, &a.out),
        (None, Some(runs)) => crate::report::reproduction_report(runs, &a.out, &plots),
        (None, None) => unreachable!("clap requires the runs folder or --from-csv"),
    };
    exit_code(written.map_err(Into::into).map(|files| {
        for f in files {
            println!("{}", f.display());
        }
    }))
}
