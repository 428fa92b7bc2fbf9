//! Seeded parameter initialisation. candle's CPU random generator cannot be seeded, and its
//! initialisers use it, so models are built through this `VarBuilder` backend instead: every new
//! variable draws from a generator seeded by (run seed, variable name). Runs are reproducible and a
//! variable's initial value does not depend on the order in which layers are built.

use std::hash::{Hash, Hasher};

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

/// A `VarMap` whose missing variables are created from a seeded generator.
pub struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SeededVarMap {
    /// Wraps `varmap`; variables it lacks are initialised from `seed`.
    pub fn new(varmap: VarMap, seed: u64) -> Self {
        Self { varmap, seed }
    }

    /// A `VarBuilder` over this store (f32 on `device`).
    pub fn into_var_builder(self, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), DType::F32, device.clone())
    }
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// The generator seed for variable `name` in a run seeded with `seed`.
pub fn variable_seed(seed: u64, name: &str) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    seed.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

/// Values for `init` over `shape`, drawn from `rng` (f32, row-major).
pub fn init_values(init: Init, shape: &Shape, rng: &mut StdRng) -> Result<Vec<f32>> {
    let n = shape.elem_count();
    let values = match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Uniform { lo, up } => {
            let d = Uniform::new(lo as f32, up as f32).map_err(candle_core::Error::wrap)?;
            (0..n).map(|_| d.sample(rng)).collect()
        }
        Init::Randn { mean, stdev } => {
            let d = Normal::new(mean as f32, stdev as f32).map_err(candle_core::Error::wrap)?;
            (0..n).map(|_| d.sample(rng)).collect()
        }
        Init::Kaiming { .. } => {
            candle_core::bail!(
                "Kaiming hints are not used by grawa-train's layers: pass Uniform or Randn"
            )
        }
    };
    Ok(values)
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.varmap.data().lock().expect("VarMap lock poisoned");
        if let Some(var) = data.get(name) {
            let t = var.as_tensor();
            if t.shape() != &s {
                candle_core::bail!(
                    "variable {name}: shape {:?} requested, {:?} stored",
                    s,
                    t.shape()
                );
            }
            return Ok(t.clone());
        }
        let mut rng = StdRng::seed_from_u64(variable_seed(self.seed, name));
        let values = init_values(h, &s, &mut rng)?;
        let tensor = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("variable {name} must be created with a shape and an initialiser")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("VarMap lock poisoned")
            .contains_key(name)
    }
}
