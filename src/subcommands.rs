//! The subcommands beside training: `plot` and `compare` over run folders, `reproduction-report`
//! over `scripts/reproduce.sh`'s folder, `selftest` for the GPU kernels, `flatness` of a
//! checkpointed run, `bench` of training steps. Each parses its own flags; `cli::run` dispatches
//! on the first argument.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Names `cli::run` hands to this module.
pub const NAMES: [&str; 6] = [
    "plot",
    "compare",
    "reproduction-report",
    "selftest",
    "flatness",
    "bench",
];

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

/// Check every CUDA kernel against its CPU twin on every visible GPU, and measure bandwidths.
#[derive(Parser, Debug)]
#[command(name = "grawa-train selftest", max_term_width = 100)]
pub struct SelftestArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses a subcommand's flags; on failure, the exit code (2 with one line, or 0 after --help).
pub fn parse<P: Parser>(args: &[OsString]) -> Result<P, ExitCode> {
    P::try_parse_from(args).map_err(|e| {
        if e.use_stderr() {
            eprintln!("grawa-train: {} (see --help)", crate::cli::one_line(&e));
            ExitCode::from(2)
        } else {
            let _ = e.print();
            ExitCode::SUCCESS
        }
    })
}

fn report(result: Result<(), crate::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grawa-train: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs subcommand `name` with `args` (the subcommand name first).
pub fn run(name: &str, args: &[OsString]) -> ExitCode {
    match name {
        "plot" => match parse::<PlotArgs>(args) {
            Ok(a) => report(
                crate::report::plot_dirs(&a.runs, &a.out)
                    .map_err(Into::into)
                    .map(|files| {
                        for f in files {
                            println!("{}", f.display());
                        }
                    }),
            ),
            Err(code) => code,
        },
        "compare" => match parse::<CompareArgs>(args) {
            Ok(a) => report(
                crate::report::compare_dirs(&a.runs, a.csv.as_deref(), a.md.as_deref())
                    .map_err(Into::into)
                    .map(|text| print!("{text}")),
            ),
            Err(code) => code,
        },
        "reproduction-report" => match parse::<ReproductionArgs>(args) {
            Ok(a) => {
                let plots = a
                    .plots
                    .unwrap_or_else(|| crate::report::repro::default_plots(&a.out));
                let written = match (&a.from_csv, &a.runs) {
                    (Some(csv), _) => crate::report::reproduction_report_from_csv(csv, &a.out),
                    (None, Some(runs)) => crate::report::reproduction_report(runs, &a.out, &plots),
                    (None, None) => unreachable!("clap requires the runs folder or --from-csv"),
                };
                report(written.map_err(Into::into).map(|files| {
                    for f in files {
                        println!("{}", f.display());
                    }
                }))
            }
            Err(code) => code,
        },
        "selftest" => match parse::<SelftestArgs>(args) {
            Ok(a) => crate::selftest::run(a.json),
            Err(code) => code,
        },
        "flatness" => crate::flatness_cmd::run(args),
        "bench" => crate::bench::run(args),
        _ => unreachable!("cli::run dispatches only NAMES"),
    }
}
