//! A flat view of a model's variables: a fixed, sorted order (a *layer table*: name, offset,
//! length per tensor) and fast copies between the tensors and one `&[f32]`. Trainable parameters
//! and BatchNorm running statistics are kept in separate sets: only the former are exchanged.

use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Storage, Tensor, Var};
use candle_nn::VarMap;
use serde::Serialize;

/// One tensor's place in the flat vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerEntry {
    pub name: String,
    pub offset: usize,
    pub len: usize,
}

/// An ordered set of variables with their layer table.
#[derive(Clone)]
pub struct ParamSet {
    vars: Vec<Var>,
    table: Vec<LayerEntry>,
    total: usize,
}

/// True for BatchNorm running statistics, which are per-worker buffers, never trained or exchanged.
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

impl ParamSet {
    /// The variables of `varmap` whose names satisfy `keep`, sorted by name (a `VarMap` is a
    /// `HashMap`, so its own order changes from run to run).
    pub fn from_varmap(varmap: &VarMap, keep: impl Fn(&str) -> bool) -> Self {
        let data = varmap.data().lock().expect("VarMap lock poisoned");
        let mut named: Vec<(String, Var)> = data
            .iter()
            .filter(|(n, _)| keep(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut table = Vec::with_capacity(named.len());
        let mut offset = 0;
        for (name, var) in &named {
            let len = var.elem_count();
            table.push(LayerEntry {
                name: name.clone(),
                offset,
                len,
            });
            offset += len;
        }
        Self {
            vars: named.into_iter().map(|(_, v)| v).collect(),
            table,
            total: offset,
        }
    }

    /// Trainable parameters (everything but BatchNorm running statistics).
    pub fn trainable(varmap: &VarMap) -> Self {
        Self::from_varmap(varmap, |n| !is_buffer(n))
    }

    /// BatchNorm running statistics.
    pub fn buffers(varmap: &VarMap) -> Self {
        Self::from_varmap(varmap, is_buffer)
    }

    /// The variables, in table order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Each variable's shape, in table order (checkpoints store tensors with their real shapes).
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        self.vars.iter().map(|v| v.dims().to_vec()).collect()
    }

    /// The layer table.
    pub fn table(&self) -> &[LayerEntry] {
        &self.table
    }

    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when the set holds no scalars.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Copies every variable into `out` (length `len()`), in table order.
    pub fn read_flat(&self, out: &mut [f32]) -> Result<()> {
        check_len(out.len(), self.total)?;
        for (var, e) in self.vars.iter().zip(&self.table) {
            read_tensor(var.as_tensor(), &mut out[e.offset..e.offset + e.len])?;
        }
        Ok(())
    }

    /// The variables as one new flat vector.
    pub fn to_flat(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.total];
        self.read_flat(&mut out)?;
        Ok(out)
    }

    /// Overwrites every variable from `src` (length `len()`), in table order.
    pub fn write_flat(&self, src: &[f32]) -> Result<()> {
        check_len(src.len(), self.total)?;
        for (var, e) in self.vars.iter().zip(&self.table) {
            write_tensor(var, &src[e.offset..e.offset + e.len])?;
        }
        Ok(())
    }
}

fn check_len(got: usize, want: usize) -> Result<()> {
    if got != want {
        candle_core::bail!("flat buffer holds {got} values, the parameter set {want}");
    }
    Ok(())
}

/// Copies a tensor's values into `out`: a memcpy from CPU storage, one device-to-host copy on
/// the tensor's own stream from CUDA storage (it waits for the copy), a generic read otherwise.
pub fn read_tensor(t: &Tensor, out: &mut [f32]) -> Result<()> {
    check_len(out.len(), t.elem_count())?;
    {
        let (storage, layout) = t.storage_and_layout();
        match (&*storage, layout.contiguous_offsets()) {
            (Storage::Cpu(cs), Some((a, b))) => {
                out.copy_from_slice(&cs.as_slice::<f32>()?[a..b]);
                return Ok(());
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(cs), Some((a, b))) => {
                let slice = cs.as_cuda_slice::<f32>()?;
                cs.device
                    .cuda_stream()
                    .memcpy_dtoh(&slice.slice(a..b), out)
                    .map_err(|e| candle_core::Error::Cuda(Box::new(e)))?;
                return Ok(());
            }
            _ => {}
        }
    }
    out.copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}

/// Overwrites a variable with `src` in place (no graph, no allocation): a memcpy on the CPU, one
/// host-to-device copy on the variable's stream for CUDA.
pub fn write_tensor(var: &Var, src: &[f32]) -> Result<()> {
    let t = var.as_tensor();
    check_len(src.len(), t.elem_count())?;
    if t.device().is_cpu() || t.device().is_cuda() {
        t.inplace_op1(&CopyFrom(src))
    } else {
        var.set(&Tensor::from_slice(src, t.shape(), t.device())?)
    }
}

/// In-place copy of a host slice into a CPU tensor's storage.
struct CopyFrom<'a>(&'a [f32]);

impl InplaceOp1 for CopyFrom<'_> {
    fn name(&self) -> &'static str {
        "copy-from-slice"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("copy-from-slice: only f32 tensors are supported")
        };
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("copy-from-slice: tensor is not contiguous")
        };
        data[a..b].copy_from_slice(self.0);
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &mut candle_core::CudaStorage, layout: &Layout) -> Result<()> {
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("copy-from-slice: tensor is not contiguous")
        };
        let stream = storage.device.cuda_stream();
        let data = storage.as_cuda_slice_mut::<f32>()?;
        // From pageable memory cudarc waits for the copy: `src` may be reused at once.
        stream
            .memcpy_htod(self.0, &mut data.slice_mut(a..b))
            .map_err(|e| candle_core::Error::Cuda(Box::new(e)))
    }
}
