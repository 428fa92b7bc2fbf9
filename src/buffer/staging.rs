//! How a round over GPU buffers reaches its buffers, as a plan a CPU test can check: which
//! buffers the combining kernel reads in place, which come over by peer copy first, and which
//! stream must wait for which before a buffer is used again. `buffer::CudaBuffer`'s round
//! follows this plan; the plan itself needs no GPU.
//!
//! The rules (docs/design.md section 4, "Ordering on the GPUs"):
//! - A buffer on the round's GPU is read in place by the kernel, on the round's stream, which
//!   waits for the buffer's last write (cudarc's write event). The owner's next write (or free)
//!   waits for an event the round's stream records after the kernel, whenever the owner is
//!   another stream: cudarc's one read event per buffer would remember only the last of several
//!   readers (`cuda::ordering`). These same-GPU fences depend on streams, which this plan (by
//!   GPU) does not see; `buffer::CudaBuffer` adds them.
//! - A buffer on another GPU is first peer-copied to the round's GPU, on the round's stream,
//!   after the owner's work so far (cudarc records an event on the owner's stream and the round's
//!   stream waits for it). cudarc records that copy's read on the *owner's* stream, which does
//!   not cover a copy queued on another stream, so the owner must wait for an event recorded on
//!   the round's stream after the copy: a *fence*. Without it a worker could overwrite its
//!   snapshot, or the allocator reuse it, while the copy still reads it.

/// How one participant's buffer reaches the round's GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// On the round's GPU: the kernel reads it where it is.
    InPlace,
    /// On GPU `from`: peer-copied to the round's GPU first, then fenced.
    PeerCopy { from: usize },
}

/// A fence: the stream owning a buffer on GPU `owner` waits for an event the round's stream on
/// GPU `reader` recorded after copying out of that buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub reader: usize,
    pub owner: usize,
}

/// For buffers on GPUs `gpus` (one ordinal per participant, in participant order) combined on
/// GPU `at`: how each arrives, in participant order.
pub fn plan(gpus: &[usize], at: usize) -> Vec<Source> {
    gpus.iter()
        .map(|&g| {
            if g == at {
                Source::InPlace
            } else {
                Source::PeerCopy { from: g }
            }
        })
        .collect()
}

/// The fences between GPUs a plan needs, one per peer copy, in participant order.
pub fn fences(plan: &[Source], at: usize) -> Vec<Fence> {
    plan.iter()
        .filter_map(|s| match s {
            Source::InPlace => None,
            Source::PeerCopy { from } => Some(Fence {
                reader: at,
                owner: *from,
            }),
        })
        .collect()
}

/// Bytes a plan moves between GPUs for buffers of `len` f32 values.
pub fn peer_bytes(plan: &[Source], len: usize) -> u64 {
    let copies = plan
        .iter()
        .filter(|s| matches!(s, Source::PeerCopy { .. }))
        .count();
    (copies * len * std::mem::size_of::<f32>()) as u64
}
