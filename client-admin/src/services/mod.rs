//! Database services: how each kind's Debian exporter is found and started with the
//! service's credentials ([`launch`]), what its log lines mean ([`logline`]), which GRANT a
//! missing privilege needs ([`grants`]), and the one connection `add` makes first
//! ([`probe`]).

pub mod child;
pub mod grants;
pub mod launch;
pub mod logline;
pub mod probe;

use std::path::PathBuf;

use crate::config::ServiceType;

/// The exporter a kind of service needs: its program names (Debian's first, then
/// upstream's), and the Debian package that installs it.
pub struct ExporterKind {
    pub programs: &'static [&'static str],
    pub package: &'static str,
    /// The exporter's own gauge: 1 when it reached the database at the last scrape.
    pub up_metric: &'static str,
}

pub fn exporter_of(kind: ServiceType) -> ExporterKind {
    match kind {
        ServiceType::Mysql => ExporterKind {
            programs: &["prometheus-mysqld-exporter", "mysqld_exporter"],
            package: "prometheus-mysqld-exporter",
            up_metric: "mysql_up",
        },
        ServiceType::Postgresql => ExporterKind {
            programs: &["prometheus-postgres-exporter", "postgres_exporter"],
            package: "prometheus-postgres-exporter",
            up_metric: "pg_up",
        },
    }
}

/// Why a service's exporter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "the {title} exporter is not installed (looked for {programs} in PATH): install it with `apt-get install {package}` (Debian and Ubuntu), or put mysqld_exporter / postgres_exporter in PATH"
    )]
    NoExporter {
        title: &'static str,
        programs: String,
        package: &'static str,
    },
    #[error("{path}: cannot write the exporter's credentials: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Unusable(String),
    #[error("cannot start {program}: {error}")]
    Spawn {
        program: PathBuf,
        error: std::io::Error,
    },
}

/// The exporter program for `kind`, from PATH.
pub fn find_exporter(kind: ServiceType) -> Result<PathBuf, ServiceError> {
    let exporter = exporter_of(kind);
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for name in exporter.programs {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(ServiceError::NoExporter {
        title: kind.title(),
        programs: exporter.programs.join(" or "),
        package: exporter.package,
    })
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
