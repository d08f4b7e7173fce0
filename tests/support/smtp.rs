//! A real SMTP server for the black-box tests: Python's `aiosmtpd` (PyPI) running
//! `smtp_sink.py`, which writes every message it accepts to a directory as JSON. The test
//! starts and stops it (to see a node's `/health` follow it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_until};

/// The script the server runs.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/smtp_sink.py");

/// An SMTP server on 127.0.0.1:`port`, stopped on drop.
pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    /// Whether `aiosmtpd` can be imported; prints a skip line for `test` when not.
    pub fn available(test: &str) -> bool {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: {test} (python3 aiosmtpd not installed)");
            println!("skipped: {test} (python3 aiosmtpd not installed)");
        }
        ok
    }

    /// A server (not started) on a free port, keeping its mail under `dir`.
    pub fn new(dir: &Path) -> SmtpServer {
        let port = free_port();
        SmtpServer {
            port,
            dir: dir.join(format!("mail-{port}")),
            child: None,
        }
    }

    /// Starts it and waits until it accepts connections.
    pub fn start(&mut self) {
        let child = Command::new("python3")
            .arg(SCRIPT)
            .args(["127.0.0.1", &self.port.to_string()])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the smtp server");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "the smtp server did not start on {port}"
        );
    }

    /// Kills it (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// Waits up to `timeout` until at least `count` messages to `to` have the subject
    /// `subject`; answers those there are then.
    pub fn wait_for(&self, to: &str, subject: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let mut found = Vec::new();
        wait_until(timeout, || {
            found = self
                .messages()
                .into_iter()
                .filter(|m| m["rcpt_tos"] == serde_json::json!([to]) && m["subject"] == subject)
                .collect();
            found.len() >= count
        });
        found
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
