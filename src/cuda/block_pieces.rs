//! How a flat buffer laid out by a layer table is cut into *pieces* for the layered kernels
//! (layer_sumsq, weighted_center, center_and_pull): runs of at most [`PIECE`] elements that never
//! cross a layer boundary, in buffer order. One GPU block works on one piece at a time, so it knows
//! its layer (and its weights) without searching, and a model with one huge and many tiny layers
//! keeps every block equally busy.
//!
//! Pure std on purpose: this module is compiled only with `cuda`, whose test binaries cannot start
//! on a machine without libcuda, so `tests/selftest_pieces.rs` includes this file by path and tests
//! it on the CPU.

/// Elements per piece: 16 per thread of a 256-thread block, enough to hide memory latency and
/// few enough that even a small model gives every multiprocessor work.
pub const PIECE: usize = 4096;

/// The pieces of one layer table, in the form the kernels read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// `pieces + 1` offsets: piece p covers `start[p]..start[p + 1]`.
    pub start: Vec<u64>,
    /// The layer of each piece.
    pub layer: Vec<u32>,
    /// `layers + 1` indices: layer l's pieces are `first[l]..first[l + 1]` (none for an empty
    /// layer).
    pub first: Vec<u32>,
}

impl Pieces {
    /// Cuts a buffer of `len` elements whose layers are `layers` = (offset, len) in buffer order,
    /// each starting where the previous one ends and together covering the buffer, into pieces of
    /// at most `piece` elements. Errors name the first layer that does not fit.
    pub fn new(layers: &[(usize, usize)], len: usize, piece: usize) -> Result<Self, String> {
        if piece == 0 {
            return Err("pieces: the piece size must be at least 1".to_string());
        }
        let too_many = |what: &str| format!("pieces: more than {} {what}", u32::MAX);
        u32::try_from(layers.len()).map_err(|_| too_many("layers"))?;
        let mut start = vec![0u64];
        let mut layer = Vec::new();
        let mut first = Vec::with_capacity(layers.len() + 1);
        let mut next = 0usize;
        for (l, &(offset, n)) in layers.iter().enumerate() {
            if offset != next {
                return Err(format!(
                    "pieces: layer {l} starts at {offset} but the previous one ends at {next}"
                ));
            }
            first.push(u32::try_from(layer.len()).map_err(|_| too_many("pieces"))?);
            let end = offset + n;
            let mut at = offset;
            while at < end {
                at = (at + piece).min(end);
                start.push(at as u64);
                layer.push(l as u32);
            }
            next = end;
        }
        if next != len {
            return Err(format!(
                "pieces: the layers cover {next} elements but the buffer has {len}"
            ));
        }
        first.push(u32::try_from(layer.len()).map_err(|_| too_many("pieces"))?);
        Ok(Self {
            start,
            layer,
            first,
        })
    }

    /// A buffer with no layer structure: one layer of `len` elements.
    pub fn flat(len: usize, piece: usize) -> Result<Self, String> {
        Self::new(&[(0, len)], len, piece)
    }

    /// How many pieces.
    pub fn count(&self) -> usize {
        self.layer.len()
    }

    /// How many layers.
    pub fn layers(&self) -> usize {
        self.first.len() - 1
    }

    /// How many elements the pieces cover.
    pub fn len(&self) -> usize {
        *self
            .start
            .last()
            .expect("start always holds the end offset") as usize
    }

    /// True when the pieces cover no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
