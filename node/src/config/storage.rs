//! `[storage]`: where the SQL store is.

use super::reader::{Reader, Section};

/// `[storage]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `postgres://...` or `sqlite:...`; `None` = the embedded SQLite file in `data_dir`.
    pub url: Option<String>,
}

/// Requires a `postgres://`, `postgresql://` or `sqlite:` URL.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn storage_url(value: &String) -> Result<(), String> {
    if ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|p| value.starts_with(p))
    {
        Ok(())
    } else {
        Err("expected a postgres:// or sqlite: url".to_owned())
    }
}

impl Reader<'_> {
    /// Reads `[storage]`.
    pub(super) fn storage(&mut self, root: &mut Section<'_>) -> Storage {
        let mut section = self.section(root, "storage");
        let url = self.get(
            &mut section,
            "url",
            Some("TROUPE_STORAGE_URL"),
            &storage_url,
        );
        self.finish(section);
        Storage { url }
    }
}
