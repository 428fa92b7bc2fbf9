//! When a read of a GPU buffer must be fenced, as a rule a CPU test can check (pure, compiled in
//! every build).
//!
//! cudarc gives each `CudaSlice` one read event and one write event. A read queued on stream R
//! records the read event on R; the owner's next write and the buffer's free (both on the
//! owner's stream) wait for that event. One event remembers one point of one stream: when two
//! streams read the same buffer, the second recording replaces the first, and the owner is then
//! ordered only after the *last* reader. Several workers on one GPU copying the same center (one
//! stream each) are such readers: the owner could free or overwrite the center while an earlier
//! worker's copy still reads it. Today the coordinator keeps the point alive and host syncs hide
//! it; nothing guarantees either.
//!
//! The rule: whenever the reading stream is not the owner's, the reader records an event of its
//! own after the read and the owner's stream waits for it (a *fence*, `cuda::fence_read`). Many
//! readers then leave many waits on the owner's stream, and its next use comes after all of
//! them. A buffer on another GPU cannot be read in place by a kernel: it is peer-copied first,
//! and the copy is fenced by the same rule (cudarc records a peer copy's read on the source's
//! own stream, which does not cover a copy queued on the reader's).

/// A stream as the rule sees it: the GPU it runs on and its identity (the driver's handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamAt {
    pub gpu: usize,
    pub stream: usize,
}

/// How a read of a buffer owned by one stream, queued on another, is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOrder {
    /// The owner's own stream reads it: stream order covers everything.
    SameStream,
    /// Another stream on the owner's GPU reads it in place, then fences the owner.
    InPlaceFenced,
    /// A stream on another GPU: a peer copy to the reader's GPU, then a fence of the owner.
    PeerCopyFenced,
}

impl ReadOrder {
    /// Whether the owner's stream must wait for an event the reader records after the read.
    pub fn needs_fence(self) -> bool {
        !matches!(self, ReadOrder::SameStream)
    }

    /// Whether the buffer must first be copied to the reader's GPU.
    pub fn needs_copy(self) -> bool {
        matches!(self, ReadOrder::PeerCopyFenced)
    }
}

/// How `reader` reads a buffer owned by `owner`.
pub fn read_order(reader: StreamAt, owner: StreamAt) -> ReadOrder {
    if reader.gpu != owner.gpu {
        ReadOrder::PeerCopyFenced
    } else if reader.stream != owner.stream {
        ReadOrder::InPlaceFenced
    } else {
        ReadOrder::SameStream
    }
}
