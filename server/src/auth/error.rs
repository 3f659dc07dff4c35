//! What can go wrong in authentication and user management. Each error knows its HTTP
//! status, a stable machine code and a message for people; internals (store and hashing
//! faults) are logged where they arise and shown only as "internal".

use std::time::Duration;

use http::StatusCode;

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
    #[error("log in first")]
    Unauthenticated,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("choose a new password first")]
    PasswordChangeRequired,
    #[error(
        "the request did not come from this site's own page (CSRF check failed); reload the page and try again"
    )]
    Csrf,
    #[error("a node named {0} exists; enroll with --force to replace it (its token stops working)")]
    NodeNameTaken(String),
    #[error(
        "the enrollment token is unknown, used or expired; create a new one on the Add node page"
    )]
    BadEnrollToken,
    #[error("internal error")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Hash(#[from] super::hasher::HashError),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::BadCredentials | AuthError::Unauthenticated | AuthError::BadEnrollToken => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Policy(_) | AuthError::BadInput(_) | AuthError::WrongCurrentPassword => {
                StatusCode::BAD_REQUEST
            }
            AuthError::NameTaken
            | AuthError::NodeNameTaken(_)
            | AuthError::LastAdmin
            | AuthError::SelfDelete => StatusCode::CONFLICT,
            AuthError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthError::SetupDone => StatusCode::GONE,
            AuthError::BadSetupCode
            | AuthError::Forbidden
            | AuthError::PasswordChangeRequired
            | AuthError::Csrf => StatusCode::FORBIDDEN,
            AuthError::Store(_) | AuthError::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::BadCredentials => "invalid_credentials",
            AuthError::Throttled { .. } => "throttled",
            AuthError::Policy(r) => r.rule.code(),
            AuthError::WrongCurrentPassword => "wrong_current_password",
            AuthError::NameTaken => "name_taken",
            AuthError::NodeNameTaken(_) => "node_exists",
            AuthError::BadEnrollToken => "bad_enroll_token",
            AuthError::BadInput(_) => "bad_input",
            AuthError::NotFound(_) => "not_found",
            AuthError::LastAdmin => "last_admin",
            AuthError::SelfDelete => "self_delete",
            AuthError::SetupDone => "setup_done",
            AuthError::BadSetupCode => "bad_setup_code",
            AuthError::Unauthenticated => "unauthenticated",
            AuthError::Forbidden => "forbidden",
            AuthError::PasswordChangeRequired => "password_change_required",
            AuthError::Csrf => "csrf",
            AuthError::Store(_) | AuthError::Hash(_) => "internal",
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}
