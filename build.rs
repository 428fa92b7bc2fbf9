//! Build script. With the `cuda` feature (a later step) it compiles `kernels/*.cu` to PTX with
//! nvcc and embeds it; the default build compiles nothing and needs no CUDA at all.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
}
