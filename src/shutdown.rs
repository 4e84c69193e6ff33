//! Shutdown on SIGTERM or SIGINT, within a second, wherever the process is.
//!
//! Two mechanisms, both from `signal-hook` (no `unsafe` here):
//! - a flag the main loop polls between steps and while it sleeps, so an idle daemon logs that it
//!   is stopping and exits with status 0;
//! - while a blocking network call is in flight ([`abortable`]), the signal ends the process at
//!   once with status 0. That is safe because every write to the API is one complete request: the
//!   server applies it whole or not at all, so no secret is ever left half-written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// Set by the signal handlers.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Handles to the two flags signal-hook writes to (it needs `Arc`s).
struct Flags {
    requested: Arc<AtomicBool>,
    in_call: Arc<AtomicBool>,
}

static FLAGS: std::sync::OnceLock<Flags> = std::sync::OnceLock::new();

/// Installs the handlers. Call once, before the first network call.
pub fn install() -> std::io::Result<()> {
    let flags = Flags {
        requested: Arc::new(AtomicBool::new(false)),
        in_call: Arc::new(AtomicBool::new(false)),
    };
    for signal in [SIGTERM, SIGINT] {
        // Order matters: the conditional exit is checked first, then the flag is set.
        flag::register_conditional_shutdown(signal, 0, Arc::clone(&flags.in_call))?;
        flag::register(signal, Arc::clone(&flags.requested))?;
    }
    let _ = FLAGS.set(flags);
    Ok(())
}

/// Whether SIGTERM or SIGINT has arrived (or [`request`] was called).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
        || FLAGS
            .get()
            .is_some_and(|f| f.requested.load(Ordering::SeqCst))
}

/// Asks the loop to stop, as a signal would (used by tests and fatal paths).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Sleeps for `duration` in short slices; returns `true` when cut short by a shutdown request.
pub fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if requested() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

/// Runs one blocking network call during which a signal ends the process at once.
pub fn abortable<T>(call: impl FnOnce() -> T) -> T {
    let Some(flags) = FLAGS.get() else {
        return call();
    };
    flags.in_call.store(true, Ordering::SeqCst);
    if requested() {
        // The signal came just before the call: stop now rather than block for a whole timeout.
        log::info!("shutting down");
        std::process::exit(0);
    }
    let result = call();
    flags.in_call.store(false, Ordering::SeqCst);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_runs_its_course_without_a_request() {
        let start = Instant::now();
        assert!(!sleep(Duration::from_millis(150)));
        assert!(start.elapsed() >= Duration::from_millis(150));
    }
}
