//! The TCP transport under the ractor_cluster sessions: Troupe accepts and dials the cluster
//! connections itself and hands them to the `NodeServer` as external streams, with the read
//! half behind a buffer.
//!
//! ractor_cluster's own sockets read every frame with two unbuffered reads (the 8-byte
//! length, then the body) and one more that finds the socket empty, so a node under load
//! makes several `read` calls per mesh message. Its writer already sends whatever is queued in
//! one write, so behind a [`BufReader`] one `read` takes in every frame of such a batch. The
//! session protocol (handshake, cookie, framing) is ractor_cluster's, unchanged.
//!
//! ractor_cluster's `NodeServer` always starts a listener of its own; Troupe binds it to an
//! ephemeral loopback port ([`unused_server_listener`]) where nothing connects, and accepts on
//! the configured cluster address with [`accept`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

/// Read buffer per cluster connection.
pub const READ_BUFFER: usize = 64 * 1024;

/// Where the `NodeServer`'s own (unused) listener binds: any free loopback port.
pub fn unused_server_listener() -> (u16, std::net::IpAddr) {
    (0, Ipv4Addr::LOCALHOST.into())
}

/// One cluster connection, handed to ractor_cluster.
struct PeerStream {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
}

impl PeerStream {
    fn new(stream: TcpStream) -> std::io::Result<Self> {
        // Mesh calls are small request/reply frames: send each batch at once.
        stream.set_nodelay(true)?;
        Ok(Self {
            peer: stream.peer_addr()?,
            local: stream.local_addr()?,
            stream,
        })
    }
}

impl ClusterBidiStream for PeerStream {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (read, write) = self.stream.into_split();
        (
            Box::new(BufReader::with_capacity(READ_BUFFER, read)),
            Box::new(write),
        )
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.to_string())
    }

    fn local_label(&self) -> Option<String> {
        Some(self.local.to_string())
    }
}

/// Opens a session to the peer at `addr` (the handshake goes on in the session actor).
pub async fn dial(server: &ActorRef<NodeServerMessage>, addr: SocketAddr) -> anyhow::Result<()> {
    let stream = PeerStream::new(TcpStream::connect(addr).await?)?;
    ractor_cluster::client_connect_external(server, Box::new(stream)).await?;
    Ok(())
}

/// Accepts cluster connections on `listener` for `server` until the server stops.
pub async fn accept(listener: TcpListener, server: ActorRef<NodeServerMessage>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accepting a cluster connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let stream = match PeerStream::new(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cluster connection closed before its session started");
                continue;
            }
        };
        let opened = NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(stream),
            is_server: true,
        };
        if server.cast(opened).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_buffered_read_half_yields_every_frame_of_a_batch() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut client, (server, _)) = (client.unwrap(), server.unwrap());
        let stream = Box::new(PeerStream::new(server).unwrap());
        assert_eq!(
            stream.peer_label(),
            Some(client.local_addr().unwrap().to_string())
        );
        assert_eq!(stream.local_label(), Some(addr.to_string()));
        let (mut read, _write) = stream.split();

        // Two length-prefixed frames in one write, as ractor_cluster's writer batches them.
        let mut batch = Vec::new();
        for body in [&b"first"[..], b"second"] {
            batch.extend_from_slice(&(body.len() as u64).to_be_bytes());
            batch.extend_from_slice(body);
        }
        client.write_all(&batch).await.unwrap();
        client.shutdown().await.unwrap();

        let mut got = Vec::new();
        for _ in 0..2 {
            let len = read.read_u64().await.unwrap() as usize;
            let mut body = vec![0; len];
            read.read_exact(&mut body).await.unwrap();
            got.push(String::from_utf8(body).unwrap());
        }
        assert_eq!(got, ["first", "second"]);
        assert_eq!(
            read.read_u8().await.unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }
}
