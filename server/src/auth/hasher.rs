//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), PHC
//! strings, computed on the blocking pool behind a semaphore the size of the core count so
//! that logins never take every thread. Unknown user names are checked against a dummy
//! hash, so they cost the same time as known ones.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

/// OWASP (2023) minimum for argon2id: m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing was interrupted")]
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::from(""),
        };
        hasher.dummy = Arc::from(hasher.hash_now("perch dummy password for unknown users")?);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &str) -> Result<String, HashError> {
        let salt = super::secret::random_bytes::<16>();
        self.argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Argon2(e.to_string()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Interrupted)?;
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || work(argon2))
            .await
            .map_err(|_| HashError::Interrupted)
    }

    /// A PHC string for `password` (already normalised by the policy).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let this = self.clone();
        self.blocking(move |_| this.hash_now(&password)).await?
    }

    /// Whether `password` matches `phc`. A malformed PHC string never matches.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.blocking(move |argon2| {
            PasswordHash::new(&phc)
                .map(|parsed| argon2.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
    }

    /// Spends the time of a verification without a user, so that "no such user" and
    /// "wrong password" cannot be told apart by timing.
    pub async fn verify_dummy(&self, password: String) -> Result<(), HashError> {
        self.verify(password, self.dummy.to_string())
            .await
            .map(|_| ())
    }

    /// True when `phc` was made with other parameters than today's (rehash on login).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_owasp_parameters() {
        let h = Hasher::new().unwrap();
        let phc = h.hash("correct horse battery staple".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            h.verify("correct horse battery staple".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !h.verify("correct horse battery stapler".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !h.verify("x".into(), "not a phc string".into())
                .await
                .unwrap()
        );
        assert!(!h.needs_rehash(&phc));
        let weaker = "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0$\
                      cXVpdGVsb25nb3V0cHV0cXVpdGVsb25nb3V0cHU";
        assert!(h.needs_rehash(weaker));
    }
}
