//! TLS on the PostgreSQL hop: rustls (ring, as tonic uses), through
//! `tokio-postgres-rustls`.
//!
//! `sslmode` and `sslrootcert` mean what they mean to libpq, so a URL that works with
//! `psql` works here:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | verified only if `sslrootcert` is given |
//! | `require` | always | verified only if `sslrootcert` is given |
//! | `verify-ca`, `verify-full` | always | always verified: chain and host name |
//!
//! * Verified means: the chain ends at a certificate from `sslrootcert=PATH` (a PEM
//!   bundle; libpq's `PGSSLROOTCERT` in the environment works too), else at one of the
//!   system's roots, and the certificate names the host in the URL. Here `verify-ca`
//!   checks the host name too (libpq's does not): stricter, never weaker.
//! * Unverified TLS (libpq's `prefer`/`require` without a root certificate) encrypts
//!   against a passive listener only: whoever answers in the server's place gets the
//!   password. Use `sslmode=verify-full&sslrootcert=…` across any network you do not
//!   control (deploy/README.md).
//! * The handshake's own signatures are always checked, by rustls with ring.
//! * Client certificates (`sslcert`, `sslkey`) are not supported; the URL's password
//!   authenticates the service.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::KitError;

/// Largest root-certificate bundle read (`sslrootcert`).
const MAX_ROOTCERT_BYTES: u64 = 4 << 20;

/// libpq's environment variable naming the root certificates.
const ROOTCERT_ENV: &str = "PGSSLROOTCERT";

/// A `--store` URL made ready for the driver: `sslrootcert` taken out (the driver
/// does not know it) and libpq's stricter `sslmode`s mapped to `require`.
#[derive(Debug)]
pub(crate) struct PreparedUrl {
    /// What the driver parses.
    pub(crate) url: String,
    /// The root certificates to verify the server against (none: the system's).
    pub(crate) rootcert: Option<PathBuf>,
    /// Whether the server's certificate is verified (see the table above).
    pub(crate) verify: bool,
}

/// Take `sslrootcert` out of a `postgres://` URL's query and map `verify-ca` and
/// `verify-full` to `require`; the key=value form passes through unchanged.
pub(crate) fn prepare(url: &str) -> PreparedUrl {
    let mut rootcert = None;
    let mut strict = false;
    let url = match url.split_once('?') {
        Some((base, query))
            if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            let mut kept = Vec::new();
            for param in query.split('&').filter(|p| !p.is_empty()) {
                match param.split_once('=') {
                    Some(("sslrootcert", v)) => rootcert = Some(PathBuf::from(percent_decode(v))),
                    Some(("sslmode", "verify-ca" | "verify-full")) => {
                        strict = true;
                        kept.push("sslmode=require".to_owned());
                    }
                    _ => kept.push(param.to_owned()),
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        _ => url.to_owned(),
    };
    let rootcert = rootcert.or_else(|| {
        std::env::var_os(ROOTCERT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let verify = strict || rootcert.is_some();
    PreparedUrl {
        url,
        rootcert,
        verify,
    }
}

/// `%XX` escapes of a URL query value (a path may carry them).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TLS connector every pool connection uses (used only when TLS is: see the
/// table above).
pub(crate) fn connector(url: &PreparedUrl) -> Result<MakeRustlsConnect, KitError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| KitError::Postgres(format!("TLS settings: {e}")))?;
    let config = if url.verify {
        builder
            .with_root_certificates(roots(url.rootcert.as_deref())?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Roots from `rootcert` (PEM), or without one the system's.
fn roots(rootcert: Option<&Path>) -> Result<RootCertStore, KitError> {
    let mut roots = RootCertStore::empty();
    match rootcert {
        Some(path) => {
            let bad = |reason: String| {
                KitError::Postgres(format!("sslrootcert {}: {reason}", path.display()))
            };
            let len = std::fs::metadata(path)
                .map_err(|e| bad(e.to_string()))?
                .len();
            if len > MAX_ROOTCERT_BYTES {
                return Err(bad(format!("{len} bytes, more than {MAX_ROOTCERT_BYTES}")));
            }
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("not a usable root certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("holds no certificate".into()));
            }
        }
        None => {
            // Unreadable entries of the system store are skipped; with no roots at all
            // a TLS connection fails with an error naming sslrootcert.
            let native = rustls_native_certs::load_native_certs();
            let _ = roots.add_parsable_certificates(native.certs);
        }
    }
    Ok(roots)
}

/// libpq's `prefer`/`require` without a root certificate: any server certificate is
/// taken, but the handshake signatures must still be valid for the key it carries.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A hint added to a connection error that came from the TLS handshake.
pub(crate) fn hint(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    (m.contains("certificate") || m.contains("tls") || m.contains("handshake")).then_some(
        "the server's certificate must chain to sslrootcert=PATH in the URL (or PGSSLROOTCERT) or to the system's roots, and name the host in the URL; sslmode=disable turns TLS off",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn rootcert_leaves_the_url_and_strict_modes_become_require() {
        let p = prepare(
            "postgres://u:pw@db:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        );
        assert_eq!(
            p.url,
            "postgres://u:pw@db:5432/x?sslmode=require&application_name=a"
        );
        assert_eq!(p.rootcert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert!(p.verify);
        let p = prepare("postgres://u@db/x?sslrootcert=/ca.pem");
        assert_eq!(p.url, "postgres://u@db/x");
        assert!(p.verify, "a root certificate means verify, as in libpq");
        let p = prepare("postgres://u@db/x?sslmode=verify-ca");
        assert_eq!(p.url, "postgres://u@db/x?sslmode=require");
        assert!(p.verify && p.rootcert.is_none());
        if std::env::var_os(ROOTCERT_ENV).is_none() {
            let p = prepare("postgres://u@db/x?sslmode=require");
            assert!(!p.verify, "libpq's require without a root certificate");
        }
        // the key=value form is the driver's own
        assert_eq!(
            prepare("host=db sslmode=require").url,
            "host=db sslmode=require"
        );
    }

    #[test]
    fn a_bad_rootcert_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let strict = |path: &Path| PreparedUrl {
            url: String::new(),
            rootcert: Some(path.to_owned()),
            verify: true,
        };
        let e = connector(&strict(&missing)).err().unwrap().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector(&strict(&empty)).err().unwrap().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn a_ca_from_veilgrid_ca_is_a_usable_root() {
        let dir = tempfile::tempdir().unwrap();
        crate::tls_ca::init(dir.path()).unwrap();
        let p = prepare(&format!(
            "postgres://u@db/x?sslrootcert={}",
            dir.path().join("ca.pem").display()
        ));
        assert!(connector(&p).is_ok());
        // the system store loads (possibly empty) without an error
        assert!(connector(&prepare("postgres://u@db/x?sslmode=verify-full")).is_ok());
    }
}
