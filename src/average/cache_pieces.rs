//! How the parallel reductions cut a flat buffer into work items ("pieces"): every layer is split
//! into runs of at most [`CHUNK`] elements, so a piece never straddles a layer (one weight per
//! worker applies to all of it) and all buffers a piece touches stay in the core's cache while it
//! is processed. Also the layer-table validation every table-taking function shares.

use crate::model::LayerEntry;

/// Elements per piece. 16 Ki f32 = 64 KiB per buffer: with 4 workers plus the center about
/// 320 KiB are live per piece, which fits a typical L2, so a fused round reads each x from DRAM
/// once and the second pass (the pull) hits cache.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Below this many elements the work (~tens of microseconds) is too small to be worth waking
/// rayon's pool; the pieces are then processed in order on the calling thread.
pub(crate) const PARALLEL_MIN: usize = 64 * 1024;

/// A contiguous run of elements `start..end` that lies inside layer `layer`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Piece {
    pub layer: usize,
    pub start: usize,
    pub end: usize,
}

impl Piece {
    pub fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Panics unless `table` is contiguous from offset 0 and covers exactly `len` elements: a wrong
/// table is a bug in the caller, and silently averaging the wrong ranges would corrupt the model.
pub(crate) fn check_table(table: &[LayerEntry], len: usize) {
    let mut next = 0;
    for (l, e) in table.iter().enumerate() {
        assert_eq!(
            e.offset, next,
            "layer table: entry {l} ({}) starts at {} but the previous one ends at {next}",
            e.name, e.offset
        );
        next += e.len;
    }
    assert_eq!(
        next, len,
        "layer table covers {next} elements but the buffer has {len}"
    );
}

/// Pieces of a buffer laid out by `table` (validated against `len`), in buffer order.
pub(crate) fn layer_pieces(table: &[LayerEntry], len: usize) -> Vec<Piece> {
    check_table(table, len);
    let mut out = Vec::with_capacity(len / CHUNK + table.len());
    for (layer, e) in table.iter().enumerate() {
        let end = e.offset + e.len;
        let mut start = e.offset;
        while start < end {
            let stop = (start + CHUNK).min(end);
            out.push(Piece {
                layer,
                start,
                end: stop,
            });
            start = stop;
        }
    }
    out
}

/// A window `start..end` of a buffer laid out by `table`, cut as [`layer_pieces`] cuts a whole
/// buffer (runs of at most [`CHUNK`] inside one layer): one chunk of a pipelined all-reduce, each
/// element still under its own layer. Only the layers the window overlaps are cut, so a window
/// costs its own size, not the buffer's.
pub(crate) fn window_pieces(
    table: &[LayerEntry],
    len: usize,
    start: usize,
    end: usize,
) -> Vec<Piece> {
    check_table(table, len);
    assert!(
        start <= end && end <= len,
        "window {start}..{end} of a buffer of {len} elements"
    );
    let mut out = Vec::with_capacity((end - start) / CHUNK + 2);
    for (layer, e) in table.iter().enumerate() {
        let (from, to) = (e.offset.max(start), (e.offset + e.len).min(end));
        let mut at = from;
        while at < to {
            let stop = (at + CHUNK).min(to);
            out.push(Piece {
                layer,
                start: at,
                end: stop,
            });
            at = stop;
        }
    }
    out
}

/// Pieces of a buffer with no layer structure (everything is "layer 0").
pub(crate) fn flat_pieces(len: usize) -> Vec<Piece> {
    (0..len)
        .step_by(CHUNK)
        .map(|start| Piece {
            layer: 0,
            start,
            end: (start + CHUNK).min(len),
        })
        .collect()
}

/// Cuts `buf` into one mutable slice per piece (pieces must tile `buf` in order from 0).
pub(crate) fn split_mut<'a>(mut buf: &'a mut [f32], pieces: &[Piece]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(p.len());
        out.push(head);
        buf = tail;
    }
    out
}

/// Cuts every worker's buffer by `pieces` and regroups the slices piece-major, so one work item
/// owns "piece k of every worker" and rayon can hand items to threads with no shared mutation.
pub(crate) fn split_workers<'a>(
    xs: &'a mut [&mut [f32]],
    pieces: &[Piece],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut per_piece: Vec<Vec<&mut [f32]>> = (0..pieces.len())
        .map(|_| Vec::with_capacity(xs.len()))
        .collect();
    for x in xs.iter_mut() {
        for (k, s) in split_mut(x, pieces).into_iter().enumerate() {
            per_piece[k].push(s);
        }
    }
    per_piece
}

/// Runs `f` on every item, on rayon's pool when `total` (elements touched, all buffers together)
/// is large enough to profit.
pub(crate) fn run<T: Send>(items: Vec<T>, total: usize, f: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    if total >= PARALLEL_MIN {
        items.into_par_iter().for_each(f);
    } else {
        items.into_iter().for_each(f);
    }
}
