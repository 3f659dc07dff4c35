//! One module per feature, each holding its handlers, pages and API: users and sessions,
//! tokens, nodes, dashboards, backups, the write and query paths, the reverse proxy (gateway), and
//! the server's own status.

pub mod alerts;
pub mod backups;
pub mod dashboards;
pub mod gateway;
pub mod nodes;
pub mod qan;
pub mod query;
pub mod selfscrape;
pub mod status;
pub mod tokens;
pub mod users;
pub mod write;
