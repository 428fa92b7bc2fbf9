//! The ordering rules of the GPU code, checked on the CPU: when a read of another stream's buffer
//! fences its owner (`cuda::ordering`), and the order of an NCCL group over several
//! communicators (`cuda::group`): writes recorded only after the group ends, every communicator
//! aborted when a call fails.

use grawa_train::cuda::group::{run_group, GroupSteps};
use grawa_train::cuda::ordering::{read_order, ReadOrder, StreamAt};

fn at(gpu: usize, stream: usize) -> StreamAt {
    StreamAt { gpu, stream }
}

#[test]
fn a_read_on_the_owners_own_stream_needs_nothing() {
    let o = read_order(at(0, 7), at(0, 7));
    assert_eq!(o, ReadOrder::SameStream);
    assert!(!o.needs_fence() && !o.needs_copy());
}

#[test]
fn workers_on_one_gpu_reading_one_center_each_fence_its_owner() {
    // The center lives on the round's stream (1); workers 0..3 share GPU 0 with streams 2..5.
    // cudarc's one read event would remember only the last of them: each must fence.
    let owner = at(0, 1);
    for worker_stream in 2..6 {
        let o = read_order(at(0, worker_stream), owner);
        assert_eq!(o, ReadOrder::InPlaceFenced);
        assert!(o.needs_fence(), "worker stream {worker_stream}");
        assert!(!o.needs_copy());
    }
}

#[test]
fn a_reader_on_another_gpu_copies_then_fences() {
    // Same handle value on two GPUs is still two streams.
    let o = read_order(at(1, 1), at(0, 1));
    assert_eq!(o, ReadOrder::PeerCopyFenced);
    assert!(o.needs_copy() && o.needs_fence());
}

/// A group over fake communicators: logs each step, fails where told.
#[derive(Default)]
struct Log {
    steps: Vec<String>,
    fail_call: Option<usize>,
    fail_end: bool,
    fail_start: bool,
}

impl GroupSteps for Log {
    type Error = String;
    fn start(&mut self) -> Result<(), String> {
        self.steps.push("start".into());
        if self.fail_start {
            return Err("start failed".into());
        }
        Ok(())
    }
    fn call(&mut self, rank: usize) -> Result<(), String> {
        self.steps.push(format!("call {rank}"));
        match self.fail_call {
            Some(r) if r == rank => Err(format!("call {rank} failed")),
            _ => Ok(()),
        }
    }
    fn end(&mut self) -> Result<(), String> {
        self.steps.push("end".into());
        if self.fail_end {
            return Err("end failed".into());
        }
        Ok(())
    }
    fn record_written(&mut self, rank: usize) -> Result<(), String> {
        self.steps.push(format!("record {rank}"));
        Ok(())
    }
    fn abort_all(&mut self) {
        self.steps.push("abort".into());
    }
}

#[test]
fn writes_are_recorded_after_the_group_ends() {
    let mut g = Log::default();
    run_group(&mut g, 3).unwrap();
    assert_eq!(
        g.steps,
        ["start", "call 0", "call 1", "call 2", "end", "record 0", "record 1", "record 2"]
    );
}

#[test]
fn a_call_failing_mid_group_closes_the_group_and_aborts_every_communicator() {
    let mut g = Log {
        fail_call: Some(1),
        ..Log::default()
    };
    let err = run_group(&mut g, 3).unwrap_err();
    assert_eq!(err, "call 1 failed");
    // Rank 0's call was queued: its kernel would spin waiting for ranks 1 and 2.
    assert_eq!(g.steps, ["start", "call 0", "call 1", "end", "abort"]);
}

#[test]
fn a_failing_group_end_aborts_and_records_nothing() {
    let mut g = Log {
        fail_end: true,
        ..Log::default()
    };
    assert_eq!(run_group(&mut g, 2).unwrap_err(), "end failed");
    assert_eq!(g.steps, ["start", "call 0", "call 1", "end", "abort"]);
}

#[test]
fn the_first_error_is_the_one_reported() {
    let mut g = Log {
        fail_call: Some(0),
        fail_end: true,
        ..Log::default()
    };
    assert_eq!(run_group(&mut g, 2).unwrap_err(), "call 0 failed");
    assert_eq!(g.steps, ["start", "call 0", "end", "abort"]);
}

#[test]
fn a_failing_group_start_queues_nothing() {
    let mut g = Log {
        fail_start: true,
        ..Log::default()
    };
    assert_eq!(run_group(&mut g, 2).unwrap_err(), "start failed");
    assert_eq!(g.steps, ["start", "abort"]);
}
