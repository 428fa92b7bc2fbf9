//! How a command's flags and result become an exit code: a clap error is one line and exit 2
//! (`--help` and `--version` print and exit 0), a run's error is its message and its exit code
//! (`Error::exit_code`).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parses a command's flags (`args` starts with the command's name); on failure, the exit code
/// (2 with one line on stderr, or 0 after `--help`).
pub fn parse<P: Parser>(args: &[OsString]) -> Result<P, ExitCode> {
    P::try_parse_from(args).map_err(|e| usage_exit(&e))
}

/// The exit of a clap error: `--help` and `--version` printed on stdout and 0, anything else one
/// line on stderr and 2.
pub fn usage_exit(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        eprintln!("grawa-train: {} (see --help)", one_line(e));
        ExitCode::from(2)
    } else {
        let _ = e.print();
        ExitCode::SUCCESS
    }
}

/// 0 for `Ok`; for an error, its message on stderr and its exit code.
pub fn exit_code<T>(result: crate::Result<T>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grawa-train: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// clap's error without its "error: " prefix and the usage lines after it: scripts and people get
/// one line that names the flag and the expected values.
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next line.
    match (first.ends_with(':'), lines.next()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_string(),
    }
}
