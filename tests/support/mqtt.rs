//! MQTT for the black-box tests: a private Mosquitto the test starts and stops, the
//! machine's shared broker (`TROUPE_TEST_MQTT`), and a subscriber that collects messages.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use super::{unique, wait_until};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// The machine's broker from `TROUPE_TEST_MQTT`, or `None` with a skip line.
pub fn shared_broker(test: &str) -> Option<(String, u16)> {
    match std::env::var("TROUPE_TEST_MQTT") {
        Ok(v) if !v.is_empty() => {
            let (host, port) = v.rsplit_once(':').unwrap_or((v.as_str(), "1883"));
            Some((
                host.to_string(),
                port.parse().expect("TROUPE_TEST_MQTT port"),
            ))
        }
        _ => {
            eprintln!("skipped: {test} (TROUPE_TEST_MQTT not set)");
            println!("skipped: {test} (TROUPE_TEST_MQTT not set)");
            None
        }
    }
}

/// A private Mosquitto on 127.0.0.1:`port`, stopped on drop.
pub struct Broker {
    pub port: u16,
    conf: std::path::PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// `None` (with a skip line) when mosquitto is not installed.
    pub fn available(test: &str) -> bool {
        if Path::new(MOSQUITTO).exists() {
            true
        } else {
            println!("skipped: {test} ({MOSQUITTO} not installed)");
            false
        }
    }

    pub fn new(dir: &Path, port: u16) -> Broker {
        // Mosquitto started as root drops to its own user: let it write its sessions.
        let dir = dir.join(format!("mosquitto-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let dir = dir.as_path();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\npersistence_file mosquitto-{port}.db\n",
                dir.display()
            ),
        )
        .unwrap();
        Broker {
            port,
            conf,
            child: None,
        }
    }

    pub fn start(&mut self) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "mosquitto did not start on {port}"
        );
    }

    /// SIGTERM: the broker saves its sessions (the test subscriber's queue) and exits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A test subscriber: collects `(topic, json)` of every message on `filter`. Its session is
/// persistent (clean session off), so a broker that saved it keeps queueing for it while
/// it reconnects.
pub struct Subscriber {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    subscribed: Arc<AtomicBool>,
}

impl Subscriber {
    pub fn start(host: &str, port: u16, filter: &str) -> Subscriber {
        let mut options = MqttOptions::new(format!("troupe-test-{}", unique()), host, port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false);
        let (client, mut connection) = Client::new(options, 100);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (seen2, subscribed2, filter) = (seen.clone(), subscribed.clone(), filter.to_string());
        std::thread::spawn(move || {
            for n in connection.iter() {
                match n {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subscribed2.store(true, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        seen2.lock().unwrap().push((p.topic.clone(), v));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        subscribed2.store(false, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
        let s = Subscriber { seen, subscribed };
        assert!(
            wait_until(Duration::from_secs(10), || s.is_subscribed()),
            "test subscriber never subscribed to {host}:{port}"
        );
        s
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// `seq` numbers of the benchmark events of `run` received so far.
    pub fn bench_seqs(&self, run: &str) -> BTreeSet<u64> {
        self.messages()
            .iter()
            .filter(|(_, v)| v["payload"]["run"] == run)
            .filter_map(|(_, v)| v["payload"]["seq"].as_u64())
            .collect()
    }
}
