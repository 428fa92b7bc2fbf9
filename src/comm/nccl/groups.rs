//! How workers placed on GPUs take part in an NCCL all-reduce.
//!
//! NCCL takes one rank per device: a communicator cannot hold two ranks on the same GPU, and a
//! communicator lives on the thread that made it. When several workers share a GPU they therefore
//! cannot each be an NCCL rank. The plan is:
//!
//! 1. the workers of each GPU form a [`DeviceGroup`]; the lowest worker id is its leader, and the
//!    leader's thread makes (and so owns) that GPU's communicator;
//! 2. each group pre-reduces locally, adding its workers' buffers in ascending worker order into
//!    the leader's buffer;
//! 3. the leaders run one NCCL all-reduce across GPUs, one rank per GPU, ranked by ascending GPU
//!    ordinal;
//! 4. each leader broadcasts the result to the other workers of its group, on the same GPU.
//!
//! With one GPU NCCL has nothing to do: the local pre-reduce is the whole sum
//! ([`DeviceGroups::single_device`]).
//!
//! A grouped sum adds the terms in a different order from a flat sum over workers `0..M`, so the
//! two agree only to rounding, not bit for bit. NCCL's own ring order is another order again,
//! which is why an NCCL round is checked against the hub's round with a tolerance. [`grouped_sum`]
//! is the host twin of the grouped order, the reference a device implementation is held to.

use std::collections::BTreeMap;

/// The workers of one GPU in a grouped all-reduce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceGroup {
    /// The GPU's ordinal (as given in the placement).
    pub gpu: usize,
    /// Its NCCL rank: groups are ranked by ascending GPU ordinal, 0..groups.
    pub rank: usize,
    /// The workers on this GPU, ascending. The first one is the leader: its thread makes this
    /// GPU's NCCL communicator and holds the pre-reduced sum.
    pub workers: Vec<usize>,
}

impl DeviceGroup {
    /// The worker whose thread owns this GPU's communicator and receives the local pre-reduce:
    /// the lowest worker id of the group.
    pub fn leader(&self) -> usize {
        self.workers[0]
    }
}

/// How a set of workers, each on a GPU, is grouped for NCCL: one group (and NCCL rank) per GPU,
/// so that each GPU joins the all-reduce once however many workers it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceGroups {
    groups: Vec<DeviceGroup>,
    /// Per worker of the placement, the index of its group in `groups`; `None` for a worker left
    /// out by [`DeviceGroups::restricted`].
    of_worker: Vec<Option<usize>>,
}

impl DeviceGroups {
    /// Groups the workers by GPU, where `placement[w]` is the GPU ordinal of worker `w`. Errors if
    /// the placement is empty, since there would be nothing to reduce.
    pub fn new(placement: &[usize]) -> Result<Self, String> {
        if placement.is_empty() {
            return Err("device groups: the placement is empty (no worker to group)".into());
        }
        let mut by_gpu: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (w, &gpu) in placement.iter().enumerate() {
            by_gpu.entry(gpu).or_default().push(w);
        }
        Ok(Self::from_groups(placement.len(), by_gpu.into_iter()))
    }

    /// Ranks the non-empty `(gpu, workers)` pairs (given in ascending GPU order) and indexes them
    /// by worker, for `workers` workers in all.
    fn from_groups(workers: usize, groups: impl Iterator<Item = (usize, Vec<usize>)>) -> Self {
        let groups: Vec<DeviceGroup> = groups
            .filter(|(_, ws)| !ws.is_empty())
            .enumerate()
            .map(|(rank, (gpu, workers))| DeviceGroup { gpu, rank, workers })
            .collect();
        let mut of_worker = vec![None; workers];
        for (g, group) in groups.iter().enumerate() {
            for &w in &group.workers {
                of_worker[w] = Some(g);
            }
        }
        DeviceGroups { groups, of_worker }
    }

    /// The groups, in rank order (ascending GPU ordinal), for walking every GPU's part.
    pub fn groups(&self) -> &[DeviceGroup] {
        &self.groups
    }

    /// The number of NCCL ranks, one per distinct GPU: the size of the communicator to make.
    pub fn ranks(&self) -> usize {
        self.groups.len()
    }

    /// The group worker `worker` belongs to, so that its thread knows its leader and GPU peers.
    /// Panics if `worker` is not in any group (out of range, or left out by
    /// [`restricted`](Self::restricted)).
    pub fn group_of(&self, worker: usize) -> &DeviceGroup {
        match self.of_worker.get(worker).copied().flatten() {
            Some(g) => &self.groups[g],
            None => panic!("device groups: worker {worker} is in no group"),
        }
    }

    /// Whether `worker` leads its group, i.e. whether its thread makes the GPU's communicator and
    /// joins the NCCL all-reduce. False for a worker in no group.
    pub fn is_leader(&self, worker: usize) -> bool {
        match self.of_worker.get(worker).copied().flatten() {
            Some(g) => self.groups[g].leader() == worker,
            None => false,
        }
    }

    /// True when NCCL has nothing to do (one GPU): the local pre-reduce is the whole sum.
    pub fn single_device(&self) -> bool {
        self.groups.len() == 1
    }

    /// The groups restricted to `participants` (sorted worker ids, each in a group of `self`), for
    /// a round that only some workers take part in. A GPU left with no participant drops out and
    /// the remaining groups are ranked again from 0; worker ids keep their meaning. Errors if
    /// `participants` is empty, unsorted, repeats a worker, or names a worker in no group.
    pub fn restricted(&self, participants: &[usize]) -> Result<Self, String> {
        if participants.is_empty() {
            return Err("device groups: no participant".into());
        }
        if let Some(pair) = participants.windows(2).find(|p| p[0] >= p[1]) {
            return Err(format!(
                "device groups: participants must be sorted without repeats, got {} then {}",
                pair[0], pair[1]
            ));
        }
        if let Some(&w) = participants
            .iter()
            .find(|&&w| self.of_worker.get(w).copied().flatten().is_none())
        {
            return Err(format!(
                "device groups: participant {w} is in no group (workers 0..{})",
                self.of_worker.len()
            ));
        }
        let kept = self.groups.iter().map(|g| {
            let ws = g
                .workers
                .iter()
                .copied()
                .filter(|w| participants.binary_search(w).is_ok());
            (g.gpu, ws.collect())
        });
        Ok(Self::from_groups(self.of_worker.len(), kept))
    }
}

/// The host twin of a grouped all-reduce-sum, the reference a device implementation is checked
/// against. Each group sums its workers' buffers in ascending worker order (each first scaled by
/// `scale[w]` if given), then the group sums are added in ascending rank order; the result is
/// returned. `xs[w]` is worker `w`'s buffer and `scale`, when given, is indexed like `xs`; both
/// cover every worker of the placement, but only the buffers of workers in a group are read.
/// Errors if `xs` or `scale` has the wrong length, or the buffers read differ in length.
pub fn grouped_sum(
    groups: &DeviceGroups,
    xs: &[&[f32]],
    scale: Option<&[f32]>,
) -> Result<Vec<f32>, String> {
    let workers = groups.of_worker.len();
    if xs.len() != workers {
        return Err(format!(
            "grouped sum: {} buffers for {workers} workers",
            xs.len()
        ));
    }
    if let Some(s) = scale.filter(|s| s.len() != workers) {
        return Err(format!(
            "grouped sum: {} scales for {workers} workers",
            s.len()
        ));
    }
    let len = xs[groups.groups[0].leader()].len();
    let term = |w: usize| -> Result<Vec<f32>, String> {
        if xs[w].len() != len {
            return Err(format!(
                "grouped sum: worker {w}'s buffer has {} values, expected {len}",
                xs[w].len()
            ));
        }
        Ok(match scale {
            Some(s) => xs[w].iter().map(|v| s[w] * v).collect(),
            None => xs[w].to_vec(),
        })
    };
    let mut total: Option<Vec<f32>> = None;
    for group in &groups.groups {
        let mut local = term(group.leader())?;
        for &w in &group.workers[1..] {
            add(&mut local, &term(w)?);
        }
        match total.as_mut() {
            None => total = Some(local),
            Some(t) => add(t, &local),
        }
    }
    Ok(total.expect("device groups are never empty"))
}

/// `acc += x`, element by element.
fn add(acc: &mut [f32], x: &[f32]) {
    acc.iter_mut().zip(x).for_each(|(a, v)| *a += v);
}
