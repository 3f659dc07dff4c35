//! Perch's web pages: askama templates (in `templates/`, HTML-escaped) and the static
//! assets they link. Pages work without JavaScript and carry no inline script or style, so
//! the strict Content-Security-Policy holds.
#![forbid(unsafe_code)]

pub use askama::Template;

/// Rendering failed (a template bug, never user input).
pub type Error = askama::Error;

/// The signed-in user, for the header of every page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub name: String,
    pub role: String,
    pub is_admin: bool,
    /// Editor or Admin: may add and remove nodes.
    pub is_editor: bool,
    pub csrf: String,
    /// True while the user must choose a new password: only that page and logout are offered.
    pub locked: bool,
}

/// A message under a form: what went wrong, and advice.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    pub error: Option<String>,
    pub hint: Option<String>,
    pub success: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub notice: Notice,
    pub csrf: String,
    pub name: String,
    pub min_len: usize,
}

#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub notice: Notice,
    pub csrf: String,
    pub name: String,
    pub next: String,
}

#[derive(Debug, Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub nav: Option<Nav>,
    pub notice: Notice,
    pub forced: bool,
    pub min_len: usize,
}

#[derive(Debug, Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub nav: Option<Nav>,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub must_change_password: bool,
    pub password_changed: String,
    pub is_self: bool,
}

#[derive(Debug, Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub users: Vec<UserRow>,
    pub roles: Vec<&'static str>,
    pub min_len: usize,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
}

#[derive(Debug, Template)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub tokens: Vec<TokenRow>,
    pub roles: Vec<&'static str>,
    /// A token just created: shown this once.
    pub new_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NodeRow {
    pub id: u64,
    pub node_id: String,
    pub name: String,
    pub address: String,
    /// `k=v, k=v`.
    pub labels: String,
    pub enrolled_by: String,
    pub created: String,
    pub last_push: String,
}

#[derive(Debug, Template)]
#[template(path = "nodes.html")]
pub struct NodesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub nodes: Vec<NodeRow>,
    pub can_edit: bool,
}

#[derive(Debug, Template)]
#[template(path = "node_add.html")]
pub struct NodeAddPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    /// A new enrollment token: shown this once, inside the commands.
    pub token: Option<String>,
    pub expires: String,
    /// host[:port] as the browser reached this server.
    pub server: String,
    pub fingerprint: Option<String>,
    /// `ca-certs.pem` exists and can be downloaded.
    pub has_ca: bool,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub time: String,
    pub kind: String,
    pub actor: String,
    pub subject: String,
    pub client: String,
    pub detail: String,
}

#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub nav: Option<Nav>,
    pub rows: Vec<AuditRow>,
    pub kinds: Vec<&'static str>,
    pub user: String,
    pub kind: String,
}

#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub nav: Option<Nav>,
    pub title: String,
    pub message: String,
    pub link: String,
    pub link_text: String,
}

/// A static asset by file name: its bytes and content type.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    match name {
        "perch.css" => Some((
            include_bytes!("../static/perch.css"),
            "text/css; charset=utf-8",
        )),
        "favicon.svg" => Some((include_bytes!("../static/favicon.svg"), "image/svg+xml")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_users_typed() {
        let html = LoginPage {
            notice: Notice {
                error: Some("<script>alert(1)</script>".into()),
                ..Notice::default()
            },
            csrf: "c".into(),
            name: "\"><img src=x>".into(),
            next: "/".into(),
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert(1)"));
        assert!(!html.contains("<img src=x>"));
        assert!(html.contains("/static/perch.css"));
        assert!(
            !html.contains("<script"),
            "no script at all on the login page"
        );
        assert!(!html.contains("style="), "no inline style");
    }

    #[test]
    fn assets_exist() {
        assert!(asset("perch.css").is_some());
        assert!(asset("favicon.svg").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }
}
