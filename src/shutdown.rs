//! Shutdown on SIGTERM or SIGINT, within a second, wherever the process is.
//!
//! Two mechanisms, both from `signal-hook` (no `unsafe` here):
//! - a flag ([`requested`]) that everything that waits looks at every [`POLL`] at most: the
//!   main loop between steps and while it sleeps ([`sleep`]), and the Kubernetes agent's
//!   transport while it waits for input (`crate::http`), which then fails that wait with
//!   [`stopped`]. The namespace watch, a stream open for minutes, so returns to the main loop,
//!   which logs "shutting down" and exits with status 0, as it does when it is asleep; a
//!   request of a cycle that was waiting for its answer ends the process from where it is, with
//!   the same line ([`exit`]), as no further step may start;
//! - what cannot be cut into slices (resolving a name, connecting, writing a request, and the
//!   AWS side's calls) runs as [`abortable`]: a signal then ends the process at once with
//!   status 0, without a log line (a signal handler cannot log). Each is bounded by its
//!   timeout, and a shutdown requested just before one begins is seen by it, which then logs
//!   and exits.
//!
//! Ending the process in the middle of a call is safe because every write to the API is one
//! complete request: the server applies it whole or not at all, so no secret is ever left
//! half-written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// How long anything that waits goes without looking at [`requested`].
pub const POLL: Duration = Duration::from_millis(100);

/// Set by [`request`].
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
        std::thread::sleep((deadline - now).min(POLL));
    }
}

/// Runs one blocking network call during which a signal ends the process at once. Calls may
/// nest (a connection made inside a request): the outer call stays abortable to its end.
pub fn abortable<T>(call: impl FnOnce() -> T) -> T {
    let Some(flags) = FLAGS.get() else {
        return call();
    };
    let outer = flags.in_call.swap(true, Ordering::SeqCst);
    if requested() {
        // The signal came just before the call: stop now rather than block for a whole timeout.
        exit();
    }
    let result = call();
    flags.in_call.store(outer, Ordering::SeqCst);
    result
}

/// Logs "shutting down" and ends the process with status 0: for a step of a cycle that a
/// shutdown request cut short, where nothing may follow.
pub fn exit() -> ! {
    log::info!("shutting down");
    log::logger().flush();
    std::process::exit(0);
}

/// The error a wait for input fails with once a shutdown is requested.
pub fn stopped() -> std::io::Error {
    std::io::Error::other(Stopped)
}

/// A wait cut short by a shutdown request.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped: shutdown requested")
    }
}

impl std::error::Error for Stopped {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_runs_its_course_without_a_request() {
        let start = Instant::now();
        assert!(!sleep(Duration::from_millis(150)));
        assert!(start.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn the_stopped_error_says_why() {
        let e = stopped();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Other,
            "not Interrupted: std retries those"
        );
        assert_eq!(e.to_string(), "stopped: shutdown requested");
    }
}
