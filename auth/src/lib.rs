//! Authentication and user management for Perch: the setup code, logins with throttling,
//! sessions, API tokens, roles, enrolled nodes and their tokens, the password policy and the
//! audit trail, kept in sled. Every change a caller is told succeeded is durable first. It
//! knows nothing of HTTP: what an error means on the wire is the server's to decide.
#![forbid(unsafe_code)]

mod device;
mod error;
mod hasher;
mod model;
mod node_repo;
mod nodes;
mod password;
mod repo;
mod sealed;
mod second_factor;
mod secret;
mod store;
#[cfg(test)]
mod tests;
mod throttle;
pub mod totp;
mod verified;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use device::{DEVICE_COOKIE, DEVICE_LIFETIME};
pub use error::AuthError;
use hasher::Hasher;
pub use model::{ApiToken, AuditEvent, AuditKind, Node, Role};
use model::{PASSWORD_HISTORY, Session, User};
pub use nodes::{ENROLL_TOKEN_DEFAULT, EnrollRequest};
pub use password::DEFAULT_MIN_LEN as PASSWORD_MIN_LEN_DEFAULT;
pub use password::Policy;
use perch_time::unix_now;
use repo::InsertUser;
pub use sealed::KEY_FILE as SECOND_FACTOR_KEY_FILE;
pub use second_factor::Enrolment;
pub use secret::{constant_time_eq, csrf_token};
use store::IdKind;
pub use store::{Exported, ImportError, Imported, Store, StoreError};
use throttle::{Throttle, Verdict};

/// Counts failed logins by reason (`bad_password`, `unknown_user`, `bad_setup_code`,
/// `throttled`, ...), for the server's metrics.
pub struct LoginFailures(Box<dyn Fn(&'static str) + Send + Sync>);

impl LoginFailures {
    pub fn new(count: impl Fn(&'static str) + Send + Sync + 'static) -> Self {
        Self(Box::new(count))
    }

    fn count(&self, reason: &'static str) {
        (self.0)(reason);
    }
}

impl std::fmt::Debug for LoginFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginFailures")
    }
}

/// How long the setup code stays valid.
const SETUP_CODE_LIFETIME: i64 = 24 * 3600;
/// `last_seen` and `last_used` are written at most this often.
const TOUCH_EVERY: i64 = 60;
/// How long the half-signed-in state between the password and the code lasts, seconds.
const SECOND_STEP_LIFETIME: i64 = 5 * 60;
const SETUP_KEY: &str = "setup_code";

/// Settings for sessions and passwords.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub data_dir: PathBuf,
    pub session_idle: Duration,
    pub session_lifetime: Duration,
    pub password_min_len: usize,
    pub password_max_age: Option<Duration>,
    /// Who must have a second factor.
    pub require_second_factor: SecondFactorPolicy,
}

/// Who must sign in with a second factor (`--require-2fa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorPolicy {
    Off,
    Admins,
    Everyone,
}

impl SecondFactorPolicy {
    fn requires(self, role: Role) -> bool {
        match self {
            Self::Off => false,
            Self::Admins => role == Role::Admin,
            Self::Everyone => true,
        }
    }
}

/// What a signed-in person may do yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Everything their role allows.
    Open,
    /// Their password was right; only the second step (a code) is open.
    SecondFactor,
    /// They must set up a second factor before anything else.
    EnrolSecondFactor,
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Sessions only: how far the sign-in has come.
    pub gate: Gate,
    pub user_id: Option<u64>,
    pub name: String,
    pub role: Role,
    pub must_change_password: bool,
    pub via: Via,
    /// A signed-in user's time zone for the pages (IANA name); none: UTC.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session {
        key: [u8; 32],
        csrf: String,
    },
    /// An API token, by its id.
    Token {
        id: u64,
    },
    /// A node token: the machine itself, not a user.
    Node {
        node_id: u64,
        /// When the engine last accepted a write from it (unix seconds).
        last_push: Option<i64>,
    },
    /// An enrollment token: it can enroll one machine and nothing else.
    Enroll {
        key: [u8; 32],
    },
}

impl Principal {
    /// How the audit trail names this principal.
    pub fn actor(&self) -> String {
        match self.via {
            Via::Session { .. } | Via::Enroll { .. } => self.name.clone(),
            Via::Token { .. } => format!("token:{}", self.name),
            Via::Node { .. } => format!("node:{}", self.name),
        }
    }

    /// The API token this principal came with, if it did: what it makes carries the lineage.
    pub fn token_id(&self) -> Option<u64> {
        match self.via {
            Via::Token { id } => Some(id),
            _ => None,
        }
    }

    /// A person: signed in with a session or an API token (not a node or enrollment token).
    pub fn is_user(&self) -> bool {
        matches!(self.via, Via::Session { .. } | Via::Token { .. })
    }
}

/// A login attempt the throttle let through.
#[derive(Debug, Clone, Copy)]
struct Attempt<'a> {
    name: &'a str,
    client: IpAddr,
    /// The nonce of a valid device cookie for `name`.
    device: Option<&'a str>,
    starts_throttle: bool,
    now: i64,
}

/// A session just created: the cookie value (shown to the client once) and its CSRF token.
/// `Debug` shows neither.
#[derive(Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf: String,
    pub must_change_password: bool,
    /// The password was right; the session opens only the second step until a code is
    /// given ([`Auth::complete_second_factor`]).
    pub second_factor_required: bool,
    /// Signed in with a recovery code: how many the user has left.
    pub recovery_codes_left: Option<usize>,
    /// A new device cookie for this browser ([`DEVICE_COOKIE`]), when it had no valid one.
    pub device: Option<String>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SetupRecord {
    digest: String,
    created_at: i64,
}

/// A user as the API shows it: no hashes.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub must_change_password: bool,
    /// Whether the user has a second factor.
    pub second_factor: bool,
    /// With a second factor: its unused recovery codes.
    pub recovery_codes_left: Option<usize>,
    pub password_changed_at: i64,
    pub created_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            name: u.name.clone(),
            role: u.role,
            must_change_password: u.must_change_password,
            second_factor: u.second_factor.is_some(),
            recovery_codes_left: u.second_factor.as_ref().map(|f| f.recovery.len()),
            password_changed_at: u.password_changed_at,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug)]
pub struct Auth {
    store: Store,
    hasher: Hasher,
    policy: Policy,
    throttle: Throttle,
    config: AuthConfig,
    /// Serialises changes to users, so "the last admin" and "setup done" are decided once.
    users_lock: tokio::sync::Mutex<()>,
    login_failures: LoginFailures,
    /// API and node tokens verified lately.
    verified: verified::Verified,
    /// Signs device cookies.
    device_key: device::DeviceKey,
    /// Seals the second factor's secrets at rest.
    seal_key: sealed::SealKey,
}

fn check_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(AuthError::BadInput(
            "a user name has 1 to 64 ASCII letters, digits, '.', '_', '-' or '@' (no look-alike characters)".into(),
        ))
    }
}

/// The key that signs device cookies, made once and kept in the store.
fn device_key(store: &Store) -> Result<device::DeviceKey, StoreError> {
    const KEY: &str = "device_cookie_key";
    let secret = match store.meta_get(KEY)? {
        Some(secret) if secret.len() == 32 => secret,
        _ => {
            let secret = secret::random_bytes::<32>().to_vec();
            store.meta_put(KEY, &secret)?;
            secret
        }
    };
    Ok(device::DeviceKey::new(&secret))
}

impl Auth {
    pub fn new(
        store: Store,
        config: AuthConfig,
        login_failures: LoginFailures,
    ) -> Result<Self, String> {
        let device_key = device_key(&store).map_err(|e| format!("the device cookie key: {e}"))?;
        let sealed_exist = store
            .users()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|u| u.second_factor.is_some() || u.pending_second_factor.is_some());
        let seal_key = sealed::SealKey::load(&config.data_dir.join("perch"), !sealed_exist)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            device_key,
            seal_key,
            policy: Policy::new(config.password_min_len)
                .map_err(|e| format!("the password policy: {e}"))?,
            hasher: Hasher::new().map_err(|e| e.to_string())?,
            store,
            throttle: Throttle::default(),
            config,
            users_lock: tokio::sync::Mutex::new(()),
            login_failures,
            verified: verified::Verified::default(),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Why the user store is unavailable (its file system is full, read-only or failing),
    /// if it is.
    pub fn store_fault(&self) -> Option<String> {
        self.store.fault()
    }

    /// Notes an error a request met: a store error caused by the file system marks the
    /// store unavailable until [`Auth::recover_store`] succeeds.
    pub fn note_error(&self, e: &AuthError) {
        if let AuthError::Store(e) = e {
            self.store.failed(e);
        }
    }

    /// Reopens an unavailable store once its file system takes writes again; true when it
    /// is available. The verified-token cache is emptied, as after any change.
    pub async fn recover_store(&self) -> bool {
        let recovered = self.store.recover().await;
        if recovered {
            self.store.auth_changed();
        }
        recovered
    }

    pub fn needs_setup(&self) -> Result<bool, AuthError> {
        Ok(!self.store.has_users()?)
    }

    fn setup_code_path(&self) -> PathBuf {
        self.config.data_dir.join("setup-code")
    }

    /// At start, while no user exists: a fresh one-time setup code, stored hashed and
    /// written to `<data>/setup-code` (mode 0600). Returns the code to announce once.
    pub async fn prepare_setup(&self) -> Result<Option<String>, AuthError> {
        if !self.needs_setup()? {
            let _ = std::fs::remove_file(self.setup_code_path());
            return Ok(None);
        }
        let code = secret::setup_code();
        let record = SetupRecord {
            digest: secret::hex(&secret::digest(&secret::normalize_setup_code(&code))),
            created_at: unix_now(),
        };
        self.store
            .meta_put(SETUP_KEY, &serde_json::to_vec(&record).unwrap_or_default())?;
        self.store.durable().await?;
        write_private(&self.setup_code_path(), format!("{code}\n").as_bytes())
            .map_err(|e| AuthError::BadInput(format!("cannot write the setup code: {e}")))?;
        Ok(Some(code))
    }

    /// Creates the first admin from a password file (Docker secrets), if no user exists.
    pub async fn admin_from_file(&self, name: &str, file: &Path) -> Result<bool, String> {
        if !self.needs_setup().map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let password = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: cannot read the admin password: {e}", file.display()))?;
        let password = password.trim_end_matches(['\n', '\r']);
        let name = check_name(name).map_err(|e| e.to_string())?;
        let normalized = self
            .checked(&name, password)
            .await
            .map_err(|e| format!("{}: the admin password is refused: {e}", file.display()))?;
        let user = self
            .new_user(&name, Role::Admin, normalized, false)
            .await
            .map_err(|e| e.to_string())?;
        self.insert(&user).map_err(|e| e.to_string())?;
        self.audit(
            AuditKind::Setup,
            "",
            &name,
            "",
            "admin created from PERCH_ADMIN_PASSWORD_FILE",
        )
        .map_err(|e| e.to_string())?;
        self.store
            .meta_remove(SETUP_KEY)
            .map_err(|e| e.to_string())?;
        self.store.durable().await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(self.setup_code_path());
        Ok(true)
    }

    /// Completes setup with the code from the log: creates the admin and logs them in.
    pub async fn complete_setup(
        &self,
        code: &str,
        name: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let _guard = self.users_lock.lock().await;
        if !self.needs_setup()? {
            return Err(AuthError::SetupDone);
        }
        if let Verdict::Wait(wait) = self.throttle.attempt("(setup)", client, Instant::now()) {
            return Err(AuthError::Throttled { retry_after: wait });
        }
        let record: Option<SetupRecord> = self
            .store
            .meta_get(SETUP_KEY)?
            .and_then(|v| serde_json::from_slice(&v).ok());
        let typed = secret::hex(&secret::digest(&secret::normalize_setup_code(code)));
        let valid = record.is_some_and(|r| {
            secret::constant_time_eq(r.digest.as_bytes(), typed.as_bytes())
                && unix_now() - r.created_at < SETUP_CODE_LIFETIME
        });
        if !valid {
            self.audit(
                AuditKind::LoginFailure,
                "",
                "(setup)",
                &client.to_string(),
                "wrong or expired setup code",
            )?;
            self.login_failures.count("bad_setup_code");
            self.store.durable().await?;
            return Err(AuthError::BadSetupCode);
        }
        self.throttle.succeeded("(setup)", client);
        let name = check_name(name)?;
        let normalized = self.checked(&name, password).await?;
        let user = self.new_user(&name, Role::Admin, normalized, false).await?;
        self.insert(&user)?;
        self.store.meta_remove(SETUP_KEY)?;
        self.audit(
            AuditKind::Setup,
            &name,
            &name,
            &client.to_string(),
            "first admin created",
        )?;
        let session = self.open_session(&user)?;
        self.store.durable().await?;
        let _ = std::fs::remove_file(self.setup_code_path());
        Ok(session)
    }

    async fn new_user(
        &self,
        name: &str,
        role: Role,
        normalized_password: String,
        must_change: bool,
    ) -> Result<User, AuthError> {
        let now = unix_now();
        Ok(User {
            id: self.store.next_id(IdKind::User)?,
            name: name.to_owned(),
            role,
            password_hash: self.hasher.hash(normalized_password).await?,
            previous_hashes: Vec::new(),
            password_changed_at: now,
            must_change_password: must_change,
            session_epoch: 0,
            created_at: now,
            second_factor: None,
            pending_second_factor: None,
            time_zone: None,
        })
    }

    fn insert(&self, user: &User) -> Result<(), AuthError> {
        self.store.insert_user(user).map_err(|e| match e {
            InsertUser::NameTaken => AuthError::NameTaken,
            InsertUser::Store(e) => AuthError::Store(e),
        })
    }

    fn audit(
        &self,
        kind: AuditKind,
        actor: &str,
        subject: &str,
        client: &str,
        detail: &str,
    ) -> Result<(), AuthError> {
        let mut event = AuditEvent {
            seq: 0,
            time: unix_now(),
            kind,
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            client: client.to_owned(),
            detail: detail.to_owned(),
        };
        self.store.append_audit(&mut event)?;
        Ok(())
    }

    /// Audits and counts a failed attempt (already counted by the throttle); the audit
    /// record is durable before the refusal goes out.
    async fn login_failed(
        &self,
        name: &str,
        client: IpAddr,
        reason: &'static str,
        starts_throttle: bool,
    ) -> Result<(), AuthError> {
        self.login_failures.count(reason);
        if starts_throttle {
            self.audit(
                AuditKind::Throttled,
                "",
                name,
                &client.to_string(),
                "5 failures: further attempts are delayed",
            )?;
        }
        self.audit(
            AuditKind::LoginFailure,
            "",
            name,
            &client.to_string(),
            reason,
        )?;
        Ok(self.store.durable().await?)
    }

    /// Checks a user name and password. Throttled attempts are refused before any
    /// password work; an unknown name costs the same time as a wrong password.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.login_from(name, password, client, None).await
    }

    /// [`Auth::login`] from a browser that sent this device cookie: one issued for `name`
    /// has its attempts counted on their own (see `throttle`); a login without one gets a
    /// new cookie in [`NewSession::device`].
    pub async fn login_from(
        &self,
        name: &str,
        password: &str,
        client: IpAddr,
        device_cookie: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let now = unix_now();
        let device = device_cookie.and_then(|c| self.device_key.verify(c, name, now));
        // Names longer than any user's are refused before they are counted or recorded.
        if name.chars().count() > 64 {
            return Err(AuthError::BadCredentials);
        }
        // No password is this long: refused before it is counted, normalised or hashed.
        password::within_input_limit(password).map_err(AuthError::Policy)?;
        let starts_throttle = self.admit_attempt(name, client, device)?;
        let attempt = Attempt {
            name,
            client,
            device,
            starts_throttle,
            now,
        };
        let result = self.login_checked(password, &attempt).await;
        if let Err(e) = &result
            && !matches!(e, AuthError::BadCredentials)
        {
            // Perch failed (the store, the hasher), not the guess: the attempt is taken back,
            // so that an outage does not throttle the users who tried during it.
            self.throttle.abandoned(name, client, device);
        }
        result
    }

    /// The password check and the session, for an attempt the throttle let through.
    async fn login_checked(
        &self,
        password: &str,
        attempt: &Attempt<'_>,
    ) -> Result<NewSession, AuthError> {
        let Attempt {
            name,
            client,
            device,
            starts_throttle,
            now,
        } = *attempt;
        let normalized = self.normalized(password).await?;
        let Some(user) = self.store.user_by_name(name)? else {
            self.hasher.verify_dummy(normalized).await?;
            self.login_failed(name, client, "unknown_user", starts_throttle)
                .await?;
            return Err(AuthError::BadCredentials);
        };
        if !self
            .hasher
            .verify(normalized.clone(), user.password_hash.clone())
            .await?
        {
            self.login_failed(&user.name, client, "bad_password", starts_throttle)
                .await?;
            return Err(AuthError::BadCredentials);
        }
        self.throttle.succeeded_from(name, client, device);
        let user = self.after_login(user, normalized).await?;
        if user.second_factor.is_some() {
            // The password was right: the second step next, in a session that opens
            // nothing else.
            let session = self.open_session_at(&user, true)?;
            self.store.durable().await?;
            return Ok(session);
        }
        let mut session = self.open_session(&user)?;
        if device.is_none() {
            session.device = Some(self.device_key.issue(&user.name, now));
        }
        self.audit(
            AuditKind::LoginSuccess,
            &user.name,
            &user.name,
            &client.to_string(),
            "",
        )?;
        self.store.durable().await?;
        Ok(session)
    }

    /// Counts a sign-in attempt (a password or a code) in the throttle, or refuses it
    /// before any work; whether it would be the failure that starts the throttle.
    fn admit_attempt(
        &self,
        name: &str,
        client: IpAddr,
        device: Option<&str>,
    ) -> Result<bool, AuthError> {
        match self
            .throttle
            .attempt_from(name, client, device, Instant::now())
        {
            Verdict::Wait(wait) => {
                self.login_failures.count("throttled");
                Err(AuthError::Throttled { retry_after: wait })
            }
            Verdict::Proceed { starts_throttle } => Ok(starts_throttle),
        }
    }

    /// The second step of a sign-in: `code` from the authenticator app, or a recovery code.
    /// Failures count in the same throttle as passwords. Accepted, the half-signed-in
    /// session is replaced by a full one.
    pub async fn complete_second_factor(
        &self,
        who: &Principal,
        code: &str,
        client: IpAddr,
        device_cookie: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let (Gate::SecondFactor, Some(user_id), Via::Session { key, .. }) =
            (who.gate, who.user_id, &who.via)
        else {
            return Err(AuthError::BadInput(
                "there is no sign-in waiting for a code; log in with your password first".into(),
            ));
        };
        let now = unix_now();
        let name = who.name.as_str();
        let device = device_cookie.and_then(|c| self.device_key.verify(c, name, now));
        let starts_throttle = self.admit_attempt(name, client, device)?;
        let accepted = match self.check_second_factor(user_id, code, client).await {
            Ok(accepted) => accepted,
            Err(AuthError::InvalidCode) => {
                self.login_failed(name, client, "bad_second_factor", starts_throttle)
                    .await?;
                return Err(AuthError::InvalidCode);
            }
            Err(e) => {
                self.throttle.abandoned(name, client, device);
                return Err(e);
            }
        };
        self.throttle.succeeded_from(name, client, device);
        let user = self
            .store
            .user(user_id)?
            .ok_or(AuthError::NotFound("user"))?;
        self.store.remove_session(key)?;
        let mut session = self.open_session(&user)?;
        if device.is_none() {
            session.device = Some(self.device_key.issue(&user.name, now));
        }
        let detail = match accepted {
            second_factor::Accepted::Totp => "with a second factor".to_owned(),
            second_factor::Accepted::Recovery { remaining } => {
                session.recovery_codes_left = Some(remaining);
                format!("with a recovery code ({remaining} left)")
            }
        };
        self.audit(
            AuditKind::LoginSuccess,
            &user.name,
            &user.name,
            &client.to_string(),
            &detail,
        )?;
        self.store.durable().await?;
        Ok(session)
    }

    /// Rehash with today's parameters and apply the maximum password age, on the stored
    /// record as it is now (an admin may have changed it during the password check).
    async fn after_login(&self, seen: User, normalized: String) -> Result<User, AuthError> {
        let rehash = self.hasher.needs_rehash(&seen.password_hash);
        let expired = self
            .config
            .password_max_age
            .is_some_and(|max| unix_now() - seen.password_changed_at > max.as_secs() as i64);
        if !rehash && (!expired || seen.must_change_password) {
            return Ok(seen);
        }
        let new_hash = if rehash {
            Some(self.hasher.hash(normalized).await?)
        } else {
            None
        };
        let _guard = self.users_lock.lock().await;
        let Some(mut user) = self.store.user(seen.id)? else {
            return Err(AuthError::BadCredentials);
        };
        if user.password_hash != seen.password_hash || user.session_epoch != seen.session_epoch {
            // Changed meanwhile: keep the newer record as it is.
            return Ok(user);
        }
        if let Some(hash) = new_hash {
            user.password_hash = hash;
        }
        user.must_change_password |= expired;
        self.store.update_user(&user)?;
        Ok(user)
    }

    fn open_session(&self, user: &User) -> Result<NewSession, AuthError> {
        self.open_session_at(user, false)
    }

    /// A new session for `user`; `awaiting_second_factor`: one that opens only the
    /// second step.
    fn open_session_at(
        &self,
        user: &User,
        awaiting_second_factor: bool,
    ) -> Result<NewSession, AuthError> {
        let id = secret::session_id();
        let csrf = secret::csrf_token();
        let now = unix_now();
        self.store.put_session(
            &secret::digest(&id),
            &Session {
                user_id: user.id,
                epoch: user.session_epoch,
                created_at: now,
                last_seen: now,
                csrf: csrf.clone(),
                awaiting_second_factor,
            },
        )?;
        Ok(NewSession {
            id,
            csrf,
            must_change_password: user.must_change_password,
            second_factor_required: awaiting_second_factor,
            recovery_codes_left: None,
            device: None,
        })
    }

    /// The principal behind a session cookie, if the session is alive.
    pub fn session(&self, cookie: &str) -> Result<Option<Principal>, AuthError> {
        let key = secret::digest(cookie);
        let Some(mut session) = self.store.session(&key)? else {
            return Ok(None);
        };
        let now = unix_now();
        let user = self.store.user(session.user_id)?;
        let lifetime = if session.awaiting_second_factor {
            SECOND_STEP_LIFETIME
        } else {
            self.config.session_lifetime.as_secs() as i64
        };
        let alive = user
            .as_ref()
            .is_some_and(|u| u.session_epoch == session.epoch)
            && now - session.last_seen <= self.config.session_idle.as_secs() as i64
            && now - session.created_at <= lifetime;
        let Some(user) = user.filter(|_| alive) else {
            self.store.remove_session(&key)?;
            return Ok(None);
        };
        if now - session.last_seen >= TOUCH_EVERY {
            session.last_seen = now;
            self.store.touch_session(&key, &session)?;
        }
        let gate = if session.awaiting_second_factor {
            Gate::SecondFactor
        } else if user.second_factor.is_none()
            && self.config.require_second_factor.requires(user.role)
        {
            Gate::EnrolSecondFactor
        } else {
            Gate::Open
        };
        Ok(Some(Principal {
            gate,
            user_id: Some(user.id),
            name: user.name,
            role: user.role,
            must_change_password: user.must_change_password,
            via: Via::Session {
                key,
                csrf: session.csrf,
            },
            time_zone: user.time_zone,
        }))
    }

    /// The principal behind an API token (by its digest), if it exists and has not
    /// expired, and until when that holds without another look: its expiry, or the time
    /// its `last_used` is next due.
    fn token_principal(
        &self,
        key: &[u8; 32],
        now: i64,
    ) -> Result<Option<(Principal, i64)>, AuthError> {
        let Some(mut token) = self.store.token(key)? else {
            return Ok(None);
        };
        let Some(lineage_until) = self.token_lineage(&token, now)? else {
            return Ok(None);
        };
        if token.last_used.is_none_or(|t| now - t >= TOUCH_EVERY) {
            token.last_used = Some(now);
            self.store.touch_token(key, &token)?;
        }
        let until = token
            .last_used
            .unwrap_or(now)
            .saturating_add(TOUCH_EVERY)
            .min(lineage_until);
        let principal = Principal {
            gate: Gate::Open,
            user_id: None,
            name: token.name,
            role: token.role,
            must_change_password: false,
            via: Via::Token { id: token.id },
            time_zone: None,
        };
        Ok(Some((principal, until)))
    }

    /// Whether `token` still holds, and if so the earliest expiry along its lineage. A token
    /// is only as good as what made it: the admin who created it must still be an admin,
    /// and a token created with another API token dies with that token (revoked, expired,
    /// or its own maker gone), however many generations up.
    fn token_lineage(&self, token: &ApiToken, now: i64) -> Result<Option<i64>, AuthError> {
        let mut all: Option<HashMap<u64, ApiToken>> = None;
        let mut current = token.clone();
        let mut until = i64::MAX;
        // Each ancestor is taken out of the map as it is visited, so the walk ends.
        loop {
            if current.expires_at.is_some_and(|t| now >= t) {
                return Ok(None);
            }
            until = until.min(current.expires_at.unwrap_or(i64::MAX));
            if let Some(creator) = current.created_by_id {
                let admin = self
                    .store
                    .user(creator)?
                    .is_some_and(|u| u.role == Role::Admin);
                if !admin {
                    return Ok(None);
                }
            }
            let Some(parent) = current.created_by_token else {
                return Ok(Some(until));
            };
            let tokens = match &mut all {
                Some(tokens) => tokens,
                None => all.insert(
                    self.store
                        .tokens()?
                        .into_iter()
                        .map(|t| (t.id, t))
                        .collect(),
                ),
            };
            let Some(parent) = tokens.remove(&parent) else {
                return Ok(None);
            };
            current = parent;
        }
    }

    /// The API token with this id still exists, is alive, and has at least `role`.
    pub(crate) fn api_token_valid(&self, id: u64, role: Role) -> Result<bool, AuthError> {
        let now = unix_now();
        for token in self.store.tokens()? {
            if token.id == id {
                return Ok(token.role >= role && self.token_lineage(&token, now)?.is_some());
            }
        }
        Ok(false)
    }

    pub async fn logout(&self, who: &Principal, client: IpAddr) -> Result<(), AuthError> {
        if let Via::Session { key, .. } = &who.via {
            self.store.remove_session(key)?;
            self.audit(
                AuditKind::Logout,
                &who.name,
                &who.name,
                &client.to_string(),
                "",
            )?;
            self.store.durable().await?;
        }
        Ok(())
    }

    /// A typed password in the form it is hashed and compared in, worked out off the async
    /// workers; a field over [`password::MAX_INPUT_BYTES`] is refused before.
    async fn normalized(&self, password: &str) -> Result<String, AuthError> {
        let password = password::within_input_limit(password)
            .map_err(AuthError::Policy)?
            .to_owned();
        self.hasher
            .blocking(move |_| Policy::normalize(&password))
            .await?
            .map_err(AuthError::Policy)
    }

    /// Rules 1 to 4 of the policy, off the async workers; the normalised password to hash.
    async fn checked(&self, name: &str, password: &str) -> Result<String, AuthError> {
        let password = password::within_input_limit(password)
            .map_err(AuthError::Policy)?
            .to_owned();
        let (policy, name) = (self.policy, name.to_owned());
        self.hasher
            .blocking(move |_| policy.check(&name, &password))
            .await?
            .map_err(AuthError::Policy)
    }

    /// Rule 5 of the policy: not the current password nor one of the previous ones.
    async fn check_history(&self, user: &User, normalized: &str) -> Result<(), AuthError> {
        for old in std::iter::once(&user.password_hash).chain(&user.previous_hashes) {
            if self
                .hasher
                .verify(normalized.to_owned(), old.clone())
                .await?
            {
                return Err(AuthError::Policy(password::reused()));
            }
        }
        Ok(())
    }

    /// Sets a new password hash, keeps the history, ends every session of the user.
    async fn set_password(
        &self,
        user: &mut User,
        normalized: String,
        must_change: bool,
    ) -> Result<(), AuthError> {
        let new_hash = self.hasher.hash(normalized).await?;
        let old = std::mem::replace(&mut user.password_hash, new_hash);
        user.previous_hashes.insert(0, old);
        user.previous_hashes.truncate(PASSWORD_HISTORY - 1);
        user.password_changed_at = unix_now();
        user.must_change_password = must_change;
        user.session_epoch += 1;
        self.store.update_user(user)?;
        self.store.remove_sessions_of(user.id)?;
        Ok(())
    }

    /// The user changes their own password; all their sessions end and a new one starts.
    /// A wrong current password counts as a failed login (throttled and audited).
    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: &str,
        client: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let Some(id) = who.user_id else {
            return Err(AuthError::Forbidden);
        };
        let user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        password::within_input_limit(current).map_err(AuthError::Policy)?;
        let starts_throttle = match self.throttle.attempt(&user.name, client, Instant::now()) {
            Verdict::Wait(wait) => return Err(AuthError::Throttled { retry_after: wait }),
            Verdict::Proceed { starts_throttle } => starts_throttle,
        };
        if !self
            .hasher
            .verify(self.normalized(current).await?, user.password_hash.clone())
            .await?
        {
            self.login_failed(
                &user.name,
                client,
                "wrong_current_password",
                starts_throttle,
            )
            .await?;
            return Err(AuthError::WrongCurrentPassword);
        }
        self.throttle.succeeded(&user.name, client);
        let normalized = self.checked(&user.name, new).await?;
        self.check_history(&user, &normalized).await?;
        let _guard = self.users_lock.lock().await;
        let mut user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        self.set_password(&mut user, normalized, false).await?;
        self.audit(
            AuditKind::PasswordChanged,
            &user.name,
            &user.name,
            &client.to_string(),
            "by the user",
        )?;
        let session = self.open_session(&user)?;
        self.store.durable().await?;
        Ok(session)
    }

    /// One user, as the API shows them.
    pub fn user(&self, id: u64) -> Result<UserView, AuthError> {
        let user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        Ok(UserView::from(&user))
    }

    pub fn users(&self) -> Result<Vec<UserView>, AuthError> {
        let mut users: Vec<UserView> = self.store.users()?.iter().map(UserView::from).collect();
        users.sort_by_key(|u| u.name.to_lowercase());
        Ok(users)
    }

    /// An admin creates a user with a temporary password they must change at first login.
    pub async fn create_user(
        &self,
        who: &Principal,
        name: &str,
        role: Role,
        temporary_password: &str,
        client: IpAddr,
    ) -> Result<UserView, AuthError> {
        let name = check_name(name)?;
        let normalized = self.checked(&name, temporary_password).await?;
        let _guard = self.users_lock.lock().await;
        if self.store.user_by_name(&name)?.is_some() {
            return Err(AuthError::NameTaken);
        }
        let user = self.new_user(&name, role, normalized, true).await?;
        self.insert(&user)?;
        self.audit(
            AuditKind::UserCreated,
            &who.actor(),
            &name,
            &client.to_string(),
            &format!("role {role}"),
        )?;
        self.store.durable().await?;
        Ok(UserView::from(&user))
    }

    /// An admin sets someone else's password; they must change it at their next login.
    /// Their own goes through the change form, which asks for the current one. The history
    /// rule is left to that forced change, so that a reset cannot test guesses of a user's
    /// earlier passwords.
    pub async fn reset_password(
        &self,
        who: &Principal,
        id: u64,
        temporary_password: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        if who.user_id == Some(id) {
            return Err(AuthError::BadInput(
                "change your own password with the change-password form".into(),
            ));
        }
        let name = self
            .store
            .user(id)?
            .ok_or(AuthError::NotFound("user"))?
            .name;
        let normalized = self.checked(&name, temporary_password).await?;
        let _guard = self.users_lock.lock().await;
        let mut user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        self.set_password(&mut user, normalized, true).await?;
        self.audit(
            AuditKind::PasswordReset,
            &who.actor(),
            &user.name,
            &client.to_string(),
            "by an admin",
        )?;
        self.store.durable().await?;
        Ok(())
    }

    fn other_admins(&self, except: u64) -> Result<usize, AuthError> {
        Ok(self
            .store
            .users()?
            .iter()
            .filter(|u| u.role == Role::Admin && u.id != except)
            .count())
    }

    pub async fn set_role(
        &self,
        who: &Principal,
        id: u64,
        role: Role,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let _guard = self.users_lock.lock().await;
        let mut user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        if user.role == role {
            return Ok(());
        }
        if user.role == Role::Admin && self.other_admins(user.id)? == 0 {
            return Err(AuthError::LastAdmin);
        }
        let from = user.role;
        user.role = role;
        user.session_epoch += 1;
        self.store.update_user(&user)?;
        self.store.remove_sessions_of(user.id)?;
        self.audit(
            AuditKind::RoleChanged,
            &who.actor(),
            &user.name,
            &client.to_string(),
            &format!("{from} -> {role}"),
        )?;
        self.store.durable().await?;
        Ok(())
    }

    pub async fn delete_user(
        &self,
        who: &Principal,
        id: u64,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let _guard = self.users_lock.lock().await;
        let user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        if who.user_id == Some(id) {
            return Err(AuthError::SelfDelete);
        }
        if user.role == Role::Admin && self.other_admins(user.id)? == 0 {
            return Err(AuthError::LastAdmin);
        }
        self.store.delete_user(&user)?;
        self.audit(
            AuditKind::UserDeleted,
            &who.actor(),
            &user.name,
            &client.to_string(),
            "",
        )?;
        self.store.durable().await?;
        Ok(())
    }

    pub fn tokens(&self) -> Result<Vec<ApiToken>, AuthError> {
        let mut tokens = self.store.tokens()?;
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(tokens)
    }

    /// Creates an API token; the secret is returned once and stored only as a hash.
    pub async fn create_token(
        &self,
        who: &Principal,
        name: &str,
        role: Role,
        lifetime: Option<Duration>,
        client: IpAddr,
    ) -> Result<(ApiToken, String), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(AuthError::BadInput(
                "a token needs a name of 1 to 64 characters".into(),
            ));
        }
        let secret = secret::api_token();
        let now = unix_now();
        let token = ApiToken {
            id: self.store.next_id(IdKind::ApiToken)?,
            name: name.to_owned(),
            role,
            created_by: who.actor(),
            created_by_id: who.user_id,
            created_by_token: who.token_id(),
            created_at: now,
            expires_at: lifetime.map(|l| now + l.as_secs() as i64),
            last_used: None,
        };
        self.store.put_token(&secret::digest(&secret), &token)?;
        let detail = format!(
            "role {role}, {}",
            lifetime.map_or("no expiry".to_owned(), |l| format!(
                "expires in {} s",
                l.as_secs()
            ))
        );
        self.audit(
            AuditKind::TokenCreated,
            &who.actor(),
            name,
            &client.to_string(),
            &detail,
        )?;
        self.store.durable().await?;
        Ok((token, secret))
    }

    pub async fn revoke_token(
        &self,
        who: &Principal,
        id: u64,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let token = self
            .store
            .remove_token(id)?
            .ok_or(AuthError::NotFound("token"))?;
        self.audit(
            AuditKind::TokenRevoked,
            &who.actor(),
            &token.name,
            &client.to_string(),
            "",
        )?;
        self.store.durable().await?;
        Ok(())
    }

    /// Removes sessions past their idle time or lifetime, and expired enrollment tokens;
    /// returns how many.
    pub fn sweep_expired(&self) -> Result<usize, AuthError> {
        let now = unix_now();
        let idle = self.config.session_idle.as_secs() as i64;
        let lifetime = self.config.session_lifetime.as_secs() as i64;
        let sessions = self
            .store
            .remove_sessions_where(|s| now - s.last_seen > idle || now - s.created_at > lifetime)?;
        Ok(sessions + self.store.sweep_enroll_tokens(now)?)
    }

    pub fn audit_trail(
        &self,
        user: Option<&str>,
        kind: Option<AuditKind>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, AuthError> {
        Ok(self.store.audit(user, kind, limit)?)
    }

    /// Sets (or, with `None`, clears) the signed-in user's time zone. The name is the
    /// caller's to check against a zone database; here it must be a plausible IANA name.
    pub async fn set_time_zone(
        &self,
        who: &Principal,
        zone: Option<&str>,
    ) -> Result<(), AuthError> {
        let id = who.user_id.ok_or_else(|| {
            AuthError::BadInput(
                "only a user has a time zone; what an API token reads is in UTC".into(),
            )
        })?;
        if let Some(z) = zone
            && (z.is_empty()
                || z.len() > 64
                || !z
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b)))
        {
            return Err(AuthError::BadInput(format!(
                "'{z}' is not a time zone name like Europe/Berlin or America/New_York"
            )));
        }
        let mut user = self.store.user(id)?.ok_or(AuthError::NotFound("user"))?;
        user.time_zone = zone.map(str::to_owned);
        self.store.update_user(&user)?;
        self.store.durable().await?;
        Ok(())
    }

    /// The store as of one moment, for a backup (see [`Store::export`]). Blocking.
    pub fn export_store(&self) -> Result<Exported, AuthError> {
        self.store.export().map_err(|e| {
            self.store.failed(&e);
            AuthError::Store(e)
        })
    }

    /// Records an event of another part (a backup taken or downloaded, an alerting change)
    /// in the audit trail, durably: `subject` is what it concerns (a backup's file name, a
    /// rule, a contact point); `actor` is empty when Perch itself acted (the schedule).
    pub async fn audit_event(
        &self,
        kind: AuditKind,
        actor: &str,
        client: &str,
        subject: &str,
    ) -> Result<(), AuthError> {
        self.audit(kind, actor, "", client, subject)?;
        self.store.durable().await?;
        Ok(())
    }
}

/// Writes a secret file readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}
