//! Users, roles, sessions, tokens and audit events as stored.

use serde::{Deserialize, Serialize};

/// What a user or token may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Dashboards and queries.
    Viewer,
    /// Also nodes and exporters.
    Editor,
    /// Also users, tokens, settings and the audit trail.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many earlier password hashes are kept to refuse reuse.
pub const PASSWORD_HISTORY: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub role: Role,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Earlier PHC strings, newest first, at most [`PASSWORD_HISTORY`] - 1.
    pub previous_hashes: Vec<String>,
    /// Unix seconds.
    pub password_changed_at: i64,
    /// Set when an admin chose the password: the user must pick their own before anything else.
    pub must_change_password: bool,
    /// Bumped when the password or role changes; sessions from an older epoch are dead.
    pub session_epoch: u64,
    pub created_at: i64,
    /// The second factor, once the user has confirmed one.
    #[serde(default)]
    pub second_factor: Option<SecondFactor>,
    /// A TOTP secret offered for enrolment and not yet confirmed with a code, sealed.
    #[serde(default)]
    pub pending_second_factor: Option<String>,
    /// The IANA time zone the user reads times in (`Europe/Berlin`); none: UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODES: usize = 10;

/// A user's second factor: a TOTP secret and single-use recovery codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondFactor {
    /// The TOTP secret, sealed with the second-factor key for this user.
    pub sealed_secret: String,
    /// The step of the last code accepted: no code of that step or an earlier one is
    /// accepted again.
    pub last_step: Option<u64>,
    /// SHA-256 of each unused recovery code, hex.
    pub recovery: Vec<String>,
    pub enabled_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: u64,
    pub epoch: u64,
    pub created_at: i64,
    pub last_seen: i64,
    /// Sent back with every state-changing request.
    pub csrf: String,
    /// The password was right and the second factor is still to come: this session opens
    /// nothing but the second step, for a few minutes.
    #[serde(default)]
    pub awaiting_second_factor: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    /// The admin who created it; the token is valid only while they are still an admin.
    #[serde(default)]
    pub created_by_id: Option<u64>,
    /// The API token that created it, if one did: it is valid only while that token is
    /// (and so on up the lineage to the admin who made the first).
    #[serde(default)]
    pub created_by_token: Option<u64>,
    pub created_at: i64,
    /// Unix seconds; none: no expiry.
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
}

/// A machine enrolled with `perch-admin config`: the identity the server stamps on every
/// series its node token writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: u64,
    /// Unique (case-insensitively); the `node_name` label.
    pub name: String,
    /// How the operator reaches the machine (an address or DNS name), for display.
    pub address: String,
    /// The operator's labels (`--labels k=v,...`); the agent adds them to every series.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Who enrolled it: a user name, `token:<name>` or `enroll-token:<creator>`.
    pub enrolled_by: String,
    pub created_at: i64,
    /// SHA-256 of the node token, hex: the key of its entry in `node_tokens`.
    pub token_digest: String,
    /// Unix seconds of the last write the engine accepted (kept to the minute).
    pub last_push: Option<i64>,
}

impl Node {
    /// The `node_id` label.
    pub fn node_id(&self) -> String {
        self.id.to_string()
    }
}

/// A single-use, short-lived token that enrolls one machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollToken {
    pub id: u64,
    pub created_by: String,
    /// The user who created it; it is valid only while they are still an Editor or Admin.
    pub created_by_id: Option<u64>,
    /// The API token that created it, if one did; it is valid only while that token is.
    #[serde(default)]
    pub created_by_token: Option<u64>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What happened, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Setup,
    LoginSuccess,
    LoginFailure,
    Logout,
    Throttled,
    UserCreated,
    UserDeleted,
    RoleChanged,
    PasswordChanged,
    PasswordReset,
    TokenCreated,
    TokenRevoked,
    EnrollTokenCreated,
    NodeEnrolled,
    NodeDeleted,
    SecondFactorEnabled,
    SecondFactorDisabled,
    SecondFactorReset,
    RecoveryCodeUsed,
    RecoveryCodesRenewed,
    BackupTaken,
    BackupDownloaded,
    AlertRuleChanged,
    SilenceCreated,
    SilenceExpired,
    ContactPointSaved,
    ContactPointDeleted,
    ContactPointTested,
    RoutingChanged,
}

impl AuditKind {
    pub const ALL: [AuditKind; 29] = [
        AuditKind::Setup,
        AuditKind::LoginSuccess,
        AuditKind::LoginFailure,
        AuditKind::Logout,
        AuditKind::Throttled,
        AuditKind::UserCreated,
        AuditKind::UserDeleted,
        AuditKind::RoleChanged,
        AuditKind::PasswordChanged,
        AuditKind::PasswordReset,
        AuditKind::TokenCreated,
        AuditKind::TokenRevoked,
        AuditKind::EnrollTokenCreated,
        AuditKind::NodeEnrolled,
        AuditKind::NodeDeleted,
        AuditKind::SecondFactorEnabled,
        AuditKind::SecondFactorDisabled,
        AuditKind::SecondFactorReset,
        AuditKind::RecoveryCodeUsed,
        AuditKind::RecoveryCodesRenewed,
        AuditKind::BackupTaken,
        AuditKind::BackupDownloaded,
        AuditKind::AlertRuleChanged,
        AuditKind::SilenceCreated,
        AuditKind::SilenceExpired,
        AuditKind::ContactPointSaved,
        AuditKind::ContactPointDeleted,
        AuditKind::ContactPointTested,
        AuditKind::RoutingChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Setup => "setup",
            AuditKind::LoginSuccess => "login_success",
            AuditKind::LoginFailure => "login_failure",
            AuditKind::Logout => "logout",
            AuditKind::Throttled => "throttled",
            AuditKind::UserCreated => "user_created",
            AuditKind::UserDeleted => "user_deleted",
            AuditKind::RoleChanged => "role_changed",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::TokenCreated => "token_created",
            AuditKind::TokenRevoked => "token_revoked",
            AuditKind::EnrollTokenCreated => "enroll_token_created",
            AuditKind::NodeEnrolled => "node_enrolled",
            AuditKind::NodeDeleted => "node_deleted",
            AuditKind::SecondFactorEnabled => "second_factor_enabled",
            AuditKind::SecondFactorDisabled => "second_factor_disabled",
            AuditKind::SecondFactorReset => "second_factor_reset",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::RecoveryCodesRenewed => "recovery_codes_renewed",
            AuditKind::BackupTaken => "backup_taken",
            AuditKind::BackupDownloaded => "backup_downloaded",
            AuditKind::AlertRuleChanged => "alert_rule_changed",
            AuditKind::SilenceCreated => "silence_created",
            AuditKind::SilenceExpired => "silence_expired",
            AuditKind::ContactPointSaved => "contact_point_saved",
            AuditKind::ContactPointDeleted => "contact_point_deleted",
            AuditKind::ContactPointTested => "contact_point_tested",
            AuditKind::RoutingChanged => "routing_changed",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub time: i64,
    pub kind: AuditKind,
    /// Who acted (a user name, `token:<name>`, or empty for anonymous).
    pub actor: String,
    /// Whom it concerned (a user or token name), if anyone.
    pub subject: String,
    pub client: String,
    /// Why, for failures; what changed, for changes. Never a secret.
    pub detail: String,
}
