//! The one binary: argument parsing and wiring only. Each subcommand lives in its own module
//! with its own clap `Args`; nothing here decides anything about load balancers.

use clap::{Parser, Subcommand};

mod cloud_config;
#[cfg(feature = "dev-tools")]
mod cmd_demo;
mod cmd_doctor;
mod cmd_plan;
mod cmd_run;
#[cfg(feature = "dev-tools")]
mod cmd_sandbox;
mod doctor_render;

#[derive(Parser, Debug)]
#[command(
    name = "openstack-lb-controller",
    version,
    about = "Kubernetes LoadBalancer Services on OpenStack"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller.
    Run(cmd_run::Args),
    /// Check credentials, catalog, LBaaS generation, networks and quotas before enabling anything.
    Doctor(cmd_doctor::Args),
    /// Show what the controller would create, change or delete for a Service, changing nothing.
    Plan(cmd_plan::Args),
    /// Serve a local OpenStack-compatible cloud (Keystone, Neutron, Octavia) on 127.0.0.1.
    #[cfg(feature = "dev-tools")]
    Sandbox(cmd_sandbox::Args),
    /// Everything on one machine: sandbox, local Kubernetes API, controller and an example Service.
    #[cfg(feature = "dev-tools")]
    Demo(cmd_demo::Args),
}

/// One malloc arena instead of glibc's one per thread under contention (up to 8 per core):
/// the controller waits on the network, so the lock costs nothing measurable, while each
/// arena keeps its own freed pages. Measured on 300 Services over 200 nodes: peak RSS about
/// 4 MB lower (docs/reliability.md, "Memory"). An operator's `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`
/// wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_tuning() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    // SAFETY: called first in main, before any other thread exists; mallopt only sets an
    // allocator parameter and reports failure by its return value, which is not needed.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_tuning() {}

/// `default_level` applies unless RUST_LOG says otherwise.
fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    malloc_tuning();
    let cli = Cli::parse();
    // The demo narrates on stdout; the services it runs in-process only speak up when wrong.
    let default_level = match cli.command {
        #[cfg(feature = "dev-tools")]
        Command::Demo(_) => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => cmd_run::run(args).await,
            Command::Doctor(args) => cmd_doctor::run(args).await,
            Command::Plan(args) => cmd_plan::run(args).await,
            #[cfg(feature = "dev-tools")]
            Command::Sandbox(args) => cmd_sandbox::run(args).await,
            #[cfg(feature = "dev-tools")]
            Command::Demo(args) => cmd_demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
