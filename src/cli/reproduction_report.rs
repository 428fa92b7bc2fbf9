//! `grawa-train reproduction-report RUNS --out FILE.md` (or `--from-csv runs.csv`): the report
//! of `scripts/reproduce.sh`'s runs; `RUNS --choose-lr SETTING`: the learning rates its grid
//! chose.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};

/// Write the reproduction report (Markdown with verdicts per claim, tables and charts) from the
/// folder `scripts/reproduce.sh` filled, and the run table (runs.csv) beside the charts; or
/// recompute every verdict and table from such a run table alone (--from-csv, no charts); or print
/// the learning rate the grid chose for each method (--choose-lr).
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
    #[arg(long, required_unless_present = "choose_lr")]
    pub out: Option<PathBuf>,
    /// Folder for the charts (PNG) and the run table [default: beside --out, named after it:
    /// docs/reproduction/].
    #[arg(long, conflicts_with = "from_csv")]
    pub plots: Option<PathBuf>,
    /// Write no report: print, tab-separated, the learning rate RUNS/grid/SETTING chose for each
    /// method (the best mean final validation accuracy), as scripts/reproduce.sh keeps in lr.tsv.
    #[arg(long, value_name = "SETTING", requires = "runs", conflicts_with_all = ["out", "plots"])]
    pub choose_lr: Option<String>,
}

/// `grawa-train reproduction-report ARGS` (the first argument is the command's name): prints the
/// files written, or with `--choose-lr` the grid's choices.
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<ReproductionArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let (Some(setting), Some(runs)) = (&a.choose_lr, &a.runs) {
        let chosen = crate::report::repro::choices_in(runs, setting);
        return exit_code(chosen.map_err(Into::into).map(|c| {
            print!("{}", crate::report::repro::choices_tsv(&c));
        }));
    }
    let Some(out) = &a.out else {
        unreachable!("clap requires --out without --choose-lr")
    };
    let written = match (&a.from_csv, &a.runs) {
        (Some(csv), _) => crate::report::reproduction_report_from_csv(csv, out),
        (None, Some(runs)) => {
            let plots = a
                .plots
                .clone()
                .unwrap_or_else(|| crate::report::repro::default_plots(out));
            crate::report::reproduction_report(runs, out, &plots)
        }
        (None, None) => unreachable!("clap requires the runs folder or --from-csv"),
    };
    exit_code(written.map_err(Into::into).map(|files| {
        for f in files {
            println!("{}", f.display());
        }
    }))
}
