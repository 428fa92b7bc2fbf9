//! `grawa-train`: see `grawa_train::cli`.

fn main() -> std::process::ExitCode {
    grawa_train::cli::run(std::env::args_os())
}
