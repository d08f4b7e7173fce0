//! The event outbox of Troupe before the transactional outbox: a sled database per node
//! (`<data_dir>/<node>/outbox`, trees `pending` and `dead`). A node that finds one moves
//! what it holds into the store at start-up, so an upgrade loses no event, and then
//! removes it. A database sled cannot open (a corrupt file) is set aside, renamed
//! `outbox.corrupt-<unix ms>`, and logged and counted: it never stops the node.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::outbox::{Claimed, DeadLetter, Outbox};
use super::Event;
use crate::mesh::MeshError;
use crate::store::time::now_ms;

/// One delivery of one event to one sink, as the sled outbox kept it.
#[derive(Deserialize)]
struct Entry {
    event: Event,
    sink: String,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    last_error: String,
    #[serde(default)]
    failed_at: i64,
}

/// What an import found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Deliveries put back in the outbox.
    pub pending: u64,
    /// Dead letters kept.
    pub dead: u64,
    /// Entries that were not deliveries, quarantined.
    pub quarantined: u64,
    /// Where an unreadable database was set aside.
    pub set_aside: Option<PathBuf>,
}

/// Moves the sled outbox at `dir` (if there is one) into `outbox`, then removes it.
pub async fn import(dir: &Path, outbox: &Outbox) -> Result<Imported, MeshError> {
    let mut found = Imported::default();
    if !dir.exists() {
        return Ok(found);
    }
    let db = match sled::Config::new().path(dir).open() {
        Ok(db) => db,
        Err(e) => {
            let aside = dir.with_file_name(format!("outbox.corrupt-{}", now_ms()));
            tracing::error!(path = %dir.display(), aside = %aside.display(), error = %e,
                "the old event outbox cannot be opened; set aside, the node starts without it");
            metrics::counter!(super::metrics::QUARANTINED).increment(1);
            std::fs::rename(dir, &aside).map_err(|e| {
                MeshError::internal(format!("cannot set the old outbox aside: {e}"))
            })?;
            found.set_aside = Some(aside);
            return Ok(found);
        }
    };
    let node = outbox.node().to_string();
    let mut dead = Vec::new();
    for (tree, is_dead) in [("pending", false), ("dead", true)] {
        let Ok(tree) = db.open_tree(tree) else {
            continue;
        };
        let mut pending = Vec::new();
        for item in tree.iter() {
            let Ok((key, value)) = item else { continue };
            match serde_json::from_slice::<Entry>(&value) {
                Ok(e) if is_dead => {
                    let mut d =
                        DeadLetter::gave_up(&e.event, &e.sink, e.attempts, &e.last_error, &node);
                    d.failed_at = e.failed_at;
                    dead.push(d);
                    found.dead += 1;
                }
                Ok(e) => {
                    pending.push((format!("{}.{}", e.event.id, e.sink), e.sink, e.event));
                    found.pending += 1;
                }
                Err(e) => {
                    let row = Claimed {
                        id: format!("legacy-{}", hex(&key)),
                        sink: String::new(),
                        body: String::from_utf8_lossy(&value).into_owned(),
                    };
                    dead.push(DeadLetter::quarantined(
                        &row,
                        &format!("undecodable: {e}"),
                        &node,
                    ));
                    metrics::counter!(super::metrics::QUARANTINED).increment(1);
                    found.quarantined += 1;
                }
            }
            if pending.len() >= 500 {
                outbox.restore(&pending).await?;
                pending.clear();
            }
        }
        outbox.restore(&pending).await?;
    }
    outbox.settle(&[], &dead).await?;
    drop(db);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove the imported old outbox");
    }
    tracing::info!(
        pending = found.pending,
        dead = found.dead,
        quarantined = found.quarantined,
        "moved the old event outbox into the store"
    );
    Ok(found)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
