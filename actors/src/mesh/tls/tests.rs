//! The verifier pieces on loopback: what a node's own files must pass, and what a peer is
//! refused for (another CA, another name, an expired certificate, plaintext).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::PrivatePkcs8KeyDer;
use time::{Duration as Span, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A test CA.
struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap().der().clone();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A node certificate naming `node`, valid from `from` to `until` days from now.
    fn node(&self, node: &str, from: i64, until: i64) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![node.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, node);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now + Span::days(from);
        params.not_after = now + Span::days(until);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    fn valid(&self, node: &str) -> Identity {
        self.node(node, -1, 365)
    }
}

struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The node's [`Tls`], trusting `ca`.
    fn tls(&self, node: &str, ca: &Ca) -> Result<Tls, LoadError> {
        Tls::new(
            node,
            vec![ca.cert.clone()],
            self.chain.clone(),
            self.key.clone_key(),
        )
    }
}

#[test]
fn node_names_must_be_dns_labels() {
    for good in ["n1", "node_a", "a-b", "N7", &"x".repeat(63)] {
        assert!(dns_name(good).is_ok(), "{good}");
    }
    for bad in ["-n1", "n1-", "123", &"x".repeat(64)] {
        assert!(dns_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_nodes_own_files_are_checked_at_load() {
    let ca = Ca::new("cluster");
    let other = Ca::new("other");
    assert!(ca.valid("n1").tls("n1", &ca).is_ok());

    let error = |result: Result<Tls, LoadError>| result.map(|_| ()).unwrap_err();
    let wrong_name = error(ca.valid("n2").tls("n1", &ca));
    assert_eq!(wrong_name.file, File::Cert);
    assert!(
        wrong_name.message.contains("does not name this node"),
        "{wrong_name:?}"
    );

    let foreign = error(other.valid("n1").tls("n1", &ca));
    assert_eq!(foreign.file, File::Cert);
    assert!(
        foreign.message.contains("not signed by the cluster CA"),
        "{foreign:?}"
    );

    let expired = error(ca.node("n1", -30, -1).tls("n1", &ca));
    assert!(expired.message.contains("expired"), "{expired:?}");

    let mut mismatched = ca.valid("n1");
    mismatched.key = ca.valid("n1").key;
    let mismatch = error(mismatched.tls("n1", &ca));
    assert_eq!(mismatch.file, File::Key);
    assert!(mismatch.message.contains("does not match"), "{mismatch:?}");
}

#[test]
fn missing_and_garbage_files_name_the_file() {
    let dir = std::env::temp_dir().join(format!("troupe-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let missing = dir.join("missing.pem");
    let e = Tls::load("n1", &missing, &garbage, &garbage)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.file, File::Ca);
    assert!(e.message.contains("cannot read"), "{e:?}");
    let e = Tls::load("n1", &garbage, &garbage, &garbage)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        (e.file, e.message.contains("no PEM certificate")),
        (File::Ca, true)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs one handshake: `server`'s acceptor against `client` dialing the name `dialed`.
async fn handshake(
    server: &Tls,
    client: &Tls,
    dialed: &str,
) -> (Result<String, Refusal>, Result<(), Refusal>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = async {
        let (tcp, peer) = listener.accept().await.unwrap();
        let label = peer.to_string();
        let mut stream = server.accept(tcp, &label).await?;
        // Prove the session carries data both ways.
        let mut byte = [0];
        let _ = stream.read_exact(&mut byte).await;
        let _ = stream.write_all(&byte).await;
        Ok(label)
    };
    let dialing = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut stream = client.connect(tcp, dialed, &addr.to_string()).await?;
        // TLS 1.3: a client learns that the server refused its certificate on its first
        // read.
        let refused = |e: io::Error| Refusal::new(Reason::of_io(&e), e);
        stream.write_all(b"x").await.map_err(refused)?;
        let mut byte = [0];
        stream.read_exact(&mut byte).await.map_err(refused)?;
        assert_eq!(&byte, b"x");
        Ok(())
    };
    tokio::join!(accepting, dialing)
}

#[tokio::test]
async fn members_of_one_ca_connect_and_their_names_are_checked() {
    let ca = Ca::new("cluster");
    let n1 = ca.valid("n1").tls("n1", &ca).unwrap();
    let n2 = ca.valid("n2").tls("n2", &ca).unwrap();
    let (accepted, dialed) = handshake(&n1, &n2, "n1").await;
    dialed.unwrap();
    let label = accepted.unwrap();
    // n2 presented n2's certificate: claiming n2 passes, and the record is used up.
    assert!(n1.verify_session(&label, "n2").is_ok());
    assert!(n1.verify_session(&label, "n2").is_err());

    // The same certificate while claiming to be n3 is refused.
    let (accepted, _) = handshake(&n1, &n2, "n1").await;
    let refusal = n1.verify_session(&accepted.unwrap(), "n3").unwrap_err();
    assert_eq!(refusal.reason, Reason::WrongName);
    assert!(refusal.detail.contains("\"n3\""), "{refusal:?}");

    // A connection with no handshake on record is refused.
    assert!(n1.verify_session("127.0.0.1:1", "n2").is_err());
}

#[tokio::test]
async fn the_dialer_refuses_a_server_that_is_not_the_member_it_dialed() {
    let ca = Ca::new("cluster");
    let n1 = ca.valid("n1").tls("n1", &ca).unwrap();
    let n2 = ca.valid("n2").tls("n2", &ca).unwrap();
    let (_, dialed) = handshake(&n1, &n2, "n3").await;
    assert_eq!(dialed.unwrap_err().reason, Reason::WrongName);
}

#[tokio::test]
async fn a_peer_from_another_ca_is_refused() {
    let ca = Ca::new("cluster");
    let other = Ca::new("other");
    let n1 = ca.valid("n1").tls("n1", &ca).unwrap();
    // An intruder trusting both CAs (so it gets as far as presenting its certificate).
    let intruder = other.valid("n9");
    let intruder = Tls::new(
        "n9",
        vec![other.cert.clone(), ca.cert.clone()],
        intruder.chain,
        intruder.key,
    )
    .unwrap();
    let (accepted, dialed) = handshake(&n1, &intruder, "n1").await;
    assert_eq!(accepted.unwrap_err().reason, Reason::WrongCa);
    assert_eq!(dialed.unwrap_err().reason, Reason::RefusedByPeer);
    // Dialing the intruder: its certificate is from another CA.
    let (_, dialed) = handshake(&intruder, &n1, "n9").await;
    assert_eq!(dialed.unwrap_err().reason, Reason::WrongCa);
}

#[tokio::test]
async fn an_expired_peer_certificate_is_refused() {
    let ca = Ca::new("cluster");
    let n1 = ca.valid("n1").tls("n1", &ca).unwrap();
    // Built by hand: `Tls::new` refuses an expired certificate of its own.
    let old = ca.node("n2", -30, -1);
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(RootCertStore {
            roots: vec![webpki_anchor(&ca.cert)],
        })
        .with_client_auth_cert(old.chain, old.key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dial = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut s = TlsConnector::from(Arc::new(config))
            .connect(dns_name("n1").unwrap(), tcp)
            .await
            .unwrap();
        // TLS 1.3: the client learns of the refusal on its first read.
        let _ = s.read(&mut [0]).await;
    };
    let accept = async {
        let (tcp, peer) = listener.accept().await.unwrap();
        n1.accept(tcp, &peer.to_string()).await.map(|_| ())
    };
    let (_, accepted) = tokio::join!(dial, accept);
    assert_eq!(accepted.unwrap_err().reason, Reason::Expired);
}

fn webpki_anchor(ca: &CertificateDer<'static>) -> rustls::pki_types::TrustAnchor<'static> {
    let mut store = RootCertStore::empty();
    store.add(ca.clone()).unwrap();
    store.roots.remove(0)
}

#[tokio::test]
async fn plaintext_to_a_tls_port_is_refused() {
    let ca = Ca::new("cluster");
    let n1 = ca.valid("n1").tls("n1", &ca).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dial = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // A ractor frame: 8-byte length, then the body.
        tcp.write_all(&[0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5])
            .await
            .unwrap();
        let _ = tcp.read(&mut [0; 64]).await;
    };
    let accept = async {
        let (tcp, peer) = listener.accept().await.unwrap();
        n1.accept(tcp, &peer.to_string()).await.map(|_| ())
    };
    let (_, accepted) = tokio::join!(dial, accept);
    assert_eq!(accepted.unwrap_err().reason, Reason::Handshake);
}

#[test]
fn a_refused_peer_is_logged_once_per_reason() {
    let refusals = Refusals::default();
    let wrong_ca = Refusal::new(Reason::WrongCa, "unknown issuer");
    assert!(refusals.note("127.0.0.9", &wrong_ca));
    assert!(!refusals.note("127.0.0.9", &wrong_ca));
    assert!(refusals.note("127.0.0.9", &Refusal::new(Reason::Expired, "expired")));
    assert!(refusals.note("127.0.0.10", &wrong_ca));
}
