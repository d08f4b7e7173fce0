//! Mutual TLS under the ractor_cluster sessions: every cluster connection, dialed or
//! accepted, is a TLS 1.3 session (rustls with the aws-lc-rs provider) in which both ends
//! present a certificate from the cluster CA.
//!
//! What is verified:
//! - **The chain.** Both ends verify the other's certificate chain to the cluster CA (the
//!   only trust root) and its validity period; the acceptor requires a client certificate
//!   ([`WebPkiClientVerifier`]).
//! - **The name, dialing.** A node's certificate names the node: a DNS subject alternative
//!   name equal to the node name (`n1`). Node names are `[A-Za-z0-9_-]`, which is a valid
//!   DNS label unless it starts or ends with `-`, is all digits, or is 64 characters long;
//!   the node config refuses such names when TLS is on ([`dns_name`]). The dialer knows
//!   which member it dials (from gossip), so it verifies the server certificate against
//!   that name in the TLS handshake.
//! - **The name, accepting.** The acceptor learns who the peer claims to be only later, in
//!   ractor's handshake (`<name>@<incarnation>`). It keeps the client certificate of each
//!   accepted connection, keyed by the connection's label (the peer's address, which is
//!   unique among live connections), and membership asks [`Tls::verify_session`] whether
//!   that certificate names the claimed member as soon as the session authenticates; on a
//!   mismatch the session is stopped before it is ever routed to.
//!
//! Refused peers are counted in `troupe_cluster_tls_refused_total{reason}` on every attempt
//! and logged once per peer address and reason ([`Refusals`]), since a refused peer keeps
//! redialing. A handshake that does not finish within [`HANDSHAKE_TIMEOUT`] is dropped, so
//! a silent peer cannot hold a connection slot open.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::metrics::CLUSTER_TLS_REFUSED;

/// Longest time a TLS handshake may take, either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which of a node's three TLS files a load error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The cluster CA certificate(s).
    Ca,
    /// This node's certificate (chain).
    Cert,
    /// This node's private key.
    Key,
}

/// Why a node's TLS files cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// The file at fault.
    pub file: File,
    /// What is wrong with it.
    pub message: String,
}

impl LoadError {
    fn new(file: File, message: impl Into<String>) -> Self {
        Self {
            file,
            message: message.into(),
        }
    }
}

/// Why a peer was refused; the `reason` label of `troupe_cluster_tls_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its certificate does not chain to the cluster CA.
    WrongCa,
    /// Its certificate does not name the member it is (or claims to be).
    WrongName,
    /// Its certificate is outside its validity period (expired or not yet valid).
    Expired,
    /// It presented no certificate.
    NoCertificate,
    /// Its certificate is unusable otherwise (bad encoding, wrong key usage, ...).
    BadCertificate,
    /// It refused our certificate (a TLS alert from the peer).
    RefusedByPeer,
    /// It did not speak TLS (plaintext, garbage) or the handshake broke off.
    Handshake,
    /// The handshake did not finish within [`HANDSHAKE_TIMEOUT`].
    Timeout,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::WrongCa => "wrong_ca",
            Reason::WrongName => "wrong_name",
            Reason::Expired => "expired",
            Reason::NoCertificate => "no_certificate",
            Reason::BadCertificate => "bad_certificate",
            Reason::RefusedByPeer => "refused_by_peer",
            Reason::Handshake => "handshake",
            Reason::Timeout => "timeout",
        }
    }

    fn of_rustls(error: &rustls::Error) -> Reason {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(e) => match e {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => Reason::WrongCa,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => Reason::Expired,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Reason::WrongName,
                _ => Reason::BadCertificate,
            },
            E::NoCertificatesPresented => Reason::NoCertificate,
            E::AlertReceived(_) => Reason::RefusedByPeer,
            _ => Reason::Handshake,
        }
    }

    /// The reason behind an I/O error of a tokio-rustls handshake.
    fn of_io(error: &io::Error) -> Reason {
        match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(e) => Reason::of_rustls(e),
            None => Reason::Handshake,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A refused TLS peer: why, and the error behind it.
#[derive(Debug, thiserror::Error)]
#[error("tls {reason}: {detail}")]
pub struct Refusal {
    /// Why, as counted.
    pub reason: Reason,
    /// The underlying error, for the log.
    pub detail: String,
}

impl Refusal {
    fn new(reason: Reason, detail: impl fmt::Display) -> Self {
        Self {
            reason,
            detail: detail.to_string(),
        }
    }
}

/// The name a node's certificate carries: its node name as a DNS name, or why the node name
/// cannot be one (a leading or trailing `-`, all digits, or over 63 characters).
pub fn dns_name(node: &str) -> Result<ServerName<'static>, String> {
    match ServerName::try_from(node.to_owned()) {
        Ok(name @ ServerName::DnsName(_)) => Ok(name),
        _ => Err(format!(
            "node name {node:?} is not a valid DNS label, which a TLS certificate must carry \
             (no leading or trailing '-', not all digits, at most 63 characters)"
        )),
    }
}

/// Counts refused peers and logs each peer address and reason once.
#[derive(Debug, Default)]
pub struct Refusals {
    seen: Mutex<HashSet<(String, Reason)>>,
}

/// How many (peer, reason) pairs [`Refusals`] remembers before it starts over.
const SEEN_MAX: usize = 1024;

impl Refusals {
    /// Counts a refusal of `peer` and logs it the first time this peer is refused for this
    /// reason. Returns whether it was logged.
    pub fn note(&self, peer: &str, refusal: &Refusal) -> bool {
        metrics::counter!(CLUSTER_TLS_REFUSED, "reason" => refusal.reason.label()).increment(1);
        let mut seen = self.seen.lock().expect("refusals lock");
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        let first = seen.insert((peer.to_owned(), refusal.reason));
        if first {
            tracing::warn!(
                %peer,
                reason = %refusal.reason,
                detail = %refusal.detail,
                "cluster peer refused (tls); logged once per peer and reason"
            );
        }
        first
    }
}

/// A node's TLS identity and the cluster's trust: what both ends of a session use. Cheap
/// to clone.
#[derive(Clone)]
pub struct Tls {
    node: Arc<str>,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// Checks a peer certificate against a name (chain, validity and name).
    names: Arc<WebPkiServerVerifier>,
    /// What each connection's handshake proved, by connection label, until its session is
    /// checked.
    pending: Arc<Mutex<HashMap<String, Proven>>>,
    refusals: Arc<Refusals>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("node", &self.node).finish()
    }
}

/// What a connection's TLS handshake proved about the peer.
#[derive(Debug, Clone)]
enum Proven {
    /// Accepted: the client's certificate chain (which name it carries is checked once the
    /// peer says who it is).
    Client(Vec<CertificateDer<'static>>),
    /// Dialed: the server's certificate names this member.
    Server(String),
}

/// Parses every PEM certificate in `path`.
fn certs(path: &Path, file: File) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let at = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| LoadError::new(file, format!("cannot read {at}: {e}")))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::new(file, format!("cannot parse {at}: {e}")))?;
    if certs.is_empty() {
        return Err(LoadError::new(file, format!("no PEM certificate in {at}")));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Tls {
    /// Loads node `node`'s certificate and key and the cluster CA from PEM files, and
    /// checks them: each parses, the key matches the certificate, and the certificate
    /// chains to the CA, is valid now, may serve as client and server, and names `node`.
    pub fn load(node: &str, ca: &Path, cert: &Path, key: &Path) -> Result<Tls, LoadError> {
        let ca = certs(ca, File::Ca)?;
        let chain = certs(cert, File::Cert)?;
        let at = key.display();
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| LoadError::new(File::Key, format!("cannot read {at}: {e}")))?;
        Tls::new(node, ca, chain, key)
    }

    /// Like [`Tls::load`], from parsed certificates and key.
    pub fn new(
        node: &str,
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Tls, LoadError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots
                .add(cert)
                .map_err(|e| LoadError::new(File::Ca, format!("not a usable CA: {e}")))?;
        }
        let roots = Arc::new(roots);
        let signer = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| LoadError::new(File::Key, format!("unusable private key: {e}")))?;
        CertifiedKey::new(chain.clone(), signer)
            .keys_match()
            .map_err(|e| {
                LoadError::new(File::Key, format!("does not match the certificate: {e}"))
            })?;

        let names = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| LoadError::new(File::Ca, e.to_string()))?;
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| LoadError::new(File::Ca, e.to_string()))?;

        // The node's own certificate must pass what its peers will check.
        let name = dns_name(node).map_err(|e| LoadError::new(File::Cert, e))?;
        let now = UnixTime::now();
        let (end_entity, intermediates) = chain.split_first().expect("chain is not empty");
        let own = names
            .verify_server_cert(end_entity, intermediates, &name, &[], now)
            .map(|_| ())
            .and_then(|()| {
                clients
                    .verify_client_cert(end_entity, intermediates, now)
                    .map(|_| ())
            });
        if let Err(e) = own {
            let why = match Reason::of_rustls(&e) {
                Reason::WrongCa => "is not signed by the cluster CA".to_owned(),
                Reason::WrongName => format!("does not name this node ({node:?})"),
                Reason::Expired => "is expired or not yet valid".to_owned(),
                _ => format!("is not usable: {e}"),
            };
            return Err(LoadError::new(File::Cert, format!("the certificate {why}")));
        }

        let versions = &[&rustls::version::TLS13];
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| LoadError::new(File::Cert, e.to_string()))?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| LoadError::new(File::Cert, e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| LoadError::new(File::Cert, e.to_string()))?
            .with_webpki_verifier(names.clone())
            .with_client_auth_cert(chain, key)
            .map_err(|e| LoadError::new(File::Cert, e.to_string()))?;
        Ok(Tls {
            node: node.into(),
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            names,
            pending: Arc::default(),
            refusals: Arc::default(),
        })
    }

    /// The refusal log and counter.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Runs the server side of the handshake on an accepted connection; on success the
    /// client's certificate is kept under `label` for [`Tls::verify_session`].
    pub async fn accept(
        &self,
        tcp: TcpStream,
        label: &str,
    ) -> Result<server::TlsStream<TcpStream>, Refusal> {
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp))
            .await
            .map_err(|_| Refusal::new(Reason::Timeout, "no handshake within 5 s"))?
            .map_err(|e| Refusal::new(Reason::of_io(&e), e))?;
        let chain: Vec<_> = (stream.get_ref().1.peer_certificates())
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        if chain.is_empty() {
            return Err(Refusal::new(Reason::NoCertificate, "no client certificate"));
        }
        self.remember(label, Proven::Client(chain));
        Ok(stream)
    }

    /// Runs the client side of the handshake to the member named `peer`, whose certificate
    /// must name it; on success that name is kept under `label` for
    /// [`Tls::verify_session`].
    pub async fn connect(
        &self,
        tcp: TcpStream,
        peer: &str,
        label: &str,
    ) -> Result<client::TlsStream<TcpStream>, Refusal> {
        let name = dns_name(peer).map_err(|e| Refusal::new(Reason::WrongName, e))?;
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, tcp))
            .await
            .map_err(|_| Refusal::new(Reason::Timeout, "no handshake within 5 s"))?
            .map_err(|e| Refusal::new(Reason::of_io(&e), e))?;
        self.remember(label, Proven::Server(peer.to_owned()));
        Ok(stream)
    }

    fn remember(&self, label: &str, proven: Proven) {
        let mut pending = self.pending.lock().expect("pending lock");
        // Entries leave when their session is checked or closed; this bounds the ones
        // whose session never started.
        if pending.len() >= SEEN_MAX {
            pending.clear();
        }
        pending.insert(label.to_owned(), proven);
    }

    /// Whether the session on connection `label` may be the member named `claimed` (from
    /// ractor's handshake): an accepted connection's client certificate must name it, and
    /// a dialed connection must be to it. Forgets what was kept for `label`.
    pub fn verify_session(&self, label: &str, claimed: &str) -> Result<(), Refusal> {
        let proven = self.pending.lock().expect("pending lock").remove(label);
        let mismatch = |what: String| {
            Refusal::new(
                Reason::WrongName,
                format!("peer claims to be {claimed:?} but {what}"),
            )
        };
        match proven {
            None => Err(mismatch(
                "no TLS handshake is on record for its connection".into(),
            )),
            Some(Proven::Server(dialed)) if dialed == claimed => Ok(()),
            Some(Proven::Server(dialed)) => Err(mismatch(format!("{dialed:?} was dialed"))),
            Some(Proven::Client(chain)) => {
                let name = dns_name(claimed).map_err(&mismatch)?;
                let (end_entity, intermediates) = chain.split_first().expect("not empty");
                (self.names)
                    .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
                    .map(|_| ())
                    .map_err(|e| match Reason::of_rustls(&e) {
                        Reason::WrongName => mismatch("its certificate does not name it".into()),
                        reason => Refusal::new(reason, e),
                    })
            }
        }
    }

    /// Forgets what was kept for connection `label` (its session closed).
    pub fn forget(&self, label: &str) {
        self.pending.lock().expect("pending lock").remove(label);
    }
}

#[cfg(test)]
mod tests;
