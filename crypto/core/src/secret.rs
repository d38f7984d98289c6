//! Secrets that zeroize on drop and never print.

use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret value: zeroized when dropped, shown as `Secret(<redacted>)` in `Debug`.
///
/// There is deliberately no `Display`, `Clone` or `Serialize`: a secret leaves this
/// wrapper only through [`Secret::expose`], which makes every use visible in review.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wrap a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrow the secret value.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new(*b"super-secret-bytes");
        let shown = format!("{s:?}");
        assert!(!shown.contains("super"));
        assert_eq!(shown, "Secret(<redacted>)");
        assert_eq!(s.expose(), b"super-secret-bytes");
    }
}
