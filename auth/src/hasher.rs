//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), PHC
//! strings, computed on the blocking pool behind a semaphore the size of the core count so
//! that logins never take every thread. Unknown user names are checked against a dummy
//! hash, so they cost the same time as known ones.
//!
//! The 19 MiB of working memory per check are kept in a small pool (one buffer per permit)
//! rather than allocated and freed each time: besides saving the allocation, freeing such
//! blocks makes glibc raise its mmap threshold and keep later frees in per-thread arenas,
//! which grew resident memory past 500 MB under a login flood (bench/login.sh).

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// OWASP (2023) minimum for argon2id: m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing was interrupted")]
    Interrupted,
}

fn fail(e: impl std::fmt::Display) -> HashError {
    HashError::Argon2(e.to_string())
}

#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// At most this many working buffers are kept: one per permit.
    pool_size: usize,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).map_err(fail)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // A well-formed hash of nothing: checking against it costs a full argon2 run and
        // never matches (a random 256-bit output).
        let dummy = phc(
            &params,
            &super::secret::random_bytes::<SALT_LEN>(),
            &super::secret::random_bytes::<OUTPUT_LEN>(),
        )?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            pool_size: cores,
            memory: Arc::default(),
            dummy: Arc::from(dummy),
        })
    }

    /// Runs argon2 with `params` into `out`, on pooled working memory.
    fn compute(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        let blocks = params.block_count();
        let pooled = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .filter(|m| m.len() == blocks);
        let mut memory = pooled.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
            .map_err(fail);
        let mut pool = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        if blocks == self.params.block_count() && pool.len() < self.pool_size {
            pool.push(memory);
        }
        result
    }

    /// Runs `work` on the blocking pool, within the same permits as hashing: CPU-heavy
    /// password work never runs on the async workers, nor more of it at once.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        // The permit travels with the work: a client that gives up does not free its slot
        // while argon2 still runs for it.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Interrupted)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&this);
            drop(permit);
            result
        })
        .await
        .map_err(|_| HashError::Interrupted)
    }

    /// A PHC string for `password` (already normalised by the policy).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.blocking(move |h| {
            let salt = super::secret::random_bytes::<SALT_LEN>();
            let mut out = [0u8; OUTPUT_LEN];
            h.compute(
                Algorithm::Argon2id,
                Version::V0x13,
                h.params.clone(),
                password.as_bytes(),
                &salt,
                &mut out,
            )?;
            phc(&h.params, &salt, &out)
        })
        .await?
    }

    /// Whether `password` matches `phc`. A malformed PHC string never matches.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.blocking(move |h| {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(false);
            };
            let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
                return Ok(false);
            };
            let (Ok(algorithm), Ok(version), Ok(params)) = (
                Algorithm::new(parsed.algorithm.as_str()),
                Version::try_from(parsed.version.unwrap_or(0x13)),
                Params::try_from(&parsed),
            ) else {
                return Ok(false);
            };
            let mut out = vec![0u8; expected.as_bytes().len()];
            h.compute(
                algorithm,
                version,
                params,
                password.as_bytes(),
                salt,
                &mut out,
            )?;
            Ok(super::secret::constant_time_eq(&out, expected.as_bytes()))
        })
        .await?
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

fn phc(params: &Params, salt: &[u8], out: &[u8]) -> Result<String, HashError> {
    Ok(PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(fail)?,
        salt: Some(Salt::new(salt).map_err(fail)?),
        hash: Some(Output::new(out).map_err(fail)?),
    }
    .to_string())
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

    #[tokio::test]
    async fn verifies_hashes_made_by_the_argon2_crate_itself() {
        use argon2::PasswordHasher;
        let params = Params::new(4096, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"an older password hash", b"saltsaltsaltsalt")
            .unwrap()
            .to_string();
        let h = Hasher::new().unwrap();
        assert!(
            h.verify("an older password hash".into(), theirs.clone())
                .await
                .unwrap()
        );
        assert!(!h.verify("another".into(), theirs.clone()).await.unwrap());
        assert!(h.needs_rehash(&theirs));
        assert!(!h.verify("x".into(), h.dummy.to_string()).await.unwrap());
    }
}
