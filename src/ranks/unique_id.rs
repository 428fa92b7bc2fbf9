//! Rank 0's secret, handed to every rank: how a communicator of another library (NCCL's unique
//! id) is bootstrapped over [`Peers`]. Plain bytes, so it is tested without a GPU.

use super::Peers;
use crate::{Error, Result};

/// Bytes of an NCCL unique id (`ncclUniqueId`).
pub const ID_BYTES: usize = 128;

/// Rank 0's id as every rank receives it. Rank 0 sends a status byte first, so that if it cannot
/// make an id every rank fails with its reason instead of waiting for one.
pub fn share_id(
    peers: &mut dyn Peers,
    make: impl FnOnce() -> Result<[u8; ID_BYTES]>,
) -> Result<[u8; ID_BYTES]> {
    let root = peers.layout().is_root();
    let (mine, failed) = match root {
        true => match make() {
            Ok(id) => ([&[1u8][..], &id[..]].concat(), None),
            Err(e) => (vec![0u8; 1 + ID_BYTES], Some(e)),
        },
        false => (vec![0u8; 1 + ID_BYTES], None),
    };
    let all = peers.all_gather_bytes(&mine);
    if let Some(e) = failed {
        return Err(e);
    }
    let from_root = all
        .first()
        .filter(|b| b.len() == 1 + ID_BYTES && b[0] == 1)
        .ok_or_else(|| Error::Internal("NCCL: rank 0 could not make the unique id".into()))?;
    let mut id = [0u8; ID_BYTES];
    id.copy_from_slice(&from_root[1..]);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranks::RankLayout;

    /// A rank among `ranks` whose all-gather returns `root` (rank 0's bytes) for rank 0 and its
    /// own for the others: what MPI would deliver.
    struct Scripted {
        layout: RankLayout,
        root: Option<Vec<u8>>,
    }

    impl Peers for Scripted {
        fn layout(&self) -> RankLayout {
            self.layout
        }
        fn all_gather(&mut self, mine: &[f64]) -> Vec<Vec<f64>> {
            let root: Vec<f64> = match (&self.root, self.layout.rank) {
                (_, 0) => mine.to_vec(),
                (Some(r), _) if mine.len() == 1 => vec![r.len() as f64],
                (Some(r), _) => r.iter().map(|&b| f64::from(b)).collect(),
                (None, _) => unreachable!("a non-root rank is scripted with root's bytes"),
            };
            (0..self.layout.ranks)
                .map(|r| {
                    if r == self.layout.rank {
                        mine.to_vec()
                    } else {
                        root.clone()
                    }
                })
                .collect()
        }
        fn all_reduce_sum_into(&mut self, _: &[f32], _: &mut [f32]) -> Result<()> {
            unreachable!()
        }
        fn broadcast(&mut self, _: &mut [f32], _: usize) {
            unreachable!()
        }
        fn all_gather_f32(&mut self, _: &[f32]) -> Vec<Vec<f32>> {
            unreachable!()
        }
    }

    fn rank(rank: usize, root: Option<Vec<u8>>) -> Scripted {
        let layout = RankLayout {
            rank,
            ranks: 3,
            local_workers: 1,
        };
        Scripted { layout, root }
    }

    #[test]
    fn every_rank_gets_root_s_id() {
        let id: [u8; ID_BYTES] = std::array::from_fn(|i| (i * 7 % 256) as u8);
        assert_eq!(share_id(&mut rank(0, None), || Ok(id)).unwrap(), id);
        let sent = [&[1u8][..], &id[..]].concat();
        let got = share_id(&mut rank(2, Some(sent)), || {
            unreachable!("only rank 0 makes it")
        });
        assert_eq!(got.unwrap(), id);
    }

    /// Rank 0 failing to make an id fails every rank, with no wait for an id that never comes.
    #[test]
    fn a_failed_root_fails_every_rank() {
        let err = share_id(&mut rank(0, None), || Err(Error::Internal("no GPU".into())));
        assert!(err.unwrap_err().to_string().contains("no GPU"));
        let nothing = vec![0u8; 1 + ID_BYTES];
        let err = share_id(&mut rank(1, Some(nothing)), || unreachable!()).unwrap_err();
        assert!(err.to_string().contains("rank 0 could not make"), "{err}");
    }
}
