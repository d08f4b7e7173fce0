//! The token of one admitted request, a leaf of the mesh's import graph: the pool hands it
//! out ([`super::pool::Pool`] admits at most `capacity` requests in flight per service per
//! node) and whoever answers the request (a worker's reply path, a lane task) drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One admitted request; releases its admission slot when dropped (after the answer).
pub struct Admitted(Arc<AtomicUsize>);

impl Admitted {
    /// The slot already counted in `in_flight`.
    pub(super) fn new(in_flight: Arc<AtomicUsize>) -> Self {
        Self(in_flight)
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admitted")
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
