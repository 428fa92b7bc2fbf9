//! [`DeviceLayout`]: a model's layer table as the layered kernels read it on the GPU.

use std::sync::Arc;

use crate::cuda::block_pieces::{Pieces, PIECE};
use crate::cuda::cudarc::driver::{CudaSlice, CudaStream};
use crate::cuda::{Context, CudaError, Result};
use crate::model::LayerEntry;

/// A layer table on one GPU: the pieces the layered kernels walk (see `block_pieces.rs`), plus
/// the scratch `layer_sumsq` needs. Built once per model and reused every round.
pub struct DeviceLayout {
    pub(super) len: usize,
    pub(super) layers: usize,
    pub(super) pieces: usize,
    pub(super) piece_start: CudaSlice<u64>,
    pub(super) piece_layer: CudaSlice<u32>,
    pub(super) layer_first: CudaSlice<u32>,
    pub(super) partial: CudaSlice<f64>,
    pub(super) done: CudaSlice<u32>,
}

impl DeviceLayout {
    /// Uploads the pieces of a buffer of `len` elements laid out by `table`.
    pub fn new(stream: &Arc<CudaStream>, table: &[LayerEntry], len: usize) -> Result<Self> {
        let layers: Vec<(usize, usize)> = table.iter().map(|e| (e.offset, e.len)).collect();
        let pieces = Pieces::new(&layers, len, PIECE).map_err(CudaError::Invalid)?;
        Self::upload(stream, &pieces)
    }

    /// A buffer of `len` elements with no layer structure (one layer).
    pub fn flat(stream: &Arc<CudaStream>, len: usize) -> Result<Self> {
        let pieces = Pieces::flat(len, PIECE).map_err(CudaError::Invalid)?;
        Self::upload(stream, &pieces)
    }

    fn upload(stream: &Arc<CudaStream>, p: &Pieces) -> Result<Self> {
        let what = "uploading a layer table";
        // Never allocate zero elements (a zero-byte cuMemAlloc is an error on some drivers).
        let at_least_one = |v: &[u32]| if v.is_empty() { vec![0] } else { v.to_vec() };
        Ok(Self {
            len: p.len(),
            layers: p.layers(),
            pieces: p.count(),
            piece_start: stream.clone_htod(&p.start).context(what)?,
            piece_layer: stream.clone_htod(&at_least_one(&p.layer)).context(what)?,
            layer_first: stream.clone_htod(&p.first).context(what)?,
            partial: stream.alloc_zeros(p.count().max(1)).context(what)?,
            done: stream.alloc_zeros(1).context(what)?,
        })
    }

    /// Elements of the buffer the layout describes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a layout of an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Layers in the table.
    pub fn layers(&self) -> usize {
        self.layers
    }
}
