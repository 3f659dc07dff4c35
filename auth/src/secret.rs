//! Random secrets and their stored form: sessions, tokens and the setup code are kept only
//! as SHA-256 hashes, so a copy of the database does not log anyone in.

/// `n` random bytes from the operating system's generator (via aws-lc).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc's generator only fails if the OS gives no randomness at all; nothing secure
    // can be done then.
    aws_lc_rs::rand::fill(&mut out).expect("the operating system's random generator failed");
    out
}

/// Lower-case hex, the text form of digests and random secrets.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// SHA-256 of `secret`, the key under which it is stored.
pub fn digest(secret: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equality that takes the same time wherever the first difference is (aws-lc's
/// comparison; only the lengths are compared in variable time).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A new CSRF token (a session's, or the double-submit one of the forms before login): 128
/// random bits, hex.
pub fn csrf_token() -> String {
    hex(&random_bytes::<16>())
}

/// A new session id: 256 random bits, hex.
pub fn session_id() -> String {
    hex(&random_bytes::<32>())
}

/// The prefixes that tell the kinds of bearer token apart (an API token's is `perch_`
/// followed by hex, so it never starts with the others).
pub const NODE_TOKEN_PREFIX: &str = "perch_node_";
pub const ENROLL_TOKEN_PREFIX: &str = "perch_enroll_";

/// A recognisable prefix and 256 random bits, hex.
fn prefixed(prefix: &str) -> String {
    format!("{prefix}{}", hex(&random_bytes::<32>()))
}

/// A new API token.
pub fn api_token() -> String {
    prefixed("perch_")
}

/// A new node token (it writes one node's metrics).
pub fn node_token() -> String {
    prefixed(NODE_TOKEN_PREFIX)
}

/// A new enrollment token (it enrolls one machine, once).
pub fn enroll_token() -> String {
    prefixed(ENROLL_TOKEN_PREFIX)
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A setup code: 130 random bits as 26 Crockford base32 characters, in groups of five for
/// typing (`7QH2M-...`).
pub fn setup_code() -> String {
    let bytes = random_bytes::<17>();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut chars = Vec::with_capacity(26);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 5 && chars.len() < 26 {
            nbits -= 5;
            chars.push(CROCKFORD[((bits >> nbits) & 31) as usize]);
        }
    }
    chars
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of a typed setup code: upper case, no separators, and the letters
/// people confuse with digits mapped as Crockford's base32 does.
pub fn normalize_setup_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_codes_are_long_grouped_and_forgiving() {
        let code = setup_code();
        assert_eq!(code.len(), 26 + 5);
        assert_eq!(code.split('-').count(), 6);
        assert_ne!(code, setup_code());
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(normalize_setup_code(&typed), normalize_setup_code(&code));
        assert_eq!(normalize_setup_code("ol-IL"), "0111");
    }

    #[test]
    fn secrets() {
        assert_eq!(session_id().len(), 64);
        assert!(api_token().starts_with("perch_"));
        for token in [api_token(), node_token(), enroll_token()] {
            assert_eq!(token.len() - token.rfind('_').unwrap(), 65, "{token}");
        }
        assert!(!api_token().starts_with(NODE_TOKEN_PREFIX));
        assert!(!api_token().starts_with(ENROLL_TOKEN_PREFIX));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
