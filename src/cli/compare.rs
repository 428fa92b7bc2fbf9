//! `grawa-train compare RUN...`: a table of runs with a mean ± std per method.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};

/// Print a table of runs (method, seed, accuracy, loss, lambda_max, rounds, wall time) with a
/// mean ± std per method, and write it as CSV and Markdown.
#[derive(Parser, Debug)]
#[command(name = "grawa-train compare", max_term_width = 100)]
pub struct CompareArgs {
    /// Run folders.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Write the per-run table as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the tables as Markdown here.
    #[arg(long)]
    pub md: Option<PathBuf>,
}

/// `grawa-train compare ARGS` (the first argument is the command's name): prints the table.
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<CompareArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    exit_code(
        crate::report::compare_dirs(&a.runs, a.csv.as_deref(), a.md.as_deref())
            .map_err(Into::into)
            .map(|text| print!("{text}")),
    )
}
