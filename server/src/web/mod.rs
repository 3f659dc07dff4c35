//! Handlers: HTML pages (`pages`) and the JSON API (`api`), over the auth service.

pub mod api;
pub mod node_pages;
pub mod pages;
pub mod support;
