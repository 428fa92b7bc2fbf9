//! `grawa-train reproduction-report RUNS --out FILE.md`: the report of `scripts/reproduce.sh`'s
//! runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};

/// Write the reproduction report (Markdown with verdicts per claim, tables and charts) from the
/// folder `scripts/reproduce.sh` filled; every number is read from its run folders.
#[derive(Parser, Debug)]
#[command(name = "grawa-train reproduction-report", max_term_width = 100)]
pub struct ReproductionArgs {
    /// The folder scripts/reproduce.sh wrote (accuracy/, crowding/, communication/, ablation/).
    pub runs: PathBuf,
    /// The Markdown file to write (e.g. docs/reproduction.md).
    #[arg(long)]
    pub out: PathBuf,
    /// Folder for the charts (PNG) [default: beside --out, named after it: docs/reproduction/].
    #[arg(long)]
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
    exit_code(
        crate::report::reproduction_report(&a.runs, &a.out, &plots)
            .map_err(Into::into)
            .map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
            }),
    )
}
