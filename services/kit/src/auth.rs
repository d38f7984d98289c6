//! Who is calling: identities from Veilgrid certificates, and how the router tells a
//! provider on whose behalf it calls.
//!
//! * The router learns a caller's identity from the client certificate of the mutual
//!   TLS connection ([`peer`]): `CN=<name>`, `OU=service|client`, signed by the
//!   Veilgrid CA.
//! * When it forwards a completion it adds the caller as request metadata
//!   ([`CALLER_HEADER`], see [`forward`]). A provider believes that header **only**
//!   when the connection it arrived on is mutual TLS with the router's own certificate
//!   (`CN=router`, `OU=service`); from anyone else the header is ignored and the caller
//!   is the peer itself ([`resolve`]). In plaintext nobody is identified (`None`).
//! * Services record what belongs to whom in [`crate::auth_owners::Owners`] and check
//!   it on every read, cancel or overwrite.

use std::fmt;

use tonic::{Request, Status, metadata::MetadataValue};
use x509_cert::{Certificate, der::Decode, spki::ObjectIdentifier};

use crate::KitError;

/// The request metadata a router uses to name the caller it forwards for.
pub const CALLER_HEADER: &str = "x-veilgrid-caller";
/// The service name of the router's certificate: the only peer whose
/// [`CALLER_HEADER`] a provider believes.
pub const ROUTER: &str = "router";
/// Longest identity name (a DNS label).
pub const MAX_NAME: usize = 63;

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A service: the router, a provider, a matching node, a committee member. May
    /// serve and call.
    Service,
    /// A caller of the router (an institution, an agent, a CLI user).
    Client,
}

impl Role {
    /// `service` or `client` (the certificate's `OU`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Client => "client",
        }
    }
}

/// An authenticated identity: `service:<name>` or `client:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// Service or client.
    pub role: Role,
    /// The certificate's common name.
    pub name: String,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.role.as_str(), self.name)
    }
}

fn cert_err(reason: impl Into<String>) -> KitError {
    KitError::Certificate {
        what: "reading a peer certificate",
        reason: reason.into(),
    }
}

impl Caller {
    /// The service `name`.
    pub fn service(name: &str) -> Self {
        Self {
            role: Role::Service,
            name: name.to_owned(),
        }
    }

    /// The client `name`.
    pub fn client(name: &str) -> Self {
        Self {
            role: Role::Client,
            name: name.to_owned(),
        }
    }

    /// Whether this is the router's certificate.
    pub fn is_router(&self) -> bool {
        self.role == Role::Service && self.name == ROUTER
    }

    /// A name must be a DNS label (1 to 63 of `a-z`, `0-9`, `-`, not starting or
    /// ending with `-`): it is also a service's DNS name in its certificate.
    pub fn check_name(name: &str) -> Result<(), KitError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(KitError::Certificate {
                what: "naming an identity",
                reason: format!(
                    "{name:?} is not a valid name: use 1 to {MAX_NAME} lowercase letters, digits and '-'"
                ),
            })
        }
    }

    /// Parse `service:<name>` / `client:<name>`.
    pub fn parse(s: &str) -> Result<Self, KitError> {
        let (role, name) = s
            .split_once(':')
            .ok_or_else(|| cert_err(format!("{s:?} is not role:name")))?;
        let role = match role {
            "service" => Role::Service,
            "client" => Role::Client,
            _ => return Err(cert_err(format!("unknown role {role:?}"))),
        };
        Self::check_name(name)?;
        Ok(Self {
            role,
            name: name.to_owned(),
        })
    }

    /// The identity a Veilgrid certificate (DER) names: its `CN` and `OU`. The
    /// certificate's signature is not checked here: TLS did that (only certificates
    /// chaining to the Veilgrid CA get through the handshake).
    pub fn from_cert_der(der: &[u8]) -> Result<Self, KitError> {
        if der.len() > 64 << 10 {
            return Err(cert_err("certificate larger than 64 KiB"));
        }
        let cert =
            Certificate::from_der(der).map_err(|e| cert_err(format!("not X.509 DER: {e}")))?;
        let mut cn = None;
        let mut ou = None;
        for rdn in &cert.tbs_certificate.subject.0 {
            for atv in rdn.0.iter() {
                let text = || {
                    std::str::from_utf8(atv.value.value())
                        .ok()
                        .map(str::to_owned)
                };
                if atv.oid == OID_CN {
                    cn = text();
                } else if atv.oid == OID_OU {
                    ou = text();
                }
            }
        }
        let name = cn.ok_or_else(|| cert_err("no common name"))?;
        let role = match ou.as_deref() {
            Some("service") => Role::Service,
            Some("client") => Role::Client,
            other => {
                return Err(cert_err(format!(
                    "organizational unit {other:?} is neither service nor client: not a Veilgrid certificate"
                )));
            }
        };
        Self::check_name(&name)?;
        Ok(Self { role, name })
    }
}

/// The identity of the peer of `req`'s connection, from its client certificate;
/// `None` when the connection is not TLS.
pub fn peer<T>(req: &Request<T>) -> Result<Option<Caller>, Status> {
    let Some(certs) = req.peer_certs() else {
        return Ok(None);
    };
    let first = certs.first().ok_or_else(|| {
        Status::unauthenticated("a client certificate from the Veilgrid CA is required")
    })?;
    Caller::from_cert_der(first.as_ref())
        .map(Some)
        .map_err(|e| Status::unauthenticated(e.to_string()))
}

/// Name `caller` in a request the router forwards (removes any header otherwise).
pub fn forward<T>(req: &mut Request<T>, caller: Option<&Caller>) {
    let md = req.metadata_mut();
    md.remove(CALLER_HEADER);
    if let Some(c) = caller
        && let Ok(v) = MetadataValue::try_from(c.to_string())
    {
        md.insert(CALLER_HEADER, v);
    }
}

/// The caller of a request to a provider: the identity the router names in
/// [`CALLER_HEADER`] when the peer is the router (over mutual TLS), else the peer
/// itself. `None` in plaintext (the header is never believed without TLS).
pub fn resolve<T>(req: &Request<T>) -> Result<Option<Caller>, Status> {
    let Some(peer) = peer(req)? else {
        return Ok(None);
    };
    if !peer.is_router() {
        return Ok(Some(peer));
    }
    match req.metadata().get(CALLER_HEADER) {
        None => Ok(Some(peer)),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Status::invalid_argument(format!("{CALLER_HEADER} is not text")))?;
            Caller::parse(s)
                .map(Some)
                .map_err(|e| Status::invalid_argument(format!("{CALLER_HEADER}: {e}")))
        }
    }
}

/// Allow a call only from the service `name` when this party runs mutual TLS (`tls`):
/// the connection's peer (from [`peer`]) must be `CN=<name>`, `OU=service` (for links
/// between services that know each other, e.g. the matching nodes, where the peer
/// claims a party and must hold that party's certificate). In plaintext every peer
/// passes and the caller relies on what else it checks (signatures); under TLS a
/// connection without a client certificate is refused.
pub fn require_service(peer: Option<&Caller>, tls: bool, name: &str) -> Result<(), Status> {
    match peer {
        None if !tls => Ok(()),
        None => Err(Status::unauthenticated(format!(
            "only {name} may call this, with its certificate from the Veilgrid CA"
        ))),
        Some(c) if c.role == Role::Service && c.name == name => Ok(()),
        Some(c) => Err(Status::permission_denied(format!(
            "{c} is not service:{name}: a peer must present the certificate of the identity it claims"
        ))),
    }
}

/// The caller, or `UNAUTHENTICATED` when there is none (for operations that need one).
pub fn require(caller: Option<&Caller>) -> Result<&Caller, Status> {
    caller.ok_or_else(|| {
        Status::unauthenticated(
            "this operation needs an authenticated caller: connect with a client certificate from the Veilgrid CA",
        )
    })
}

/// Whether `caller` may register (renew, release) the lease of a provider named
/// `name` whose id is currently leased under the name `holder` (if any). In
/// plaintext (`caller` is `None`) only the registration's Ed25519 signature protects
/// it. Under mutual TLS the caller must be a service whose certificate carries that
/// very name, and a provider id leased under one name cannot be taken over by
/// another certificate, even one holding the provider's signing key.
pub fn check_registrant(
    caller: Option<&Caller>,
    name: &str,
    holder: Option<&str>,
) -> Result<(), Status> {
    let Some(c) = caller else {
        return Ok(());
    };
    if c.role != Role::Service {
        return Err(Status::permission_denied(format!(
            "{c} is a client certificate: only services register providers"
        )));
    }
    if c.name != name {
        return Err(Status::permission_denied(format!(
            "the certificate of {c} cannot register or manage a provider named {name:?}: a provider's name must be its certificate's name"
        )));
    }
    if let Some(h) = holder
        && h != c.name
    {
        return Err(Status::permission_denied(format!(
            "this provider id is leased to service {h:?}; {c} cannot take it over"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing() {
        assert!(Caller::check_name("agg-member-0").is_ok());
        for bad in ["", "-a", "a-", "A", "a b", "a/b", &"x".repeat(64)] {
            assert!(Caller::check_name(bad).is_err(), "{bad:?}");
        }
        let c = Caller::parse("client:alice").unwrap();
        assert_eq!(c, Caller::client("alice"));
        assert_eq!(c.to_string(), "client:alice");
        assert!(Caller::parse("admin:alice").is_err());
        assert!(Caller::parse("alice").is_err());
        assert!(Caller::service(ROUTER).is_router());
        assert!(!Caller::client(ROUTER).is_router());
    }

    #[test]
    fn header_is_ignored_without_tls() {
        let mut req = Request::new(());
        forward(&mut req, Some(&Caller::client("mallory")));
        assert!(req.metadata().get(CALLER_HEADER).is_some());
        // No TLS connection: nobody is identified, whatever the header says.
        assert_eq!(resolve(&req).unwrap(), None);
        forward(&mut req, None);
        assert!(req.metadata().get(CALLER_HEADER).is_none());
    }

    #[test]
    fn a_required_service_needs_its_certificate_under_tls() {
        // plaintext: nobody is identified, the caller relies on other checks
        require_service(None, false, "matcher-1").unwrap();
        // TLS but no peer certificate on the connection: refused
        let e = require_service(None, true, "matcher-1").unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        require_service(Some(&Caller::service("matcher-1")), true, "matcher-1").unwrap();
        for c in [Caller::service("matcher-2"), Caller::client("matcher-1")] {
            let e = require_service(Some(&c), true, "matcher-1").unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{c}");
        }
    }

    #[test]
    fn registrants_must_hold_the_name() {
        let echo = Caller::service("echo");
        check_registrant(None, "anything", Some("echo")).unwrap();
        check_registrant(Some(&echo), "echo", None).unwrap();
        check_registrant(Some(&echo), "echo", Some("echo")).unwrap();
        for (c, name, holder) in [
            (Caller::service("mallory"), "echo", None),
            (Caller::service("mallory"), "mallory", Some("echo")),
            (Caller::client("echo"), "echo", None),
        ] {
            let e = check_registrant(Some(&c), name, holder).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{c} {name}");
        }
    }

    #[test]
    fn garbage_certificates_are_errors() {
        assert!(Caller::from_cert_der(b"not a certificate").is_err());
        assert!(Caller::from_cert_der(&[]).is_err());
    }
}
