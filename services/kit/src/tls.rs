//! Transport security of every gRPC hop: plaintext (the default while TLS is opt-in)
//! or mutual TLS with certificates from the Veilgrid CA ([`crate::tls_ca`]).
//!
//! Under [`Security::Mtls`] a server accepts only clients presenting a certificate
//! signed by the Veilgrid CA, and a client accepts only servers whose certificate is
//! signed by it (and names the host it dialled, or the service name it expects).
//! URLs say which is in use: `https://` for mutual TLS, `http://` for plaintext; a
//! mismatch is an error rather than a silent downgrade (tonic would otherwise speak
//! plaintext to an `http://` URL even with TLS configured).
#![doc = include_str!("../docs/tls.md")]

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tonic::transport::{
    Certificate, ClientTlsConfig, Endpoint, Identity as TlsIdentity, ServerTlsConfig,
};
use zeroize::Zeroizing;

use crate::{KitError, auth::Caller, tls_ca};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest PEM file read (certificates and keys are a few hundred bytes).
const MAX_PEM: u64 = 64 << 10;

/// The CA certificate, and one party's certificate and key, in PEM.
pub struct Mtls {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
    who: Caller,
    /// The rustls client configuration, built on first use ([`Mtls::rustls_client_config`]).
    client: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Mtls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mtls")
            .field("who", &self.who)
            .field("key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Mtls {
    /// From PEM bytes: the CA certificate, this party's certificate and its key.
    /// Fails unless the certificate names a Veilgrid identity ([`Caller`]).
    pub fn from_pem(
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    ) -> Result<Self, KitError> {
        let key_pem = Zeroizing::new(key_pem);
        first_cert_der(&ca_pem)?;
        let who = Caller::from_cert_der(&first_cert_der(&cert_pem)?)?;
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
            who,
            client: std::sync::OnceLock::new(),
        })
    }

    /// From a TLS directory: `ca.pem`, `<name>.pem` and `<name>.key` (the layout
    /// `veilgrid ca init` / `veilgrid ca issue` write). The certificate must be
    /// issued to `name`.
    pub fn from_dir(dir: &Path, name: &str) -> Result<Self, KitError> {
        let (cert, key) = tls_ca::cert_paths(dir, name);
        let m = Self::from_files(&dir.join(tls_ca::CA_CERT), &cert, &key)?;
        if m.who.name != name {
            return Err(KitError::Certificate {
                what: "loading TLS material",
                reason: format!("{} is issued to {}, not to {name}", cert.display(), m.who),
            });
        }
        Ok(m)
    }

    /// From three files (e.g. mounted from a Kubernetes Secret).
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, KitError> {
        Self::from_pem(read_pem(ca)?, read_pem(cert)?, read_pem(key)?)
    }

    /// Who this certificate says we are.
    pub fn who(&self) -> &Caller {
        &self.who
    }

    /// A rustls client configuration for connections made without tonic
    /// ([`crate::h2_unary`]): servers must present a certificate from our CA (the
    /// name is checked per connection), we present ours, ALPN `h2`. The same
    /// checks tonic's `ClientTlsConfig` makes.
    pub fn rustls_client_config(&self) -> Result<Arc<rustls::ClientConfig>, KitError> {
        if let Some(c) = self.client.get() {
            return Ok(c.clone());
        }
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let bad = |reason: String| KitError::Certificate {
            what: "building the TLS client configuration",
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots
                .add(cert.map_err(|e| bad(format!("CA certificate: {e}")))?)
                .map_err(|e| bad(format!("CA certificate: {e}")))?;
        }
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem[..])
            .map_err(|e| bad(format!("private key: {e}")))?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let config = Arc::new(config);
        Ok(self.client.get_or_init(|| config).clone())
    }

    fn identity(&self) -> TlsIdentity {
        TlsIdentity::from_pem(&self.cert_pem, &self.key_pem[..])
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, KitError> {
    let io = |source| KitError::Io {
        what: "reading TLS material",
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_PEM {
        return Err(KitError::Certificate {
            what: "reading TLS material",
            reason: format!("{} is {len} bytes, more than {MAX_PEM}", path.display()),
        });
    }
    std::fs::read(path).map_err(io)
}

/// The DER bytes of the first certificate in `pem`.
pub fn first_cert_der(pem: &[u8]) -> Result<Vec<u8>, KitError> {
    let bad = |reason: &str| KitError::Certificate {
        what: "reading a PEM certificate",
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(pem).map_err(|_| bad("not UTF-8 text"))?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text
        .find(begin)
        .ok_or_else(|| bad("no BEGIN CERTIFICATE line"))?
        + begin.len();
    let end = text[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| bad("no END CERTIFICATE line"))?;
    let b64: String = text[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64_decode(&b64).ok_or_else(|| bad("invalid base64"))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// How a party talks on the network. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub enum Security {
    /// No TLS (`http://`): for debugging and for tests that do not exercise TLS.
    #[default]
    Plaintext,
    /// Mutual TLS (`https://`) with this party's Veilgrid certificate.
    Mtls(Arc<Mtls>),
}

impl Security {
    /// Mutual TLS with the material of `name` in TLS directory `dir`.
    pub fn mtls_from_dir(dir: &Path, name: &str) -> Result<Self, KitError> {
        Ok(Self::Mtls(Arc::new(Mtls::from_dir(dir, name)?)))
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Mtls(_))
    }

    /// `https` under TLS, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    /// The URL of a listener at `addr`.
    pub fn url(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}", self.scheme())
    }

    /// Who our certificate says we are (`None` in plaintext).
    pub fn who(&self) -> Option<&Caller> {
        match self {
            Self::Plaintext => None,
            Self::Mtls(m) => Some(m.who()),
        }
    }

    /// The same material, for another party: `name`'s certificate from the same
    /// directory (used by `veilgrid up`, which runs every service in one process).
    pub fn for_name(dir: &Path, name: &str, tls: bool) -> Result<Self, KitError> {
        if tls {
            Self::mtls_from_dir(dir, name)
        } else {
            Ok(Self::Plaintext)
        }
    }

    /// The server side: our certificate, and client certificates required and
    /// checked against the CA. `None` in plaintext.
    pub fn server_tls(&self) -> Option<ServerTlsConfig> {
        match self {
            Self::Plaintext => None,
            Self::Mtls(m) => Some(
                ServerTlsConfig::new()
                    .identity(m.identity())
                    .client_ca_root(m.ca())
                    .timeout(HANDSHAKE_TIMEOUT),
            ),
        }
    }

    /// An endpoint for `url`. Under TLS the server must present a certificate from
    /// the CA issued for `server_name` (default: the URL's host); the URL must be
    /// `https://`. In plaintext it must be `http://`.
    pub fn endpoint(&self, url: &str, server_name: Option<&str>) -> Result<Endpoint, KitError> {
        let bad = |reason: String| KitError::Transport {
            what: "setting up a connection",
            reason,
        };
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
        match self {
            Self::Plaintext => {
                if url.starts_with("https://") {
                    return Err(bad(format!(
                        "{url} asks for TLS but no TLS material was given (pass --tls-dir, or use an http:// URL for a plaintext grid)"
                    )));
                }
                Ok(endpoint)
            }
            Self::Mtls(m) => {
                if !url.starts_with("https://") {
                    return Err(bad(format!(
                        "TLS is on but {url} is not an https:// URL (use https://, or --insecure on both sides for plaintext)"
                    )));
                }
                let mut tls = ClientTlsConfig::new()
                    .ca_certificate(m.ca())
                    .identity(m.identity())
                    .timeout(HANDSHAKE_TIMEOUT);
                if let Some(n) = server_name {
                    tls = tls.domain_name(n);
                }
                endpoint
                    .tls_config(tls)
                    .map_err(|e| bad(format!("TLS settings for {url}: {e}")))
            }
        }
    }

    /// A lazily connecting channel to `url` (see [`Security::endpoint`]), whose
    /// answers cannot panic the caller ([`crate::untrusted`]).
    pub fn channel(&self, url: &str) -> Result<crate::untrusted::GrpcChannel, KitError> {
        Ok(crate::untrusted::StripStatusDetails(
            self.endpoint(url, None)?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .connect_lazy(),
        ))
    }
}

/// Where TLS material lives for a process that runs several services: one directory
/// holding `ca.pem` and each service's `<name>.pem`/`<name>.key`.
#[derive(Debug, Clone, Default)]
pub struct TlsDir(pub Option<PathBuf>);

impl TlsDir {
    /// The security of service `name`: mutual TLS with its certificate from the
    /// directory, or plaintext without a directory.
    pub fn security(&self, name: &str) -> Result<Security, KitError> {
        match &self.0 {
            Some(d) => Security::mtls_from_dir(d, name),
            None => Ok(Security::Plaintext),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
    }

    #[test]
    fn scheme_mismatch_is_an_error_not_a_downgrade() {
        let plain = Security::Plaintext;
        assert!(plain.endpoint("http://127.0.0.1:1", None).is_ok());
        let e = plain.endpoint("https://127.0.0.1:1", None).unwrap_err();
        assert!(e.to_string().contains("--tls-dir"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        tls_ca::init(dir.path()).unwrap();
        tls_ca::ensure_issued(dir.path(), "router", crate::auth::Role::Service).unwrap();
        let tls = Security::mtls_from_dir(dir.path(), "router").unwrap();
        assert_eq!(tls.who(), Some(&Caller::service("router")));
        let e = tls.endpoint("http://127.0.0.1:1", None).unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        assert!(tls.endpoint("https://127.0.0.1:1", None).is_ok());
        assert!(format!("{tls:?}").contains("<hidden>"));
        assert!(Security::mtls_from_dir(dir.path(), "echo").is_err());
    }
}
