//! The allocator's settings. The binary runs on mimalloc (src/main.rs): candle allocates and frees
//! large buffers at every operation, and glibc's malloc would hand those to mmap/munmap each time.
//! mimalloc keeps freed memory, but by default gives it back to the OS ("purges") 10 ms after it
//! is freed, and a training step frees and reallocates its activations every few milliseconds: the
//! kernel then zeroes the same pages again at every step (ResNet-20 at batch 128: 14,000 page
//! faults in 20 s with the default, 470 without purging, and the process's system time from
//! 0.5-1.1 s to 0.25-0.3 s). PyTorch's benchmark peer gets the same treatment from
//! GLIBC_TUNABLES (scripts/bench-vs-pytorch.sh). The cost: memory freed after the peak stays
//! resident, which for a trainer is the peak it needs again at the next step.
//!
//! The library is mimalloc 2 (the `v2` feature of libmimalloc-sys; the crate's default is 3).
//! Measured on four ResNet-20 workers at batch 128 (`grawa-train bench --workers 4 --threads 2`),
//! with the same live peak (974 MiB, counted by a wrapping allocator): peak RSS 1,146-1,187 MiB
//! with mimalloc 2 against 1,230-1,277 with mimalloc 3, and one worker 303 against 333-351 MiB,
//! at the same images/s. mimalloc 3 keeps more freed memory per thread.

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc.h (the same position in mimalloc 2 and 3):
/// milliseconds before freed memory is purged, -1 for never.
pub const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Tells mimalloc never to give freed memory back to the OS. Call it first thing in `main`;
/// harmless where mimalloc is not the global allocator (tests).
pub fn keep_freed_memory() {
    // SAFETY: sets one integer option in mimalloc's option table; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// mimalloc's current purge delay in milliseconds (-1: never).
pub fn purge_delay() -> c_long {
    // SAFETY: reads one integer option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_is_kept() {
        // The default is 10 ms (mimalloc.h); after the call, never.
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}
