//! The second factor: enrolling a TOTP secret (confirmed with a first code), checking a
//! code or a single-use recovery code, renewing the recovery codes, and taking the factor
//! away (the user with a current code, or an admin for someone else). Secrets are kept
//! sealed (see `sealed`); recovery codes only as SHA-256 hashes.

use std::net::IpAddr;

use super::model::{RECOVERY_CODES, SecondFactor, User};
use super::{AuditKind, Auth, AuthError, Principal, secret, totp};
use perch_time::unix_now;

/// What a user needs to add the secret to an authenticator app: shown once, at enrolment.
pub struct Enrolment {
    /// The secret in base32, to type.
    pub secret: String,
    /// The `otpauth://` URI, as a QR code carries it.
    pub uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment")
    }
}

/// How a code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Totp,
    /// A recovery code, with how many remain.
    Recovery {
        remaining: usize,
    },
}

/// The user signed in as `who`: a second factor is a person's, never a token's.
fn person(who: &Principal) -> Result<u64, AuthError> {
    who.user_id.ok_or_else(|| {
        AuthError::BadInput(
            "a second factor belongs to a person signed in with a password, not to a token".into(),
        )
    })
}

/// Ten new recovery codes (`xxxxx-xxxxx`, 50 random bits each) and their hashes.
fn recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = secret::random_bytes::<7>();
            let text = data_encoding::BASE32_NOPAD.encode(&raw).to_lowercase();
            let code = format!("{}-{}", &text[..5], &text[5..10]);
            let hash = secret::hex(&secret::digest(&code));
            (code, hash)
        })
        .unzip()
}

/// A typed recovery code in the form it was hashed in.
fn normalize_recovery(typed: &str) -> String {
    let plain: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if plain.len() == 10 {
        format!("{}-{}", &plain[..5], &plain[5..])
    } else {
        plain
    }
}

impl Auth {
    /// Saves `user`, audits `kind` done by `actor`, and makes both durable.
    async fn save_audited(
        &self,
        user: &User,
        kind: AuditKind,
        actor: &str,
        client: IpAddr,
        detail: &str,
    ) -> Result<(), AuthError> {
        self.store.update_user(user)?;
        self.audit(kind, actor, &user.name, &client.to_string(), detail)?;
        self.store.durable().await?;
        Ok(())
    }

    fn user_of(&self, who: &Principal) -> Result<User, AuthError> {
        let id = person(who)?;
        self.store.user(id)?.ok_or(AuthError::NotFound("user"))
    }

    /// Offers `who` a new TOTP secret; it takes effect once a code from it is confirmed.
    pub async fn begin_second_factor(&self, who: &Principal) -> Result<Enrolment, AuthError> {
        let _guard = self.users_lock.lock().await;
        let mut user = self.user_of(who)?;
        if user.second_factor.is_some() {
            return Err(AuthError::BadInput(
                "you have a second factor already; remove it first to enrol another".into(),
            ));
        }
        let secret = totp::new_secret();
        user.pending_second_factor = Some(self.seal_key.seal(&secret, user.id));
        self.store.update_user(&user)?;
        self.store.durable().await?;
        Ok(Enrolment {
            secret: totp::base32(&secret),
            uri: totp::uri("Perch", &user.name, &secret),
        })
    }

    /// Confirms the offered secret with a code from it; the second factor is on from now,
    /// and the recovery codes (shown once) are returned.
    pub async fn confirm_second_factor(
        &self,
        who: &Principal,
        code: &str,
        client: IpAddr,
    ) -> Result<Vec<String>, AuthError> {
        let _guard = self.users_lock.lock().await;
        let mut user = self.user_of(who)?;
        let secret = user
            .pending_second_factor
            .as_deref()
            .and_then(|sealed| self.seal_key.open(sealed, user.id))
            .ok_or_else(|| {
                AuthError::BadInput("start the enrolment again: no secret is waiting".into())
            })?;
        let now = unix_now();
        let step = totp::verify(&secret, code, now, None).ok_or(AuthError::InvalidCode)?;
        let (codes, hashes) = recovery_codes();
        user.second_factor = Some(SecondFactor {
            sealed_secret: self.seal_key.seal(&secret, user.id),
            last_step: Some(step),
            recovery: hashes,
            enabled_at: now,
        });
        user.pending_second_factor = None;
        self.save_audited(
            &user,
            AuditKind::SecondFactorEnabled,
            &who.actor(),
            client,
            "",
        )
        .await?;
        Ok(codes)
    }

    /// Checks a code of `user`'s second factor: a current TOTP code not used before, or an
    /// unused recovery code (which is used up). The change is durable before it returns.
    pub(crate) async fn check_second_factor(
        &self,
        user_id: u64,
        code: &str,
        client: IpAddr,
    ) -> Result<Accepted, AuthError> {
        let _guard = self.users_lock.lock().await;
        let mut user = self
            .store
            .user(user_id)?
            .ok_or(AuthError::NotFound("user"))?;
        let Some(factor) = user.second_factor.as_mut() else {
            return Err(AuthError::InvalidCode);
        };
        let secret = self
            .seal_key
            .open(&factor.sealed_secret, user_id)
            .ok_or(AuthError::InvalidCode)?;
        let accepted = if let Some(step) = totp::verify(&secret, code, unix_now(), factor.last_step)
        {
            factor.last_step = Some(step);
            Accepted::Totp
        } else {
            let hash = secret::hex(&secret::digest(&normalize_recovery(code)));
            let Some(at) = factor
                .recovery
                .iter()
                .position(|h| secret::constant_time_eq(h.as_bytes(), hash.as_bytes()))
            else {
                return Err(AuthError::InvalidCode);
            };
            factor.recovery.remove(at);
            Accepted::Recovery {
                remaining: factor.recovery.len(),
            }
        };
        self.store.update_user(&user)?;
        if let Accepted::Recovery { remaining } = accepted {
            self.audit(
                AuditKind::RecoveryCodeUsed,
                &user.name,
                &user.name,
                &client.to_string(),
                &format!("{remaining} left"),
            )?;
        }
        self.store.durable().await?;
        Ok(accepted)
    }

    /// New recovery codes for `who` (the old ones stop working), with a current code.
    pub async fn renew_recovery_codes(
        &self,
        who: &Principal,
        code: &str,
        client: IpAddr,
    ) -> Result<Vec<String>, AuthError> {
        let id = person(who)?;
        self.check_second_factor(id, code, client).await?;
        let _guard = self.users_lock.lock().await;
        let mut user = self.user_of(who)?;
        let factor = user.second_factor.as_mut().ok_or(AuthError::InvalidCode)?;
        let (codes, hashes) = recovery_codes();
        factor.recovery = hashes;
        self.save_audited(
            &user,
            AuditKind::RecoveryCodesRenewed,
            &who.actor(),
            client,
            "",
        )
        .await?;
        Ok(codes)
    }

    /// `who` removes their own second factor, with a current code.
    pub async fn remove_second_factor(
        &self,
        who: &Principal,
        code: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let id = person(who)?;
        self.check_second_factor(id, code, client).await?;
        self.clear_second_factor(who, id, AuditKind::SecondFactorDisabled, client)
            .await
    }

    /// An admin takes another user's second factor away (they enrol again); never their
    /// own, which takes a current code ([`Auth::remove_second_factor`]).
    pub async fn reset_second_factor(
        &self,
        who: &Principal,
        id: u64,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        if who.user_id == Some(id) {
            return Err(AuthError::BadInput(
                "remove your own second factor on the Two-factor page, with a current code".into(),
            ));
        }
        self.clear_second_factor(who, id, AuditKind::SecondFactorReset, client)
            .await
    }

    async fn clear_second_factor(
        &self,
        who: &Principal,
        id: u64,
        kind: AuditKind,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let _guard = self.users_lock.lock().await;
        let mut user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        if user.second_factor.is_none() && user.pending_second_factor.is_none() {
            return Err(AuthError::BadInput(
                "there is no second factor to remove".into(),
            ));
        }
        user.second_factor = None;
        user.pending_second_factor = None;
        if kind == AuditKind::SecondFactorReset {
            // Reset by an admin (a lost phone, or a stolen one): whoever is signed in as the
            // user is signed out.
            user.session_epoch += 1;
            self.store.remove_sessions_of(user.id)?;
        }
        self.save_audited(&user, kind, &who.actor(), client, "")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_read_back_however_typed() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(
            normalize_recovery(&code.to_uppercase().replace('-', " ")),
            *code
        );
        assert_eq!(hashes[0], secret::hex(&secret::digest(code)));
    }
}
