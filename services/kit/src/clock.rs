//! Wall-clock time in milliseconds since the Unix epoch (the unit of every timestamp on the wire).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Time left until `deadline_ms`, or `None` if it has passed.
pub fn until(deadline_ms: u64) -> Option<Duration> {
    let now = now_ms();
    (deadline_ms > now).then(|| Duration::from_millis(deadline_ms - now))
}
