//! Message bodies, as every layer passes them: whole (pages, JSON) or streamed (an
//! upstream's answer, a proxied request).

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// A request or response body: whole in memory or streamed.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Errors a streamed body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body held whole in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
