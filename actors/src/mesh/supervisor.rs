//! The supervisor of one service's worker pool on one node.
//!
//! It starts the pool's workers linked to itself and restarts each one that dies: the first
//! restart in a window is immediate, later ones wait an exponential backoff with full jitter.
//! More than `max_restarts` within the window escalates: the supervisor stops, and the node's
//! [`super::groups::Groups`] actor restarts the whole group after its own backoff.

use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::RactorMessage;

use super::backoff::{Policy, RestartIntensity, Verdict};
use super::pool::Pool;
use super::worker::Worker;

/// The supervisor actor.
#[derive(Debug, Default)]
pub struct Supervisor;

/// Messages of a [`Supervisor`].
#[derive(RactorMessage)]
pub enum SupervisorMsg {
    /// Start a worker in this slot; sent by the supervisor to itself once a backoff delay passed.
    Restart(usize),
}

/// What a supervisor is started with.
pub struct Args {
    /// The pool whose slots it fills.
    pub pool: Arc<Pool>,
    /// Backoff and intensity.
    pub policy: Policy,
}

/// Supervisor state.
pub struct State {
    pool: Arc<Pool>,
    policy: Policy,
    intensity: RestartIntensity,
}

async fn start_worker(
    myself: &ActorRef<SupervisorMsg>,
    pool: &Pool,
    index: usize,
) -> Result<(), ActorProcessingErr> {
    let (worker, _) =
        Actor::spawn_linked(None, Worker, pool.service().clone(), myself.get_cell()).await?;
    let name = pool.fill(index, worker);
    tracing::debug!(worker = %name, "worker started");
    Ok(())
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        for index in 0..args.pool.size() {
            start_worker(&myself, &args.pool, index).await?;
        }
        Ok(State {
            intensity: RestartIntensity::new(args.policy.max_restarts, args.policy.window),
            pool: args.pool,
            policy: args.policy,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(Some("supervisor stopped".into()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restart(index) => start_worker(&myself, &state.pool, index).await,
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match &event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.clone().unwrap_or_else(|| "stopped".into()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            _ => return Ok(()),
        };
        let Some(index) = state.pool.clear(&cell.get_id()) else {
            return Ok(());
        };
        let service = state.pool.name();
        metrics::counter!(crate::metrics::ACTOR_RESTARTS, "service" => service).increment(1);
        match state.intensity.record(Instant::now()) {
            Verdict::Restart { attempt } => {
                let delay = state.policy.backoff.delay(attempt, &mut rand::rng());
                tracing::info!(service, slot = index, attempt, ?delay, reason = %why, "restarting worker");
                if delay.is_zero() {
                    start_worker(&myself, &state.pool, index).await?;
                } else {
                    myself.send_after(delay, move || SupervisorMsg::Restart(index));
                }
                Ok(())
            }
            Verdict::Escalate => {
                tracing::warn!(
                    service,
                    max_restarts = state.policy.max_restarts,
                    window = ?state.policy.window,
                    "restart intensity exceeded, escalating"
                );
                myself.stop(Some("restart intensity exceeded".into()));
                Ok(())
            }
        }
    }
}
