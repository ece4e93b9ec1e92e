//! `auftrag`: the order engine's server and command-line interface.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use auftrag_engine::Engine;
use auftrag_engine::server::{serve, shutdown_signal};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "auftrag",
    version,
    about = "Order-processing engine: checks, executes or parks orders as definitions/ says"
)]
struct Cli {
    /// Database: a SQLite file path or URL (sqlite://FILE); created and
    /// migrated on first start.
    #[arg(
        long,
        global = true,
        env = "AUFTRAG_DATABASE",
        default_value = "auftrag.db"
    )]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "AUFTRAG_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Load demo persons, subnets and devices (idempotent) and print a
        /// `demo-token <role> <PERS_KEY> <token>` line per demo role.
        #[arg(long)]
        demo: bool,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a bearer token for a person of the device database.
    Issue {
        /// PERS_KEY of the person.
        #[arg(long)]
        person: String,
        /// Days until the token expires.
        #[arg(long, default_value_t = 30)]
        days: i64,
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
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::open(&cli.database, auftrag::domain()).await?;
    match cli.command {
        Command::Serve { listen, demo } => {
            if demo {
                for person in engine.seed_demo().await? {
                    let token = engine
                        .issue_token(&person.person, time::Duration::days(30))
                        .await?;
                    println!("demo-token {} {} {token}", person.role, person.person);
                }
            }
            let resumed = engine.resume_unfinished().await?;
            if resumed > 0 {
                tracing::info!(resumed, "resumed unfinished orders");
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            eprintln!("auftrag listening on http://{}", listener.local_addr()?);
            serve(Arc::new(engine), listener, shutdown_signal()).await?;
        }
        Command::Token {
            command: TokenCommand::Issue { person, days },
        } => {
            if days <= 0 {
                return Err("--days must be at least 1".into());
            }
            println!(
                "{}",
                engine
                    .issue_token(&person, time::Duration::days(days))
                    .await?
            );
        }
    }
    Ok(())
}
