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
//! With TLS configured ([`Tls`]), every connection is wrapped in a TLS session first: the
//! dialer's handshake runs in the dial task, the acceptor's in a task per connection (never
//! in the accept loop, and bounded by a timeout), and a refused peer never reaches
//! ractor_cluster.
//!
//! ractor_cluster's `NodeServer` always starts a listener of its own; Troupe binds it to an
//! ephemeral loopback port ([`unused_server_listener`]) where nothing connects, and accepts on
//! the configured cluster address with [`accept`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::tls::Tls;

/// Read buffer per cluster connection.
pub const READ_BUFFER: usize = 64 * 1024;

/// Where the `NodeServer`'s own (unused) listener binds: any free loopback port.
pub fn unused_server_listener() -> (u16, std::net::IpAddr) {
    (0, Ipv4Addr::LOCALHOST.into())
}

/// The bytes under a cluster connection.
enum Conn {
    Plain(TcpStream),
    Accepted(tokio_rustls::server::TlsStream<TcpStream>),
    Dialed(tokio_rustls::client::TlsStream<TcpStream>),
}

/// One cluster connection, handed to ractor_cluster.
struct PeerStream {
    conn: Conn,
    peer: SocketAddr,
    local: SocketAddr,
}

/// Sets the socket options of a cluster connection and reads its addresses.
fn prepare(stream: &TcpStream) -> std::io::Result<(SocketAddr, SocketAddr)> {
    // Mesh calls are small request/reply frames: send each batch at once.
    stream.set_nodelay(true)?;
    Ok((stream.peer_addr()?, stream.local_addr()?))
}

impl PeerStream {
    fn new(stream: TcpStream) -> std::io::Result<Self> {
        let (peer, local) = prepare(&stream)?;
        Ok(Self {
            conn: Conn::Plain(stream),
            peer,
            local,
        })
    }
}

/// The halves of a TLS stream, the read half buffered.
fn split_tls<S>(stream: S) -> (BoxRead, BoxWrite)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    (
        Box::new(BufReader::with_capacity(READ_BUFFER, read)),
        Box::new(write),
    )
}

impl ClusterBidiStream for PeerStream {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        match self.conn {
            Conn::Plain(stream) => {
                let (read, write) = stream.into_split();
                (
                    Box::new(BufReader::with_capacity(READ_BUFFER, read)),
                    Box::new(write),
                )
            }
            Conn::Accepted(stream) => split_tls(stream),
            Conn::Dialed(stream) => split_tls(stream),
        }
    }

    /// The peer's address; [`Tls`] keeps what the handshake proved under this label, and
    /// ractor_cluster reports it as the session's `peer_addr`.
    fn peer_label(&self) -> Option<String> {
        Some(self.peer.to_string())
    }

    fn local_label(&self) -> Option<String> {
        Some(self.local.to_string())
    }
}

/// Opens a session to the member `peer` at `addr` (the handshake goes on in the session
/// actor). With `tls`, the peer's certificate must name `peer`.
pub async fn dial(
    server: &ActorRef<NodeServerMessage>,
    addr: SocketAddr,
    tls: Option<&Tls>,
    peer: &str,
) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    let stream = match tls {
        None => PeerStream::new(tcp)?,
        Some(tls) => {
            let (peer_addr, local) = prepare(&tcp)?;
            let label = peer_addr.to_string();
            match tls.connect(tcp, peer, &label).await {
                Ok(stream) => PeerStream {
                    conn: Conn::Dialed(stream),
                    peer: peer_addr,
                    local,
                },
                Err(refusal) => {
                    tls.refusals().note(&format!("{peer} at {addr}"), &refusal);
                    return Err(refusal.into());
                }
            }
        }
    };
    ractor_cluster::client_connect_external(server, Box::new(stream)).await?;
    Ok(())
}

/// Accepts cluster connections on `listener` for `server` until the server stops; with
/// `tls`, each after a TLS handshake of its own task.
pub async fn accept(listener: TcpListener, server: ActorRef<NodeServerMessage>, tls: Option<Tls>) {
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
        let (peer, local) = match prepare(&stream) {
            Ok(addrs) => addrs,
            Err(e) => {
                tracing::debug!(error = %e, "cluster connection closed before its session started");
                continue;
            }
        };
        let Some(tls) = tls.clone() else {
            let stream = PeerStream {
                conn: Conn::Plain(stream),
                peer,
                local,
            };
            if !open(&server, stream) {
                return;
            }
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            match tls.accept(stream, &peer.to_string()).await {
                Ok(stream) => {
                    let stream = PeerStream {
                        conn: Conn::Accepted(stream),
                        peer,
                        local,
                    };
                    if !open(&server, stream) {
                        tls.forget(&peer.to_string());
                    }
                }
                // Inbound connections come from ephemeral ports: the peer is its IP.
                Err(refusal) => {
                    tls.refusals().note(&peer.ip().to_string(), &refusal);
                }
            }
        });
    }
}

/// Hands an accepted connection to the node server; false when the server is gone.
fn open(server: &ActorRef<NodeServerMessage>, stream: PeerStream) -> bool {
    let opened = NodeServerMessage::ConnectionOpenedExternal {
        stream: Box::new(stream),
        is_server: true,
    };
    server.cast(opened).is_ok()
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
