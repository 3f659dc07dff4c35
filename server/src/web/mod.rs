//! Handlers: HTML pages (`pages`) and the JSON API (`api`), over the auth service.

pub mod api;
pub mod dash_pages;
pub mod dashboards;
pub mod node_pages;
pub mod pages;
pub mod range;
pub mod support;
