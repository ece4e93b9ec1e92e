//! `auftrag-agency`: runs inside the internal network, polls an auftrag (or
//! CRIMSy) node for jobs and runs each with a local script
//! (`SCRIPT TYPE QUEUE JOB_ID`, job data on stdin, result on stdout).

mod agent;
mod config;
mod node;
mod script;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "auftrag-agency",
    version,
    about = "Polls an auftrag or CRIMSy node for PRINT and COMPUTE jobs and runs them with a script"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agency until SIGTERM or Ctrl-C.
    Run {
        /// The TOML configuration file.
        #[arg(long, short, env = "AUFTRAG_AGENCY_CONFIG")]
        config: PathBuf,
    },
    /// Check the configuration file and print what it says (never the secret).
    Check {
        #[arg(long, short, env = "AUFTRAG_AGENCY_CONFIG")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match config::Config::load(&config) {
            Ok(cfg) => {
                println!(
                    "node {} ({:?}), queues {:?}, job types {:?}, script {}, max {} jobs",
                    cfg.node,
                    cfg.protocol,
                    cfg.queues,
                    cfg.job_types,
                    cfg.script.display(),
                    cfg.max_jobs
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let agent = match config::Config::load(&config).and_then(agent::Agent::new) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let (stop_tx, stop_rx) = watch::channel(false);
            tokio::spawn(async move {
                stop_signal().await;
                tracing::info!("stop requested");
                let _ = stop_tx.send(true);
            });
            agent.run(stop_rx).await;
            ExitCode::SUCCESS
        }
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
