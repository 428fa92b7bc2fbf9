//! `grawa-train`: see `grawa_train::cli`.

// candle allocates and frees large buffers on every operation; glibc's malloc hands those to
// mmap/munmap each time, so the kernel zeroes fresh pages at every step (seen: a third of the CPU
// time in the kernel on the small CNN). mimalloc keeps them (see `grawa_train::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    grawa_train::cuda::loading::eager_for_nccl();
    grawa_train::alloc::keep_freed_memory();
    grawa_train::cli::run(std::env::args_os())
}
