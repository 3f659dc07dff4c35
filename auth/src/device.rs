//! Device cookies (OWASP's pattern against guessing one account from many addresses): a
//! browser that has logged in as a user carries a cookie signed by the server for that
//! user, and its attempts are counted on their own; attempts without one share the
//! account's budget. The cookie holds a random nonce, its expiry and an HMAC-SHA256 over
//! both and the user name, with a key kept in the store; nothing about the user is in it.

use aws_lc_rs::hmac;

use crate::secret;

/// The cookie's name (`__Host-`: this host only, Secure, path /).
pub const DEVICE_COOKIE: &str = "__Host-perch_device";
/// How long a device stays known without logging in again, seconds.
pub const DEVICE_LIFETIME: i64 = 365 * 24 * 3600;

#[derive(Debug)]
pub(crate) struct DeviceKey(hmac::Key);

impl DeviceKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, name: &str, nonce: &str, expires: i64) -> String {
        let message = format!("device\n{}\n{nonce}\n{expires}", name.to_lowercase());
        secret::hex(hmac::sign(&self.0, message.as_bytes()).as_ref())
    }

    /// A new cookie value for `name`, good until `now` + [`DEVICE_LIFETIME`].
    pub(crate) fn issue(&self, name: &str, now: i64) -> String {
        let nonce = secret::hex(&secret::random_bytes::<16>());
        let expires = now + DEVICE_LIFETIME;
        let tag = self.tag(name, &nonce, expires);
        format!("{expires}.{nonce}.{tag}")
    }

    /// The device's nonce when `cookie` was issued for `name` and has not expired.
    pub(crate) fn verify<'a>(&self, cookie: &'a str, name: &str, now: i64) -> Option<&'a str> {
        let mut parts = cookie.splitn(3, '.');
        let (expires, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: i64 = expires.parse().ok()?;
        if expires <= now || nonce.len() != 32 {
            return None;
        }
        let want = self.tag(name, nonce, expires);
        secret::constant_time_eq(want.as_bytes(), tag.as_bytes()).then_some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_good_for_its_user_until_it_expires_and_cannot_be_forged() {
        let key = DeviceKey::new(&[7; 32]);
        let cookie = key.issue("Admin", 1_000);
        assert!(
            key.verify(&cookie, "admin", 1_001).is_some(),
            "names compare as logins do"
        );
        assert!(key.verify(&cookie, "eve", 1_001).is_none());
        assert!(
            key.verify(&cookie, "admin", 1_000 + DEVICE_LIFETIME)
                .is_none()
        );
        assert!(
            DeviceKey::new(&[8; 32])
                .verify(&cookie, "admin", 1_001)
                .is_none()
        );
        let (head, _) = cookie.rsplit_once('.').unwrap();
        assert!(key.verify(&format!("{head}.00"), "admin", 1_001).is_none());
        let later = cookie.replacen(&(1_000 + DEVICE_LIFETIME).to_string(), "9999999999", 1);
        assert!(
            key.verify(&later, "admin", 1_001).is_none(),
            "the expiry is signed"
        );
        assert!(key.verify("", "admin", 0).is_none());
    }
}
