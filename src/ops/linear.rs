//! Fully connected layer, optionally fused with the ReLU after it.
//!
//! On the CPU one custom op does `x W^T + b` as a single GEMM with the bias preloaded into the
//! output, and its backward computes exactly what is needed: `dW = g^T x`, `db = sum g` and
//! `dx = g W` only when `x` takes part in autograd (candle's matmul backward always computes the
//! input's gradient, a full extra GEMM for the first layer, whose input is data). With the ReLU
//! fused, `g` is the incoming gradient masked by `y > 0`. Other devices use candle's ops.

use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};

use super::cpu::{contiguous_f32, gemm_parallelism, sgemm, to_vec_f32, with_f32, Mat};

/// A fully connected layer: weight (out, in), bias (out).
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `relu(x W^T + b)`.
    pub fn forward_relu(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, true)
    }

    fn apply(&self, xs: &Tensor, relu: bool) -> Result<Tensor> {
        // f32 only: the flatness code differentiates an f64 copy of the model (candle's ops).
        let f32s = [xs, &self.weight, &self.bias]
            .iter()
            .all(|t| t.dtype() == candle_core::DType::F32);
        if xs.device().is_cpu() && xs.rank() == 2 && f32s {
            return xs.apply_op3(&self.weight, &self.bias, LinearOp { relu });
        }
        let y = xs
            .broadcast_matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false)
    }
}

/// `y = x W^T + b` (then ReLU when `relu`), x (N, I), W (O, I), b (O).
#[derive(Clone, Copy, Debug)]
struct LinearOp {
    relu: bool,
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "grawa-linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, i) = xl.shape().dims2()?;
        let (o, wi) = wl.shape().dims2()?;
        if wi != i || bl.shape().dims1()? != o {
            candle_core::bail!(
                "linear: x {:?}, weight {:?}, bias {:?}",
                xl.shape(),
                wl.shape(),
                bl.shape()
            );
        }
        let x = contiguous_f32(x, xl)?;
        let w = contiguous_f32(w, wl)?;
        let b = contiguous_f32(b, bl)?;
        let mut y = vec![0f32; n * o];
        for row in y.chunks_exact_mut(o) {
            row.copy_from_slice(&b);
        }
        // y (n x o) += x (n x i) . W^T (i x o); W^T's element (k, j) sits at j*i + k.
        let (xm, wt) = (
            Mat {
                data: &x,
                rs: i,
                cs: 1,
            },
            Mat {
                data: &w,
                rs: 1,
                cs: i,
            },
        );
        sgemm(
            n,
            o,
            i,
            &mut y,
            o,
            1,
            true,
            xm,
            wt,
            gemm_parallelism(n * o * i),
        );
        if self.relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, i) = x.dims2()?;
        let o = w.dim(0)?;
        let mut g = to_vec_f32(grad)?;
        if self.relu {
            with_f32(res, |y| {
                g.iter_mut().zip(y).for_each(|(gv, &yv)| {
                    if yv <= 0.0 {
                        *gv = 0.0
                    }
                })
            })?;
        }
        let dev = x.device();

        // dW (o x i) = g^T (o x n) . x (n x i); g^T's element (r, c) sits at c*o + r.
        let mut dw = vec![0f32; o * i];
        let par = gemm_parallelism(n * o * i);
        let gt = Mat {
            data: &g,
            rs: 1,
            cs: o,
        };
        with_f32(x, |xs| {
            let xm = Mat {
                data: xs,
                rs: i,
                cs: 1,
            };
            sgemm(o, i, n, &mut dw, i, 1, false, gt, xm, par)
        })?;
        let mut db = vec![0f32; o];
        for row in g.chunks_exact(o) {
            db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
        }
        let dx = if x.track_op() {
            // dx (n x i) = g (n x o) . W (o x i).
            let mut dx = vec![0f32; n * i];
            let gm = Mat {
                data: &g,
                rs: o,
                cs: 1,
            };
            with_f32(w, |ws| {
                let wm = Mat {
                    data: ws,
                    rs: i,
                    cs: 1,
                };
                sgemm(n, i, o, &mut dx, i, 1, false, gm, wm, par)
            })?;
            Some(Tensor::from_vec(dx, (n, i), dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, (o, i), dev)?),
            Some(Tensor::from_vec(db, o, dev)?),
        ))
    }
}
