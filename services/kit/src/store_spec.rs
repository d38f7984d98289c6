//! `--store`: where a stateful service keeps its state.
//!
//! * none: the embedded SQLite store under the service's data directory (in memory
//!   without one);
//! * `sqlite:DIR`: the embedded store in the directory DIR, each component in its own
//!   file (`router.sqlite3`, `aggregator.sqlite3`, …), so one DIR serves a whole grid;
//! * `postgres://user:password@host:port/database` (or `postgresql://`): one shared
//!   database, each component in its own prefixed tables ([`crate::pg`]).

use std::path::PathBuf;

use crate::KitError;

/// A parsed `--store`.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreSpec {
    /// The embedded store in the service's data directory (in memory without one).
    #[default]
    Default,
    /// The embedded store in this directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL may hold a password: hidden from `Debug`).
    Postgres(String),
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::Sqlite(d) => f.debug_tuple("Sqlite").field(d).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&crate::pg::redact(url))
                .finish(),
        }
    }
}

impl StoreSpec {
    /// Parse `--store` (`None`: the default store).
    pub fn parse(spec: Option<&str>) -> Result<Self, KitError> {
        match spec {
            None => Ok(Self::Default),
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Ok(Self::Postgres(s.to_owned()))
            }
            Some(s) => match s.strip_prefix("sqlite:") {
                Some(dir) if !dir.is_empty() => Ok(Self::Sqlite(PathBuf::from(dir))),
                // Only the scheme is echoed: the rest may be a mistyped password.
                _ => Err(KitError::StoreSpec(format!(
                    "--store must be sqlite:DIR or postgres://user:password@host:port/database, got one starting {:?}",
                    s.split(':').next().unwrap_or_default()
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_do_not_echo_secrets() {
        assert_eq!(StoreSpec::parse(None).unwrap(), StoreSpec::Default);
        assert_eq!(
            StoreSpec::parse(Some("sqlite:/var/vg")).unwrap(),
            StoreSpec::Sqlite("/var/vg".into())
        );
        let pg = StoreSpec::parse(Some("postgresql://vg:s3cret@db/vg")).unwrap();
        assert!(matches!(pg, StoreSpec::Postgres(_)));
        assert!(!format!("{pg:?}").contains("s3cret"));
        for bad in ["sqlite:", "mysql://vg:s3cret@db/x", "/var/vg"] {
            let e = StoreSpec::parse(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("sqlite:DIR or postgres://"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
