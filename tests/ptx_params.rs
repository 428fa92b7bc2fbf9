//! Every kernel's parameters in our PTX against the argument list its launcher passes
//! (`cuda::launch_args`): cudarc launches whatever it is given, so a parameter added to a kernel
//! and not to its launcher (or the other way round) would corrupt GPU memory instead of failing.
//!
//! The PTX is compiled here from `kernels/*.cu` with build.rs's own flags, so this runs on a
//! machine without a GPU. It needs nvcc: `$NVCC`, `nvcc` on PATH, `$CUDA_HOME/bin`, or the one
//! `scripts/cuda-toolchain.sh` fetches (`.cuda/` or `$GRAWA_CUDA_DIR`). Without one it says so
//! and passes, unless `GRAWA_REQUIRE_NVCC=1` (scripts/test.sh sets it), where that fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use grawa_train::cuda::launch_args::{
    check_launches, every_kernel, ptx_entries, Arg, Entry, Param, MAX_WORKERS,
};

include!("../kernels/nvcc_flags.rs");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// nvcc where build.rs looks for it, then where scripts/cuda-toolchain.sh puts it.
fn find_nvcc() -> Option<PathBuf> {
    let explicit = std::env::var_os("NVCC").map(PathBuf::from);
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("nvcc"))
            .find(|p| p.is_file())
    });
    let home = std::env::var_os("CUDA_HOME").map(|h| Path::new(&h).join("bin/nvcc"));
    let fetched = std::env::var_os("GRAWA_CUDA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cuda"))
        .join("nvidia/cu13/bin/nvcc");
    [explicit, on_path, home, Some(fetched)]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// The entries of every `kernels/*.cu`, compiled as build.rs compiles them; `None` without nvcc.
fn compiled_entries() -> Option<Vec<Entry>> {
    let Some(nvcc) = find_nvcc() else {
        assert!(
            std::env::var_os("GRAWA_REQUIRE_NVCC").is_none(),
            "GRAWA_REQUIRE_NVCC is set but no nvcc was found: run `eval \"$(scripts/cuda-toolchain.sh)\"`"
        );
        eprintln!("ptx_params: no nvcc here (see scripts/cuda-toolchain.sh): PTX not checked");
        return None;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = dir.path();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(repo().join("kernels"))
        .expect("kernels/ lists")
        .map(|e| e.expect("kernels/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no kernels/*.cu");
    let mut entries = Vec::new();
    for src in &sources {
        let ptx = out.join(src.file_stem().unwrap()).with_extension("ptx");
        let status = Command::new(&nvcc)
            .args(NVCC_PTX_FLAGS)
            .arg(format!("-arch={PTX_ARCH}"))
            .arg("-o")
            .arg(&ptx)
            .arg(src)
            .status()
            .expect("nvcc runs");
        assert!(status.success(), "nvcc failed on {}", src.display());
        let text = std::fs::read_to_string(&ptx).expect("the PTX reads");
        entries.extend(ptx_entries(&text).expect("the PTX parses"));
    }
    Some(entries)
}

#[test]
fn every_kernel_in_the_ptx_takes_what_its_launcher_passes() {
    let Some(entries) = compiled_entries() else {
        return;
    };
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(entries.len(), every_kernel().len(), "kernels: {names:?}");
    check_launches(&entries, &every_kernel()).expect("launchers match the PTX");
}

#[test]
fn an_argument_added_or_removed_on_either_side_is_caught() {
    let Some(entries) = compiled_entries() else {
        return;
    };
    for (k, launch) in every_kernel().into_iter().enumerate() {
        // The launcher passes one more, or one fewer.
        let mut more = every_kernel();
        more[k].args.push(Arg::F32(0.0));
        assert!(
            check_launches(&entries, &more).is_err(),
            "{}: +1",
            launch.kernel
        );
        let mut fewer = every_kernel();
        fewer[k].args.pop();
        assert!(
            check_launches(&entries, &fewer).is_err(),
            "{}: -1",
            launch.kernel
        );
        // The kernel declares one more, or one fewer.
        let i = entries
            .iter()
            .position(|e| e.name == launch.kernel)
            .unwrap();
        let mut wider = entries.clone();
        wider[i].params.push(Param::Int(4));
        assert!(
            check_launches(&wider, &every_kernel()).is_err(),
            "{}: PTX +1",
            launch.kernel
        );
        let mut narrower = entries.clone();
        narrower[i].params.pop();
        assert!(
            check_launches(&narrower, &every_kernel()).is_err(),
            "{}: PTX -1",
            launch.kernel
        );
    }
}

#[test]
fn a_kernel_without_a_launcher_and_a_launcher_without_a_kernel_are_caught() {
    let entries = vec![Entry {
        name: "divide".into(),
        params: vec![Param::Int(8), Param::Int(8), Param::Float(4)],
    }];
    let all = every_kernel();
    let divide: Vec<_> = all
        .iter()
        .filter(|l| l.kernel == "divide")
        .cloned()
        .collect();
    check_launches(&entries, &divide).expect("divide alone matches");
    let err = check_launches(&entries, &all).unwrap_err();
    assert!(err.contains("pull: no such kernel"), "{err}");
    let mut extra = entries.clone();
    extra.push(Entry {
        name: "new_kernel".into(),
        params: vec![],
    });
    let err = check_launches(&extra, &divide).unwrap_err();
    assert!(
        err.contains("new_kernel: a kernel in the PTX with no launcher"),
        "{err}"
    );
}

#[test]
fn a_float_where_the_kernel_reads_an_integer_is_caught() {
    // Same size, different meaning: divide's n passed as an f32 would read as a tiny count.
    let entries = vec![Entry {
        name: "divide".into(),
        params: vec![Param::Int(8), Param::Int(4), Param::Float(4)],
    }];
    let divide: Vec<_> = every_kernel()
        .into_iter()
        .filter(|l| l.kernel == "divide")
        .collect();
    assert!(check_launches(&entries, &divide).is_err());
}

#[test]
fn ptx_declarations_parse_as_nvcc_writes_them() {
    // Written by hand in nvcc 13.0's forms (a struct by value, qualifiers on pointers).
    let ptx = "
.visible .entry k(
	.param .align 8 .b8 k_param_0[512],
	.param .u32 k_param_1,
	.param .u64 .ptr .global .align 4 k_param_2,
	.param .f32 k_param_3,
	.param .s32 k_param_4,
	.param .f64 k_param_5
)
{
	ret;
}
.visible .entry empty()
{
	ret;
}
";
    let entries = ptx_entries(ptx).unwrap();
    assert_eq!(
        entries,
        vec![
            Entry {
                name: "k".into(),
                params: vec![
                    Param::Bytes {
                        len: 8 * MAX_WORKERS,
                        align: 8
                    },
                    Param::Int(4),
                    Param::Int(8),
                    Param::Float(4),
                    Param::Int(4),
                    Param::Float(8),
                ],
            },
            Entry {
                name: "empty".into(),
                params: vec![],
            },
        ]
    );
    assert!(ptx_entries(".visible .entry broken(\n\t.param k_param_0\n)").is_err());
}
