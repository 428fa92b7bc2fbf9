// The local step's optimizer on the GPU: SGD with momentum, Nesterov and weight decay over flat
// buffers, PyTorch semantics. Twin of `optim::sgd_update` (src/optim.rs), its reference in
// `grawa-train selftest`; the host launcher is in src/cuda/kernels.rs.
//
//   d = g + wd x;  buf = mu buf + d;  d = d + mu buf (Nesterov) or d = buf;  x -= lr d
//
// One kernel instead of the five element-wise tensor ops the step would otherwise take: x, g and buf
// are read once and x and buf written once. Compiled with --fmad=false (see build.rs), so the
// result is bit-identical to the CPU twin, which performs the same f32 operations in this order.

typedef unsigned long long u64;

// One element of the step: the same f32 operations, in the same order, as `optim::sgd_update`.
__device__ __forceinline__ void sgd_element(float& x, float g, float& buf, float lr, float momentum,
                                            float weight_decay, int nesterov) {
    const float d = g + weight_decay * x;
    const float b = momentum * buf + d;
    buf = b;
    const float step = nesterov ? d + momentum * b : b;
    x = x - lr * step;
}

// A grid-stride loop UNROLL elements per trip, every load of a trip before any store, so a thread
// keeps 3 * UNROLL loads in flight (see kernels/average.cu).
#define UNROLL 4

extern "C" __global__ void sgd_step(float* __restrict__ x, const float* __restrict__ g, float* __restrict__ buf,
                                    u64 n, float lr, float momentum, float weight_decay, int nesterov) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x;
    for (; j + (UNROLL - 1) * stride < n; j += UNROLL * stride) {
        float xv[UNROLL], gv[UNROLL], bv[UNROLL];
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            xv[k] = x[j + k * stride];
            gv[k] = g[j + k * stride];
            bv[k] = buf[j + k * stride];
        }
#pragma unroll
        for (int k = 0; k < UNROLL; ++k) {
            sgd_element(xv[k], gv[k], bv[k], lr, momentum, weight_decay, nesterov);
            buf[j + k * stride] = bv[k];
            x[j + k * stride] = xv[k];
        }
    }
    for (; j < n; j += stride) {
        float xj = x[j], bj = buf[j];
        sgd_element(xj, g[j], bj, lr, momentum, weight_decay, nesterov);
        buf[j] = bj;
        x[j] = xj;
    }
}
