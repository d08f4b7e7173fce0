//! The MQTT bridge: a sink of the event bus that publishes every event to a broker
//! (rumqttc), QoS 1, JSON payload, one topic per event type.
//!
//! A delivery succeeds only on the broker's PUBACK, so an event leaves the outbox only once
//! the broker has it; while the broker is down, deliveries fail fast and the outbox retries
//! them with backoff. One connection task per node owns the client: it maps each publish to
//! its packet id as the event loop sends it (requests leave in order), resolves it on the
//! PUBACK, and on any connection error fails whatever is in flight (the outbox retries it)
//! and reconnects with jittered backoff on a fresh session. The client id is
//! `<prefix>-<node>-<incarnation>`, one per node incarnation.
//!
//! Payloads are the event JSON with secret fields masked ([`Event::redacted`]).
//!
//! [`Probe`] is the broker's health check (`/health`): a short connection of its own.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use troupe_actors::events::sink::Sink;
use troupe_actors::events::Event;
use troupe_actors::mesh::backoff::Backoff;
use troupe_actors::mesh::{BoxFuture, MeshError};

/// Gauge: 1 while the bridge is connected to its broker, else 0.
pub const CONNECTED_METRIC: &str = "troupe_mqtt_connected";

/// Topic of kinds no `[mqtt.topics]` entry names: this prefix plus the kind.
pub const DEFAULT_TOPIC_PREFIX: &str = "troupe/events/";

/// The default `[mqtt.topics]`: what landscape B's consumers subscribe to.
pub fn default_topics() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("user.*".to_string(), "user-registration-events".to_string()),
        ("task.*".to_string(), "task-processing-events".to_string()),
    ])
}

/// Bridge settings (`[mqtt]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id prefix; the node name and incarnation are appended.
    pub client_id_prefix: String,
    /// Event kind (exact, or a prefix ending in `*`) -> topic. The most specific wins.
    pub topics: BTreeMap<String, String>,
    /// Topic of other kinds: this prefix plus the kind.
    pub topic_prefix: String,
    /// Publishes awaiting their PUBACK at once.
    pub inflight: u16,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
}

impl Settings {
    /// Settings for a broker at `host:port` with every default.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id_prefix: "troupe".into(),
            topics: default_topics(),
            topic_prefix: DEFAULT_TOPIC_PREFIX.into(),
            inflight: 100,
            keep_alive: Duration::from_secs(5),
        }
    }

    /// The topic events of `kind` go to.
    pub fn topic(&self, kind: &str) -> String {
        if let Some(t) = self.topics.get(kind) {
            return t.clone();
        }
        let best = self
            .topics
            .iter()
            .filter_map(|(pattern, topic)| {
                let prefix = pattern.strip_suffix('*')?;
                kind.starts_with(prefix).then_some((prefix.len(), topic))
            })
            .max_by_key(|(len, _)| *len);
        match best {
            Some((_, topic)) => topic.clone(),
            None => format!("{}{kind}", self.topic_prefix),
        }
    }
}

/// One publish handed to the connection task.
struct Job {
    topic: String,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), MeshError>>,
}

/// The MQTT sink.
pub struct Mqtt {
    settings: Arc<Settings>,
    connected: Arc<AtomicBool>,
    jobs_tx: mpsc::Sender<Job>,
}

impl Mqtt {
    /// Starts the connection task for node `node` of incarnation `incarnation`.
    pub fn start(settings: Settings, node: &str, incarnation: u64) -> Mqtt {
        let settings = Arc::new(settings);
        let connected = Arc::new(AtomicBool::new(false));
        let (jobs_tx, jobs_rx) = mpsc::channel(usize::from(settings.inflight.max(1)) * 4);
        let client_id = format!("{}-{node}-{incarnation}", settings.client_id_prefix);
        tokio::spawn(connection(
            settings.clone(),
            client_id,
            connected.clone(),
            jobs_rx,
        ));
        Mqtt {
            settings,
            connected,
            jobs_tx,
        }
    }
}

impl Sink for Mqtt {
    fn name(&self) -> &str {
        "mqtt"
    }

    fn concurrency(&self) -> usize {
        usize::from(self.settings.inflight.max(1)) * 2
    }

    fn deliver(&self, event: Arc<Event>) -> BoxFuture<'static, Result<(), MeshError>> {
        let connected = self.connected.load(Ordering::Relaxed);
        let topic = self.settings.topic(&event.kind);
        let jobs_tx = self.jobs_tx.clone();
        Box::pin(async move {
            if !connected {
                return Err(MeshError::unavailable("mqtt broker not connected"));
            }
            let payload = serde_json::to_vec(&event.redacted())
                .map_err(|e| MeshError::internal(format!("event to json: {e}")))?;
            let (done, answer) = oneshot::channel();
            jobs_tx
                .try_send(Job {
                    topic,
                    payload,
                    done,
                })
                .map_err(|_| MeshError::unavailable("mqtt bridge is busy"))?;
            answer
                .await
                .map_err(|_| MeshError::unavailable("mqtt connection dropped the publish"))?
        })
    }
}

/// The broker's health check (`troupe_actors::system::dependencies`): a connection of its
/// own, client id `<prefix>-<node>-<incarnation>-health` so the bridge's session is never
/// taken over, that waits for the broker's CONNACK and then disconnects.
pub struct Probe {
    settings: Arc<Settings>,
    client_id: String,
}

impl Probe {
    /// A check of the broker of `settings`, for node `node` of incarnation `incarnation`.
    pub fn new(settings: Settings, node: &str, incarnation: u64) -> Probe {
        let client_id = format!("{}-{node}-{incarnation}-health", settings.client_id_prefix);
        Probe {
            settings: Arc::new(settings),
            client_id,
        }
    }
}

impl troupe_actors::system::dependencies::Probe for Probe {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn target(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    fn check(&self) -> BoxFuture<'static, Result<(), String>> {
        let mut options =
            MqttOptions::new(&self.client_id, &self.settings.host, self.settings.port);
        options
            .set_keep_alive(self.settings.keep_alive)
            .set_clean_session(true);
        Box::pin(async move {
            let (client, mut event_loop) = AsyncClient::new(options, 1);
            loop {
                match event_loop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("mqtt: {e}")),
                }
            }
            // Say goodbye so the broker logs no dropped client; not waited on for long.
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match event_loop.poll().await {
                        Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            Ok(())
        })
    }
}

/// Owns the client and its event loop; reconnects on a fresh session after any error.
async fn connection(
    settings: Arc<Settings>,
    client_id: String,
    connected: Arc<AtomicBool>,
    mut jobs_rx: mpsc::Receiver<Job>,
) {
    metrics::describe_gauge!(CONNECTED_METRIC, "1 while the mqtt bridge is connected");
    metrics::gauge!(CONNECTED_METRIC).set(0.0);
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut failures = 0u32;
    loop {
        let mut options = MqttOptions::new(&client_id, &settings.host, settings.port);
        options
            .set_keep_alive(settings.keep_alive)
            .set_clean_session(true)
            .set_inflight(settings.inflight.max(1))
            .set_max_packet_size(1 << 20, 1 << 20);
        let capacity = usize::from(settings.inflight.max(1)) * 2;
        let (client, mut event_loop) = AsyncClient::new(options, capacity);
        // Sent, packet id not known yet (in order); sent with a packet id, awaiting PUBACK.
        let mut unnumbered: VecDeque<oneshot::Sender<Result<(), MeshError>>> = VecDeque::new();
        let mut unacked: HashMap<u16, oneshot::Sender<Result<(), MeshError>>> = HashMap::new();
        let mut up = false;
        let error = loop {
            let room = up && unnumbered.len() + unacked.len() < capacity;
            tokio::select! {
                polled = event_loop.poll() => match polled {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        up = true;
                        failures = 0;
                        connected.store(true, Ordering::Relaxed);
                        metrics::gauge!(CONNECTED_METRIC).set(1.0);
                        tracing::info!(broker = %format!("{}:{}", settings.host, settings.port), client_id = %client_id, "mqtt bridge connected");
                    }
                    Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(done) = unnumbered.pop_front() {
                            unacked.insert(pkid, done);
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => {
                        if let Some(done) = unacked.remove(&ack.pkid) {
                            let _ = done.send(Ok(()));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break e.to_string(),
                },
                job = jobs_rx.recv(), if room => {
                    let Some(job) = job else { return };
                    match client.try_publish(job.topic, QoS::AtLeastOnce, false, job.payload) {
                        Ok(()) => unnumbered.push_back(job.done),
                        Err(e) => {
                            let _ = job.done.send(Err(MeshError::unavailable(format!("mqtt publish: {e}"))));
                        }
                    }
                }
            }
        };
        connected.store(false, Ordering::Relaxed);
        metrics::gauge!(CONNECTED_METRIC).set(0.0);
        let lost = unnumbered.len() + unacked.len();
        for done in unnumbered.drain(..).chain(unacked.into_values()) {
            let _ = done.send(Err(MeshError::unavailable(format!(
                "mqtt connection lost: {error}"
            ))));
        }
        failures = failures.saturating_add(1);
        let delay = backoff
            .delay(failures, &mut rand::rng())
            .max(Duration::from_millis(50));
        if up || failures == 1 {
            tracing::warn!(error = %error, in_flight = lost, "mqtt bridge disconnected, reconnecting");
        } else {
            tracing::debug!(error = %error, retry_in_ms = delay.as_millis() as u64, "mqtt broker unreachable");
        }
        drop(client);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_go_from_exact_to_longest_prefix_to_default() {
        let mut s = Settings::new("127.0.0.1", 1883);
        assert_eq!(s.topic("user.registered"), "user-registration-events");
        assert_eq!(s.topic("user.logged_in"), "user-registration-events");
        assert_eq!(s.topic("task.progress"), "task-processing-events");
        assert_eq!(s.topic("todo.created"), "troupe/events/todo.created");
        s.topics.insert("user.logged_in".into(), "logins".into());
        s.topics.insert("task.c*".into(), "task-ends".into());
        assert_eq!(s.topic("user.logged_in"), "logins");
        assert_eq!(s.topic("task.completed"), "task-ends");
        assert_eq!(s.topic("task.created"), "task-ends");
        assert_eq!(s.topic("task.failed"), "task-processing-events");
    }
}
