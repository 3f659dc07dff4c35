//! PostgreSQL: `pg_stat_statements` (PMM's `pgstatements` source). Its texts are normalised
//! by the server (`$1`); it keeps no examples.

use tokio_postgres::{Client, Config, NoTls};

use super::QanError;
use super::deltas::{Counters, Key, Reading};
use crate::config::Service;
use crate::services::launch::pg_socket;
use perch_certs::trust::{TrustMode, client_config};
use perch_qan::{Dialect, Figures, QueryText, scrub};

#[derive(Debug, Default)]
pub struct Reader {
    client: Option<Client>,
    /// `total_exec_time` (13 and later) or `total_time`.
    old_columns: bool,
}

/// `queryid` as Perch names it: 16 hex digits.
pub fn id_of(queryid: i64) -> String {
    format!("{:016x}", queryid as u64)
}

fn queryid_of(id: &str) -> Option<i64> {
    u64::from_str_radix(id, 16).ok().map(|v| v as i64)
}

fn config(service: &Service) -> Config {
    let mut c = Config::new();
    c.user(&service.username)
        .dbname(service.database.as_deref().unwrap_or("postgres"))
        .application_name("perch-admin qan")
        .connect_timeout(std::time::Duration::from_secs(5));
    if !service.password.is_empty() {
        c.password(&service.password);
    }
    match &service.socket {
        Some(socket) => {
            let (dir, port) = pg_socket(socket, service.port);
            c.host_path(dir);
            c.port(port);
        }
        None => {
            c.host(service.host.as_deref().unwrap_or("127.0.0.1"));
            c.port(service.port.unwrap_or(5432));
        }
    }
    c
}

/// What the server's words mean for an operator: what to enable or create.
fn explain(service: &Service, e: &tokio_postgres::Error) -> QanError {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    };
    let database = service.database.as_deref().unwrap_or("postgres");
    if text.contains("shared_preload_libraries") {
        return QanError::Unavailable(format!(
            "pg_stat_statements is not loaded: set shared_preload_libraries = 'pg_stat_statements' in postgresql.conf and restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in the database {database}"
        ));
    }
    if text.contains("pg_stat_statements") && text.contains("does not exist") {
        return QanError::Unavailable(format!(
            "the pg_stat_statements extension is not in the database {database}: run CREATE EXTENSION pg_stat_statements; there (as a superuser; it needs shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, which takes a restart)"
        ));
    }
    QanError::Query(text)
}

impl Reader {
    async fn client(&mut self, service: &Service) -> Result<&Client, QanError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let config = config(service);
            let tls = service.tls || service.tls_skip_verify || service.tls_ca.is_some();
            let client = if tls {
                let rustls = if service.tls_skip_verify {
                    perch_certs::danger::learn_fingerprint().map(|(c, _)| c)
                } else {
                    client_config(&match &service.tls_ca {
                        Some(ca) => TrustMode::CaFile(ca.clone()),
                        None => TrustMode::Verified(None),
                    })
                }
                .map_err(|e| QanError::Connect(e.to_string()))?;
                let mut config = config;
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let (client, connection) = config
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(rustls))
                    .await
                    .map_err(|e| QanError::Connect(e.to_string()))?;
                tokio::spawn(connection);
                client
            } else {
                let (client, connection) = config
                    .connect(NoTls)
                    .await
                    .map_err(|e| QanError::Connect(e.to_string()))?;
                tokio::spawn(connection);
                client
            };
            let version: i32 = client
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await
                .map_err(|e| QanError::Query(e.to_string()))?
                .try_get(0)
                .unwrap_or(130_000);
            self.old_columns = version < 130_000;
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or_else(|| QanError::Connect("not connected".into()))
    }

    /// Forgets the connection after a failure: the next reading connects again.
    pub fn reset(&mut self) {
        self.client = None;
    }

    /// Whether the source can be read, or what to enable; a note when the user cannot see
    /// other users' statements.
    pub async fn check(&mut self, service: &Service) -> Result<Option<String>, QanError> {
        self.read(service).await?;
        let client = self.client(service).await?;
        let all: bool = client
            .query_one(
                "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .unwrap_or(true);
        Ok((!all).then(|| {
            format!(
                "the user {} sees only its own statements; to see everyone's run: GRANT pg_read_all_stats TO \"{}\";",
                service.username,
                service.username.replace('"', "\"\"")
            )
        }))
    }

    pub async fn read(&mut self, service: &Service) -> Result<Reading, QanError> {
        let old = {
            self.client(service).await?;
            self.old_columns
        };
        let (total, max) = if old {
            ("total_time", "max_time")
        } else {
            ("total_exec_time", "max_exec_time")
        };
        let sql = format!(
            "SELECT s.queryid, COALESCE(d.datname, ''), COALESCE(r.rolname, ''), s.calls, \
             s.{total}, s.{max}, s.rows, s.shared_blks_hit, s.shared_blks_read, \
             s.temp_blks_read, s.temp_blks_written \
             FROM pg_stat_statements(false) s \
             LEFT JOIN pg_database d ON d.oid = s.dbid \
             LEFT JOIN pg_roles r ON r.oid = s.userid \
             WHERE s.queryid IS NOT NULL"
        );
        let client = self.client(service).await?;
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(|e| explain(service, &e))?;
        let mut reading = Reading {
            // pg_stat_statements_info (14 and later) says when everything was reset.
            reset_mark: client
                .query_one("SELECT stats_reset::text FROM pg_stat_statements_info", &[])
                .await
                .ok()
                .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten()),
            ..Reading::default()
        };
        // A column of an unexpected type reads as zero rather than failing the reading.
        let n = |row: &tokio_postgres::Row, i: usize| {
            row.try_get::<_, i64>(i).unwrap_or(0).max(0) as u64
        };
        let ms = |row: &tokio_postgres::Row, i: usize| {
            row.try_get::<_, f64>(i).unwrap_or(0.0).max(0.0) / 1000.0
        };
        let text =
            |row: &tokio_postgres::Row, i: usize| row.try_get::<_, String>(i).unwrap_or_default();
        for row in &rows {
            let Ok(queryid) = row.try_get::<_, i64>(0) else {
                continue;
            };
            let key = Key {
                id: id_of(queryid),
                schema: text(row, 1),
                username: text(row, 2),
            };
            let figures = Figures {
                count: n(row, 3),
                time_s: ms(row, 4),
                max_s: ms(row, 5),
                rows_sent: n(row, 6),
                shared_blks_hit: n(row, 7),
                shared_blks_read: n(row, 8),
                temp_blks_read: n(row, 9),
                temp_blks_written: n(row, 10),
                ..Figures::default()
            };
            reading.add(
                key,
                Counters {
                    figures,
                    epoch: String::new(),
                },
            );
        }
        Ok(reading)
    }

    /// The normalised texts of `ids`.
    pub async fn texts(
        &mut self,
        service: &Service,
        ids: &[String],
    ) -> Result<Vec<QueryText>, QanError> {
        let ids: Vec<i64> = ids.iter().filter_map(|i| queryid_of(i)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client(service).await?;
        let rows = client
            .query(
                "SELECT queryid, min(query) FROM pg_stat_statements WHERE queryid = ANY($1) GROUP BY queryid",
                &[&ids],
            )
            .await
            .map_err(|e| explain(service, &e))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(QueryText {
                    id: id_of(r.try_get(0).ok()?),
                    text: scrub(
                        &r.try_get::<_, Option<String>>(1).ok()??,
                        Dialect::PostgreSql,
                    ),
                    example: None,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_round_trip_as_hex() {
        for q in [0, 1, -1, i64::MIN, i64::MAX, -8_765_432_109_876] {
            assert_eq!(queryid_of(&id_of(q)), Some(q));
        }
        assert_eq!(id_of(-1), "ffffffffffffffff");
    }
}
