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

extern "C" __global__ void sgd_step(float* __restrict__ x, const float* __restrict__ g, float* __restrict__ buf,
                                    u64 n, float lr, float momentum, float weight_decay, int nesterov) {
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        const float xj = x[j];
        const float d = g[j] + weight_decay * xj;
        const float b = momentum * buf[j] + d;
        buf[j] = b;
        const float step = nesterov ? d + momentum * b : b;
        x[j] = xj - lr * step;
    }
}
