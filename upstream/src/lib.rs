//! Forwarding to upstreams for Perch, written once: a pooled HTTP client (plain HTTP, or
//! HTTPS with rustls on aws-lc-rs), the header rules of an edge proxy, and typed errors
//! naming the upstream and the reason, never internals.
//!
//! Bodies stream both ways: a request body is any [`Body`], and the upstream's answer is
//! handed back as it arrives, never collected whole. The metrics engine's query and write
//! paths and the reverse proxy use this crate.
#![forbid(unsafe_code)]

mod body;
mod client;
mod error;
mod forward;
mod h1pool;
mod headers;
mod target;

pub use body::{Body, BoxError, full};
pub use client::Client;
pub use error::UpstreamError;
pub use forward::{Edge, Forwarded, forward, read_body, send, wants_upgrade};
pub use headers::push_ip;
pub use target::{Credentials, Upstream, parse_base_url, parse_url, read_secret};
