//! `--watchdog`: the hub's receive with a deadline. A worker it is waiting for that has
//! sent nothing for that long ends the run with an error naming it (it may be stuck for good, so
//! nobody waits for it any more).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};

use crate::train::messages::ToHub;
use crate::train::shared::Shared;
use crate::{Error, Result};

/// When each worker was last heard from, and how long silence may last.
pub struct Watchdog {
    limit: Option<Duration>,
    last_heard: Vec<Instant>,
}

impl Watchdog {
    /// A watchdog over `workers` workers; `None` waits forever.
    pub fn new(limit: Option<Duration>, workers: usize) -> Self {
        Self {
            limit,
            last_heard: vec![Instant::now(); workers],
        }
    }

    /// The next message from any worker. With a limit, a worker for which `awaited` is true that
    /// has been silent that long raises the abort flag and ends the run with an error.
    pub fn receive(
        &mut self,
        inbox: &Receiver<ToHub>,
        shared: &Shared,
        awaited: impl Fn(usize) -> bool,
    ) -> Result<ToHub> {
        let gone = || Error::Internal("every worker hung up without finishing".into());
        let Some(limit) = self.limit else {
            return inbox.recv().map_err(|_| gone());
        };
        let tick = limit.min(Duration::from_millis(200));
        loop {
            match inbox.recv_timeout(tick) {
                Ok(msg) => {
                    self.last_heard[msg.sender()] = Instant::now();
                    return Ok(msg);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let silent = (0..self.last_heard.len())
                .find(|&w| awaited(w) && self.last_heard[w].elapsed() >= limit);
            if let Some(w) = silent {
                shared.abort.store(true, Ordering::SeqCst);
                return Err(Error::Stalled(format!(
                    "worker {w} has sent nothing for {:.0} s (--watchdog): it is stuck or far too slow; run stopped",
                    limit.as_secs_f64()
                )));
            }
        }
    }
}
