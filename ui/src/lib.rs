//! Perch's web pages: askama templates (in `templates/`, HTML-escaped) and the static
//! assets they link. Pages work without JavaScript and carry no inline script or style, so
//! the strict Content-Security-Policy holds.
#![forbid(unsafe_code)]
pub mod alerts;
pub mod chart;
pub mod units;

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
    /// Alerts firing now (the badge beside Alerts).
    pub firing: usize,
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
    /// The setup code as typed, kept when the form is refused for another reason.
    pub code: String,
    /// A refused password's reason and advice, shown under the password field.
    pub password_notice: Notice,
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
    /// The user's time zone (empty: UTC), and the names offered.
    pub time_zone: String,
    pub zones: &'static [String],
}

#[derive(Debug, Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub notice: Notice,
    pub csrf: String,
    pub next: String,
}

/// A secret being enrolled: its QR code, the key to type, the URI.
#[derive(Debug, Clone)]
pub struct Enrolling {
    pub qr_svg: String,
    pub secret: String,
    pub uri: String,
}

#[derive(Debug, Template)]
#[template(path = "two_factor.html")]
pub struct TwoFactorPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    /// The user must set one up before anything else.
    pub forced: bool,
    pub enabled: bool,
    pub codes_left: Option<usize>,
    pub enrol: Option<Enrolling>,
    /// Shown once, just made.
    pub recovery_codes: Option<Vec<String>>,
}

/// A QR code of `text` as inline SVG markup, drawn here (no image file, no script).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000"))
        .light_color(qrcode::render::svg::Color("#fff"))
        .build();
    // The XML declaration has no place inside a page.
    Some(
        svg.split_once("?>")
            .map_or(svg.clone(), |(_, rest)| rest.to_owned()),
    )
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub must_change_password: bool,
    pub second_factor: bool,
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
    pub new_user: NewUserForm,
}

/// The New user form as it was sent, when it was refused (never the password).
#[derive(Debug, Clone, Default)]
pub struct NewUserForm {
    pub name: String,
    pub role: String,
    /// Why it was refused, shown beside `field` (`name`, `password`, or `form`).
    pub error: Option<String>,
    pub hint: Option<String>,
    pub field: &'static str,
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
    /// The New token form as it was sent, when it was refused.
    pub form_name: String,
    pub form_role: String,
    pub form_days: String,
}

/// "Are you sure?" before an action that cannot be undone: what it does, what is lost, a
/// button that posts the action, and a way back.
#[derive(Debug, Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub title: String,
    pub question: String,
    pub loss: String,
    /// Where the form posts.
    pub action: String,
    pub button: String,
    pub cancel: String,
}

#[derive(Debug, Clone)]
pub struct BackupRow {
    pub name: String,
    pub taken: String,
    pub size: String,
    pub duration: String,
    pub by: String,
}

#[derive(Debug, Clone)]
pub struct BackupFailure {
    pub at: String,
    pub by: String,
    pub error: String,
}

/// The Backups page (admins): where backups go, when, to whom they are encrypted, the
/// archives kept, recent failures, and the commands to take and restore one.
#[derive(Debug, Template)]
#[template(path = "backups.html")]
pub struct BackupsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    /// `--backup-dir`, when set.
    pub dir: Option<String>,
    pub schedule: String,
    pub keep: String,
    pub encryption: String,
    pub running: bool,
    pub last_success: String,
    pub files: Vec<BackupRow>,
    pub failures: Vec<BackupFailure>,
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
    /// host[:port] for the commands: as the browser reached this server, or as typed.
    pub server: String,
    /// `server` is this machine only (localhost, a loopback address): other machines need
    /// the server's own name or address.
    pub server_is_local: bool,
    /// When the served certificate does not cover `server`'s host: the names it covers.
    pub uncovered: Option<String>,
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
        "chart.js" => Some((
            include_bytes!("../static/chart.js"),
            "text/javascript; charset=utf-8",
        )),
        "chart.css" => Some((
            include_bytes!("../static/chart.css"),
            "text/css; charset=utf-8",
        )),
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

/// The built-in dashboards (`dashboards/*.toml`), by name.
pub fn dashboards() -> &'static [(&'static str, &'static str)] {
    &[
        ("node", include_str!("../dashboards/node.toml")),
        ("mysql", include_str!("../dashboards/mysql.toml")),
        ("postgresql", include_str!("../dashboards/postgresql.toml")),
    ]
}

/// The built-in alert rule templates (`alerts/*.yml`), by name: Prometheus rules with
/// `[[param]]` placeholders, described by `# title:`, `# about:` and `# param:` lines.
pub fn alert_templates() -> &'static [(&'static str, &'static str)] {
    &[
        ("agent_buffer", include_str!("../alerts/agent_buffer.yml")),
        ("cert_expiring", include_str!("../alerts/cert_expiring.yml")),
        ("clock_skew", include_str!("../alerts/clock_skew.yml")),
        ("cpu_busy", include_str!("../alerts/cpu_busy.yml")),
        ("disk_filling", include_str!("../alerts/disk_filling.yml")),
        ("disk_full", include_str!("../alerts/disk_full.yml")),
        (
            "engine_restarting",
            include_str!("../alerts/engine_restarting.yml"),
        ),
        (
            "filesystem_readonly",
            include_str!("../alerts/filesystem_readonly.yml"),
        ),
        (
            "login_brute_force",
            include_str!("../alerts/login_brute_force.yml"),
        ),
        (
            "login_throttled",
            include_str!("../alerts/login_throttled.yml"),
        ),
        ("memory_low", include_str!("../alerts/memory_low.yml")),
        (
            "mysql_connections",
            include_str!("../alerts/mysql_connections.yml"),
        ),
        (
            "mysql_replication_lag",
            include_str!("../alerts/mysql_replication_lag.yml"),
        ),
        ("node_down", include_str!("../alerts/node_down.yml")),
        (
            "postgresql_connections",
            include_str!("../alerts/postgresql_connections.yml"),
        ),
        (
            "proxy_upstream_down",
            include_str!("../alerts/proxy_upstream_down.yml"),
        ),
        ("service_down", include_str!("../alerts/service_down.yml")),
    ]
}

/// A link among choices (a time range, a refresh interval, a dashboard, a sort column).
#[derive(Debug, Clone)]
pub struct Choice {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// The time range picker and auto-refresh choices of a dashboard page.
#[derive(Debug, Clone)]
pub struct RangeView {
    pub presets: Vec<Choice>,
    pub refresh: Vec<Choice>,
    /// The custom range form's target path, and the query fields it keeps.
    pub action: String,
    pub hidden: Vec<(String, String)>,
    /// `datetime-local` values, UTC.
    pub from: String,
    pub to: String,
    pub refresh_key: String,
    /// Seconds between reloads; 0 is off.
    pub refresh_s: u32,
    pub custom: bool,
}

/// One panel: its chart (SVG and legend, made by [`chart::render`]) or why there is none.
#[derive(Debug, Clone)]
pub struct PanelView {
    pub title: String,
    pub chart: String,
    pub error: Option<String>,
    /// Series left out (only the largest are drawn).
    pub more: usize,
}

/// The facts about a node above its charts.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: u64,
    /// `up`, `stale` or `down`.
    pub status: &'static str,
    pub last_seen: String,
    pub address: String,
    pub labels: Vec<String>,
    pub uptime: String,
    pub kernel: String,
    /// Its database services and exporters, with their health.
    pub targets: Vec<TargetView>,
}

/// A database service or an exporter an agent scrapes, and its health.
#[derive(Debug, Clone)]
pub struct TargetView {
    pub name: String,
    /// `MySQL`, `PostgreSQL`, or `exporter host:port`.
    pub kind: String,
    pub up: bool,
    /// Why it is down, as the agent reported it.
    pub error: Option<String>,
    /// Since when it has been up or down.
    pub since: Option<String>,
    /// A service's dashboard.
    pub href: Option<String>,
}

/// A row of the Services page.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub target: TargetView,
    pub node_id: u64,
    pub node_name: String,
    pub version: String,
    pub uptime: String,
    pub connections: String,
    pub environment: String,
    pub cluster: String,
}

/// One filter of a list: its query key, its title, the values seen, the chosen one.
#[derive(Debug, Clone)]
pub struct FilterView {
    pub name: String,
    pub title: String,
    pub options: Vec<String>,
    pub current: String,
}

/// One query fingerprint in Query Analytics' list.
#[derive(Debug, Clone)]
pub struct QanRow {
    pub rank: usize,
    /// Its own page; empty for the "other" row.
    pub href: String,
    /// The normalised text, shortened for the list.
    pub text: String,
    /// The services it ran in (`db-1`, or `3 services`).
    pub services: String,
    /// Average active queries over the range (time / range), and the share of the total.
    pub load: String,
    pub share: String,
    /// The share as a bar width, 0 to 100.
    pub bar: u32,
    /// The load over the range (an inline SVG, see [`chart::sparkline`]).
    pub spark: String,
    pub count: String,
    pub per_second: String,
    pub mean: String,
    pub max: String,
    pub rows: String,
}

#[derive(Debug, Template)]
#[template(path = "qan.html")]
pub struct QanPage {
    pub nav: Option<Nav>,
    pub range: RangeView,
    pub filters: Vec<FilterView>,
    /// Where the filter form goes, and the query fields it keeps (the range, the order).
    pub filter_action: String,
    pub kept: Vec<(String, String)>,
    pub orders: Vec<Choice>,
    pub rows: Vec<QanRow>,
    pub other: Option<QanRow>,
    /// The whole selection's figures over the range.
    pub total_load: String,
    pub total_count: String,
    pub total_time: String,
    /// Fingerprints beyond the rows shown.
    pub more: usize,
    /// Whether any service reports queries at all (else the page says how to start).
    pub any: bool,
    pub engine: Option<String>,
}

/// One figure of a query over the range.
#[derive(Debug, Clone)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Template)]
#[template(path = "qan_query.html")]
pub struct QanQueryPage {
    pub nav: Option<Nav>,
    pub range: RangeView,
    pub id: String,
    pub text: String,
    pub example: Option<String>,
    /// An example exists but this role does not see it.
    pub example_hidden: bool,
    pub facts: Vec<Fact>,
    pub services: Vec<Choice>,
    pub panels: Vec<PanelView>,
    pub explore: String,
    /// Back to the list with the same filters and range.
    pub back: String,
    pub engine: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "services.html")]
pub struct ServicesPage {
    pub nav: Option<Nav>,
    pub filters: Vec<FilterView>,
    /// Where the filter form goes, and the query fields it keeps (none).
    pub filter_action: String,
    pub kept: Vec<(String, String)>,
    /// Services of every type, before filtering.
    pub total: usize,
    /// Shown rows that are down.
    pub down: usize,
    pub rows: Vec<ServiceView>,
    pub engine: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub nav: Option<Nav>,
    pub title: String,
    pub heading: String,
    /// Alerts firing on this node (a node's page).
    pub firing: usize,
    pub node: Option<NodeInfo>,
    pub dashboards: Vec<Choice>,
    pub range: RangeView,
    /// Why the charts are empty, when the engine is not ready.
    pub engine: Option<String>,
    pub panels: Vec<PanelView>,
}

/// One node in the overview.
#[derive(Debug, Clone)]
pub struct OverviewRow {
    pub id: u64,
    pub name: String,
    /// Alerts firing on it.
    pub firing: usize,
    pub status: &'static str,
    pub last_seen: String,
    /// Fractions (0..1) for cpu, mem and disk; load per core; uptime in seconds.
    pub cpu: Option<f64>,
    pub mem: Option<f64>,
    pub disk: Option<f64>,
    pub load: Option<f64>,
    pub uptime: Option<f64>,
    /// An inline SVG sparkline of CPU busy over the range.
    pub trend: String,
    /// Its database services and exporters, with their health.
    pub targets: Vec<TargetView>,
}

impl OverviewRow {
    pub fn pct(v: &Option<f64>) -> String {
        v.map_or_else(
            || "—".into(),
            |v| units::format(v, units::Unit::PercentUnit),
        )
    }
    pub fn load_text(&self) -> String {
        self.load.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
    }
    pub fn uptime_text(&self) -> String {
        self.uptime
            .map_or_else(|| "—".into(), units::format_duration_s)
    }
    /// `hot` at 90 % and more, `warm` at 75 %.
    pub fn level(v: &Option<f64>) -> &'static str {
        match v {
            Some(v) if *v >= 0.9 => "hot",
            Some(v) if *v >= 0.75 => "warm",
            _ => "",
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Option<Nav>,
    /// A one-time notice after an action that led here (a password changed).
    pub notice: Notice,
    pub columns: Vec<Choice>,
    pub desc: bool,
    pub range_query: String,
    pub range: RangeView,
    pub engine: Option<String>,
    pub can_add: bool,
    pub rows: Vec<OverviewRow>,
    /// Dashboards beyond the node one (operators' files).
    pub dashboards: Vec<Choice>,
}

/// A row of Explore's table: a series' labels and its value at the range's end.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub labels: String,
    pub value: String,
}

#[derive(Debug, Template)]
#[template(path = "explore.html")]
pub struct ExplorePage {
    pub nav: Option<Nav>,
    pub q: String,
    pub unit: String,
    /// The engine's metric names, offered as the query is typed (a datalist).
    pub metrics: Vec<String>,
    pub range: RangeView,
    pub engine: Option<String>,
    pub panel: Option<PanelView>,
    pub table: Vec<TableRow>,
}

/// A label of the picked metric, its values, and the one chosen.
#[derive(Debug, Clone)]
pub struct LabelFilter {
    pub name: String,
    pub values: Vec<String>,
    pub selected: String,
}

#[derive(Debug, Template)]
#[template(path = "browse.html")]
pub struct BrowsePage {
    pub nav: Option<Nav>,
    pub names: Vec<String>,
    pub metric: String,
    pub labels: Vec<LabelFilter>,
    pub range: RangeView,
    pub engine: Option<String>,
    pub panel: Option<PanelView>,
}
