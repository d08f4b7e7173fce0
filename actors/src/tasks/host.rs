//! The task host: one actor per node that owns the node's task actors ([`super::runner`]).
//!
//! It spawns a task actor (linked, local-only, unnamed: never announced to other nodes) the
//! first time it is asked to run a task, stops it when the task is cancelled, releases the tasks whose
//! home moved when membership changes, and forgets an actor when it stops. At most one actor
//! per task runs on a node; across nodes, the versioned writes of the actors decide.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent,
};
use ractor_cluster::RactorMessage;

use super::metrics;
use super::runner::{Answer, Ctx, Runner, TaskMsg};
use crate::mesh::placement;
use crate::mesh::trace::Trace;
use crate::mesh::MeshError;

/// How long after a task actor crashed the host runs the task again.
const RESTART_AFTER: Duration = Duration::from_millis(500);

/// Messages of the task host.
#[derive(RactorMessage)]
pub enum HostMsg {
    /// Run task `id` on this node: spawn its actor unless one runs it here already. Answers
    /// (when `reply` is given) the task as claimed, or as the running actor knows it. Sent by
    /// the service's `run` op and, without a reply, by the orphan scan.
    Run {
        /// Task id.
        id: String,
        /// Where the answer goes, if anywhere.
        reply: Option<RpcReplyPort<Answer>>,
        /// The trace of the request that asks for the run (`run` op: the caller's), which a
        /// newly spawned task actor runs in (see [`TaskMsg::Begin`]).
        trace: Option<Trace>,
    },
    /// Task `id` was cancelled in the store: stop its actor here, if any. Sent by the
    /// service's `cancel` op.
    Cancelled {
        /// Task id.
        id: String,
    },
    /// The routable members changed: release every task whose home is now another node.
    /// Sent by the service's membership watcher.
    Rebalance {
        /// Every routable member, this node included.
        members: Vec<String>,
    },
    /// Answers the ids of the tasks with an actor here. Sent by the orphan scan.
    Running(RpcReplyPort<Vec<String>>),
}

/// The host actor.
pub struct Host {
    ctx: Arc<Ctx>,
}

impl Host {
    /// A host over the node's shared context.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

/// State of the host.
#[derive(Default)]
pub struct HostState {
    tasks: HashMap<String, ActorRef<TaskMsg>>,
    by_actor: HashMap<ActorId, String>,
}

impl Host {
    async fn spawn(
        &self,
        myself: &ActorRef<HostMsg>,
        st: &mut HostState,
        id: String,
        reply: Option<RpcReplyPort<Answer>>,
        trace: Option<Trace>,
    ) {
        let runner = Runner::new(self.ctx.clone());
        match Actor::spawn_linked(None, runner, id.clone(), myself.get_cell()).await {
            Ok((actor, _)) => {
                // Its first message: nothing can be queued before it.
                let _ = actor.cast(TaskMsg::Begin(reply, trace));
                st.by_actor.insert(actor.get_id(), id.clone());
                st.tasks.insert(id, actor);
                gauge(st);
            }
            Err(e) => {
                tracing::error!(task = %id, error = %e, "cannot spawn a task actor");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(MeshError::unavailable("cannot start the task actor")));
                }
            }
        }
    }
}

fn gauge(st: &HostState) {
    ::metrics::gauge!(metrics::RUNNING).set(st.tasks.len() as f64);
}

impl Actor for Host {
    type Msg = HostMsg;
    type State = HostState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<HostMsg>,
        _: (),
    ) -> Result<HostState, ActorProcessingErr> {
        Ok(HostState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<HostMsg>,
        msg: HostMsg,
        st: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HostMsg::Run { id, reply, trace } => {
                let Some(actor) = st.tasks.get(&id) else {
                    self.spawn(&myself, st, id, reply, trace).await;
                    return Ok(());
                };
                let Some(reply) = reply else {
                    return Ok(());
                };
                // Stopping already: its answer would be lost; a fresh actor answers instead.
                if let Err(MessagingErr::SendErr(TaskMsg::Get(reply))) =
                    actor.cast(TaskMsg::Get(reply))
                {
                    self.spawn(&myself, st, id, Some(reply), trace).await;
                }
            }
            HostMsg::Cancelled { id } => {
                if let Some(actor) = st.tasks.get(&id) {
                    let _ = actor.cast(TaskMsg::Cancelled);
                }
            }
            HostMsg::Rebalance { members } => {
                let me = self.ctx.node.to_string();
                for (id, actor) in &st.tasks {
                    if placement::home(id, &members) != Some(&me) {
                        let _ = actor.cast(TaskMsg::Release);
                    }
                }
            }
            HostMsg::Running(reply) => {
                let _ = reply.send(st.tasks.keys().cloned().collect());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<HostMsg>,
        _st: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        // Children outlive a stopped supervisor in ractor: stop them (between two steps).
        myself.stop_children(Some("task host stopping".into()));
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<HostMsg>,
        evt: SupervisionEvent,
        st: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        let Some(id) = st.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        // A fresh actor may have replaced this one already.
        if st
            .tasks
            .get(&id)
            .is_some_and(|a| a.get_id() == cell.get_id())
        {
            st.tasks.remove(&id);
        }
        gauge(st);
        if let Some(why) = failure {
            tracing::warn!(task = %id, error = %why, "task actor crashed, running the task again");
            myself.send_after(RESTART_AFTER, move || HostMsg::Run {
                id,
                reply: None,
                trace: None,
            });
        }
        Ok(())
    }
}
