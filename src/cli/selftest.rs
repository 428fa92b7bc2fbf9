//! `grawa-train selftest`: the self-test (`crate::gpus::check_all`) run, its outcome printed
//! (`crate::selftest`), and its exit status.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use super::exit::parse;

/// Check every CUDA kernel against its CPU twin on every visible GPU, and measure bandwidths.
#[derive(Parser, Debug)]
#[command(name = "grawa-train selftest", max_term_width = 100)]
pub struct SelftestArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the self-test on every visible GPU and prints the table (or JSON with `--json`) on
/// stdout. Exit status: 0 passed or nothing to test (CPU build), 1 a mismatch, 2 no GPU or
/// driver (see `crate::selftest`).
pub fn run(args: &[OsString]) -> ExitCode {
    let a = match parse::<SelftestArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let outcome = crate::gpus::check_all();
    print!("{}", outcome.render(a.json));
    ExitCode::from(outcome.exit_status())
}
