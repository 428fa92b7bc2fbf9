//! What a round does with several workers' buffers at once: combine them into a center, copy
//! one to where the round runs, and (outside the round: checkpoints, evaluation) read them on
//! the host. A round in `crate::round` calls only these and [`FlatBuffer`]'s operations, so a
//! buffer kind whose methods move no bytes to the host gives a round that moves none.

use std::borrow::Cow;

use super::flat_buffer::FlatBuffer;
use crate::average::Weights;
use crate::model::LayerEntry;
use crate::Result;

/// A flat buffer a round can combine with others of its kind.
pub trait RoundBuffer: FlatBuffer + Sized {
    /// Where a round's results are made: nothing for host memory, a GPU's stream for device
    /// buffers (the hub's own, so its work does not queue behind a worker's).
    type Place: Clone;

    /// `sum_i s_i x_i`, terms added in the order of `xs`, made at `at`. `scale` gives each
    /// buffer's factors (per buffer, or per buffer and layer of `table`); `None` adds them as
    /// they are.
    fn combine(
        xs: &[&Self],
        scale: Option<&Weights>,
        table: &[LayerEntry],
        at: &Self::Place,
    ) -> Result<Self>;

    /// `(sum_i x_i) / M`, made at `at`: the bits of the plain `combine` divided by M.
    fn mean(xs: &[&Self], at: &Self::Place) -> Result<Self>;

    /// A copy made at `at` (a broadcast's result; a peer copy between GPUs).
    fn copy_to(&self, at: &Self::Place) -> Result<Self>;

    /// A copy where this buffer lives.
    fn duplicate(&self) -> Result<Self>;

    /// The values in host memory: borrowed where they live there, else copied (one host
    /// transfer). For checkpoints, evaluation and metrics; a round never calls it.
    fn host(&self) -> Result<Cow<'_, [f32]>>;
}
