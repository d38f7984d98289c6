//! Size limits applied before any decode of untrusted bytes.

use crate::Error;

/// Refuse `len` if it is over `max`, naming `what` in the error.
pub fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::TooLarge {
            what,
            actual: len,
            limit: max,
        });
    }
    Ok(())
}

/// Read exactly `N` bytes as an array, or fail naming `what`.
pub fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Malformed {
        what,
        reason: format!("expected {N} bytes, got {}", bytes.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_limit_is_refused_and_named() {
        assert!(check_len("payload", 10, 10).is_ok());
        let err = check_len("payload", 11, 10).unwrap_err();
        assert_eq!(
            err,
            Error::TooLarge {
                what: "payload",
                actual: 11,
                limit: 10
            }
        );
        assert!(err.to_string().contains("payload"));
    }

    #[test]
    fn fixed_checks_length() {
        assert_eq!(fixed::<2>("id", &[1, 2]).unwrap(), [1, 2]);
        assert!(fixed::<2>("id", &[1, 2, 3]).is_err());
        assert!(fixed::<2>("id", &[]).is_err());
    }
}
