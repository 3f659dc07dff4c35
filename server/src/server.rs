//! Start-up, the listeners, and an orderly shutdown.
//!
//! Exit codes: 0 after a clean shutdown; 2 when the configuration or a certificate file is
//! unusable (the one line on stderr names the file and the fault); 1 for anything else at
//! runtime, such as an address that cannot be bound.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use perch_auth::{Auth, AuthConfig, LoginFailures, Store};
use perch_certs::LoadOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use std::os::unix::fs::DirBuilderExt;

use crate::alerting::{Alerting, AlertingConfig};
use crate::backup::{self, Backups};
use crate::config::ServeArgs;
use crate::engine::{Engine, EngineConfig, ExternalEngine, QueryLimiter, SeriesLimit};
use crate::features::gateway::{self, Gateway};
use crate::features::users;
use crate::front::{self, AccessLog, Connections, Front, HttpLimits};
use crate::private;
use crate::request::{App, BodyBudget};
use crate::router::{Router, largest_body_limit, reserved_segments};
use crate::selfmon::{ReasonLabels, SelfMetrics};
use crate::tls::{self, CertSource, Certificates};

/// How long a request body waits for room in the body budget before 503.
const BODY_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the server could not start; the exit code depends on whose fault it is.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Runtime(String),
}

impl StartError {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::from(2),
            Self::Runtime(_) => ExitCode::from(1),
        }
    }
}

pub fn main(args: ServeArgs) -> ExitCode {
    perch_log::init(&args.log, std::io::stdout);
    let workers = args.worker_threads.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        default_workers(cpus, args.external_engine.metrics_write_url.is_none())
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("perch-server: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "perch-server cannot start");
            eprintln!("perch-server: {e}");
            e.exit_code()
        }
    }
}

/// Failed logins counted in `perch_login_failures_total`, by reason.
fn login_failures(metrics: &SelfMetrics) -> LoginFailures {
    let family = metrics.login_failures.clone();
    LoginFailures::new(move |reason| {
        family.get_or_create(&ReasonLabels { reason }).inc();
    })
}

/// Worker threads when `--worker-threads` is not given: one per CPU when Perch runs alone
/// (an external engine), half as many (at least one) beside the bundled engine, which
/// needs the other half. Fewer workers also wake each other less: with one worker on a
/// 2-core machine, perch-server spends about a sixth less CPU per sample on the write path
/// and per request at the front door (BENCHMARKS.md).
fn default_workers(cpus: usize, bundled_engine: bool) -> usize {
    if bundled_engine {
        (cpus / 2).max(1)
    } else {
        cpus.max(1)
    }
}

async fn run(args: ServeArgs) -> Result<(), StartError> {
    let metrics = Arc::new(SelfMetrics::new());
    let data_dir = &args.listen.data_dir;
    let corrected = private::make_private(data_dir).map_err(|e| {
        StartError::Config(format!(
            "{}: cannot make Perch's folders private: {e}",
            data_dir.display()
        ))
    })?;
    if corrected != private::Corrected::default() {
        tracing::warn!(
            folders = corrected.folders,
            files = corrected.files,
            data_dir = %data_dir.display(),
            "Perch's files were readable by other users (an older install); made them private (0700 folders, 0600 files)"
        );
    }

    let sans = tls::wanted_names(&args.tls_san)
        .map_err(|e| StartError::Config(format!("--tls-san {e}")))?;
    let source = CertSource {
        dir: perch_certs::CertDir::new(args.listen.cert_dir()),
        ca_dir: args.listen.ca_dir(),
        sans,
        options: LoadOptions {
            allow_expired: args.allow_expired_cert,
        },
    };
    let certs = Certificates::start(&source, metrics.clone())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let tls_config = tls::server_config(certs.clone())
        .map_err(|e| StartError::Runtime(format!("TLS configuration: {e}")))?;

    let https = bind(args.listen.listen).await?;
    let redirect = match args.http_listen.0 {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let access_log = AccessLog::start(
        args.access_log_file.as_deref(),
        metrics.access_log_dropped.clone(),
    )
    .map_err(|e| {
        let path = args
            .access_log_file
            .as_deref()
            .unwrap_or(std::path::Path::new("-"));
        StartError::Config(format!(
            "{}: cannot open the access log: {e}",
            path.display()
        ))
    })?;

    let store_dir = args.listen.data_dir.join("perch").join("db");
    let store = Store::open(&store_dir)
        .map_err(|e| StartError::Config(format!("{}: {e}", store_dir.display())))?;
    let auth = Auth::new(
        store,
        AuthConfig {
            data_dir: args.listen.data_dir.clone(),
            session_idle: args.session_idle,
            session_lifetime: args.session_lifetime,
            password_min_len: args.password_min_length,
            password_max_age: args.password_max_age,
            require_second_factor: args.require_2fa,
        },
        login_failures(&metrics),
    )
    .map_err(StartError::Config)?;
    if let Some(file) = &args.admin_password_file
        && auth
            .admin_from_file(&args.admin_user, file)
            .await
            .map_err(StartError::Config)?
    {
        tracing::info!(user = %args.admin_user, "created the first admin from --admin-password-file");
    }

    let https_addr = local_addr(&https);
    let setup_code = auth
        .prepare_setup()
        .await
        .map_err(|e| StartError::Runtime(format!("preparing setup: {e}")))?;
    if let Some(code) = setup_code {
        announce_setup(&code, &args.tls_san, https_addr, &args.listen.data_dir);
    }
    let engine = match ExternalEngine::from_args(&args.external_engine, args.query_timeout)
        .map_err(StartError::Config)?
    {
        Some(external) => Engine::external(external),
        None => Engine::new(args.query_timeout),
    };
    let gateway = Arc::new(match &args.config {
        Some(file) => {
            Gateway::load(file, reserved_segments(), metrics.clone()).map_err(StartError::Config)?
        }
        None => Gateway::empty(metrics.clone()),
    });
    let auth = Arc::new(auth);
    let qan = qan_store(&args)?;
    let backups = Arc::new(backups(
        &args,
        auth.clone(),
        qan.clone(),
        engine.clone(),
        metrics.clone(),
    )?);
    let alerting = Alerting::new(alerting_config(&args, https_addr)).map_err(StartError::Config)?;
    let app = Arc::new(App {
        alerting: alerting.clone(),
        qan,
        qan_examples_for_viewers: args.qan_examples_for_viewers,
        dashboards_dir: args.listen.data_dir.join("dashboards"),
        engine: engine.clone(),
        query_limiter: QueryLimiter::new(args.max_queries_per_user),
        series_limit: SeriesLimit::new(args.max_new_series_per_node),
        auth,
        backups: backups.clone(),
        session_lifetime_s: args.session_lifetime.as_secs(),
        metrics: metrics.clone(),
        draining: false.into(),
        body_timeout: args.header_read_timeout,
        body_budget: BodyBudget::new(
            args.max_body_memory_mib.saturating_mul(1024 * 1024),
            largest_body_limit(),
            BODY_BUDGET_WAIT,
        ),
        certs: Some(certs.clone()),
        cert_dir: args.listen.cert_dir(),
    });
    let front = Arc::new(Front {
        router: Router::new(app.clone(), gateway.clone()),
        metrics: metrics.clone(),
        access_log,
        https_port: https_addr.map_or(443, |a| a.port()),
    });
    let max_connections = args.max_connections.max(1);
    let connections = Connections::new(
        max_connections,
        args.max_connections_per_address
            .unwrap_or((max_connections / 4).clamp(1, 256)),
        metrics.open_connections.clone(),
        metrics.connections_closed.clone(),
    );
    let limits = HttpLimits {
        handshake_timeout: args.handshake_timeout,
        header_read_timeout: args.header_read_timeout,
        max_header_bytes: args.max_header_bytes,
        idle_timeout: args.idle_timeout,
    };
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(front::serve_https(
        https,
        TlsAcceptor::from(tls_config),
        front.clone(),
        connections.clone(),
        limits,
        stop_rx.clone(),
    ));
    let redirect_addr = redirect.as_ref().and_then(local_addr);
    if let Some(listener) = redirect {
        tasks.spawn(front::serve_redirects(
            listener,
            front.clone(),
            connections.clone(),
            limits,
            stop_rx.clone(),
        ));
    }
    let sweeper = users::spawn_session_sweeper(app.auth.clone(), stop_rx.clone());
    let store_recovery = users::spawn_store_recovery(app.auth.clone(), stop_rx.clone());
    let supervisor = crate::engine::spawn(
        engine,
        EngineConfig {
            binary: args.victoria_metrics_bin.clone(),
            data_dir: args.listen.data_dir.join("victoriametrics"),
            retention: args.retention.clone(),
        },
        metrics.engine_restarts.clone(),
        stop_rx.clone(),
    );
    let alerting_tasks = alerting
        .spawn(
            app.engine.clone(),
            metrics.vmalert_restarts.clone(),
            metrics.alertmanager_restarts.clone(),
            stop_rx.clone(),
        )
        .await
        .map_err(StartError::Runtime)?;
    let self_scrape = crate::features::selfscrape::spawn(
        app.clone(),
        args.alerting.self_scrape_interval,
        stop_rx.clone(),
    );
    let control = backup::control::spawn(backups.clone(), &args.listen.data_dir, stop_rx.clone())
        .map_err(|e| {
        StartError::Runtime(format!(
            "{}: cannot open the control socket: {e}",
            backup::control::socket_path(&args.listen.data_dir).display()
        ))
    })?;
    let scheduled = backup::spawn_schedule(backups.clone(), stop_rx.clone());
    let proxy_routes = gateway.table().routes().len();
    let gateway_task = gateway::spawn(gateway, stop_rx.clone());
    let watcher = tls::spawn_watcher(certs, source, stop_rx);
    tracing::info!(
        https = %display_addr(https_addr),
        http_redirect = %display_addr(redirect_addr),
        version = env!("CARGO_PKG_VERSION"),
        proxy_routes,
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "perch-server is listening"
    );

    let signal = shutdown_signal().await;
    tracing::info!(
        signal,
        grace_s = args.shutdown_grace.as_secs_f64(),
        "shutting down: no new connections, finishing requests in flight"
    );
    app.draining.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = watcher.await;
    let _ = gateway_task.await;
    let _ = sweeper.await;
    let _ = store_recovery.await;
    let _ = control.await;
    if let Some(scheduled) = scheduled {
        let _ = scheduled.await;
    }
    let _ = self_scrape.await;
    for task in alerting_tasks {
        let _ = task.await;
    }
    let _ = supervisor.await;
    if connections.drained(args.shutdown_grace).await {
        tracing::info!("all connections closed; bye");
    } else {
        tracing::warn!("grace period over with connections still open; closing them");
    }
    front.access_log.flush();
    Ok(())
}

/// How alerting runs, from the flags; links in notifications name the first `--tls-san`.
fn alerting_config(args: &ServeArgs, https: Option<std::net::SocketAddr>) -> AlertingConfig {
    let a = &args.alerting;
    let host = args.tls_san.first().map_or("localhost", String::as_str);
    let port = https.map_or(443, |a| a.port());
    let external_url = if port == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{port}")
    };
    AlertingConfig {
        vmalert_bin: a.vmalert_bin.clone(),
        alertmanager_bin: a.alertmanager_bin.clone(),
        alertmanager_url: a.alertmanager_url.clone(),
        data_dir: args.listen.data_dir.clone(),
        evaluation_interval: a.alert_evaluation_interval,
        group_wait: a.alert_group_wait,
        group_interval: a.alert_group_interval,
        repeat_interval: a.alert_repeat_interval,
        external_url,
    }
}

/// Query Analytics' store of query texts in `<data>/qan`, kept as long as the engine keeps
/// their figures.
fn qan_store(args: &ServeArgs) -> Result<Arc<perch_qan::Store>, StartError> {
    let dir = args.listen.data_dir.join("qan");
    let limits = perch_qan::StoreLimits {
        per_service: args.qan_max_queries_per_service as usize,
        retention_s: crate::config::retention_seconds(&args.retention).unwrap_or(31 * 86_400),
        ..perch_qan::StoreLimits::default()
    };
    perch_qan::Store::open(&dir, limits)
        .map(Arc::new)
        .map_err(|e| StartError::Runtime(format!("{}: {e}", dir.display())))
}

/// The backup service, with the `--backup-*` flags checked and the backup folder made.
fn backups(
    args: &ServeArgs,
    auth: Arc<perch_auth::Auth>,
    qan: Arc<perch_qan::Store>,
    engine: Arc<Engine>,
    metrics: Arc<SelfMetrics>,
) -> Result<Backups, StartError> {
    let encryption = args
        .backup_keys()
        .encryption()
        .map_err(|e| StartError::Config(format!("backup keys: {e}")))?;
    if let Some(dir) = &args.backup_dir {
        if encryption.is_none() {
            return Err(StartError::Config(format!(
                "--backup-dir {}: name who can open the backups with --backup-recipient (age1... or an SSH public key), --backup-recipients-file or --backup-passphrase-file; backups are always encrypted",
                dir.display()
            )));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                StartError::Config(format!(
                    "--backup-dir {}: cannot create it: {e}",
                    dir.display()
                ))
            })?;
    }
    let settings = backup::Settings {
        dir: args.backup_dir.clone(),
        schedule: args.backup_schedule,
        keep: args.backup_keep,
        encryption,
    };
    if let (Some(dir), Some(schedule)) = (&settings.dir, &settings.schedule) {
        tracing::info!(dir = %dir.display(), schedule = %schedule.describe(), keep = settings.keep, "scheduled backups");
    }
    let sources = backup::Sources {
        data_dir: args.listen.data_dir.clone(),
        cert_dir: args.listen.cert_dir(),
        dashboards_dir: args.listen.data_dir.join("dashboards"),
        config_file: args.config.clone(),
        auth,
        qan,
    };
    Ok(Backups::new(
        sources,
        engine,
        args.listen.data_dir.join("victoriametrics"),
        metrics,
        settings,
    ))
}

/// The one place the setup code is shown: once, on stderr, as a banner for the operator
/// (`docker logs`), not in the JSON log. It is also in `<data>/setup-code` (mode 0600).
/// The URL names the first `--tls-san`, the name clients use; without one, this machine's
/// own name could be a container's id, so the banner says `<this host>`.
fn announce_setup(
    code: &str,
    tls_san: &[String],
    https: Option<std::net::SocketAddr>,
    data_dir: &std::path::Path,
) {
    let host = tls_san.first().map_or("<this host>", String::as_str);
    let port = match https.map(|a| a.port()) {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    tracing::info!(
        file = %data_dir.join("setup-code").display(),
        "no user exists yet: open /setup and enter the one-time setup code shown on stderr (valid 24 h, single use)"
    );
    eprintln!(
        "\n  Perch is not set up yet. Open https://{host}{port}/setup and enter this one-time code:\n\n      {code}\n\n  It is valid for 24 hours and works once; it is also in {}.\n",
        data_dir.join("setup-code").display()
    );
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (ports below 1024 need root, CAP_NET_BIND_SERVICE, or Docker's default unprivileged-port setting; or choose another with --listen / --http-listen)"
        } else if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another program listens there; stop it or choose another address)"
        } else {
            ""
        };
        StartError::Runtime(format!("cannot listen on {addr}: {e}{hint}"))
    })
}

fn local_addr(listener: &TcpListener) -> Option<std::net::SocketAddr> {
    listener.local_addr().ok()
}

fn display_addr(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_owned(), |a| a.to_string())
}

/// Resolves at SIGTERM or SIGINT, naming which.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::default_workers;

    #[test]
    fn the_bundled_engine_keeps_half_the_cpus() {
        assert_eq!(default_workers(1, true), 1);
        assert_eq!(default_workers(2, true), 1);
        assert_eq!(default_workers(3, true), 1);
        assert_eq!(default_workers(8, true), 4);
        assert_eq!(default_workers(2, false), 2);
        assert_eq!(default_workers(0, false), 1);
    }
}
