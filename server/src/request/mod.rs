//! The request layer every feature builds on: the shared state ([`App`]), what a handler
//! gets ([`Ctx`]), one error type ([`ApiError`]) and the one place it becomes a response,
//! the [`Guard`] for login, role and CSRF, and the small helpers for reading requests and
//! writing responses. It knows no feature.

mod app;
mod budget;
mod ctx;
mod engine_write;
mod error;
mod guard;
mod input;
mod page;
mod respond;

pub use app::App;
pub use budget::{BodyBudget, Reservation};
pub use ctx::{Ctx, Handled, Handler, LoggedUser, RouteName};
pub use engine_write::{admit_node_series, write_to_engine};
pub use error::{ApiError, BodyError, EngineOp, Face};
pub use guard::{Access, Guard, authenticate};
pub use input::{
    Form, LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, json_body, query, request_host, role_field,
    safe_next, valid_service,
};
pub use page::{
    confirm, csrf, done_notice, message, nav, notice_for, parse_zone, sentence, when_in, zone,
    zone_names,
};
pub use perch_upstream::{Body, BoxError, full};
pub use respond::{clear_cookie, html, json, no_content, respond, see_other, set_cookie, text};

/// A response.
pub type Response = http::Response<Body>;
/// What a handler returns: a response, or the error the edge answers with.
pub type Answer = Result<Response, ApiError>;
