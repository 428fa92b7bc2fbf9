//! Per-thread scratch buffers of the CPU convolution kernels (padded images, patch matrices,
//! packed weights). They only grow, so a steady state of training allocates only the outputs.

use std::cell::RefCell;

thread_local! {
    /// Per-task buffers (patch matrices, padded images).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Packed weights, held by the calling thread while the tasks run.
    static WEIGHTS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` floats of this thread's scratch buffer (contents unspecified). A re-entrant
/// call on the same thread (possible only if a rayon task of another convolution is stolen while
/// this one waits) gets a fresh buffer instead.
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&SCRATCH, len, f)
}

/// Runs `f` on `len` floats of this thread's buffer for packed weights (contents unspecified),
/// which the calling thread holds while the tasks of one convolution read it.
pub(super) fn with_weights<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&WEIGHTS, len, f)
}

fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.clear();
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}
