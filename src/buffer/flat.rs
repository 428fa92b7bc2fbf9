//! [`Flat`]: a worker's flat parameters as the round carries them, in host memory (the CPU
//! product) or on a GPU (feature `cuda`). The workers' messages, the round's targets and the
//! hub's rounds all hold `Flat`s, so a GPU worker's snapshot reaches the round, and the round's
//! center reaches the worker, without passing through the host.

use std::borrow::Cow;
#[cfg(feature = "cuda")]
use std::sync::Arc;

#[cfg(feature = "cuda")]
use super::cuda::{CudaBuffer, CudaPlace};
use super::flat_buffer::FlatBuffer;
use super::round::RoundBuffer;
use crate::average::{sum, uniform_average, weighted_center, Weights};
use crate::model::LayerEntry;
use crate::optim::SgdConfig;
use crate::{Error, Result};

/// Flat f32 values laid out by a layer table, wherever they live.
pub enum Flat {
    /// In host memory.
    Host(Vec<f32>),
    /// On a GPU.
    #[cfg(feature = "cuda")]
    Device(CudaBuffer),
}

/// Where a round makes its results: host memory, or a stream on one GPU.
#[derive(Clone, Default)]
pub enum FlatPlace {
    #[default]
    Host,
    #[cfg(feature = "cuda")]
    Device(Arc<CudaPlace>),
}

impl From<Vec<f32>> for Flat {
    fn from(v: Vec<f32>) -> Self {
        Flat::Host(v)
    }
}

impl FromIterator<f32> for Flat {
    fn from_iter<I: IntoIterator<Item = f32>>(iter: I) -> Self {
        Flat::Host(iter.into_iter().collect())
    }
}

impl std::fmt::Debug for Flat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flat::Host(v) => write!(f, "Flat::Host({} values)", v.len()),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => write!(f, "Flat::Device({} values)", b.len()),
        }
    }
}

impl Flat {
    /// The host values, when they live in host memory.
    pub fn as_host(&self) -> Option<&[f32]> {
        match self {
            Flat::Host(v) => Some(v),
            #[cfg(feature = "cuda")]
            Flat::Device(_) => None,
        }
    }

    /// The values as a host vector (a copy from a GPU; the vector itself from the host).
    pub fn into_vec(self) -> Result<Vec<f32>> {
        match self {
            Flat::Host(v) => Ok(v),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.to_host(),
        }
    }

    /// A host copy of the values.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.host()?.into_owned())
    }

    /// Whether the values live at `place` (host memory, or that very GPU stream), so operations
    /// of that place can use them without a copy.
    pub fn is_at(&self, place: &FlatPlace) -> bool {
        match (self, place) {
            (Flat::Host(_), FlatPlace::Host) => true,
            #[cfg(feature = "cuda")]
            (Flat::Device(b), FlatPlace::Device(p)) => Arc::ptr_eq(b.place(), p),
            #[cfg(feature = "cuda")]
            _ => false,
        }
    }
}

fn mixed(what: &str) -> Error {
    Error::Internal(format!(
        "{what}: a host buffer and a GPU buffer (move one over first)"
    ))
}

/// The host slices of `xs`, or an error naming `what` if any lives on a GPU.
fn host_slices<'a>(xs: &[&'a Flat], what: &str) -> Result<Vec<&'a [f32]>> {
    xs.iter()
        .map(|x| x.as_host().ok_or_else(|| mixed(what)))
        .collect()
}

#[cfg(feature = "cuda")]
fn device_buffers<'a>(xs: &[&'a Flat], what: &str) -> Result<Vec<&'a CudaBuffer>> {
    xs.iter()
        .map(|x| match x {
            Flat::Device(b) => Ok(b),
            Flat::Host(_) => Err(mixed(what)),
        })
        .collect()
}

/// Applies a binary operation to two buffers of the same kind.
macro_rules! same_kind {
    ($what:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Flat::Host($x), Flat::Host($y)) => $body,
            #[cfg(feature = "cuda")]
            (Flat::Device($x), Flat::Device($y)) => $body,
            #[cfg(feature = "cuda")]
            _ => Err(mixed($what)),
        }
    };
}

impl FlatBuffer for Flat {
    fn len(&self) -> usize {
        match self {
            Flat::Host(v) => v.len(),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.len(),
        }
    }

    fn layer_sumsq(&self, table: &[LayerEntry]) -> Result<Vec<f64>> {
        match self {
            Flat::Host(v) => v.layer_sumsq(table),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.layer_sumsq(table),
        }
    }

    fn pull(&mut self, center: &Self, lambda: f32) -> Result<()> {
        same_kind!("pull", self, center, |x, c| x.pull(c, lambda))
    }

    fn scale_add(&mut self, a: f32, y: &Self, b: f32) -> Result<()> {
        same_kind!("scale_add", self, y, |x, y| x.scale_add(a, y, b))
    }

    fn divide(&mut self, d: f32) -> Result<()> {
        match self {
            Flat::Host(v) => v.divide(d),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.divide(d),
        }
    }

    fn sgd_step(
        &mut self,
        grad: &Self,
        momentum: &mut Self,
        lr: f32,
        cfg: &SgdConfig,
    ) -> Result<()> {
        match (self, grad, momentum) {
            (Flat::Host(x), Flat::Host(g), Flat::Host(m)) => x.sgd_step(g, m, lr, cfg),
            #[cfg(feature = "cuda")]
            (Flat::Device(x), Flat::Device(g), Flat::Device(m)) => x.sgd_step(g, m, lr, cfg),
            #[cfg(feature = "cuda")]
            _ => Err(mixed("sgd_step")),
        }
    }

    fn to_host(&self) -> Result<Vec<f32>> {
        match self {
            Flat::Host(v) => Ok(v.clone()),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.to_host(),
        }
    }
}

impl RoundBuffer for Flat {
    type Place = FlatPlace;

    fn combine(
        xs: &[&Self],
        scale: Option<&Weights>,
        table: &[LayerEntry],
        at: &FlatPlace,
    ) -> Result<Self> {
        match at {
            FlatPlace::Host => {
                let xs = host_slices(xs, "combine")?;
                let first = xs.first().ok_or_else(no_participants)?;
                // Both add the terms in order, so a mean formed from the plain sum is the bits
                // `uniform_average` gives.
                let mut out = vec![0f32; first.len()];
                match scale {
                    Some(w) => weighted_center(&xs, w, table, &mut out),
                    None => sum(&xs, &mut out),
                }
                Ok(Flat::Host(out))
            }
            #[cfg(feature = "cuda")]
            FlatPlace::Device(p) => {
                let xs = device_buffers(xs, "combine")?;
                CudaBuffer::combine(&xs, scale, table, p).map(Flat::Device)
            }
        }
    }

    fn mean(xs: &[&Self], at: &FlatPlace) -> Result<Self> {
        match at {
            FlatPlace::Host => {
                let xs = host_slices(xs, "mean")?;
                let first = xs.first().ok_or_else(no_participants)?;
                // The division happens while each piece of the sum is still in cache.
                let mut out = vec![0f32; first.len()];
                uniform_average(&xs, &mut out);
                Ok(Flat::Host(out))
            }
            #[cfg(feature = "cuda")]
            FlatPlace::Device(p) => {
                let xs = device_buffers(xs, "mean")?;
                CudaBuffer::mean(&xs, p).map(Flat::Device)
            }
        }
    }

    fn copy_to(&self, at: &FlatPlace) -> Result<Self> {
        match (self, at) {
            (Flat::Host(v), FlatPlace::Host) => Ok(Flat::Host(v.clone())),
            #[cfg(feature = "cuda")]
            (Flat::Device(b), FlatPlace::Device(p)) => b.copy_to(p).map(Flat::Device),
            #[cfg(feature = "cuda")]
            (Flat::Host(v), FlatPlace::Device(p)) => CudaBuffer::from_host(p, v).map(Flat::Device),
            #[cfg(feature = "cuda")]
            (Flat::Device(b), FlatPlace::Host) => b.to_host().map(Flat::Host),
        }
    }

    fn duplicate(&self) -> Result<Self> {
        match self {
            Flat::Host(v) => Ok(Flat::Host(v.clone())),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => b.duplicate().map(Flat::Device),
        }
    }

    fn host(&self) -> Result<Cow<'_, [f32]>> {
        match self {
            Flat::Host(v) => Ok(Cow::Borrowed(v)),
            #[cfg(feature = "cuda")]
            Flat::Device(b) => Ok(Cow::Owned(b.to_host()?)),
        }
    }
}

fn no_participants() -> Error {
    Error::Internal("a round over no participants".into())
}
