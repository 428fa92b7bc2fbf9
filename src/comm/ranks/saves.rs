//! A checkpoint across ranks: each rank holds only its own workers' saved states, so they are
//! gathered to rank 0, which writes one checkpoint of every worker of the run in global order.

use crate::checkpoint::{WorkerSave, WorkerState, WorkerTensors};
use crate::ranks::Peers;

/// Every rank's saved workers, gathered: this rank's `saves` (scalars as JSON, vectors as one
/// flat f32 run per worker: parameters, momentum, BatchNorm buffers) all-gathered, decoded in
/// global worker order on rank 0 (`None` on the others, which only take part).
pub fn gather_saves(peers: &mut dyn Peers, saves: Vec<WorkerSave>) -> Option<Vec<WorkerSave>> {
    let states: Vec<&WorkerState> = saves.iter().map(|s| &s.state).collect();
    let json = serde_json::to_vec(&states).unwrap_or_default();
    let mut flat = Vec::new();
    for s in &saves {
        flat.extend_from_slice(&s.tensors.params);
        flat.extend_from_slice(&s.tensors.momentum);
        flat.extend_from_slice(&s.tensors.buffers);
    }
    let (p, b) = saves.first().map_or((0, 0), |s| {
        (s.tensors.params.len(), s.tensors.buffers.len())
    });
    let all_states = peers.all_gather_bytes(&json);
    let all_tensors = peers.all_gather_f32(&flat);
    if !peers.layout().is_root() {
        return None;
    }
    let mut out = Vec::new();
    for (json, flat) in all_states.iter().zip(&all_tensors) {
        let states: Vec<WorkerState> = serde_json::from_slice(json).ok()?;
        for (i, state) in states.into_iter().enumerate() {
            let at = i * (2 * p + b);
            out.push(WorkerSave {
                state,
                tensors: WorkerTensors {
                    params: flat[at..at + p].to_vec(),
                    momentum: flat[at + p..at + 2 * p].to_vec(),
                    buffers: flat[at + 2 * p..at + 2 * p + b].to_vec(),
                },
            });
        }
    }
    Some(out)
}
