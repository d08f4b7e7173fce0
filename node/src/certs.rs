//! `troupe certs`: a development CA and node certificates for mutual TLS between nodes
//! (rcgen, on the same aws-lc-rs provider rustls uses).
//!
//! `troupe certs --out DIR --nodes n1,n2,n3` writes `DIR/ca.pem` and `DIR/ca.key` (a new
//! CA, valid 10 years) and for every node `DIR/<node>.pem` and `DIR/<node>.key` (valid
//! `--days`, 365 by default). With `--ca DIR/ca.pem --ca-key DIR/ca.key` it signs node
//! certificates with an existing CA made by this command instead (to add a node or renew
//! its certificate). Keys are ECDSA P-256, written with mode 0600. Existing files are never
//! overwritten without `--force`.
//!
//! A node certificate names its node as a DNS subject alternative name (and common name),
//! and may serve as TLS client and server: see `troupe_actors::mesh::tls` for what peers
//! check. The CA's common name carries an id derived from its public key, so a CA can be
//! rebuilt as an issuer from its key alone (rcgen cannot read a certificate without its
//! X.509 parser, which this build leaves out).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration as Span, OffsetDateTime};
use troupe_actors::mesh::tls::{self, Tls};

use crate::cli::CertsArgs;

/// How long a CA made here is valid.
const CA_DAYS: i64 = 3650;
/// How far back a certificate's validity starts, for clocks a little behind.
const BACKDATE: Span = Span::hours(1);

/// Runs `troupe certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let validity = if args.expired {
        // For tests: a certificate that expired yesterday.
        Validity::expired()
    } else {
        Validity::days(i64::from(args.days))
    };
    let ca = match (&args.ca, &args.ca_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    let written = make(&args.out, &args.nodes, ca, validity, args.force)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// When certificates are valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    from: OffsetDateTime,
    until: OffsetDateTime,
}

impl Validity {
    /// From now (backdated an hour) for `days` days.
    pub fn days(days: i64) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            from: now - BACKDATE,
            until: now + Span::days(days),
        }
    }

    /// Expired since yesterday.
    pub fn expired() -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            from: now - Span::days(2),
            until: now - Span::days(1),
        }
    }
}

/// The parameters of the CA whose key is `key`. Its common name carries an id derived from
/// the key, so the same key always yields the same issuer name.
fn ca_params(key: &KeyPair) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let id: String = (params.key_identifier(key).iter().take(4))
        .map(|b| format!("{b:02x}"))
        .collect();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Troupe cluster CA {id}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// The certificate parameters of node `node`.
fn node_params(node: &str, validity: Validity) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(vec![node.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, node);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.from;
    params.not_after = validity.until;
    Ok(params)
}

/// Makes the certificates of `nodes` in `out`, signed by a new CA (also written) or by the
/// existing one at `ca` (certificate, key). Returns the paths written.
pub fn make(
    out: &Path,
    nodes: &[String],
    ca: Option<(&Path, &Path)>,
    validity: Validity,
    force: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    if nodes.is_empty() {
        bail!("--nodes: name at least one node");
    }
    for node in nodes {
        tls::dns_name(node).map_err(|e| anyhow::anyhow!("--nodes: {e}"))?;
    }
    let mut files: Vec<(PathBuf, String, bool)> = Vec::new();
    let (issuer, ca_certs) = match ca {
        Some((cert, key)) => {
            let key_pem = fs::read_to_string(key)
                .with_context(|| format!("--ca-key: cannot read {}", key.display()))?;
            let key = KeyPair::from_pem(&key_pem)
                .with_context(|| format!("--ca-key: cannot parse {}", key.display()))?;
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("--ca: cannot read {}: {e}", cert.display()))?;
            (Issuer::new(ca_params(&key)?, key), certs)
        }
        None => {
            let key = KeyPair::generate()?;
            let mut params = ca_params(&key)?;
            let now = OffsetDateTime::now_utc();
            params.not_before = now - BACKDATE;
            params.not_after = now + Span::days(CA_DAYS);
            let cert = params.self_signed(&key)?;
            files.push((out.join("ca.pem"), cert.pem(), false));
            files.push((out.join("ca.key"), key.serialize_pem(), true));
            (Issuer::new(params, key), vec![cert.der().clone()])
        }
    };
    for node in nodes {
        let key = KeyPair::generate()?;
        let cert = node_params(node, validity)?.signed_by(&key, &issuer)?;
        if validity.until > OffsetDateTime::now_utc() {
            // What the node checks when it starts; fails here on a CA this command did not
            // make (its issuer name differs) or a CA key that does not belong to it.
            let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
            Tls::new(node, ca_certs.clone(), vec![cert.der().clone()], key_der).map_err(|e| {
                anyhow::anyhow!(
                    "the certificate made for {node} does not pass the node's own check ({e}); \
                     --ca and --ca-key must be a CA made by `troupe certs` and its key"
                )
            })?;
        }
        files.push((out.join(format!("{node}.pem")), cert.pem(), false));
        files.push((out.join(format!("{node}.key")), key.serialize_pem(), true));
    }

    let existing: Vec<String> = (files.iter())
        .filter(|(path, _, _)| path.exists())
        .map(|(path, _, _)| path.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        bail!(
            "refusing to overwrite {} (use --force)",
            existing.join(", ")
        );
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (path, text, secret) in &files {
        write(path, text, *secret).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _, _)| path).collect())
}

/// Writes `text` to `path`; a `secret` only its owner may read (mode 0600).
fn write(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // `mode` applies to new files only.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    file.write_all(text.as_bytes())
}

/// For `troupe dev`: makes a CA and certificates for `nodes` in `dir` unless the ones there
/// already pass every node's start-up check. Returns whether it made new ones.
pub fn ensure(dir: &Path, nodes: &[String]) -> anyhow::Result<bool> {
    let ca = dir.join("ca.pem");
    let usable = nodes.iter().all(|node| {
        let (cert, key) = (
            dir.join(format!("{node}.pem")),
            dir.join(format!("{node}.key")),
        );
        Tls::load(node, &ca, &cert, &key).is_ok()
    });
    if usable {
        return Ok(false);
    }
    make(dir, nodes, None, Validity::days(365), true)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("troupe-certs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn certs_pass_the_node_check_and_keys_are_private() {
        let dir = scratch("make");
        let written = make(&dir, &names(&["n1", "n2"]), None, Validity::days(30), false).unwrap();
        assert_eq!(written.len(), 6);
        let ca = dir.join("ca.pem");
        Tls::load("n1", &ca, &dir.join("n1.pem"), &dir.join("n1.key")).unwrap();
        // n1's files do not make n2.
        let e = Tls::load("n2", &ca, &dir.join("n1.pem"), &dir.join("n1.key")).unwrap_err();
        assert!(e.message.contains("does not name this node"), "{e:?}");
        for key in ["ca.key", "n1.key", "n2.key"] {
            let mode = fs::metadata(dir.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }

        // Nothing is overwritten without --force.
        let e = make(&dir, &names(&["n1"]), None, Validity::days(30), false).unwrap_err();
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");

        // An existing CA signs a node added later.
        let added = scratch("added");
        let ca_key = dir.join("ca.key");
        make(
            &added,
            &names(&["n3"]),
            Some((&ca, &ca_key)),
            Validity::days(30),
            false,
        )
        .unwrap();
        assert!(!added.join("ca.pem").exists());
        Tls::load("n3", &ca, &added.join("n3.pem"), &added.join("n3.key")).unwrap();

        // Another CA's key does not pass for this CA.
        let other = scratch("other");
        make(&other, &names(&["x"]), None, Validity::days(30), false).unwrap();
        let e = make(
            &added,
            &names(&["n4"]),
            Some((&ca, &other.join("ca.key"))),
            Validity::days(30),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("made by `troupe certs`"), "{e}");

        // An expired certificate is refused when loaded.
        let old = scratch("old");
        make(
            &old,
            &names(&["n1"]),
            Some((&ca, &ca_key)),
            Validity::expired(),
            false,
        )
        .unwrap();
        let e = Tls::load("n1", &ca, &old.join("n1.pem"), &old.join("n1.key")).unwrap_err();
        assert!(e.message.contains("expired"), "{e:?}");
        for d in [dir, added, other, old] {
            let _ = fs::remove_dir_all(d);
        }
    }

    #[test]
    fn dev_certs_are_made_once_and_reused() {
        let dir = scratch("dev");
        assert!(ensure(&dir, &names(&["n1", "n2"])).unwrap());
        assert!(!ensure(&dir, &names(&["n1", "n2"])).unwrap());
        // A third node needs new ones.
        assert!(ensure(&dir, &names(&["n1", "n2", "n3"])).unwrap());
        let _ = fs::remove_dir_all(dir);
    }
}
