# Sourced by scripts/gpu-check.sh: makes the CUDA libraries a binary needs loadable, or says
# which are missing and where it looked.
#
# A CUDA build of grawa-train is linked (BIND_NOW) against libcuda.so.1 (the driver's),
# libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudart.so.13, and libnccl.so.2 with
# NCCL; one missing stops it before main, even for --help. A GPU machine may keep them outside
# the loader's path: a CUDA toolkit under /usr/local/cuda*, the driver under /usr/local/nvidia,
# or, where PyTorch is installed, pip's `nvidia-*` packages (site-packages/nvidia/*/lib). So:
# what the loader finds first, then those places, each folder that has a missing library added
# to LD_LIBRARY_PATH, and only then an error naming what is still missing.
#
# GPU_CHECK_SITES (colon-separated) adds folders to search as if they were a Python's
# site-packages: the no-GPU proof points it at the unpacked wheels.

# The sonames of BIN that the loader cannot find now.
cuda_missing() {
    ldd "$1" 2>/dev/null | awk '/=> not found/ {print $1}' |
        grep -E '^lib(cuda|cublas|cublasLt|curand|cudart|nccl|nvrtc)\.so' || true
}

# Every Python on the machine, by the usual names and places (each printed once).
pythons() {
    {
        command -v python3 python 2>/dev/null
        ls -d /usr/bin/python3* /usr/local/bin/python3* /opt/conda/bin/python3 \
            /opt/conda/envs/*/bin/python3 /root/.pyenv/versions/*/bin/python3 \
            /usr/local/lib/python3*/venv/bin/python3 2>/dev/null
    } | grep -E '/python3?(\.[0-9]+)?$' | while read -r p; do
        [[ -x "$p" ]] && readlink -f "$p"
    done | sort -u
}

# Folders that may hold CUDA libraries, in the order they are tried.
cuda_lib_dirs() {
    ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/local/nvidia/lib64 \
        /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib/wsl/lib 2>/dev/null
    local py site
    for py in $(pythons); do
        timeout 20 "$py" -c 'import site, sys
for d in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    print(d)' 2>/dev/null
    done | sort -u | while read -r site; do
        ls -d "$site"/nvidia/*/lib 2>/dev/null
    done
    ls -d /usr/local/lib/python3*/*-packages/nvidia/*/lib /usr/lib/python3*/*-packages/nvidia/*/lib \
        /opt/conda/lib/python3*/site-packages/nvidia/*/lib \
        /root/.local/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null
    local extra
    IFS=: read -ra extra <<<"${GPU_CHECK_SITES:-}"
    for site in "${extra[@]}"; do
        [[ -n "$site" ]] && ls -d "$site"/nvidia/*/lib 2>/dev/null
    done
}

# find_cuda_libs LOG BIN...: extends LD_LIBRARY_PATH until every CUDA library of the binaries
# resolves, logging the search to LOG, and sets CUDA_MISSING to the sonames still missing
# (empty when all resolve). Call it directly, not in $(...): it exports LD_LIBRARY_PATH.
find_cuda_libs() {
    local log=$1
    shift
    {
        echo "## CUDA libraries"
        echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
        echo "ldconfig -p (CUDA libraries):"
        ldconfig -p 2>/dev/null | grep -E 'lib(cuda|cublas|cublasLt|curand|cudart|nccl|nvrtc)\.so' | sed 's/^/  /'
        echo "Pythons: $(pythons | tr '\n' ' ')"
    } >>"$log"
    local missing bin
    missing=$(for bin in "$@"; do cuda_missing "$bin"; done | sort -u)
    if [[ -n "$missing" ]]; then
        local dirs soname dir
        dirs=$(cuda_lib_dirs | awk '!seen[$0]++')
        echo "searched: $(tr '\n' ' ' <<<"$dirs")" >>"$log"
        for soname in $missing; do
            dir=$(while read -r d; do [[ -e "$d/$soname" ]] && { echo "$d"; break; }; done <<<"$dirs")
            if [[ -n "$dir" ]]; then
                echo "found $soname in $dir" >>"$log"
                [[ ":${LD_LIBRARY_PATH:-}:" == *":$dir:"* ]] ||
                    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            else
                # Say what is there instead (a CUDA 12 libcublas.so.12 is not a .so.13).
                echo "not found: $soname (nearby: $(while read -r d; do ls "$d" 2>/dev/null; done <<<"$dirs" |
                    grep -E "^${soname%%.so*}\.so" | sort -u | tr '\n' ' '))" >>"$log"
            fi
        done
        missing=$(for bin in "$@"; do cuda_missing "$bin"; done | sort -u)
    fi
    {
        echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
        for bin in "$@"; do
            echo "ldd $(basename "$bin"):"
            ldd "$bin" 2>&1 | grep -E 'lib(cuda|cublas|cublasLt|curand|cudart|nccl|nvrtc)\.so|not found' | sed 's/^/  /'
        done
    } >>"$log"
    CUDA_MISSING=$(echo "$missing" | grep . | tr '\n' ' ' | sed 's/ $//')
}
