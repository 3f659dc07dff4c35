//! MySQL and MariaDB: `performance_schema.events_statements_summary_by_digest` (PMM's
//! `perfschema` source), examples from `events_statements_history(_long)`.

use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, OptsBuilder, Row, SslOpts};

use super::QanError;
use super::deltas::{Counters, Key, Reading};
use crate::config::Service;
use crate::services::grants::{current_user_account, likely_mysql_account};
use perch_qan::{Dialect, Figures, QueryText, scrub};

/// Picoseconds (performance_schema's timer unit) in a second.
const PS: f64 = 1e12;

const READ: &str = "SELECT DIGEST, IFNULL(SCHEMA_NAME, ''), COUNT_STAR, SUM_TIMER_WAIT, \
     MAX_TIMER_WAIT, SUM_LOCK_TIME, SUM_ERRORS, SUM_WARNINGS, SUM_ROWS_AFFECTED, SUM_ROWS_SENT, \
     SUM_ROWS_EXAMINED, SUM_CREATED_TMP_TABLES, SUM_CREATED_TMP_DISK_TABLES, \
     SUM_SELECT_FULL_JOIN, SUM_NO_INDEX_USED, CAST(FIRST_SEEN AS CHAR) \
     FROM performance_schema.events_statements_summary_by_digest";

#[derive(Debug, Default)]
pub struct Reader {
    /// The connection, and the account the server matched for it (`'user'@'host'`, for a
    /// GRANT that fits).
    conn: Option<(Conn, String)>,
}

fn opts(service: &Service) -> OptsBuilder {
    let mut b = OptsBuilder::default()
        .user(Some(service.username.clone()))
        .pass((!service.password.is_empty()).then(|| service.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0);
    b = match &service.socket {
        Some(socket) => b.socket(Some(socket.display().to_string())),
        None => b
            .ip_or_hostname(service.host.clone().unwrap_or_else(|| "127.0.0.1".into()))
            .tcp_port(service.port.unwrap_or(service.kind.default_port())),
    };
    if service.tls || service.tls_skip_verify || service.tls_ca.is_some() {
        let mut ssl = SslOpts::default().with_danger_accept_invalid_certs(service.tls_skip_verify);
        if let Some(ca) = &service.tls_ca {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        if let (Some(cert), Some(key)) = (&service.tls_cert, &service.tls_key) {
            ssl = ssl.with_client_identity(Some(ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        b = b.ssl_opts(Some(ssl));
    }
    b
}

fn u(row: &Row, i: usize) -> u64 {
    row.get_opt::<u64, usize>(i)
        .and_then(Result::ok)
        .unwrap_or(0)
}

fn s(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

/// What the server's words mean for an operator: what to enable or grant.
fn explain(service: &Service, account: &str, e: mysql_async::Error) -> QanError {
    let text = e.to_string();
    if text.contains("command denied")
        || text.contains("Access denied") && text.contains("performance_schema")
    {
        return QanError::Unavailable(format!(
            "the user {} cannot read performance_schema ({text}); run on the server: GRANT SELECT ON performance_schema.* TO {account};",
            service.username,
        ));
    }
    QanError::Query(text)
}

impl Reader {
    async fn conn(&mut self, service: &Service) -> Result<(&mut Conn, &str), QanError> {
        if self.conn.is_none() {
            let mut conn = Conn::new(opts(service))
                .await
                .map_err(|e| QanError::Connect(e.to_string()))?;
            // `user@host` as the server matched it (its errors name the client's host).
            let current: Option<String> = conn
                .query_first("SELECT CURRENT_USER()")
                .await
                .ok()
                .flatten();
            let account = current
                .as_deref()
                .and_then(current_user_account)
                .unwrap_or_else(|| likely_mysql_account(service));
            self.conn = Some((conn, account));
        }
        self.conn
            .as_mut()
            .map(|(conn, account)| (conn, account.as_str()))
            .ok_or_else(|| QanError::Connect("not connected".into()))
    }

    /// Forgets the connection after a failure: the next reading connects again.
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// Whether the source can be read, or what to enable.
    pub async fn check(&mut self, service: &Service) -> Result<(), QanError> {
        let (conn, account) = self.conn(service).await?;
        let on: Option<u64> = conn
            .query_first("SELECT @@performance_schema")
            .await
            .map_err(|e| explain(service, account, e))?;
        if on != Some(1) {
            return Err(QanError::Unavailable(
                "performance_schema is off: add performance_schema=ON to the [mysqld] section of the server's my.cnf and restart it".into(),
            ));
        }
        // Digests need the global consumer, their own, and statement instruments that are
        // on (and timed, for the timings).
        let setup: Option<(Option<String>, Option<String>, u64)> = conn
            .query_first(
                "SELECT (SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'global_instrumentation'), \
                 (SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'statements_digest'), \
                 (SELECT COUNT(*) FROM performance_schema.setup_instruments WHERE NAME LIKE 'statement/%' AND ENABLED = 'YES' AND TIMED = 'YES')",
            )
            .await
            .map_err(|e| explain(service, account, e))?;
        let (global, digest, timed) = setup.unwrap_or_default();
        if global.as_deref() != Some("YES") {
            return Err(QanError::Unavailable(
                "performance_schema collects nothing: run UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'global_instrumentation'; (and add performance-schema-consumer-global-instrumentation=ON to my.cnf to keep it after a restart)".into(),
            ));
        }
        if timed == 0 {
            return Err(QanError::Unavailable(
                "performance_schema times no statements: run UPDATE performance_schema.setup_instruments SET ENABLED = 'YES', TIMED = 'YES' WHERE NAME LIKE 'statement/%'; (and add performance-schema-instrument='statement/%=ON' to my.cnf to keep it after a restart)".into(),
            ));
        }
        if digest.as_deref() != Some("YES") {
            return Err(QanError::Unavailable(
                "performance_schema does not keep statement digests: run UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'statements_digest'; (and add performance-schema-consumer-statements-digest=ON to my.cnf to keep it after a restart)".into(),
            ));
        }
        conn.query_drop(format!("{READ} LIMIT 1"))
            .await
            .map_err(|e| explain(service, account, e))
    }

    /// Whether statement history (the source of examples) is on.
    pub async fn has_history(&mut self, service: &Service) -> bool {
        let Ok((conn, _)) = self.conn(service).await else {
            return false;
        };
        // History is kept only of statements current events record.
        let on: Result<Option<(u64, u64)>, _> = conn
            .query_first(
                "SELECT SUM(NAME = 'events_statements_current' AND ENABLED = 'YES'), SUM(NAME IN ('events_statements_history', 'events_statements_history_long') AND ENABLED = 'YES') FROM performance_schema.setup_consumers",
            )
            .await;
        matches!(on, Ok(Some((1, n))) if n > 0)
    }

    pub async fn read(&mut self, service: &Service) -> Result<Reading, QanError> {
        let (conn, account) = self.conn(service).await?;
        let rows: Vec<Row> = conn
            .query(READ)
            .await
            .map_err(|e| explain(service, account, e))?;
        if rows.is_empty() {
            // performance_schema off (its tables are then empty) or no digests kept: say
            // what to enable rather than report nothing.
            self.check(service).await?;
        }
        let mut reading = Reading::default();
        for row in &rows {
            let key = Key {
                id: s(row, 0).unwrap_or_default().to_ascii_lowercase(),
                schema: s(row, 1).unwrap_or_default(),
                username: String::new(),
            };
            let figures = Figures {
                count: u(row, 2),
                time_s: u(row, 3) as f64 / PS,
                max_s: u(row, 4) as f64 / PS,
                lock_s: u(row, 5) as f64 / PS,
                errors: u(row, 6),
                warnings: u(row, 7),
                rows_affected: u(row, 8),
                rows_sent: u(row, 9),
                rows_examined: u(row, 10),
                tmp_tables: u(row, 11),
                tmp_disk_tables: u(row, 12),
                full_joins: u(row, 13),
                no_index_used: u(row, 14),
                ..Figures::default()
            };
            let epoch = s(row, 15).unwrap_or_default();
            reading.add(key, Counters { figures, epoch });
        }
        Ok(reading)
    }

    /// The normalised texts of `ids` (hex digests), and an example of each when `examples`.
    pub async fn texts(
        &mut self,
        service: &Service,
        ids: &[String],
        examples: bool,
    ) -> Result<Vec<QueryText>, QanError> {
        let ids: Vec<&String> = ids
            .iter()
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        let (conn, account) = self.conn(service).await?;
        let rows: Vec<(Option<String>, Option<String>)> = conn
            .query(format!(
                "SELECT DIGEST, MIN(DIGEST_TEXT) FROM performance_schema.events_statements_summary_by_digest WHERE DIGEST IN ({list}) GROUP BY DIGEST"
            ))
            .await
            .map_err(|e| explain(service, account, e))?;
        let mut out: Vec<QueryText> = rows
            .into_iter()
            .filter_map(|(id, text)| {
                Some(QueryText {
                    id: id?.to_ascii_lowercase(),
                    text: scrub(&text?, Dialect::MySql),
                    example: None,
                })
            })
            .collect();
        if examples {
            for table in [
                "events_statements_history",
                "events_statements_history_long",
            ] {
                // Empty or refused when that history is off: examples are a bonus.
                let found: Vec<(Option<String>, Option<String>)> = conn
                    .query(format!(
                        "SELECT DIGEST, MAX(SQL_TEXT) FROM performance_schema.{table} WHERE DIGEST IN ({list}) GROUP BY DIGEST"
                    ))
                    .await
                    .unwrap_or_default();
                for (id, example) in found {
                    let (Some(id), Some(example)) = (id, example) else {
                        continue;
                    };
                    let id = id.to_ascii_lowercase();
                    if let Some(t) = out.iter_mut().find(|t| t.id == id && t.example.is_none()) {
                        t.example = Some(example);
                    }
                }
            }
        }
        Ok(out)
    }
}
