//! `grawa-train plot RUN... --out DIR`: charts of one or more runs overlaid.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::{exit_code, parse};

/// Plot test accuracy and loss against time and rounds, and GRAWA weights over rounds, for one
/// or more runs overlaid; writes PNG and SVG.
#[derive(Parser, Debug)]
#[command(name = "grawa-train plot", max_term_width = 100)]
pub struct PlotArgs {
    /// Run folders (each with summary.json, config.json, metrics.jsonl).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Folder for the charts.
    #[arg(long)]
    pub out: PathBuf,
}

/// `grawa-train plot ARGS` (the first argument is the command's name): prints the files written.
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<PlotArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    exit_code(
        crate::report::plot_dirs(&a.runs, &a.out)
            .map_err(Into::into)
            .map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
            }),
    )
}
