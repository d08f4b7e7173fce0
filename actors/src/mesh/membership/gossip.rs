//! The UDP transport under chitchat: every datagram sealed ([`super::seal`]), and quiet about
//! unreachable peers.
//!
//! [`SealedUdp`] opens a [`Sealed`] socket wrapped in [`Quiet`]. A received datagram that is
//! forged, replayed, stale or garbage is dropped before chitchat sees it, counted in
//! `troupe_gossip_rejected_total{reason}`, and logged once per source address and reason:
//! again only when that source's reason changes or after it sent an authentic datagram.
//! Receiving then goes on: chitchat stops gossiping for good when `recv` returns an error, so
//! only a broken socket does that.
//!
//! # The loopback relay
//! chitchat keeps its wire format (the envelope codec) to itself; the only code that turns an
//! envelope into bytes and back is its own [`chitchat::transport::UdpSocket`]. So [`Sealed`]
//! binds three sockets:
//! - the public socket on the gossip address: the only one other hosts talk to, and the only
//!   one that carries sealed datagrams;
//! - the codec: chitchat's `UdpSocket` on `127.0.0.1:0` (address I), which serializes what is
//!   sent and decodes what was opened;
//! - the relay: a socket on `127.0.0.1:0` (address R), connected to I, so the kernel hands it
//!   datagrams from I only.
//!
//! To send, the codec sends the envelope to R, and the relay's datagram (the exact bytes
//! chitchat would have put on the wire) is sealed and sent from the public socket. To receive,
//! a datagram from the public socket is opened, and its plaintext is sent from R to I,
//! followed by a *mark*: one of [`MARKS`] small chitchat messages made by the codec when the
//! socket opens, a different one for each forward in turn. What the codec decodes from R just
//! before a forward's mark is that forward's message, handed to chitchat with the public
//! sender's address; a mark with nothing before it means chitchat could not decode what a
//! member sealed (`garbage`; or, rarely, the message alone was lost on the loopback). The codec drops what it cannot decode (and logs it itself), so
//! the mark is what tells "undecodable" from "not decoded yet" without a timer. Loopback keeps
//! the order of datagrams between two sockets, so a mark also settles every older forward
//! still waiting: its mark was lost (only a receive buffer overrun, or a firewall rule on
//! `lo`, loses a loopback datagram), and its message is dropped as the network might have
//! dropped it. Receiving from the public socket goes on while forwards are in flight (at most
//! [`MAX_IN_FLIGHT`]), and a forward that nothing settles is given up after
//! [`RELAY_TIMEOUT`], so a lost one holds nothing up. Anything the codec receives from an
//! address other than R (another local process writing to I) is dropped and counted as
//! `forged`; a process cannot send from R, which this socket holds bound.
//!
//! # Cancellation
//! chitchat selects between `recv`, its gossip timer and its commands, so a `recv` future is
//! dropped at any of its awaits, often; `send` runs in the select's arms and is only dropped
//! with the whole gossip task. What survives a dropped future, and why it is consistent:
//! - `recv` awaits one `select!` over the codec's `recv` (a `recv_from` and then decoding,
//!   with no await in between), the oldest forward's deadline and the public socket's
//!   `recv_from`, all cancel-safe: a datagram is either left queued in the kernel or returned,
//!   and what was returned is handled before the next await. Opening (which moves the replay
//!   window), forwarding and recording the forward in `forwards` happen with no await in
//!   between (the relay's second descriptor sends without waiting), so a datagram is never
//!   accepted by the replay window without being forwarded and remembered. A message decoded
//!   before its mark arrived is kept in `decoded`. The next `recv` goes on from that state.
//! - `send` leaves at most a datagram in the relay's queue (dropped between the codec's send
//!   and the relay's read). The next `send` empties the relay first, through its second,
//!   blocking-free descriptor (not through tokio, whose readiness could miss what arrived
//!   since), and then takes only a datagram of the length the codec reports it sent. Should
//!   the relay's datagram not be there within [`SEND_RELAY_TIMEOUT`], the message is not
//!   sent (`troupe_gossip_send_failures_total{reason="relay"}`).
//!
//! # Unreachable peers
//! chitchat logs every failed send with the error's full debug form, so a node cut off from
//! its peers wrote thousands of warnings with backtraces in seconds. [`Quiet`] logs a peer that
//! turns unreachable once, and once more when it is reachable again; every failed send is
//! counted (`troupe_gossip_send_failures_total{reason}`) and the number of unreachable peers is
//! a gauge (`troupe_gossip_unreachable_peers`). chitchat's own failure detector still sees the
//! silence and marks the peer down as before.
//!
//! # Size
//! chitchat builds messages of up to 65,507 bytes, the largest IPv4 UDP payload (its own,
//! fixed limit), and the seal adds [`seal::OVERHEAD`] (41) bytes. A sealed message above the
//! UDP limit (65,507 bytes to an IPv4 peer, 65,527 to an IPv6 one) cannot be sent: it is
//! counted as `reason="too_large"` and logged once per socket. chitchat only builds a message
//! that close to its limit when what it has to send (its digest of every member, and the
//! state a peer lacks) passes about 64 KB: estimating a few hundred bytes of digest and state
//! per Troupe member, in clusters of roughly 150 members or more. There, a reply carrying a
//! large delta may be too large every time it is built, and a node that has to catch up on
//! much of the cluster may never get that part of it, until chitchat lets a transport lower
//! its limit (it is a private constant in 0.13).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use chitchat::{ChitchatEnvelope, ChitchatMessage, ProtocolVersion};
use tokio::time::{sleep_until, timeout_at, Instant};

use super::seal::{self, Reject};
use crate::metrics::{
    GOSSIP_REJECTED as REJECTED, GOSSIP_SEND_FAILURES as SEND_FAILURES,
    GOSSIP_UNREACHABLE as UNREACHABLE,
};

/// The largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD_V4: usize = 65_507;
/// The largest UDP payload over IPv6 (without jumbograms).
const MAX_UDP_PAYLOAD_V6: usize = 65_527;

/// How long a forward's mark may take to come back before it is given up as lost: far above
/// what a loopback hop takes (microseconds). Nothing waits for it; a later forward's mark
/// settles a lost one at once.
pub const RELAY_TIMEOUT: Duration = Duration::from_millis(200);
/// How long `send` waits for chitchat's bytes in the relay, when they are not there as soon as
/// the codec sent them (loopback delivers within the send): only a lost datagram takes this
/// long, and chitchat's gossip task waits meanwhile.
pub const SEND_RELAY_TIMEOUT: Duration = Duration::from_millis(25);

/// Distinct marks, so a mark left over from an earlier forward is told from the current one.
pub const MARKS: usize = 64;
/// Forwards whose mark has not come back yet, at most: far fewer than [`MARKS`], so no two of
/// them, nor a lost one's late mark, share a mark.
pub const MAX_IN_FLIGHT: usize = 16;
/// What a mark carries as its cluster id: a Syn no member sends (every member's cluster id is
/// the one its key is derived from, and has no NUL).
const MARK_PREFIX: &str = "\0troupe gossip relay mark ";

/// Sources of refused datagrams remembered for logging; beyond this (spoofed source
/// addresses), refusals are still counted but not logged.
const MAX_REFUSING: usize = 256;

/// chitchat's transport: sealed UDP, quiet about unreachable peers.
pub struct SealedUdp {
    key: seal::Key,
    rejected: Arc<Rejected>,
}

impl SealedUdp {
    /// A transport sealing with `key`.
    pub fn new(key: seal::Key) -> Self {
        Self {
            key,
            rejected: Arc::default(),
        }
    }

    /// Datagrams its sockets refused for `reason` so far.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected.get(reason)
    }
}

#[async_trait]
impl Transport for SealedUdp {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let sealed = Sealed::open(listen_addr, &self.key, self.rejected.clone()).await?;
        Ok(Box::new(Quiet::new(Box::new(sealed))))
    }
}

/// Refused datagrams by reason: the same counts as `troupe_gossip_rejected_total`, kept where
/// a test can read them.
#[derive(Default)]
pub struct Rejected([AtomicU64; Reject::ALL.len()]);

impl Rejected {
    fn add(&self, reason: Reject) {
        self.0[reason.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!(REJECTED, "reason" => reason.label()).increment(1);
    }

    /// Refused for `reason` so far.
    pub fn get(&self, reason: Reject) -> u64 {
        self.0[reason.index()].load(Ordering::Relaxed)
    }
}

/// Why [`Sealed::send`] failed, for [`Quiet`]'s count and log; any other error is the public
/// socket's (`unreachable`).
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// The sealed message exceeds the largest UDP payload to that peer.
    #[error("sealed gossip message of {0} bytes exceeds the UDP limit")]
    TooLarge(usize),
    /// The loopback hop through chitchat's codec failed or timed out.
    #[error("gossip loopback relay failed: {0}")]
    Relay(String),
}

impl SendFailure {
    /// The `reason` label of `troupe_gossip_send_failures_total`.
    pub fn label(&self) -> &'static str {
        match self {
            SendFailure::TooLarge(_) => "too_large",
            SendFailure::Relay(_) => "relay",
        }
    }
}

/// A datagram opened and forwarded to the codec, whose mark has not come back yet.
struct Forward {
    /// The public sender.
    from: SocketAddr,
    /// Its sealed length.
    len: usize,
    /// The mark sent after it.
    mark: usize,
    /// When to give it up as lost on the loopback.
    deadline: Instant,
}

/// A UDP socket that seals what chitchat sends and lets through only what opens (see the
/// module documentation for its three sockets).
pub struct Sealed {
    public: tokio::net::UdpSocket,
    /// chitchat's own socket (I): it serializes and decodes.
    codec: UdpSocket,
    /// The relay (R), connected to I.
    relay: tokio::net::UdpSocket,
    relay_addr: SocketAddr,
    /// The relay through a second descriptor: reads and writes that never wait, done by the
    /// kernel right away rather than after tokio has seen the socket ready.
    relay_now: std::net::UdpSocket,
    /// Each mark's serialized form.
    marks: Box<[Box<[u8]>]>,
    next_mark: usize,
    /// Forwards in flight, oldest first.
    forwards: VecDeque<Forward>,
    /// The last message the codec decoded from the relay since the last mark.
    decoded: Option<ChitchatEnvelope>,
    sealer: seal::Sealer,
    opener: seal::Opener,
    out: Vec<u8>,
    buf: Box<[u8]>,
    rejected: Arc<Rejected>,
    /// Sources whose last datagram was refused, and why.
    refusing: HashMap<SocketAddr, Reject>,
    /// Whether "too many sources" was logged since `refusing` was last below its bound.
    refusing_full: bool,
}

fn mark_envelope(mark: usize) -> ChitchatEnvelope {
    ChitchatEnvelope {
        version: ProtocolVersion::V0,
        message: ChitchatMessage::Syn {
            cluster_id: format!("{MARK_PREFIX}{mark}"),
            digest: Default::default(),
        },
    }
}

/// The mark `envelope` is, if it is one.
fn mark_of(envelope: &ChitchatEnvelope) -> Option<usize> {
    match &envelope.message {
        ChitchatMessage::Syn { cluster_id, .. } => {
            cluster_id.strip_prefix(MARK_PREFIX)?.parse().ok()
        }
        _ => None,
    }
}

impl Sealed {
    /// Binds `listen_addr`, and the codec and relay on loopback.
    pub async fn open(
        listen_addr: SocketAddr,
        key: &seal::Key,
        rejected: Arc<Rejected>,
    ) -> anyhow::Result<Self> {
        let public = tokio::net::UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("failed to bind to {listen_addr}/UDP for gossip"))?;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let codec = UdpSocket::open(loopback)
            .await
            .context("gossip codec socket on loopback")?;
        let codec_addr = codec.local_addr()?;
        let relay = std::net::UdpSocket::bind(loopback)
            .and_then(|relay| {
                relay.connect(codec_addr)?;
                relay.set_nonblocking(true)?;
                Ok(relay)
            })
            .context("gossip relay socket on loopback")?;
        let relay_now = relay.try_clone().context("gossip relay socket")?;
        let relay_addr = relay.local_addr()?;
        let mut sealed = Self {
            public,
            codec,
            relay: tokio::net::UdpSocket::from_std(relay)?,
            relay_addr,
            relay_now,
            marks: Box::default(),
            next_mark: 0,
            forwards: VecDeque::new(),
            decoded: None,
            sealer: seal::Sealer::new(key),
            opener: seal::Opener::new(key.clone(), seal::MAX_SENDERS),
            out: Vec::with_capacity(MAX_UDP_PAYLOAD_V6),
            // Room for the largest datagram over IPv6 too, so nothing is silently truncated.
            buf: vec![0; u16::MAX as usize].into_boxed_slice(),
            rejected,
            refusing: HashMap::new(),
            refusing_full: false,
        };
        let mut marks = Vec::with_capacity(MARKS);
        for mark in 0..MARKS {
            let len = sealed
                .serialize(mark_envelope(mark))
                .await
                .context("gossip relay marks")?;
            marks.push(sealed.buf[..len].into());
        }
        sealed.marks = marks.into();
        Ok(sealed)
    }

    /// Has the codec serialize `envelope` into the relay, and reads it into `buf`: its length.
    async fn serialize(&mut self, envelope: ChitchatEnvelope) -> Result<usize, SendFailure> {
        let relay_failed = |error: &dyn std::fmt::Display| SendFailure::Relay(error.to_string());
        // Whatever an interrupted send left in the relay.
        while self.relay_now.recv(&mut self.buf).is_ok() {}
        let sent = self
            .codec
            .send(self.relay_addr, envelope)
            .await
            .map_err(|error| relay_failed(&error))?
            .num_bytes_sent;
        // Loopback delivers within the codec's send, so the datagram is usually there already.
        match self.relay_now.recv(&mut self.buf) {
            Ok(len) if len == sent => return Ok(len),
            _ => {}
        }
        let deadline = Instant::now() + SEND_RELAY_TIMEOUT;
        loop {
            match timeout_at(deadline, self.relay.recv(&mut self.buf)).await {
                Ok(Ok(len)) if len == sent => return Ok(len),
                // Left over from an earlier send.
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => return Err(relay_failed(&error)),
                Err(elapsed) => return Err(relay_failed(&elapsed)),
            }
        }
    }

    fn refused(&mut self, from: SocketAddr, reason: Reject) {
        self.rejected.add(reason);
        if self.refusing.get(&from) == Some(&reason) {
            return;
        }
        if self.refusing.len() >= MAX_REFUSING && !self.refusing.contains_key(&from) {
            if !self.refusing_full {
                self.refusing_full = true;
                tracing::warn!(
                    sources = self.refusing.len(),
                    "gossip refused from many sources; further ones are counted, not logged"
                );
            }
            return;
        }
        self.refusing.insert(from, reason);
        tracing::warn!(peer = %from, reason = reason.label(), "gossip datagram refused");
    }

    fn accepted(&mut self, from: SocketAddr) {
        if !self.refusing.is_empty() && self.refusing.remove(&from).is_some() {
            self.refusing_full = false;
            tracing::info!(peer = %from, "gossip datagram accepted again");
        }
    }

    /// Opens the `len` bytes just received from `from` and forwards them to the codec, with a
    /// mark after them; no await, so no cancellation, between the two.
    fn open_and_forward(&mut self, from: SocketAddr, len: usize) {
        let plain = match self.opener.open(&mut self.buf[..len], SystemTime::now()) {
            Ok(plain) => plain,
            Err(reason) => return self.refused(from, reason),
        };
        let mark = self.next_mark;
        let forwarded = self
            .relay_now
            .send(plain)
            .and_then(|_| self.relay_now.send(&self.marks[mark]));
        match forwarded {
            Ok(_) => {
                self.next_mark = (mark + 1) % MARKS;
                self.forwards.push_back(Forward {
                    from,
                    len,
                    mark,
                    deadline: Instant::now() + RELAY_TIMEOUT,
                });
            }
            Err(error) => {
                // Authentic, but lost on the way to the codec: as if the network dropped it.
                tracing::debug!(%error, peer = %from, "gossip datagram not forwarded to the codec");
            }
        }
    }

    /// Takes what the codec decoded: the message for chitchat once a forward's mark says
    /// what came before it was that forward's.
    fn on_decoded(&mut self, decoded: RecvOutcome) -> Option<RecvOutcome> {
        if decoded.from_addr != self.relay_addr {
            // Another local process writing to the codec.
            self.refused(decoded.from_addr, Reject::Forged);
            return None;
        }
        let Some(mark) = mark_of(&decoded.envelope) else {
            // A forwarded message; the mark after it says whose.
            self.decoded = Some(decoded.envelope);
            return None;
        };
        let Some(position) = self.forwards.iter().position(|f| f.mark == mark) else {
            // The mark of a forward given up as lost: what came before it was that one's.
            self.decoded = None;
            return None;
        };
        // Forwards before it lost their mark on the loopback (and their message with it, or
        // their message was the one decoded before a later one overwrote it).
        for lost in self.forwards.drain(..position) {
            tracing::debug!(peer = %lost.from, "gossip datagram lost on the loopback relay");
        }
        let Forward { from, len, .. } = self.forwards.pop_front().expect("found above");
        match self.decoded.take() {
            Some(envelope) => {
                self.accepted(from);
                Some(RecvOutcome {
                    from_addr: from,
                    envelope,
                    num_bytes_received: len,
                })
            }
            // Authentic, but not chitchat: a peer of another version of the wire format.
            None => {
                self.refused(from, Reject::Garbage);
                None
            }
        }
    }

    /// Gives up the oldest forward, its deadline passed: lost on the loopback.
    fn give_up_oldest(&mut self) {
        if let Some(lost) = self.forwards.pop_front() {
            tracing::debug!(peer = %lost.from, "gossip datagram lost on the loopback relay");
        }
        if self.forwards.is_empty() {
            self.decoded = None;
        }
    }
}

/// Receive errors that say nothing about the socket (chitchat's own list).
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

#[async_trait]
impl Socket for Sealed {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.public
            .local_addr()
            .context("failed to get gossip socket address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let len = self.serialize(envelope).await?;
        self.sealer
            .seal(&self.buf[..len], SystemTime::now(), &mut self.out);
        let limit = if to.is_ipv4() {
            MAX_UDP_PAYLOAD_V4
        } else {
            MAX_UDP_PAYLOAD_V6
        };
        if self.out.len() > limit {
            return Err(SendFailure::TooLarge(self.out.len()).into());
        }
        let num_bytes_sent = self
            .public
            .send_to(&self.out, to)
            .await
            .context("failed to send gossip datagram")?;
        Ok(SendOutcome { num_bytes_sent })
    }

    /// Cancellable, as chitchat needs (see the module documentation).
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            let oldest = self.forwards.front().map(|f| f.deadline);
            tokio::select! {
                biased;
                decoded = self.codec.recv(), if oldest.is_some() => {
                    let decoded = decoded.context("gossip codec socket failed")?;
                    if let Some(received) = self.on_decoded(decoded) {
                        return Ok(received);
                    }
                }
                () = sleep_until(oldest.unwrap_or_else(Instant::now)), if oldest.is_some() => {
                    self.give_up_oldest();
                }
                received = self.public.recv_from(&mut self.buf),
                    if self.forwards.len() < MAX_IN_FLIGHT =>
                {
                    match received {
                        Ok((len, from)) => self.open_and_forward(from, len),
                        Err(error) if is_transient(&error) => {
                            tracing::debug!(%error, "transient gossip receive error");
                        }
                        Err(error) => return Err(error).context("gossip socket failed"),
                    }
                }
            }
        }
    }
}

/// A socket that answers a failed send to one peer as sent, after noting it.
pub struct Quiet {
    inner: Box<dyn Socket>,
    unreachable: HashSet<SocketAddr>,
    /// Whether a message too large to seal was logged (once per socket).
    too_large_logged: bool,
    /// Whether the loopback relay is failing (logged when it starts and when it stops).
    relay_failing: bool,
}

impl Quiet {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Socket>) -> Self {
        Self {
            inner,
            unreachable: HashSet::new(),
            too_large_logged: false,
            relay_failing: false,
        }
    }

    /// Peers whose last send failed.
    pub fn unreachable(&self) -> &HashSet<SocketAddr> {
        &self.unreachable
    }

    fn sent(&mut self, to: SocketAddr) {
        if self.relay_failing {
            self.relay_failing = false;
            tracing::info!("gossip loopback relay works again");
        }
        if self.unreachable.remove(&to) {
            tracing::info!(peer = %to, "gossip peer reachable again");
            metrics::gauge!(UNREACHABLE).set(self.unreachable.len() as f64);
        }
    }

    fn failed(&mut self, to: SocketAddr, error: &anyhow::Error) {
        let failure = error.downcast_ref::<SendFailure>();
        let reason = failure.map_or("unreachable", SendFailure::label);
        metrics::counter!(SEND_FAILURES, "reason" => reason).increment(1);
        match failure {
            Some(SendFailure::TooLarge(bytes)) => {
                if !self.too_large_logged {
                    self.too_large_logged = true;
                    tracing::warn!(
                        peer = %to,
                        bytes,
                        "gossip message too large for one sealed UDP datagram, not sent; \
                         further ones are counted, not logged"
                    );
                }
            }
            Some(SendFailure::Relay(_)) => {
                if !self.relay_failing {
                    self.relay_failing = true;
                    tracing::warn!(error = %error, "gossip loopback relay failing");
                }
            }
            None => {
                if self.unreachable.insert(to) {
                    tracing::warn!(peer = %to, error = %error, "gossip peer unreachable");
                    metrics::gauge!(UNREACHABLE).set(self.unreachable.len() as f64);
                }
            }
        }
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
                self.sent(to);
                Ok(sent)
            }
            Err(error) => {
                self.failed(to, &error);
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

    /// A Syn whose cluster id is `cluster_id`: another message than [`envelope`], of any size.
    fn syn(cluster_id: String) -> ChitchatEnvelope {
        ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::Syn {
                cluster_id,
                digest: Default::default(),
            },
        }
    }

    /// The bytes chitchat puts on the wire for `envelope`, unsealed: its own socket sends
    /// them to a listener.
    async fn plain_bytes(envelope: ChitchatEnvelope) -> Vec<u8> {
        let here: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut chitchat = UdpSocket::open(here).await.unwrap();
        let listener = tokio::net::UdpSocket::bind(here).await.unwrap();
        chitchat
            .send(listener.local_addr().unwrap(), envelope)
            .await
            .unwrap();
        let mut buf = vec![0; 65_536];
        let len = listener.recv(&mut buf).await.unwrap();
        buf.truncate(len);
        buf
    }

    async fn pair(key: &seal::Key) -> (Sealed, Sealed, Arc<Rejected>) {
        let here: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let rejected = Arc::new(Rejected::default());
        let receiver = Sealed::open(here, key, rejected.clone()).await.unwrap();
        let sender = Sealed::open(here, key, Arc::default()).await.unwrap();
        (receiver, sender, rejected)
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

    #[tokio::test]
    async fn what_is_sent_is_chitchats_bytes_sealed() {
        let key = seal::Key::derive("cookie", "blue");
        let (receiver, mut sender, _) = pair(&key).await;
        let listener = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let message = syn("blue".into());
        let sent = sender
            .send(listener.local_addr().unwrap(), syn("blue".into()))
            .await
            .unwrap();
        let mut buf = vec![0; 65_536];
        let (len, from) = listener.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (len, from),
            (sent.num_bytes_sent, sender.local_addr().unwrap())
        );
        let mut opener = seal::Opener::new(key, 4);
        let plain = opener.open(&mut buf[..len], SystemTime::now()).unwrap();
        assert_eq!(plain, plain_bytes(message).await);
        drop(receiver);
    }

    #[tokio::test]
    async fn refused_datagrams_are_dropped_counted_and_remembered_until_the_source_recovers() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut sender, rejected) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        let from = sender.local_addr().unwrap();

        // Junk from the sender's own address, then an authentic datagram.
        for junk in [&b"junk"[..], &[seal::VERSION; 100]] {
            sender.public.send_to(junk, to).await.unwrap();
        }
        sender.send(to, envelope()).await.unwrap();
        let received = receiver.recv().await.expect("recv goes on past refusals");
        assert_eq!(received.from_addr, from);
        assert_eq!(received.envelope, envelope());
        assert_eq!(rejected.get(Reject::Garbage), 1);
        assert_eq!(rejected.get(Reject::Forged), 1);
        // The authentic datagram cleared the source's refusal: the next one is logged anew.
        assert!(receiver.refusing.is_empty());

        sender.public.send_to(b"junk", to).await.unwrap();
        sender.send(to, envelope()).await.unwrap();
        receiver.recv().await.unwrap();
        assert_eq!(rejected.get(Reject::Garbage), 2);
    }

    #[tokio::test]
    async fn an_authentic_datagram_chitchat_cannot_decode_is_garbage_at_once() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut sender, rejected) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        // Sealed with the cluster key, but not a chitchat message.
        let mut sealed = Vec::new();
        seal::Sealer::new(&key).seal(b"not chitchat", SystemTime::now(), &mut sealed);
        sender.public.send_to(&sealed, to).await.unwrap();
        sender.send(to, envelope()).await.unwrap();

        // The mark after it tells the relay at once; no wait for a timeout.
        let started = Instant::now();
        let received = receiver.recv().await.unwrap();
        assert!(started.elapsed() < RELAY_TIMEOUT, "{:?}", started.elapsed());
        assert_eq!(received.envelope, envelope());
        assert_eq!(received.from_addr, sender.local_addr().unwrap());
        assert_eq!(rejected.get(Reject::Garbage), 1);
        assert_eq!(rejected.get(Reject::Forged), 0);
    }

    #[tokio::test]
    async fn a_datagram_written_straight_to_the_codec_is_not_received() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut sender, rejected) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        let codec = receiver.codec.local_addr().unwrap();
        // A local process skips the seal: chitchat's bytes straight into the codec, before
        // and after the authentic datagram is forwarded.
        let injected = plain_bytes(syn("blue".into())).await;
        let intruder = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        intruder.send_to(&injected, codec).await.unwrap();
        sender.send(to, envelope()).await.unwrap();
        let received = receiver.recv().await.unwrap();
        assert_eq!(received.envelope, envelope());
        assert_eq!(received.from_addr, sender.local_addr().unwrap());
        assert_eq!(rejected.get(Reject::Forged), 1);

        intruder.send_to(&injected, codec).await.unwrap();
        sender.send(to, envelope()).await.unwrap();
        let received = receiver.recv().await.unwrap();
        assert_eq!(received.envelope, envelope());
        assert_eq!(rejected.get(Reject::Forged), 2);
        // Nothing the intruder wrote is left to be received.
        let nothing = tokio::time::timeout(RELAY_TIMEOUT, receiver.recv()).await;
        assert!(nothing.is_err(), "{nothing:?}");
        assert_eq!(rejected.get(Reject::Garbage), 0);
    }

    #[tokio::test]
    async fn recv_cancelled_at_any_await_loses_and_confuses_nothing() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut one, rejected) = pair(&key).await;
        let (_, mut other, _) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        let (mut expected, mut received) = (Vec::new(), Vec::new());
        for i in 0..21 {
            let sender = if i % 2 == 0 { &mut other } else { &mut one };
            sender.send(to, syn(format!("m{i}"))).await.unwrap();
            expected.push((sender.local_addr().unwrap(), syn(format!("m{i}"))));
            // What a `recv` dropped by chitchat's select leaves: a datagram forwarded to the
            // codec (dropped while awaiting the codec), and then also its message decoded
            // (dropped while awaiting the mark), or nothing (dropped at the public socket).
            if i % 3 != 0 {
                let (len, from) = receiver.public.recv_from(&mut receiver.buf).await.unwrap();
                receiver.open_and_forward(from, len);
                if i % 3 == 2 {
                    let decoded = receiver.codec.recv().await.unwrap();
                    assert!(receiver.on_decoded(decoded).is_none());
                    assert!(receiver.decoded.is_some());
                }
            }
            let outcome = receiver.recv().await.unwrap();
            received.push((outcome.from_addr, outcome.envelope));
        }
        assert_eq!(received, expected);
        assert_eq!(Reject::ALL.map(|r| rejected.get(r)), [0; 4]);

        // And dropped wherever a timer lands, as the messages trickle in.
        let sending = tokio::spawn(async move {
            for i in 0..20 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                one.send(to, syn(format!("t{i}"))).await.unwrap();
            }
            one
        });
        let mut received = Vec::new();
        while received.len() < 20 {
            if let Ok(outcome) =
                tokio::time::timeout(Duration::from_micros(1), receiver.recv()).await
            {
                received.push(outcome.unwrap().envelope);
            }
        }
        sending.await.unwrap();
        let expected: Vec<_> = (0..20).map(|i| syn(format!("t{i}"))).collect();
        assert_eq!(received, expected);
        assert_eq!(Reject::ALL.map(|r| rejected.get(r)), [0; 4]);
    }

    #[tokio::test]
    async fn a_forward_lost_on_the_loopback_holds_nothing_up() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut sender, rejected) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        // A forward whose message and mark the loopback dropped.
        let lost_from: SocketAddr = "198.18.0.9:7101".parse().unwrap();
        receiver.forwards.push_back(Forward {
            from: lost_from,
            len: 100,
            mark: receiver.next_mark,
            deadline: Instant::now() + RELAY_TIMEOUT,
        });
        receiver.next_mark += 1;

        let started = Instant::now();
        for i in 0..3 {
            sender.send(to, syn(format!("m{i}"))).await.unwrap();
            let received = receiver.recv().await.unwrap();
            assert_eq!(received.envelope, syn(format!("m{i}")));
            assert_eq!(received.from_addr, sender.local_addr().unwrap());
        }
        // The next forward's mark settled the lost one, without waiting for its deadline.
        assert!(started.elapsed() < RELAY_TIMEOUT, "{:?}", started.elapsed());
        assert!(receiver.forwards.is_empty());
        assert_eq!(Reject::ALL.map(|r| rejected.get(r)), [0; 4]);
    }

    #[tokio::test]
    async fn a_forward_lost_alone_is_given_up_at_its_deadline() {
        let key = seal::Key::derive("cookie", "blue");
        let (mut receiver, mut sender, rejected) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        receiver.forwards.push_back(Forward {
            from: "198.18.0.9:7101".parse().unwrap(),
            len: 100,
            mark: receiver.next_mark,
            deadline: Instant::now() + RELAY_TIMEOUT,
        });
        receiver.next_mark += 1;
        let nothing = tokio::time::timeout(RELAY_TIMEOUT * 2, receiver.recv()).await;
        assert!(nothing.is_err(), "{nothing:?}");
        assert!(receiver.forwards.is_empty());
        sender.send(to, envelope()).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap().envelope, envelope());
        assert_eq!(Reject::ALL.map(|r| rejected.get(r)), [0; 4]);
    }

    #[tokio::test]
    async fn a_message_too_large_once_sealed_is_counted_not_sent() {
        let key = seal::Key::derive("cookie", "blue");
        let (receiver, sender, _) = pair(&key).await;
        let to = receiver.local_addr().unwrap();
        let mut socket = Quiet::new(Box::new(sender));
        // Fits one datagram as chitchat's bytes, not with the seal's 41 more.
        let huge = syn("x".repeat(MAX_UDP_PAYLOAD_V4 - 30));
        assert!(
            plain_bytes(syn("x".repeat(MAX_UDP_PAYLOAD_V4 - 30)))
                .await
                .len()
                <= MAX_UDP_PAYLOAD_V4
        );
        let outcome = socket.send(to, huge).await.unwrap();
        assert_eq!(outcome.num_bytes_sent, 0);
        assert!(socket.too_large_logged);
        // Not the peer's fault: it is not noted unreachable, and the next message goes out.
        assert!(socket.unreachable().is_empty());
        assert!(socket.send(to, envelope()).await.unwrap().num_bytes_sent > 0);
    }
}
