//! The staging plan of a round over GPU buffers (`buffer::staging`): which buffers are read in
//! place, which are peer-copied, and the fences the copies need, for the placements `--gpus`
//! makes.

use grawa_train::buffer::staging::{fences, peer_bytes, plan, Fence, Source};
use grawa_train::config::placement;

#[test]
fn one_gpu_reads_every_buffer_in_place_and_needs_no_fence() {
    let gpus = placement(&[0], 4);
    let p = plan(&gpus, 0);
    assert_eq!(p, vec![Source::InPlace; 4]);
    assert!(fences(&p, 0).is_empty());
    assert_eq!(peer_bytes(&p, 1000), 0);
}

#[test]
fn round_robin_workers_on_two_gpus_copy_the_other_gpus_buffers() {
    // --gpus 2 --workers 4: workers 0 and 2 on GPU 0, 1 and 3 on GPU 1; the round on GPU 0.
    let gpus = placement(&[0, 1], 4);
    assert_eq!(gpus, vec![0, 1, 0, 1]);
    let p = plan(&gpus, 0);
    assert_eq!(
        p,
        vec![
            Source::InPlace,
            Source::PeerCopy { from: 1 },
            Source::InPlace,
            Source::PeerCopy { from: 1 },
        ]
    );
    assert_eq!(
        fences(&p, 0),
        vec![
            Fence {
                reader: 0,
                owner: 1
            };
            2
        ]
    );
    assert_eq!(peer_bytes(&p, 1000), 2 * 4000);
}

#[test]
fn a_round_on_another_gpu_copies_everything_not_there() {
    // --gpu-ids 3,5: the round on GPU 3.
    let gpus = placement(&[3, 5], 3);
    let p = plan(&gpus, 3);
    assert_eq!(
        p,
        vec![
            Source::InPlace,
            Source::PeerCopy { from: 5 },
            Source::InPlace
        ]
    );
    assert_eq!(
        fences(&p, 3),
        vec![Fence {
            reader: 3,
            owner: 5
        }]
    );
}
