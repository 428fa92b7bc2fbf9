//! Part 2 of the self-test: a copy between each ordered pair of GPUs, checked bit for bit and
//! timed.

use std::sync::Arc;

use rand::rngs::StdRng;

use super::bandwidth::{gb_per_s, time_ms};
use super::{download, failed, normal, upload, Gpu};
use crate::cuda::cudarc::driver::{CudaContext, CudaStream};
use crate::cuda::device::{copy, enable_peer_access};
use crate::cuda::{Context, Result};
use crate::selftest::report::{compare, Check, Comparison, PeerCopy, Report};

/// Bytes per peer copy: 256 MiB.
const PEER_ELEMS: usize = 1 << 26;

/// Copies from every GPU to every other, one [`Check`] and one [`PeerCopy`] each into `report`.
pub(super) fn check_every_pair(gpus: &[Gpu], rng: &mut StdRng, report: &mut Report) {
    for (a, (ctx_a, stream_a)) in gpus.iter().enumerate() {
        for (b, (ctx_b, stream_b)) in gpus.iter().enumerate() {
            if a == b {
                continue;
            }
            let (src, dst) = (ctx_a.ordinal(), ctx_b.ordinal());
            let case = format!("GPU {src} -> GPU {dst}");
            match peer_copy(ctx_a, stream_a, ctx_b, stream_b, rng) {
                Ok((copy, comparison)) => {
                    report.peer_copies.push(copy);
                    let check = Check::new(dst, "peer copy", case, comparison, 0.0);
                    report.checks.push(check);
                }
                Err(e) => report.checks.push(failed(dst, "peer copy", case, e)),
            }
        }
    }
}

/// Copies [`PEER_ELEMS`] random floats from GPU a to GPU b: bandwidth, and the copy checked bit for
/// bit (tolerance 0).
fn peer_copy(
    ctx_a: &Arc<CudaContext>,
    stream_a: &Arc<CudaStream>,
    ctx_b: &Arc<CudaContext>,
    stream_b: &Arc<CudaStream>,
    rng: &mut StdRng,
) -> Result<(PeerCopy, Comparison)> {
    // Both directions, so that either side may drive the copy directly.
    let peer = enable_peer_access(ctx_b, ctx_a)? && enable_peer_access(ctx_a, ctx_b)?;
    let host = normal(rng, PEER_ELEMS);
    let src = upload(stream_a, &host)?;
    stream_a.synchronize().context("waiting for the upload")?;
    let mut dst = stream_b
        .alloc_zeros::<f32>(PEER_ELEMS)
        .context("allocating the copy's destination")?;
    let ms = time_ms(stream_b, || copy(stream_b, &src, &mut dst))?;
    let got = download(stream_b, &dst)?;
    let bytes = (PEER_ELEMS * 4) as u64;
    Ok((
        PeerCopy {
            src: ctx_a.ordinal(),
            dst: ctx_b.ordinal(),
            peer_access: peer,
            bytes,
            gb_per_s: gb_per_s(bytes, ms),
        },
        compare(&got, &host),
    ))
}
