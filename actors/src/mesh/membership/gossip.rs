//! The UDP transport under chitchat, with one change: a datagram that cannot be sent to one
//! peer (a partition's blackhole route, an unreachable network) is not an error of the
//! transport. chitchat logs every failed round with the error's full debug form, so a node
//! cut off from its peers wrote thousands of warnings with backtraces in seconds. Here a
//! peer that turns unreachable is logged once, and once more when it is reachable again;
//! every failed send is counted (`troupe_gossip_send_failures_total`) and the number of
//! unreachable peers is a gauge (`troupe_gossip_unreachable_peers`). chitchat's own failure
//! detector still sees the silence and marks the peer down as before.

use std::collections::HashSet;
use std::net::SocketAddr;

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpTransport};
use chitchat::ChitchatEnvelope;

use crate::metrics::{GOSSIP_SEND_FAILURES as SEND_FAILURES, GOSSIP_UNREACHABLE as UNREACHABLE};

/// chitchat's UDP transport, quiet about unreachable peers.
pub struct QuietUdp;

#[async_trait]
impl Transport for QuietUdp {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        Ok(Box::new(Quiet::new(UdpTransport.open(listen_addr).await?)))
    }
}

/// A socket that answers a failed send to one peer as sent, after noting it.
pub struct Quiet {
    inner: Box<dyn Socket>,
    unreachable: HashSet<SocketAddr>,
}

impl Quiet {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Socket>) -> Self {
        Self {
            inner,
            unreachable: HashSet::new(),
        }
    }

    /// Peers whose last send failed.
    pub fn unreachable(&self) -> &HashSet<SocketAddr> {
        &self.unreachable
    }
}

#[async_trait]
impl Socket for Quiet {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        match self.inner.send(to, envelope).await {
            Ok(sent) => {
                if self.unreachable.remove(&to) {
                    tracing::info!(peer = %to, "gossip peer reachable again");
                    metrics::gauge!(UNREACHABLE).set(self.unreachable.len() as f64);
                }
                Ok(sent)
            }
            Err(error) => {
                metrics::counter!(SEND_FAILURES).increment(1);
                if self.unreachable.insert(to) {
                    tracing::warn!(peer = %to, error = %error, "gossip peer unreachable");
                    metrics::gauge!(UNREACHABLE).set(self.unreachable.len() as f64);
                }
                // One peer out of reach is not a broken transport (chitchat's contract for
                // an error here): the round goes on, and the failure detector decides.
                Ok(SendOutcome { num_bytes_sent: 0 })
            }
        }
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        self.inner.recv().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chitchat::{ChitchatMessage, ProtocolVersion};

    use super::*;

    /// A socket whose sends to `down` fail; it records what it sent.
    struct Flaky {
        down: Arc<Mutex<HashSet<SocketAddr>>>,
        sent: Arc<Mutex<Vec<SocketAddr>>>,
    }

    #[async_trait]
    impl Socket for Flaky {
        fn local_addr(&self) -> anyhow::Result<SocketAddr> {
            Ok("127.0.0.1:1".parse()?)
        }

        async fn send(
            &mut self,
            to: SocketAddr,
            _: ChitchatEnvelope,
        ) -> anyhow::Result<SendOutcome> {
            if self.down.lock().unwrap().contains(&to) {
                anyhow::bail!("network is unreachable");
            }
            self.sent.lock().unwrap().push(to);
            Ok(SendOutcome { num_bytes_sent: 1 })
        }

        async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
            std::future::pending().await
        }
    }

    fn envelope() -> ChitchatEnvelope {
        ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::BadCluster,
        }
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_noted_once_and_forgotten_when_back() {
        let (a, b): (SocketAddr, SocketAddr) = (
            "198.18.0.2:7101".parse().unwrap(),
            "198.18.0.3:7101".parse().unwrap(),
        );
        let down = Arc::new(Mutex::new(HashSet::from([b])));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut socket = Quiet::new(Box::new(Flaky {
            down: down.clone(),
            sent: sent.clone(),
        }));
        for _ in 0..3 {
            // A failed send is not a transport error: chitchat's round goes on.
            let outcome = socket.send(b, envelope()).await.unwrap();
            assert_eq!(outcome.num_bytes_sent, 0);
            assert_eq!(socket.send(a, envelope()).await.unwrap().num_bytes_sent, 1);
        }
        assert_eq!(socket.unreachable(), &HashSet::from([b]));
        assert_eq!(*sent.lock().unwrap(), vec![a, a, a]);
        // The link heals: the next send goes through and the peer is no longer noted.
        down.lock().unwrap().clear();
        assert_eq!(socket.send(b, envelope()).await.unwrap().num_bytes_sent, 1);
        assert!(socket.unreachable().is_empty());
    }
}
