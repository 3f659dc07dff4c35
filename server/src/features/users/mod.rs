//! Users and sessions: first-run setup, login and logout, changing one's password, user
//! management and the audit trail, as pages and as the JSON API.

pub mod api;
pub mod pages;
