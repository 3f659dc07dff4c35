//! What can go wrong in authentication and user management, with a message for people.
//! What each means on the wire (status, machine code) is decided at the request layer's
//! error edge; internals (store and hashing faults) are shown there only as "internal".

use std::time::Duration;

use super::password::Refusal;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error("{}", .0.message)]
    Policy(Refusal),
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("The code is wrong, expired or used already; type the one your app shows now.")]
    InvalidCode,
    #[error("a user with that name exists")]
    NameTaken,
    #[error("{0}")]
    BadInput(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the last admin cannot be deleted or demoted; make another admin first")]
    LastAdmin,
    #[error("you cannot delete yourself")]
    SelfDelete,
    #[error("setup is already done; log in instead")]
    SetupDone,
    #[error(
        "the setup code is wrong or expired; restart the server for a new one, and read it from its log or <data>/setup-code"
    )]
    BadSetupCode,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("a node named {0} exists; enroll with --force to replace it (its token stops working)")]
    NodeNameTaken(String),
    #[error(
        "the enrollment token is unknown, used or expired; create a new one on the Add node page"
    )]
    BadEnrollToken,
    /// Internal, unless the data directory's file system is the cause (full, read-only),
    /// which operators are told, with what to do.
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
    #[error("internal error")]
    Hash(#[from] super::hasher::HashError),
}

fn store_message(e: &StoreError) -> String {
    match e.unavailable() {
        Some(why) => format!(
            "Perch cannot write its user store: {why}. Free space in the data directory (or fix its file system); Perch recovers by itself within seconds."
        ),
        None => "internal error".to_owned(),
    }
}
