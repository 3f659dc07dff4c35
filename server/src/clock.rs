//! The wall clock, as Unix time: the one place the server reads it.

/// Seconds since the Unix epoch (UTC).
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch (UTC), as remote-write timestamps count.
pub fn unix_now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
