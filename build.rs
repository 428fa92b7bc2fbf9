//! Build script. With the `cuda` feature it compiles every `kernels/*.cu` to PTX with nvcc into
//! OUT_DIR (`kernels/average.cu` -> `$OUT_DIR/average.ptx`), which `src/cuda/ptx.rs` embeds with
//! `include_str!`. The default build compiles nothing and needs no CUDA at all.
//!
//! nvcc is found as `$NVCC`, else `nvcc` on PATH, else `$CUDA_HOME/bin/nvcc`;
//! `eval "$(scripts/cuda-toolchain.sh)"` provides one on machines without a CUDA install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

// PTX_ARCH and NVCC_PTX_FLAGS, shared with tests/ptx_params.rs.
include!("kernels/nvcc_flags.rs");

fn main() {
    // Provenance (regime): the commit goes into every build, so this runs before the early return
    // of a build without `cuda`.
    embed_commit();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let nvcc = find_nvcc();
    let mut sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .unwrap_or_else(|e| panic!("build.rs: cannot list kernels/: {e}"))
        .map(|entry| entry.expect("build.rs: reading kernels/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        compile(&nvcc, src, &out_dir);
    }
}

fn find_nvcc() -> PathBuf {
    if let Some(nvcc) = env::var_os("NVCC") {
        return PathBuf::from(nvcc);
    }
    let on_path = env::var_os("PATH").and_then(|path| {
        env::split_paths(&path)
            .map(|dir| dir.join("nvcc"))
            .find(|p| p.is_file())
    });
    if let Some(nvcc) = on_path {
        return nvcc;
    }
    if let Some(home) = env::var_os("CUDA_HOME") {
        let nvcc = Path::new(&home).join("bin").join("nvcc");
        if nvcc.is_file() {
            return nvcc;
        }
    }
    panic!(
        "build.rs: the `cuda` feature needs nvcc (none in $NVCC, on PATH or in $CUDA_HOME/bin). \
         Install the CUDA toolkit, or on a machine without one run \
         `eval \"$(scripts/cuda-toolchain.sh)\"` first."
    );
}

/// `kernels/NAME.cu` -> `$OUT_DIR/NAME.ptx`, with kernels/nvcc_flags.rs's flags.
fn compile(nvcc: &Path, src: &Path, out_dir: &Path) {
    let stem = src.file_stem().expect("a .cu file has a stem");
    let ptx = out_dir.join(stem).with_extension("ptx");
    let output = Command::new(nvcc)
        .args(NVCC_PTX_FLAGS)
        .arg(format!("-arch={PTX_ARCH}"))
        .arg("-o")
        .arg(&ptx)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("build.rs: cannot run {}: {e}", nvcc.display()));
    if !output.status.success() {
        panic!(
            "build.rs: {} failed on {} ({}):\n{}{}",
            nvcc.display(),
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Provenance: `GRAWA_COMMIT` for `src/provenance.rs`, the checkout's `git rev-parse HEAD` with
/// `-dirty` appended when tracked files have changes; `unknown` without git or a checkout (never a
/// build failure). Rerun when HEAD, its branch or the index move; edits not yet staged or
/// committed show as `-dirty` from the next build that reruns this script.
fn embed_commit() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(["--no-optional-locks"])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let value = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=GRAWA_COMMIT={value}");
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "index", "packed-refs"]
        .into_iter()
        .map(str::to_string)
        .chain(branch);
    for name in watched {
        // Only files that exist: a missing one would make cargo rerun this on every build.
        if let Some(path) =
            git(&["rev-parse", "--git-path", &name]).filter(|p| Path::new(p).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
