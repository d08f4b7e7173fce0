//! The `tasks` service's prost messages, written by hand (no `.proto`, no build step).

/// A task as callers see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Task {
    /// Opaque id (a UUID).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The user who created it.
    #[prost(string, tag = "2")]
    pub owner_id: String,
    /// Display name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The caller's payload, JSON text.
    #[prost(string, tag = "4")]
    pub payload: String,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    #[prost(string, tag = "5")]
    pub status: String,
    /// Steps done.
    #[prost(uint32, tag = "6")]
    pub step: u32,
    /// Steps in all.
    #[prost(uint32, tag = "7")]
    pub steps: u32,
    /// Pause before each step, ms.
    #[prost(uint64, tag = "8")]
    pub delay_ms: u64,
    /// Why it failed; empty otherwise.
    #[prost(string, tag = "9")]
    pub error: String,
    /// The node that runs (or last ran) it.
    #[prost(string, tag = "10")]
    pub node: String,
    /// How many times an actor claimed it (1 unless it moved between nodes).
    #[prost(uint32, tag = "11")]
    pub activations: u32,
    /// RFC 3339 UTC.
    #[prost(string, tag = "12")]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[prost(string, tag = "13")]
    pub updated_at: String,
    /// RFC 3339 UTC; empty until first claimed.
    #[prost(string, tag = "14")]
    pub started_at: String,
    /// RFC 3339 UTC; empty until finished.
    #[prost(string, tag = "15")]
    pub finished_at: String,
    /// Row version, raised by every write.
    #[prost(uint64, tag = "16")]
    pub version: u64,
    /// Whether another node may continue it after its node is lost.
    #[prost(bool, tag = "17")]
    pub resumable: bool,
    /// The step that fails on purpose (0: none).
    #[prost(uint32, tag = "18")]
    pub fail_at_step: u32,
    /// The step log (only `get` with `history` fills it).
    #[prost(message, repeated, tag = "19")]
    pub history: Vec<StepRecord>,
}

/// One committed step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StepRecord {
    /// Step number, from 1.
    #[prost(uint32, tag = "1")]
    pub step: u32,
    /// The node whose actor did it.
    #[prost(string, tag = "2")]
    pub node: String,
    /// The claim (activation) that did it.
    #[prost(uint32, tag = "3")]
    pub activation: u32,
    /// RFC 3339 UTC.
    #[prost(string, tag = "4")]
    pub done_at: String,
}

/// `create`: a new task for the caller. Absent numbers take their defaults; ranges are
/// checked by the service, so any integer may be sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTask {
    /// Display name (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Any JSON, as text; empty means `null`.
    #[prost(string, tag = "2")]
    pub payload: String,
    /// Steps, default 10.
    #[prost(int64, optional, tag = "3")]
    pub steps: Option<i64>,
    /// Pause before each step in ms, default 100.
    #[prost(int64, optional, tag = "4")]
    pub delay_ms: Option<i64>,
    /// May another node continue it after its node is lost (default true)?
    #[prost(bool, optional, tag = "5")]
    pub resumable: Option<bool>,
    /// Make this step fail (to exercise `failed`).
    #[prost(int64, optional, tag = "6")]
    pub fail_at_step: Option<i64>,
}

/// `get`, `cancel`, `run`: one task by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskRef {
    /// Task id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// With the step log (`get` only).
    #[prost(bool, tag = "2")]
    pub history: bool,
}

/// `list`: one page of tasks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasks {
    /// Only this status (empty: any).
    #[prost(string, tag = "1")]
    pub status: String,
    /// Only this owner (admins only; empty: the caller's own, or every task for an admin).
    #[prost(string, tag = "2")]
    pub owner_id: String,
    /// 1-based page (0: 1).
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// Page size (0: 20; at most 100).
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}

/// One page of tasks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskPage {
    /// The tasks, newest first.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<Task>,
    /// Matching tasks in all.
    #[prost(uint64, tag = "2")]
    pub total: u64,
    /// The page.
    #[prost(uint32, tag = "3")]
    pub page: u32,
    /// The page size.
    #[prost(uint32, tag = "4")]
    pub per_page: u32,
}
