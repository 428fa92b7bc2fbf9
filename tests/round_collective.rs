//! The collective's contract: any transport that implements the three primitives and adds the
//! terms of a sum in participant order gives the rounds of `comm::Gathered` bit for bit. Checked
//! with a deliberately plain transport written here (scalar loops, the trait's default
//! `all_reduce_mean`), for every kind of plan, on random buffers.

mod run_support;

use grawa_train::algo::{lgrawa_weights, mgrawa_weights};
use grawa_train::algo::{Mix, Plan, WorkerStats};
use grawa_train::average::Weights;
use grawa_train::buffer::{Flat, FlatPlace};
use grawa_train::comm::{Collective, Gathered};
use grawa_train::model::LayerEntry;
use grawa_train::round::{RoundData, Target};
use grawa_train::train::messages::{participants, Snapshot};
use grawa_train::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use run_support::table_of;

/// A transport as an MPI rank would see it, in miniature: every buffer in hand, sums by loops.
struct Plain<'a> {
    workers: Vec<usize>,
    xs: Vec<&'a [f32]>,
    table: &'a [LayerEntry],
}

impl Collective for Plain<'_> {
    fn participants(&self) -> &[usize] {
        &self.workers
    }

    fn all_gather(&mut self) -> Result<Vec<WorkerStats>> {
        Ok(Vec::new())
    }

    fn all_reduce_sum(&mut self, scale: Option<&Weights>) -> Result<Flat> {
        let mut out = vec![0f32; self.xs[0].len()];
        for (l, e) in self.table.iter().enumerate() {
            let w = |i: usize| scale.map_or(1.0, |w| w.weight(i, l));
            for (k, o) in out[e.offset..e.offset + e.len].iter_mut().enumerate() {
                let j = e.offset + k;
                let mut acc = w(0) * self.xs[0][j];
                for (i, x) in self.xs.iter().enumerate().skip(1) {
                    acc += w(i) * x[j];
                }
                *o = acc;
            }
        }
        Ok(Flat::Host(out))
    }

    fn broadcast(&mut self, worker: usize) -> Result<Flat> {
        let i = self.workers.iter().position(|&w| w == worker).unwrap();
        Ok(Flat::Host(self.xs[i].to_vec()))
    }
}

fn point(t: Option<Target>) -> Vec<f32> {
    match t {
        Some(Target::Pull { point, .. }) => point.to_vec().unwrap(),
        other => panic!("expected a pull, got {other:?}"),
    }
}

#[test]
fn any_ordered_transport_gives_the_gathered_rounds_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(7);
    let lens = [5usize, 0, 17_000, 3, 40_000];
    let table = table_of(&lens);
    let n: usize = lens.iter().sum();
    // Three participants out of five workers (ids 0, 2, 4): ids, not positions, name a leader.
    let snaps: Vec<Snapshot> = [0usize, 2, 4]
        .iter()
        .map(|&w| Snapshot {
            worker: w,
            step: 8,
            params: (0..n).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect(),
            layer_norms: None,
            recent_loss: None,
            losses: Vec::new(),
        })
        .collect();
    let refs: Vec<&Snapshot> = snaps.iter().collect();
    let vhat: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..lens.len()).map(|_| rng.random::<f64>() + 0.1).collect())
        .collect();
    let mixes = [
        Mix::Weighted(lgrawa_weights(&vhat, 1.0)),
        Mix::Weighted(mgrawa_weights(&[0.3, 1.7, 0.9], 2.0)),
        Mix::Mean,
        Mix::Leader(4),
        Mix::Elastic { beta: 0.1 },
    ];
    let x0: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    for mix in mixes {
        let plan = Plan {
            mix: Some(mix.clone()),
            lambda: 0.25,
            norms: None,
        };
        let elastic = matches!(mix, Mix::Elastic { .. });
        let (mut a, mut b) = (RoundData::new(elastic, &x0), RoundData::new(elastic, &x0));
        for round in 0..2 {
            let mut gathered = Gathered::from_parts(participants(&refs), &table, FlatPlace::Host);
            let mut plain = Plain {
                workers: vec![0, 2, 4],
                xs: snaps.iter().map(|s| s.params.as_host().unwrap()).collect(),
                table: &table,
            };
            let want = point(a.lockstep(&plan, &mut gathered).unwrap());
            let got = point(b.lockstep(&plan, &mut plain).unwrap());
            let same = want
                .iter()
                .zip(&got)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same && want.len() == n,
                "{mix:?}, round {round}: targets differ"
            );
            let (ca, cb) = (a.evaluation_point(), b.evaluation_point());
            assert_eq!(ca.is_some(), elastic);
            if let (Some(ca), Some(cb)) = (ca, cb) {
                assert!(
                    ca.as_host()
                        .unwrap()
                        .iter()
                        .zip(cb.as_host().unwrap().iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{mix:?}, round {round}: EASGD centers differ"
                );
            }
        }
    }
}
