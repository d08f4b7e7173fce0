//! The root of a node's service supervision tree.
//!
//! ```text
//! Groups
//! ├── Supervisor(ping)  ── Worker × N
//! ├── Endpoint(ping)        (remotable, pg svc.ping + svc.ping@<node>)
//! ├── Supervisor(system) ── Worker × N
//! ├── Endpoint(system)
//! └── ...one pair per service
//! ```
//!
//! An escalated (stopped) supervisor is restarted after an exponential backoff with jitter;
//! an endpoint that dies is restarted at once (it holds no state).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::RactorMessage;

use super::backoff::{Policy, RestartIntensity, Verdict};
use super::pool::Pool;
use super::{endpoint, supervisor};

/// The root actor.
#[derive(Debug, Default)]
pub struct Groups;

/// Messages of [`Groups`].
#[derive(RactorMessage)]
pub enum GroupsMsg {
    /// Start the supervisor of pool `index` again; sent to itself after a backoff delay.
    RestartSupervisor(usize),
}

/// What the root is started with.
pub struct Args {
    /// One pool per service.
    pub pools: Vec<Arc<Pool>>,
    /// Restart policy of the worker supervisors (and, scaled up, of the groups).
    pub policy: Policy,
    /// This node's name.
    pub node: Arc<str>,
    /// Default deadline for calls without one.
    pub default_timeout: Duration,
}

/// Root state.
pub struct State {
    args: Args,
    supervisors: HashMap<ActorId, usize>,
    endpoints: HashMap<ActorId, usize>,
    escalations: Vec<RestartIntensity>,
}

async fn start_supervisor(
    myself: &ActorRef<GroupsMsg>,
    state: &mut State,
    index: usize,
) -> Result<(), ActorProcessingErr> {
    let args = supervisor::Args {
        pool: state.args.pools[index].clone(),
        policy: state.args.policy.clone(),
    };
    let (sup, _) =
        Actor::spawn_linked(None, supervisor::Supervisor, args, myself.get_cell()).await?;
    state.supervisors.insert(sup.get_id(), index);
    Ok(())
}

async fn start_endpoint(
    myself: &ActorRef<GroupsMsg>,
    state: &mut State,
    index: usize,
) -> Result<(), ActorProcessingErr> {
    let args = endpoint::Args {
        pool: state.args.pools[index].clone(),
        node: state.args.node.clone(),
        default_timeout: state.args.default_timeout,
    };
    let (ep, _) = Actor::spawn_linked(None, endpoint::Endpoint, args, myself.get_cell()).await?;
    state.endpoints.insert(ep.get_id(), index);
    Ok(())
}

impl Actor for Groups {
    type Msg = GroupsMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        let n = args.pools.len();
        let escalations = (0..n)
            .map(|_| RestartIntensity::new(args.policy.max_restarts, args.policy.window))
            .collect();
        let mut state = State {
            args,
            supervisors: HashMap::new(),
            endpoints: HashMap::new(),
            escalations,
        };
        for index in 0..n {
            start_supervisor(&myself, &mut state, index).await?;
            start_endpoint(&myself, &mut state, index).await?;
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(Some("node stopping".into()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GroupsMsg::RestartSupervisor(index) => start_supervisor(&myself, state, index).await,
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let id = match &event {
            SupervisionEvent::ActorTerminated(cell, ..)
            | SupervisionEvent::ActorFailed(cell, _) => cell.get_id(),
            _ => return Ok(()),
        };
        if let Some(index) = state.endpoints.remove(&id) {
            tracing::warn!(
                service = state.args.pools[index].name(),
                "endpoint stopped, restarting"
            );
            return start_endpoint(&myself, state, index).await;
        }
        let Some(index) = state.supervisors.remove(&id) else {
            return Ok(());
        };
        let service = state.args.pools[index].name();
        // A group that keeps escalating waits longer each time, up to the backoff ceiling;
        // the node itself never gives up on a service.
        let attempt = match state.escalations[index].record(Instant::now()) {
            Verdict::Restart { attempt } => attempt + 1,
            Verdict::Escalate => state.args.policy.max_restarts + 1,
        };
        let delay = state.args.policy.backoff.delay(attempt, &mut rand::rng());
        tracing::warn!(service, ?delay, "service group escalated, restarting it");
        myself.send_after(delay, move || GroupsMsg::RestartSupervisor(index));
        Ok(())
    }
}
