//! Grouping workers by GPU for NCCL (`comm::nccl::groups`): one group and rank per GPU, ranked by
//! ascending ordinal, the lowest worker leading; restriction to a round's participants; and the
//! host twin of the grouped sum, exact on small integers and within rounding of a flat sum.

use grawa_train::comm::nccl::groups::{grouped_sum, DeviceGroup, DeviceGroups};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn group(gpu: usize, rank: usize, workers: &[usize]) -> DeviceGroup {
    DeviceGroup {
        gpu,
        rank,
        workers: workers.to_vec(),
    }
}

#[test]
fn one_gpu_holds_one_group_led_by_worker_0() {
    let g = DeviceGroups::new(&[0, 0, 0, 0]).unwrap();
    assert!(g.single_device());
    assert_eq!(g.ranks(), 1);
    assert_eq!(g.groups(), &[group(0, 0, &[0, 1, 2, 3])]);
    assert_eq!(g.groups()[0].leader(), 0);
    assert!(g.is_leader(0));
    assert!(!g.is_leader(3));
    assert_eq!(g.group_of(2), &group(0, 0, &[0, 1, 2, 3]));
}

#[test]
fn round_robin_placement_gives_one_group_per_gpu() {
    let g = DeviceGroups::new(&[0, 1, 0, 1]).unwrap();
    assert!(!g.single_device());
    assert_eq!(g.ranks(), 2);
    assert_eq!(g.groups(), &[group(0, 0, &[0, 2]), group(1, 1, &[1, 3])]);
    assert_eq!(g.group_of(2).rank, 0);
    assert_eq!(g.group_of(3).gpu, 1);
    let leaders: Vec<bool> = (0..4).map(|w| g.is_leader(w)).collect();
    assert_eq!(leaders, [true, true, false, false]);
}

#[test]
fn ranks_follow_ascending_gpu_ordinal() {
    let g = DeviceGroups::new(&[3, 1, 3]).unwrap();
    assert_eq!(g.groups(), &[group(1, 0, &[1]), group(3, 1, &[0, 2])]);
    assert_eq!(g.group_of(0).rank, 1);
    assert_eq!(g.group_of(1).rank, 0);
    assert!(g.is_leader(1));
    assert!(g.is_leader(0));
    assert!(!g.is_leader(2));
}

#[test]
fn restriction_drops_empty_gpus_and_ranks_again() {
    // GPU 0: {0, 4}, GPU 1: {1, 3}, GPU 2: {2}.
    let g = DeviceGroups::new(&[0, 1, 2, 1, 0]).unwrap();
    assert_eq!(g.ranks(), 3);

    let r = g.restricted(&[1, 2]).unwrap();
    assert_eq!(r.groups(), &[group(1, 0, &[1]), group(2, 1, &[2])]);
    assert!(!r.is_leader(0));
    assert!(!r.is_leader(4));

    // A leader left out hands the lead to the next worker of its GPU.
    let r = g.restricted(&[2, 3, 4]).unwrap();
    assert_eq!(
        r.groups(),
        &[group(0, 0, &[4]), group(1, 1, &[3]), group(2, 2, &[2])]
    );
    assert!(r.is_leader(3) && r.is_leader(4));

    let r = g.restricted(&[1, 3]).unwrap();
    assert!(r.single_device());
    assert_eq!(r.groups(), &[group(1, 0, &[1, 3])]);

    // Restricting again may only keep workers still present.
    assert_eq!(r.restricted(&[3]).unwrap().groups(), &[group(1, 0, &[3])]);
    let err = r.restricted(&[0, 3]).unwrap_err();
    assert!(err.contains("participant 0"), "{err}");
}

#[test]
#[should_panic(expected = "worker 0 is in no group")]
fn group_of_a_left_out_worker_panics() {
    let g = DeviceGroups::new(&[0, 1, 0])
        .unwrap()
        .restricted(&[1, 2])
        .unwrap();
    g.group_of(0);
}

#[test]
fn bad_placements_and_participants_are_errors() {
    let err = DeviceGroups::new(&[]).unwrap_err();
    assert!(err.contains("empty"), "{err}");

    let g = DeviceGroups::new(&[0, 1, 0]).unwrap();
    let err = g.restricted(&[0, 3]).unwrap_err();
    assert!(
        err.contains("participant 3") && err.contains("0..3"),
        "{err}"
    );
    let err = g.restricted(&[2, 1]).unwrap_err();
    assert!(err.contains("sorted") && err.contains("2 then 1"), "{err}");
    let err = g.restricted(&[1, 1]).unwrap_err();
    assert!(err.contains("repeats") && err.contains("1 then 1"), "{err}");
    let err = g.restricted(&[]).unwrap_err();
    assert!(err.contains("no participant"), "{err}");
}

#[test]
fn grouped_sum_by_hand() {
    let g = DeviceGroups::new(&[0, 1, 0, 1]).unwrap();
    let xs: [&[f32]; 4] = [
        &[1.0, 2.0],
        &[10.0, 20.0],
        &[100.0, 200.0],
        &[1000.0, 2000.0],
    ];
    assert_eq!(grouped_sum(&g, &xs, None).unwrap(), [1111.0, 2222.0]);
    // Scaled per worker: (1 + 3*100) + (2*10 + 4*1000).
    let scale = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(
        grouped_sum(&g, &xs, Some(&scale)).unwrap(),
        [4321.0, 8642.0]
    );
    // Restricted: only workers 1 and 2 are read.
    let r = g.restricted(&[1, 2]).unwrap();
    assert_eq!(grouped_sum(&r, &xs, None).unwrap(), [110.0, 220.0]);
    assert_eq!(grouped_sum(&r, &xs, Some(&scale)).unwrap(), [320.0, 640.0]);
}

#[test]
fn grouped_sum_keeps_the_grouped_order_not_the_flat_one() {
    // Flat: ((1e8 + 1) - 1e8) + 1 = 1 in f32 (1 is lost against 1e8).
    // Grouped over [0, 1, 0, 1]: (1e8 - 1e8) + (1 + 1) = 2.
    let g = DeviceGroups::new(&[0, 1, 0, 1]).unwrap();
    let xs: [&[f32]; 4] = [&[1e8], &[1.0], &[-1e8], &[1.0]];
    let flat = xs.iter().fold(0.0f32, |a, x| a + x[0]);
    assert_eq!(flat, 1.0);
    assert_eq!(grouped_sum(&g, &xs, None).unwrap(), [2.0]);
}

#[test]
fn grouped_sum_matches_a_flat_sum_to_rounding() {
    let mut rng = StdRng::seed_from_u64(7);
    let placement = [2, 0, 1, 2, 0, 0, 1, 2];
    let g = DeviceGroups::new(&placement).unwrap();
    let len = 1000;
    let data: Vec<Vec<f32>> = (0..placement.len())
        .map(|_| (0..len).map(|_| rng.random_range(0.5f32..1.5)).collect())
        .collect();
    let xs: Vec<&[f32]> = data.iter().map(|v| v.as_slice()).collect();
    let scale: Vec<f32> = (0..placement.len())
        .map(|_| rng.random_range(0.1f32..2.0))
        .collect();
    for scale in [None, Some(scale.as_slice())] {
        let got = grouped_sum(&g, &xs, scale).unwrap();
        assert_eq!(got.len(), len);
        for (i, &v) in got.iter().enumerate() {
            let flat: f64 = (0..placement.len())
                .map(|w| scale.map_or(1.0, |s| s[w] as f64) * xs[w][i] as f64)
                .sum();
            let rel = (v as f64 - flat).abs() / flat.abs();
            assert!(
                rel <= 1e-5,
                "element {i}: grouped {v}, flat {flat}, relative {rel}"
            );
        }
    }
}

#[test]
fn grouped_sum_rejects_mismatched_inputs() {
    let g = DeviceGroups::new(&[0, 1, 0]).unwrap();
    let err = grouped_sum(&g, &[&[1.0, 2.0], &[3.0, 4.0], &[5.0]], None).unwrap_err();
    assert!(
        err.contains("worker 2") && err.contains("1 values, expected 2"),
        "{err}"
    );
    let err = grouped_sum(&g, &[&[1.0], &[2.0]], None).unwrap_err();
    assert!(err.contains("2 buffers for 3 workers"), "{err}");
    let err = grouped_sum(&g, &[&[1.0], &[2.0], &[3.0]], Some(&[1.0, 1.0])).unwrap_err();
    assert!(err.contains("2 scales for 3 workers"), "{err}");
}
