// The reductions of an averaging round on the GPU. Each kernel is the twin of a function in
// src/average/naive.rs, which is its reference in `grawa-train selftest`:
//
//   layer_sumsq      naive_layer_sumsq       per-layer sums of squares, f64, one launch
//   weighted_center  naive_weighted_center   x_C = sum_i w_{i,l} x_i
//   center_and_pull  naive_center_and_pull   x_C, then every x_i pulled toward it, fused
//   pull             naive_pull              x <- (1 - lambda) x + lambda c (also the prox step)
//   easgd_round      naive_easgd_round       EASGD's elastic step for the workers and the center
//   uniform_average  naive_uniform_average   (sum_i x_i) / M
//   scale_add        buffer::host (scale_add)  x <- a x + b y
//   divide           buffer::host (divide)     x <- x / d
//
// Host launchers live in src/cuda/kernels.rs; these are only the __global__ functions.
//
// Compiled by build.rs with --fmad=false: every element-wise kernel performs the same f32 operations
// in the same order as its CPU twin (worker 0 first), so without FMA contraction the results are
// bit-identical, and the self-test can hold them to a tolerance far below what a wrong index or a
// wrong weight would produce. The kernels are memory-bound; FMA would buy nothing here.
//
// Work on layered buffers is cut into *pieces* (src/cuda/block_pieces.rs): runs of at most a few
// thousand elements that never cross a layer boundary, listed once per layer table. One block
// handles one piece at a time, so a block knows its layer (and so its weights) without searching,
// and small layers cost no more than their size.

// Workers' buffers are passed by value in a kernel parameter (512 bytes of the 4 KiB allowed), so a
// launch needs no host-to-device copy of a pointer table. Must match MAX_WORKERS in src/cuda/kernels.rs.
#define MAX_WORKERS 64

struct Workers {
    float* x[MAX_WORKERS];
};

typedef unsigned long long u64;
typedef unsigned int u32;

// Sum of `v` over the block, valid in thread 0. blockDim.x must be a multiple of 32, at most 1024.
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, o);
    }
    const u32 lane = threadIdx.x & 31u;
    const u32 warp = threadIdx.x >> 5;
    if (lane == 0) {
        warp_sums[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? warp_sums[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            v += __shfl_down_sync(0xffffffffu, v, o);
        }
    }
    // warp_sums is reused by the next call: nobody may write it before everybody has read it.
    __syncthreads();
    return v;
}

// out[l] = sum of x[j]^2 over layer l, accumulated in f64 (as the CPU twin: f32 loses digits past
// ~1e7 terms). One launch for every layer, deterministic: each piece's partial sum is written to
// `partial`, and the last block to finish (found with a counter, the CUDA "threadFenceReduction"
// pattern) adds each layer's partials. `done` must be 0 at launch: the launcher clears it on the
// same stream first, so an aborted launch cannot leave a stale count behind.
//
// Bandwidth: each thread keeps four independent loads in flight (four accumulators, combined in a
// fixed order), and the final pass gives each layer a warp whose lanes stride over its partials
// and meet in a shuffle tree, so a layer of a thousand pieces costs ~32 dependent loads, not a
// thousand on one thread. Every order is fixed by the launch shape: the same bits on every run.
//
// piece_start: pieces + 1 offsets into x; layer_first_piece: layers + 1 indices into the pieces.
extern "C" __global__ void layer_sumsq(const float* __restrict__ x, const u64* __restrict__ piece_start,
                                       u32 pieces, const u32* __restrict__ layer_first_piece, u32 layers,
                                       double* partial, u32* done, double* __restrict__ out) {
    const u64 stride = blockDim.x;
    for (u32 p = blockIdx.x; p < pieces; p += gridDim.x) {
        const u64 end = piece_start[p + 1];
        u64 j = piece_start[p] + threadIdx.x;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (; j + 3 * stride < end; j += 4 * stride) {
            const double a = (double)x[j];
            const double b = (double)x[j + stride];
            const double c = (double)x[j + 2 * stride];
            const double d = (double)x[j + 3 * stride];
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }
        for (; j < end; j += stride) {
            const double v = (double)x[j];
            s0 += v * v;
        }
        const double s = block_sum((s0 + s1) + (s2 + s3));
        if (threadIdx.x == 0) {
            partial[p] = s;
        }
    }

    // Make this block's partials visible to every block before counting it as done.
    __threadfence();
    __shared__ bool last;
    if (threadIdx.x == 0) {
        last = atomicAdd(done, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) {
        return;
    }
    const volatile double* vpartial = partial;
    const u32 lane = threadIdx.x & 31u;
    const u32 warps = blockDim.x >> 5;
    // `l` is the same for the whole warp, so every lane reaches the shuffles together.
    for (u32 l = threadIdx.x >> 5; l < layers; l += warps) {
        double s = 0.0;
        for (u32 p = layer_first_piece[l] + lane; p < layer_first_piece[l + 1]; p += 32) {
            s += vpartial[p];
        }
        for (int o = 16; o > 0; o >>= 1) {
            s += __shfl_down_sync(0xffffffffu, s, o);
        }
        if (lane == 0) {
            out[l] = s;
        }
    }
}

// Loads the weights of the current piece's layer into shared memory: weight of worker i in layer
// l = w[i * worker_stride + l * layer_stride] (per-worker weights: strides 1, 0; per-layer weights
// stored worker-major as `Weights::PerLayer`: strides `layers`, 1).
__device__ void load_weights(float* wl, const float* w, u32 m, u32 worker_stride, u32 layer_stride, u32 layer) {
    __syncthreads();  // the previous piece is done with wl
    for (u32 i = threadIdx.x; i < m; i += blockDim.x) {
        wl[i] = w[(u64)i * worker_stride + (u64)layer * layer_stride];
    }
    __syncthreads();
}

// out[j] = sum_i w_{i,layer(j)} xs[i][j], summed from worker 0 up, as the CPU twin.
extern "C" __global__ void weighted_center(Workers xs, u32 m, const float* __restrict__ w, u32 worker_stride,
                                           u32 layer_stride, const u64* __restrict__ piece_start,
                                           const u32* __restrict__ piece_layer, u32 pieces,
                                           float* __restrict__ out) {
    __shared__ float wl[MAX_WORKERS];
    for (u32 p = blockIdx.x; p < pieces; p += gridDim.x) {
        load_weights(wl, w, m, worker_stride, layer_stride, piece_layer[p]);
        for (u64 j = piece_start[p] + threadIdx.x; j < piece_start[p + 1]; j += blockDim.x) {
            float acc = wl[0] * xs.x[0][j];
            for (u32 i = 1; i < m; ++i) {
                acc += wl[i] * xs.x[i][j];
            }
            out[j] = acc;
        }
    }
}

// weighted_center, then x_i[j] <- (1 - lambda) x_i[j] + lambda c[j] for every worker, fused: each x
// is read once and written once, instead of read twice.
extern "C" __global__ void center_and_pull(Workers xs, u32 m, const float* __restrict__ w, u32 worker_stride,
                                           u32 layer_stride, const u64* __restrict__ piece_start,
                                           const u32* __restrict__ piece_layer, u32 pieces,
                                           float* __restrict__ center, float lambda) {
    __shared__ float wl[MAX_WORKERS];
    const float keep = 1.0f - lambda;
    for (u32 p = blockIdx.x; p < pieces; p += gridDim.x) {
        load_weights(wl, w, m, worker_stride, layer_stride, piece_layer[p]);
        for (u64 j = piece_start[p] + threadIdx.x; j < piece_start[p + 1]; j += blockDim.x) {
            float acc = wl[0] * xs.x[0][j];
            for (u32 i = 1; i < m; ++i) {
                acc += wl[i] * xs.x[i][j];
            }
            center[j] = acc;
            for (u32 i = 0; i < m; ++i) {
                xs.x[i][j] = keep * xs.x[i][j] + lambda * acc;
            }
        }
    }
}

// The flat kernels below walk a grid-stride loop UNROLL elements per trip, loading all of them
// before storing any, so a thread keeps UNROLL loads in flight (one per trip would leave HBM idle:
// a GPU's resident threads then hold too few bytes in flight to cover the memory latency). Each
// element still gets exactly the operations of its CPU twin; only the loop shape differs.
#define UNROLL 4

// x[j] <- (1 - lambda) x[j] + lambda c[j]: the GRAWA/LSGD pull, and the proximal step (lambda = p/tau).
extern "C" __global__ void pull(float* __restrict__ x, const float* __restrict__ c, u64 n, float lambda) {
    const float keep = 1.0f - lambda;
    const u64 stride = (u64)gridDim.x * blockDim.x;
    u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x;
    for (; j + (UNROLL - 1) * stride < n; j += UNROLL * stride) {
        float xv[UNROLL], cv[UNROLL];
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            xv[k] = x[j + k * stride];
            cv[k] = c[j + k * stride];
        }
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            x[j + k * stride] = keep * xv[k] + lambda * cv[k];
        }
    }
    for (; j < n; j += stride) {
        x[j] = keep * x[j] + lambda * c[j];
    }
}

// x <- a x + b y: the scale-and-add of a flat buffer (SAM's ascent, the elastic exchange).
extern "C" __global__ void scale_add(float* __restrict__ x, const float* __restrict__ y, u64 n, float a, float b) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x;
    for (; j + (UNROLL - 1) * stride < n; j += UNROLL * stride) {
        float xv[UNROLL], yv[UNROLL];
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            xv[k] = x[j + k * stride];
            yv[k] = y[j + k * stride];
        }
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            x[j + k * stride] = a * xv[k] + b * yv[k];
        }
    }
    for (; j < n; j += stride) {
        x[j] = a * x[j] + b * y[j];
    }
}

// x <- x / d: a sum turned into a mean (a true division, as the CPU twin, not a multiply by 1/d).
extern "C" __global__ void divide(float* __restrict__ x, u64 n, float d) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x;
    for (; j + (UNROLL - 1) * stride < n; j += UNROLL * stride) {
        float xv[UNROLL];
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            xv[k] = x[j + k * stride];
        }
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            x[j + k * stride] = xv[k] / d;
        }
    }
    for (; j < n; j += stride) {
        x[j] = x[j] / d;
    }
}

// One EASGD round: x_i <- (1 - beta/M) x_i + (beta/M) c_old; c <- (1 - beta) c_old + beta mean_i(x_i),
// the mean taken over the workers before their pull.
extern "C" __global__ void easgd_round(Workers xs, u32 m, float* __restrict__ center, u64 n, float beta) {
    const float mf = (float)m;
    const float a = beta / mf;
    const float keep = 1.0f - a;
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        const float c_old = center[j];
        float sum = xs.x[0][j];
        for (u32 i = 1; i < m; ++i) {
            sum += xs.x[i][j];
        }
        for (u32 i = 0; i < m; ++i) {
            xs.x[i][j] = keep * xs.x[i][j] + a * c_old;
        }
        center[j] = (1.0f - beta) * c_old + beta * (sum / mf);
    }
}

// out[j] = (sum_i xs[i][j]) / M, summed from worker 0 up.
extern "C" __global__ void uniform_average(Workers xs, u32 m, float* __restrict__ out, u64 n) {
    const float mf = (float)m;
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        float sum = xs.x[0][j];
        for (u32 i = 1; i < m; ++i) {
            sum += xs.x[i][j];
        }
        out[j] = sum / mf;
    }
}
