//! Which GPUs a rank trains on when a run spans processes. `--gpus N` names the ordinals
//! 0..N-1; on a machine running several ranks each rank takes its own N: local rank l shifts the
//! ordinals by l*N, the convention torchrun's LOCAL_RANK follows. Where the launcher already gave
//! every rank its own GPUs (Slurm's `--gpus-per-task`, a per-rank `CUDA_VISIBLE_DEVICES`), the
//! rank sees exactly its N and keeps the ordinals as they are.

use std::collections::BTreeSet;

/// The placement (one GPU ordinal per worker) of the rank with machine-local rank `local_rank`,
/// for a machine where it sees `visible` GPUs; an error says why it does not fit.
pub fn gpus_for_rank(
    placement: &[usize],
    local_rank: usize,
    visible: usize,
) -> Result<Vec<usize>, String> {
    let n = placement.iter().collect::<BTreeSet<_>>().len();
    let shifted: Vec<usize> = placement.iter().map(|g| g + local_rank * n).collect();
    let fits = |p: &[usize]| p.iter().all(|&g| g < visible);
    if fits(&shifted) {
        Ok(shifted)
    } else if visible == n && fits(placement) {
        Ok(placement.to_vec())
    } else {
        let (lo, hi) = (local_rank * n, local_rank * n + n - 1);
        Err(format!(
            "--gpus across processes: the rank with local rank {local_rank} on this machine takes GPUs {lo}..{hi}, but it sees {visible}; run at most {} ranks per machine, or give each rank its own GPUs (Slurm --gpus-per-task, CUDA_VISIBLE_DEVICES)",
            visible / n.max(1)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ranks_take_consecutive_gpus() {
        // 4 GPUs, 4 ranks of --gpus 1.
        for l in 0..4 {
            assert_eq!(gpus_for_rank(&[0], l, 4).unwrap(), vec![l]);
        }
        // 4 GPUs, 2 ranks of --gpus 2 --workers 4 (round-robin 0,1,0,1).
        assert_eq!(
            gpus_for_rank(&[0, 1, 0, 1], 1, 4).unwrap(),
            vec![2, 3, 2, 3]
        );
    }

    #[test]
    fn a_rank_bound_to_its_own_gpus_keeps_them() {
        assert_eq!(gpus_for_rank(&[0], 3, 1).unwrap(), vec![0]);
        assert_eq!(gpus_for_rank(&[0, 1], 1, 2).unwrap(), vec![0, 1]);
    }

    #[test]
    fn too_many_ranks_for_the_gpus_is_an_error_naming_them() {
        let e = gpus_for_rank(&[0], 4, 4).unwrap_err();
        assert!(e.contains("local rank 4") && e.contains("sees 4"), "{e}");
        assert!(e.contains("at most 4 ranks per machine"), "{e}");
        assert!(gpus_for_rank(&[0, 1], 1, 3).is_err());
    }
}
