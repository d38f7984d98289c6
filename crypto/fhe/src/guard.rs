//! Defence in depth at the boundary with untrusted bytes: our own checks come first, and any
//! panic still raised inside tfhe-rs (an internal assertion on malformed data) becomes an error
//! instead of unwinding through the caller's worker thread.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};

/// Run `f`, turning a panic into `Error::Decode { what, .. }`.
pub(crate) fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Decode {
            what,
            reason: "rejected by an internal tfhe-rs check".into(),
        })
    })
}
