//! `sekisho`: the gateway binary. Parses the command line, sets up logging, and hands the
//! config to the gateway crate; all request handling lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod demo;

/// A microservices gateway: routing, balancing, TLS, canaries, per-route SLIs.
#[derive(Parser, Debug)]
#[command(name = "sekisho", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API gateway with a config file.
    Serve {
        /// The YAML config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Longest wait for requests in flight on SIGTERM/SIGINT.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        drain_timeout: Duration,
        /// On SIGTERM/SIGINT, report unready on /readyz this long before closing the listeners
        /// (time for load balancers to stop sending; e.g. a Kubernetes preStop).
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        drain_delay: Duration,
        /// Check the config file (and the certificates it names) this often and reload when
        /// they change; `0s` turns watching off (SIGHUP and POST /reload still work).
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        watch_interval: Duration,
        /// Unix socket for zero-downtime binary upgrades: a new process started with
        /// `--take-over` and the same socket takes this one's listening sockets.
        #[arg(long)]
        upgrade_socket: Option<PathBuf>,
        /// Take over the listening sockets of the process serving on `--upgrade-socket`
        /// (it then drains and exits) instead of binding them.
        #[arg(long, requires = "upgrade_socket")]
        take_over: bool,
        /// Worker threads serving connections (default: one per CPU core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Check a config file: every error with its YAML path and line. Exit 1 if invalid.
    Validate {
        /// The YAML config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run the gateway on an embedded config with built-in demo services, and print what to try.
    Demo {
        /// Address of the public listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Address of the admin listener.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: std::net::SocketAddr,
        /// Print the embedded config and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Print the JSON Schema of the config file (for editors and CI checks).
    Schema,
    /// Run the egress proxy: pooled keep-alive connections to remote destinations
    /// (chocon-compatible flags and `Host: example.com.ccnproxy-https` convention).
    Egress(sekisho_egress::EgressArgs),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    sekisho_config::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Egress(args) => runtime(None).and_then(|rt| {
            rt.block_on(sekisho_egress::run(args))?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&sekisho_config::json_schema()).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { config } => runtime(None).and_then(|rt| rt.block_on(validate(&config))),
        Command::Serve {
            config,
            drain_timeout,
            drain_delay,
            watch_interval,
            upgrade_socket,
            take_over,
            workers,
        } => runtime(workers).and_then(|rt| {
            let upgrade =
                upgrade_socket.map(|socket| sekisho_gateway::Upgrade { socket, take_over });
            rt.block_on(serve(
                &config,
                drain_timeout,
                drain_delay,
                watch_interval,
                upgrade,
            ))
        }),
        Command::Demo {
            listen,
            admin,
            print_config,
        } => {
            if print_config {
                println!("{}", demo::CONFIG);
                Ok(ExitCode::SUCCESS)
            } else {
                runtime(None).and_then(|rt| rt.block_on(demo::run(listen, admin)))
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sekisho: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SEKISHO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Diagnostics go to stderr; stdout belongs to the access log.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match workers {
        // One worker: a current-thread runtime. Work stealing buys nothing with one thread
        // and costs on every request (wakeups through the shared injection queue, the
        // thread parking and unparking through a condvar, atomics on every task handoff).
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            anyhow::ensure!(n >= 1, "--workers must be at least 1");
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn validate(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let checked = match sekisho_config::load_file(path) {
        Ok(config) => sekisho_gateway::check(config).await,
        Err(errors) => Err(errors),
    };
    match checked {
        Ok(()) => {
            println!("{}: ok", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}: {e}", path.display());
            }
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve(
    path: &std::path::Path,
    drain: Duration,
    drain_delay: Duration,
    watch_interval: Duration,
    upgrade: Option<sekisho_gateway::Upgrade>,
) -> anyhow::Result<ExitCode> {
    let config = match sekisho_config::load_file(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}: {e}", path.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let source = sekisho_gateway::ReloadSource {
        path: Some(path.to_path_buf()),
        watch_interval: (!watch_interval.is_zero()).then_some(watch_interval),
    };
    let gateway = match sekisho_gateway::Gateway::start_upgradable(config, source, upgrade).await {
        Ok(g) => g,
        Err(sekisho_gateway::StartError::Config(errors)) => {
            for e in &errors.0 {
                eprintln!("{}: {e}", path.display());
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(config = %path.display(), "sekisho serving");
    run_until_signal(gateway, drain, drain_delay).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGTERM/SIGINT (graceful drain); SIGHUP reloads the config file.
pub(crate) async fn run_until_signal(
    gateway: sekisho_gateway::Gateway,
    drain: Duration,
    drain_delay: Duration,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = gateway.handed_over() => break,
            _ = hup.recv() => {
                // Errors are logged, counted and shown on /config by the gateway.
                if gateway.reload_file().await.is_ok() {
                    tracing::info!("config reloaded (SIGHUP)");
                }
            }
        }
    }
    tracing::info!(timeout = ?drain, "draining");
    gateway.shutdown(drain, drain_delay).await;
    Ok(())
}
