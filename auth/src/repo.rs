//! Typed reads and writes of the auth trees. Callers make writes durable with
//! `Store::durable` before answering.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, abort};

use super::model::{ApiToken, AuditEvent, AuditKind, Session, User};
use crate::store::{IdKind, Store, StoreError, decode, encode, id_key};

pub fn name_key(name: &str) -> Vec<u8> {
    name.trim().to_lowercase().into_bytes()
}

/// Why inserting a user failed.
#[derive(Debug)]
pub enum InsertUser {
    NameTaken,
    Store(StoreError),
}

impl Store {
    pub fn has_users(&self) -> Result<bool, StoreError> {
        Ok(!self.trees()?.users.is_empty())
    }

    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.trees()?
            .users
            .get(id_key(id))?
            .map(|v| decode("users", &v))
            .transpose()
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = self.trees()?.user_names.get(name_key(name))? else {
            return Ok(None);
        };
        let id = u64::from_be_bytes(id.as_ref().try_into().unwrap_or([0; 8]));
        self.user(id)
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.trees()?
            .users
            .iter()
            .values()
            .map(|v| decode("users", &v?))
            .collect()
    }

    /// Inserts a new user, refusing a name already taken (case-insensitively).
    pub fn insert_user(&self, user: &User) -> Result<(), InsertUser> {
        let name = name_key(&user.name);
        let t = self.writer().map_err(InsertUser::Store)?;
        let result = (&t.users, &t.user_names).transaction(|(users, names)| {
            if names.get(&name)?.is_some() {
                return abort(());
            }
            names.insert(name.as_slice(), &id_key(user.id))?;
            users.insert(&id_key(user.id), encode(user))?;
            Ok(())
        });
        self.auth_changed();
        match result {
            Ok(()) => Ok(()),
            Err(sled::transaction::TransactionError::Abort(())) => Err(InsertUser::NameTaken),
            Err(sled::transaction::TransactionError::Storage(e)) => {
                Err(InsertUser::Store(StoreError::Sled(e)))
            }
        }
    }

    pub fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let written = self.writer()?.users.insert(id_key(user.id), encode(user));
        self.auth_changed();
        written?;
        Ok(())
    }

    pub fn delete_user(&self, user: &User) -> Result<(), StoreError> {
        let name = name_key(&user.name);
        let t = self.writer()?;
        let result = (&t.users, &t.user_names)
            .transaction(|(users, names)| {
                users.remove(&id_key(user.id))?;
                names.remove(name.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Conflict("delete user".into())
                }
            });
        self.auth_changed();
        result?;
        self.remove_sessions_of(user.id)
    }

    pub fn session(&self, key: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        self.trees()?
            .sessions
            .get(key)?
            .map(|v| decode("sessions", &v))
            .transpose()
    }

    pub fn put_session(&self, key: &[u8; 32], session: &Session) -> Result<(), StoreError> {
        self.trees()?.sessions.insert(key, encode(session))?;
        Ok(())
    }

    pub fn remove_session(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        self.trees()?.sessions.remove(key)?;
        Ok(())
    }

    pub fn remove_sessions_of(&self, user_id: u64) -> Result<(), StoreError> {
        self.remove_sessions_where(|s| s.user_id == user_id)
            .map(|_| ())
    }

    /// Removes the sessions matching `doomed` (an unreadable record is removed too).
    pub fn remove_sessions_where(
        &self,
        doomed: impl Fn(&Session) -> bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.trees()?.sessions.iter() {
            let (key, value) = entry?;
            let gone = decode::<Session>("sessions", &value).map_or(true, |s| doomed(&s));
            if gone {
                self.trees()?.sessions.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Updates a session's record only if it still exists (a logout in between wins).
    pub fn touch_session(&self, key: &[u8; 32], session: &Session) -> Result<(), StoreError> {
        let value = encode(session);
        self.trees()?
            .sessions
            .update_and_fetch(key, |old| old.map(|_| value.clone()))?;
        Ok(())
    }

    /// Updates a token's record only if it still exists (a revocation in between wins).
    pub fn touch_token(&self, key: &[u8; 32], token: &ApiToken) -> Result<(), StoreError> {
        let value = encode(token);
        self.trees()?
            .tokens
            .update_and_fetch(key, |old| old.map(|_| value.clone()))?;
        Ok(())
    }

    pub fn token(&self, key: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        self.trees()?
            .tokens
            .get(key)?
            .map(|v| decode("tokens", &v))
            .transpose()
    }

    pub fn put_token(&self, key: &[u8; 32], token: &ApiToken) -> Result<(), StoreError> {
        let written = self.writer()?.tokens.insert(key, encode(token));
        self.auth_changed();
        written?;
        Ok(())
    }

    pub fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.trees()?
            .tokens
            .iter()
            .values()
            .map(|v| decode("tokens", &v?))
            .collect()
    }

    /// Removes the token with this id; returns it if it existed.
    pub fn remove_token(&self, id: u64) -> Result<Option<ApiToken>, StoreError> {
        for entry in self.trees()?.tokens.iter() {
            let (key, value) = entry?;
            let token: ApiToken = decode("tokens", &value)?;
            if token.id == id {
                let removed = self.writer()?.tokens.remove(key);
                self.auth_changed();
                removed?;
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    pub fn append_audit(&self, event: &mut AuditEvent) -> Result<(), StoreError> {
        event.seq = self.next_id(IdKind::Audit)?;
        self.writer()?
            .audit
            .insert(event.seq.to_be_bytes(), encode(event))?;
        Ok(())
    }

    /// Newest first, filtered by user (actor or subject) and kind, at most `limit`.
    pub fn audit(
        &self,
        user: Option<&str>,
        kind: Option<AuditKind>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::new();
        for value in self.trees()?.audit.iter().values().rev() {
            let event: AuditEvent = decode("audit", &value?)?;
            let user_ok = user.is_none_or(|u| {
                event.actor.eq_ignore_ascii_case(u) || event.subject.eq_ignore_ascii_case(u)
            });
            if user_ok && kind.is_none_or(|k| event.kind == k) {
                out.push(event);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees()?.meta.get(key)?.map(|v| v.to_vec()))
    }

    pub fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writer()?.meta.insert(key, value)?;
        Ok(())
    }

    pub fn meta_remove(&self, key: &str) -> Result<(), StoreError> {
        self.writer()?.meta.remove(key)?;
        Ok(())
    }
}
