//! SQLite's waits for a lock another process holds, polled finely.
//!
//! SQLite admits one writer per file. The nodes of a local cluster share one file, so a
//! node's writer often finds the write lock held by another process. SQLite's own busy
//! handler (`PRAGMA busy_timeout`) then sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between
//! attempts, whatever the holder does: a lock held for one millisecond kept the waiter
//! asleep 15 ms and more. In the booking race (`scripts/bench_bookings.sh`) two of the
//! three nodes' writers slept about 35 ms each that way, with both cores idle.
//!
//! [`wait`] polls instead: 50 us apart at first, doubling every four attempts up to 2 ms
//! (a lock held long, by a migration or a checkpoint, costs a few wake-ups a second), and
//! gives up after the connection's timeout like `busy_timeout` does.
//!
//! SQLite sets a busy handler through its C API only, and sqlx does not hand out the
//! connection behind its `Any` driver. So [`setting`] adds, to every SQLite connection
//! this process opens, a SQL function `troupe_busy_timeout(ms)` that installs [`wait`]
//! on the connection that calls it, and answers that call, which the store runs first
//! when a connection opens.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;

/// The first pause between two attempts at a lock.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// The longest pause between two attempts.
const LONGEST_PAUSE: Duration = Duration::from_millis(2);

/// What a new SQLite connection runs first to wait up to 5 s for a lock: installs [`wait`]
/// once `troupe_busy_timeout` is registered for every connection of this process (done
/// here, once), else (SQLite refused the registration) SQLite's own busy timeout.
pub fn setting() -> &'static str {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        // SAFETY: `add_function` has exactly the entry point signature SQLite calls.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(add_function)) };
        if rc != ffi::SQLITE_OK {
            tracing::warn!(
                code = rc,
                "SQLite lock waits fall back to SQLite's busy timeout"
            );
        }
        rc == ffi::SQLITE_OK
    });
    if registered {
        "SELECT troupe_busy_timeout(5000);"
    } else {
        "PRAGMA busy_timeout = 5000;"
    }
}

/// The pause after `attempt` (0 for the first) failed attempts at one lock.
fn pause(attempt: c_int) -> Duration {
    let doublings = u32::try_from(attempt / 4).unwrap_or(0).min(16);
    FIRST_PAUSE
        .saturating_mul(1 << doublings)
        .min(LONGEST_PAUSE)
}

/// SQLite's auto-extension entry point: defines `troupe_busy_timeout` on `db`.
unsafe extern "C" fn add_function(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection SQLite is opening; the name is a NUL-terminated
    // static string; no user data and no destructor.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"troupe_busy_timeout".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            std::ptr::null_mut(),
            Some(install),
            None,
            None,
            None,
        )
    }
}

/// `troupe_busy_timeout(ms)`: makes [`wait`] the calling connection's busy handler, giving
/// up after `ms` milliseconds (negative: at once). Answers SQLite's result code (0: done).
unsafe extern "C" fn install(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` (1, as registered) valid values in `argv` and
    // the calling connection behind `ctx`; the handler's argument is a plain integer,
    // never dereferenced.
    unsafe {
        let ms = if argc == 1 {
            ffi::sqlite3_value_int64(*argv).max(0)
        } else {
            0
        };
        let ms = usize::try_from(ms).unwrap_or(usize::MAX);
        let db = ffi::sqlite3_context_db_handle(ctx);
        let rc = ffi::sqlite3_busy_handler(db, Some(wait), ms as *mut c_void);
        ffi::sqlite3_result_int(ctx, rc);
    }
}

thread_local! {
    /// When the current wait for a lock began (a connection's statements run on one
    /// thread: sqlx gives each SQLite connection its own).
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The busy handler: 1 (try the lock again) after a short pause while the wait is under
/// `timeout_ms`, 0 (give up: `SQLITE_BUSY`) after.
unsafe extern "C" fn wait(timeout_ms: *mut c_void, attempt: c_int) -> c_int {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms as usize).unwrap_or(u64::MAX));
    let now = Instant::now();
    let since = WAITING_SINCE
        .try_with(|since| {
            if attempt == 0 || since.get().is_none() {
                since.set(Some(now));
            }
            since.get().unwrap_or(now)
        })
        .unwrap_or(now);
    let waited = now.saturating_duration_since(since);
    if waited >= timeout {
        return 0;
    }
    std::thread::sleep(pause(attempt).min(timeout - waited));
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_short_and_grow_to_two_milliseconds() {
        let us = |a| pause(a).as_micros();
        assert_eq!(
            [us(0), us(3), us(4), us(8), us(12)],
            [50, 50, 100, 200, 400]
        );
        assert_eq!(us(20), 1600);
        assert_eq!(us(24), 2000);
        assert_eq!(us(10_000), 2000);
        assert_eq!(us(-1), 50);
    }

    #[test]
    fn a_wait_gives_up_after_its_timeout() {
        // SAFETY: the handler's argument is the timeout in ms, never dereferenced.
        let handler = |ms: usize, attempt| unsafe { wait(ms as *mut c_void, attempt) };
        assert_eq!(handler(0, 0), 0, "a zero timeout gives up at once");
        let started = Instant::now();
        let mut attempt = 0;
        while handler(30, attempt) == 1 {
            attempt += 1;
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(attempt >= 3, "polled {attempt} times");
    }
}
