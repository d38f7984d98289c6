use thiserror::Error;

/// Errors of the `veilgrid` program.
#[derive(Debug, Error)]
pub enum Error {
    /// A gRPC call failed.
    #[error("{what}: {code:?}: {message}")]
    Rpc {
        /// What was being attempted.
        what: String,
        /// The gRPC code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// The router could not be reached.
    #[error(
        "cannot reach the router at {addr}: {reason} (is `veilgrid up` running? set --router or VEILGRID_ROUTER)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Verification of something a provider returned failed.
    #[error("verification failed: {0}")]
    Verify(String),
    /// A service failed to start or run.
    #[error("{0}")]
    Service(String),
    /// The command was given arguments it cannot work with.
    #[error("{0}")]
    Usage(String),
    /// Cryptographic material was malformed.
    #[error(transparent)]
    Crypto(#[from] veilgrid_core::Error),
    /// The router failed.
    #[error(transparent)]
    Router(#[from] veilgrid_router::RouterError),
    /// The service kit failed.
    #[error(transparent)]
    Kit(#[from] veilgrid_kit::KitError),
}

impl Error {
    /// Wrap a gRPC status with what was being attempted.
    pub fn rpc(what: impl Into<String>, s: tonic::Status) -> Self {
        Self::Rpc {
            what: what.into(),
            code: s.code(),
            message: s.message().to_owned(),
        }
    }

    /// The gRPC code, if this is an RPC error.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}
