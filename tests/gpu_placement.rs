//! Where workers train (`--gpus`, `--gpu-ids`, `--workers`): the round-robin placement and the
//! worker count, pure functions checked on the CPU, and the refusals a build without `cuda` gives.
//! The expected placements are written out by hand from the rule "worker i on gpu_ids[i % n]".

use grawa_train::cli::parse_from;
use grawa_train::config::{placement, workers_for_gpus, RunConfig};

#[test]
fn workers_go_round_robin_over_the_gpus() {
    assert_eq!(placement(&[0, 1, 2, 3], 4), vec![0, 1, 2, 3]);
    assert_eq!(placement(&[0], 4), vec![0, 0, 0, 0]);
    assert_eq!(placement(&[0, 1], 4), vec![0, 1, 0, 1]);
    assert_eq!(placement(&[0, 1], 5), vec![0, 1, 0, 1, 0]);
    assert_eq!(placement(&[2, 3], 3), vec![2, 3, 2]);
    assert_eq!(placement(&[3, 1], 2), vec![3, 1]);
}

#[test]
fn no_gpus_means_no_placement() {
    assert!(placement(&[], 4).is_empty());
}

#[test]
fn every_gpu_hosts_the_same_number_of_workers_give_or_take_one() {
    for gpus in 1..=8usize {
        let ids: Vec<usize> = (0..gpus).collect();
        for workers in gpus..=3 * gpus + 1 {
            let p = placement(&ids, workers);
            assert_eq!(p.len(), workers);
            let counts: Vec<usize> = ids
                .iter()
                .map(|g| p.iter().filter(|&&x| x == *g).count())
                .collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{gpus} GPUs, {workers} workers: {counts:?}");
            assert!(*lo >= 1, "{gpus} GPUs, {workers} workers: an idle GPU");
        }
    }
}

#[test]
fn gpus_alone_give_one_worker_per_gpu() {
    // The default --workers 1 with GPUs: one worker per GPU.
    assert_eq!(workers_for_gpus(1, 4).unwrap(), 4);
    assert_eq!(workers_for_gpus(1, 1).unwrap(), 1);
    // More workers than GPUs: as asked (several per GPU).
    assert_eq!(workers_for_gpus(4, 1).unwrap(), 4);
    assert_eq!(workers_for_gpus(8, 4).unwrap(), 8);
    // No GPUs: as asked.
    assert_eq!(workers_for_gpus(3, 0).unwrap(), 3);
}

#[test]
fn fewer_workers_than_gpus_is_refused_with_both_numbers() {
    let e = workers_for_gpus(2, 4).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("--workers 2") && msg.contains("4 GPUs"),
        "{msg}"
    );
}

fn from_args(extra: &[&str]) -> grawa_train::Result<RunConfig> {
    let mut args = vec!["grawa-train", "--dataset", "synthetic"];
    args.extend_from_slice(extra);
    RunConfig::from_args(&parse_from(args).expect("flags parse"))
}

#[test]
fn a_gpu_id_listed_twice_is_refused() {
    let e = from_args(&["--gpu-ids", "1,0,1"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("GPU 1 is listed twice"), "{e}");
}

#[test]
fn gpus_and_gpu_ids_together_are_refused() {
    let e = from_args(&["--gpus", "2", "--gpu-ids", "2,3"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--gpu-ids"), "{e}");
}

#[test]
fn a_cpu_run_has_no_placement_and_says_cpu() {
    let cfg = from_args(&["--workers", "3"]).unwrap();
    assert!(cfg.gpus.is_empty());
    assert_eq!(cfg.device, "cpu");
    // config.json of a CPU run is unchanged: no "gpus" key.
    let json = serde_json::to_value(&cfg).unwrap();
    assert!(json.get("gpus").is_none(), "{json}");
}

/// Without the `cuda` feature every GPU flag is a usage error naming the feature.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_cpu_build_refuses_gpus_naming_the_feature() {
    for extra in [
        &["--gpus", "1"][..],
        &["--gpu-ids", "2,3"],
        &["--gpus", "1", "--workers", "4"],
    ] {
        let e = from_args(extra).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{extra:?}");
        assert!(e.to_string().contains("`cuda` feature"), "{extra:?}: {e}");
    }
}

/// With the `cuda` feature, asking for one GPU more than the driver sees is a usage error that
/// says how many it sees (none: "no GPU found"); where the driver sees GPUs, the placement is round-robin over them.
#[cfg(feature = "cuda")]
#[test]
fn a_cuda_build_checks_the_gpus_against_the_driver() {
    match grawa_train::gpus::gpu_count() {
        Err(reason) => {
            let e = from_args(&["--gpus", "1"]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(&reason), "{e}");
        }
        Ok(n) => {
            let too_many = (n + 1).to_string();
            let e = from_args(&["--gpus", &too_many]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let says = match n {
                0 => "no GPU found".to_string(),
                n => format!("sees {n}"),
            };
            assert!(e.to_string().contains(&says), "{e}");
            if n >= 1 {
                let cfg = from_args(&["--gpus", "1", "--workers", "4"]).unwrap();
                assert_eq!(cfg.gpus, vec![0, 0, 0, 0]);
                assert_eq!(cfg.workers, 4);
                assert_eq!(cfg.device, "cuda");
            }
        }
    }
}
