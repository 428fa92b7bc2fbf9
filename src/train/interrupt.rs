//! SIGINT/SIGTERM handling: the first signal asks every worker to stop at its next step boundary;
//! a second one exits at once (exit code 130).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// The process-wide stop flag, with the signal handler installed on first use.
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // If another handler is already installed (an embedding program), we simply never stop
        // early on signals; training still works.
        let _ = ctrlc::set_handler(move || {
            if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
                std::process::exit(130);
            }
            eprintln!("\ngrawa-train: stopping at the next step boundary (press Ctrl-C again to quit at once)");
            f.store(true, Ordering::SeqCst);
        });
        flag
    })
    .clone()
}
