//! `[log]`: log format and filter.

use super::reader::{any, Reader, Section, Setting};

/// `[log]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Output format.
    pub format: LogFormat,
    /// An `EnvFilter` directive string such as `info,troupe=debug`.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Setting for LogFormat {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected \"text\" or \"json\", got {text:?}")),
        }
    }
}

/// Requires an `EnvFilter` directive string.
fn log_directives(value: &String) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map(drop)
        .map_err(|error| format!("invalid filter directive {value:?}: {error}"))
}

impl Reader<'_> {
    /// Reads `[log]`.
    pub(super) fn log(&mut self, root: &mut Section<'_>) -> Log {
        let mut section = self.section(root, "log");
        let format = self.get(&mut section, "format", Some("TROUPE_LOG_FORMAT"), &any);
        let level = self.get(
            &mut section,
            "level",
            Some("TROUPE_LOG_LEVEL"),
            &log_directives,
        );
        self.finish(section);
        Log {
            format: format.unwrap_or(LogFormat::Text),
            level: level.unwrap_or_else(|| "info".to_owned()),
        }
    }
}
