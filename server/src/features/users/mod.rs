//! Users and sessions: first-run setup, login and logout, changing one's password, user
//! management and the audit trail, as pages and as the JSON API.

pub mod api;
pub mod pages;

use crate::auth::Role;
use crate::request::{ApiError, Form};

/// The `role` field of a form.
pub(crate) fn role_field(f: &Form) -> Result<Role, ApiError> {
    Role::parse(f.get("role"))
        .ok_or_else(|| ApiError::BadInput("the role is viewer, editor or admin".into()))
}
