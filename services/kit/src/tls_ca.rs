//! The Veilgrid CA: a private certificate authority that issues one certificate per
//! service (and per client) for mutual TLS between every gRPC hop.
//!
//! Files in the CA directory (keys created with mode 0600, never overwritten):
//!
//! | file | what |
//! |---|---|
//! | `ca.pem` | the CA certificate: the one trust anchor every party loads |
//! | `ca.key` | the CA's private key: only `veilgrid ca issue` needs it |
//! | `<name>.pem`, `<name>.key` | the certificate and key of service or client `<name>` |
//! | `<name>.lock` | only while [`ensure_issued`] issues `<name>` (processes started together issue it once) |
//!
//! A certificate's subject names who holds it: `CN=<name>`, `OU=service` or `OU=client`
//! (see [`crate::auth::Caller`]). Service certificates carry the DNS names `<name>`,
//! `localhost` and the address `127.0.0.1` (plus any extra names asked for), and may
//! be used as server and client; client certificates only as client. Keys are ECDSA
//! P-256.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use zeroize::Zeroizing;

use crate::{
    KitError,
    auth::{Caller, Role},
};

/// File name of the CA certificate in a CA (or TLS) directory.
pub const CA_CERT: &str = "ca.pem";
/// File name of the CA key.
pub const CA_KEY: &str = "ca.key";
/// Years a CA certificate is valid.
const CA_YEARS: i32 = 10;
/// Years a service or client certificate is valid.
const LEAF_YEARS: i32 = 2;

/// The certificate and key files of `name` in `dir`.
pub fn cert_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

fn cert_err(what: &'static str) -> impl Fn(rcgen::Error) -> KitError {
    move |e| KitError::Certificate {
        what,
        reason: e.to_string(),
    }
}

/// Today's date (UTC) as (year, month, day).
fn today() -> (i32, u8, u8) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// Valid from one day before today (tolerates clock skew) for `years` years.
fn validity(p: &mut CertificateParams, years: i32) {
    let (y, m, d) = today();
    // Day 28 at most, so the same day exists in every month and year.
    let d = d.clamp(2, 28);
    p.not_before = rcgen::date_time_ymd(y, m, d - 1);
    p.not_after = rcgen::date_time_ymd(y + years, m, d);
}

/// The CA's parameters. Its name includes a fingerprint of its key, so two CAs never
/// share a subject; it is rebuilt from the key when issuing (the issuer of a
/// certificate is the CA's name and key identifier, both derived from the key).
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let id = p.key_identifier(key);
    dn.push(
        DnType::CommonName,
        format!("Veilgrid CA {}", hex::encode(&id[..id.len().min(8)])),
    );
    dn.push(DnType::OrganizationName, "Veilgrid");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, CA_YEARS);
    p
}

/// Create a CA in `dir` (`ca.pem`, `ca.key`). Refuses if one exists: replacing a CA
/// silently would cut every service off from every other.
pub fn init(dir: &Path) -> Result<PathBuf, KitError> {
    let cert_path = dir.join(CA_CERT);
    if cert_path.exists() || dir.join(CA_KEY).exists() {
        return Err(KitError::Certificate {
            what: "creating the CA",
            reason: format!(
                "{} already holds a CA; remove ca.pem and ca.key to start over (every certificate must then be issued again)",
                dir.display()
            ),
        });
    }
    fs::create_dir_all(dir).map_err(|source| KitError::Io {
        what: "creating the CA directory",
        path: dir.display().to_string(),
        source,
    })?;
    let key = KeyPair::generate().map_err(cert_err("generating the CA key"))?;
    let cert = ca_params(&key)
        .self_signed(&key)
        .map_err(cert_err("signing the CA certificate"))?;
    write_secret(&dir.join(CA_KEY), key.serialize_pem().as_bytes())?;
    write_public(&cert_path, cert.pem().as_bytes())?;
    Ok(cert_path)
}

/// Create the CA in `dir` if there is none yet (used by `veilgrid up`).
pub fn ensure(dir: &Path) -> Result<(), KitError> {
    if dir.join(CA_CERT).exists() {
        return Ok(());
    }
    init(dir).map(|_| ())
}

/// What to put in an issued certificate.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Who holds it: `CN=<name>` (a DNS label: lowercase letters, digits, `-`).
    pub name: String,
    /// Service (server and client) or client only.
    pub role: Role,
    /// Extra DNS names or IP addresses a service is reached at (e.g. a Kubernetes
    /// Service name); `<name>`, `localhost` and `127.0.0.1` are always included.
    pub extra_sans: Vec<String>,
}

/// Issue a certificate for `req` signed by the CA in `dir`, written as
/// `<dir>/<name>.pem` and `<dir>/<name>.key` (0600). Returns both paths. An existing
/// certificate of that name is replaced (its key too).
pub fn issue(dir: &Path, req: &IssueRequest) -> Result<(PathBuf, PathBuf), KitError> {
    Caller::check_name(&req.name)?;
    let key_path = dir.join(CA_KEY);
    let ca_pem = Zeroizing::new(
        fs::read_to_string(&key_path).map_err(|source| KitError::Io {
            what: "reading the CA key (run `veilgrid ca init` first)",
            path: key_path.display().to_string(),
            source,
        })?,
    );
    let ca_key = KeyPair::from_pem(&ca_pem).map_err(cert_err("parsing the CA key"))?;
    let issuer = Issuer::new(ca_params(&ca_key), ca_key);

    let mut sans = Vec::new();
    if req.role == Role::Service {
        sans.push(req.name.clone());
        sans.push("localhost".to_owned());
        sans.push("127.0.0.1".to_owned());
    }
    for s in &req.extra_sans {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    let mut p = CertificateParams::new(sans).map_err(cert_err("subject alternative names"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.name.as_str());
    dn.push(DnType::OrganizationalUnitName, req.role.as_str());
    dn.push(DnType::OrganizationName, "Veilgrid");
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = match req.role {
        Role::Service => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, LEAF_YEARS);
    let key = KeyPair::generate().map_err(cert_err("generating a key"))?;
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(cert_err("signing the certificate"))?;
    let (cert_path, key_path) = cert_paths(dir, &req.name);
    let _ = fs::remove_file(&key_path);
    write_secret(&key_path, key.serialize_pem().as_bytes())?;
    write_public(&cert_path, cert.pem().as_bytes())?;
    Ok((cert_path, key_path))
}

/// Longest another process may hold a certificate's issuing lock before
/// [`ensure_issued`] gives up.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Issue `name`'s certificate unless it already exists (used by `veilgrid up`, and by
/// processes started together that each need a certificate). Processes sharing the
/// directory issue it once: the first takes `<name>.lock` (created exclusively), the
/// others wait for it to go and then find both files, so nobody loads a certificate
/// with another process's key or a half-written file.
pub fn ensure_issued(dir: &Path, name: &str, role: Role) -> Result<(), KitError> {
    let (cert, key) = cert_paths(dir, name);
    let lock = dir.join(format!("{name}.lock"));
    if cert.exists() && key.exists() && !lock.exists() {
        return Ok(());
    }
    let give_up = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {
                let r = if cert.exists() && key.exists() {
                    Ok(())
                } else {
                    issue(
                        dir,
                        &IssueRequest {
                            name: name.to_owned(),
                            role,
                            extra_sans: Vec::new(),
                        },
                    )
                    .map(|_| ())
                };
                let _ = fs::remove_file(&lock);
                return r;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::time::Instant::now() > give_up {
                    return Err(KitError::Certificate {
                        what: "issuing a certificate",
                        reason: format!(
                            "{} has been held for more than {LOCK_PATIENCE:?}; if no process is issuing {name}, remove it",
                            lock.display()
                        ),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(source) => {
                return Err(KitError::Io {
                    what: "locking the certificate to issue it",
                    path: lock.display().to_string(),
                    source,
                });
            }
        }
    }
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), KitError> {
    fs::write(path, bytes).map_err(|source| KitError::Io {
        what: "writing a certificate",
        path: path.display().to_string(),
        source,
    })
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KitError> {
    let io = |source| KitError::Io {
        what: "writing a private key",
        path: path.display().to_string(),
        source,
    };
    let mut f = open_owner_only(path).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)
}

#[cfg(unix)]
fn open_owner_only(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_owner_only(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use x509_cert::der::Decode;

    use super::*;

    #[test]
    fn processes_issuing_the_same_certificate_at_once_agree_on_one() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || ensure_issued(&d, "agg-member-0", Role::Service))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert!(!dir.path().join("agg-member-0.lock").exists());
        // the certificate is for the key next to it
        let (cert, key) = cert_paths(dir.path(), "agg-member-0");
        let der = crate::tls::first_cert_der(&fs::read(&cert).unwrap()).unwrap();
        let c = x509_cert::Certificate::from_der(&der).unwrap();
        let spki = c
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec();
        let k = KeyPair::from_pem(&fs::read_to_string(&key).unwrap()).unwrap();
        assert_eq!(spki, k.public_key_raw());
    }

    #[test]
    fn civil_date_is_plausible() {
        let (y, m, d) = today();
        assert!((2024..2200).contains(&y));
        assert!((1..=12).contains(&m));
        assert!((1..=31).contains(&d));
    }

    #[test]
    fn ca_and_service_certificate_files_with_owner_only_keys() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        assert!(
            init(dir.path()).is_err(),
            "an existing CA is never replaced"
        );
        let (cert, key) = issue(
            dir.path(),
            &IssueRequest {
                name: "echo".into(),
                role: Role::Service,
                extra_sans: vec!["echo.veilgrid.svc".into()],
            },
        )
        .unwrap();
        let pem = fs::read_to_string(&cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let der = crate::tls::first_cert_der(pem.as_bytes()).unwrap();
        let who = Caller::from_cert_der(&der).unwrap();
        assert_eq!(who, Caller::service("echo"));
        #[cfg(unix)]
        for k in [key, dir.path().join(CA_KEY)] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", k.display());
        }
        assert!(
            issue(
                dir.path(),
                &IssueRequest {
                    name: "Not A Name".into(),
                    role: Role::Client,
                    extra_sans: vec![],
                },
            )
            .is_err()
        );
    }
}
