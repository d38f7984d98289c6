//! Protocol ids: `SHA-256(name)`, the router's only routing key.

use core::fmt;
use sha2::{Digest, Sha256};

use crate::{Error, limits};

/// A protocol id: the SHA-256 of a protocol's name and version string,
/// e.g. `sha256("veilgrid/echo/v1")`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolId(pub [u8; 32]);

impl ProtocolId {
    /// The id of a protocol name such as `veilgrid/echo/v1`.
    pub fn from_name(name: &str) -> Self {
        Self(Sha256::digest(name.as_bytes()).into())
    }

    /// Parse a 32-byte id from the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        limits::fixed::<32>("protocol id", bytes).map(Self)
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of the id.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolId({})", self.to_hex())
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_id_is_sha256_of_its_name() {
        // sha256("veilgrid/echo/v1"), computed independently with `printf %s veilgrid/echo/v1 | sha256sum`.
        let id = ProtocolId::from_name("veilgrid/echo/v1");
        assert_eq!(
            id.to_hex(),
            include_str!("../tests/vectors/echo_v1_id.txt").trim()
        );
        assert_ne!(id, ProtocolId::from_name("veilgrid/echo/v2"));
        assert_eq!(ProtocolId::from_bytes(id.as_bytes()).unwrap(), id);
        assert!(ProtocolId::from_bytes(&[0u8; 31]).is_err());
    }
}
