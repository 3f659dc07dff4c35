//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 6 digits,
//! 30-second steps, what every authenticator app reads from an `otpauth://` URI. A code is
//! accepted for the current step and one step either side (clock drift), and never for a
//! step at or before the last one accepted (no replay).

use aws_lc_rs::hmac;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    crate::secret::random_bytes::<SECRET_BYTES>().to_vec()
}

/// The secret as authenticator apps take it typed: base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI of `secret` for `account` at `issuer`, as a QR code carries it.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{issuer}:{account}");
    format!(
        "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent(&label),
        base32(secret),
        percent(issuer)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The step `unix_seconds` falls in.
pub fn step_at(unix_seconds: i64) -> u64 {
    u64::try_from(unix_seconds.div_euclid(STEP_SECONDS)).unwrap_or(0)
}

/// HOTP's code for `counter`, `digits` long (RFC 4226, section 5.3).
fn hotp(secret: &[u8], counter: u64, digits: usize) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let modulus = 10u32.pow(u32::try_from(digits).unwrap_or(6));
    format!("{:0digits$}", binary % modulus)
}

/// The code for `step`.
pub fn code(secret: &[u8], step: u64) -> String {
    hotp(secret, step, DIGITS)
}

/// The step whose code `typed` is (spaces ignored), at `now` give or take one step, and
/// after `last_step`; none if it is not a current code or was used already.
pub fn verify(secret: &[u8], typed: &str, now: i64, last_step: Option<u64>) -> Option<u64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    // Every candidate is computed and compared in constant time, found or not.
    for step in [current.saturating_sub(1), current, current + 1] {
        let fresh = last_step.is_none_or(|last| step > last);
        let matches =
            crate::secret::constant_time_eq(code(secret, step).as_bytes(), typed.as_bytes());
        if matches && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1), the last 6 of the 8 digits.
    #[test]
    fn the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(hotp(secret, step_at(time), 8), eight, "at {time}");
            assert_eq!(code(secret, step_at(time)), &eight[2..]);
        }
    }

    #[test]
    fn one_step_of_drift_and_no_replay() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let step = step_at(now);
        let current = code(&secret, step);
        assert_eq!(verify(&secret, &current, now, None), Some(step));
        assert_eq!(
            verify(&secret, &current, now, Some(step)),
            None,
            "used once"
        );
        let previous = code(&secret, step - 1);
        assert_eq!(verify(&secret, &previous, now, None), Some(step - 1));
        assert_eq!(verify(&secret, &previous, now, Some(step - 1)), None);
        let next = code(&secret, step + 1);
        assert_eq!(verify(&secret, &next, now, Some(step)), Some(step + 1));
        let old = code(&secret, step - 2);
        if old != current && old != previous && old != next {
            assert_eq!(verify(&secret, &old, now, None), None, "two steps old");
        }
        let spaced = format!("{} {}", &current[..3], &current[3..]);
        assert_eq!(verify(&secret, &spaced, now, None), Some(step));
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn the_uri_an_app_reads() {
        let uri = uri("Perch", "ana@example", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Perch%3Aana%40example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Perch&algorithm=SHA1&digits=6&period=30"
        );
    }
}
