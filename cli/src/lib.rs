//! The `auftrag` command line (server, tokens, demo data, history, mail,
//! definitions) as a library: the binary is [`main`] called with its domain
//! (`auftrag::domain()`). A crate of its own, not part of the binary's
//! package, so that an edit of the definitions — which rebuilds the tables
//! in that package — does not recompile (and re-optimise) the CLI.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use auftrag_engine::http::server::{Limits, serve_with, shutdown_signal};
use auftrag_engine::{Domain, Engine};
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
    /// Log lines as text for people or as JSON objects for log shippers
    /// (one per line, with the request's `request_id`).
    #[arg(long, global = true, env = "AUFTRAG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        /// Connections served at once; more wait until one closes.
        #[arg(long, env = "AUFTRAG_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Seconds a client has to send a request's head (and, on a kept-alive
        /// connection, to start the next one) before the connection is closed.
        #[arg(long, env = "AUFTRAG_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_timeout: u64,
        /// Seconds a client has to send a request's body after its head
        /// (else 408).
        #[arg(long, env = "AUFTRAG_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        body_timeout: u64,
        /// A file whose first line is the token Prometheus scrapes
        /// `/metrics` with (`Authorization: Bearer TOKEN`); staff tokens
        /// work too.
        #[arg(long, env = "AUFTRAG_METRICS_TOKEN_FILE")]
        metrics_token_file: Option<std::path::PathBuf>,
        /// Minutes a claim of staff on an order holds (the queue of the web
        /// pages, `POST /api/v1/orders/{id}/claim`).
        #[arg(long, env = "AUFTRAG_CLAIM_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=10080))]
        claim_minutes: i64,
        /// Language of the web pages for browsers that ask for neither
        /// German nor English.
        #[arg(long, env = "AUFTRAG_UI_LANGUAGE", value_enum, default_value_t = UiLanguage::En)]
        ui_language: UiLanguage,
        /// Hours a sign-in to the web pages lasts.
        #[arg(long, env = "AUFTRAG_UI_SESSION_HOURS", default_value_t = 8, value_parser = clap::value_parser!(i64).range(1..=720))]
        ui_session_hours: i64,
        /// Mark the web pages' cookies Secure (the server is reached over
        /// https through a proxy that sends no `X-Forwarded-Proto: https`).
        #[arg(long, env = "AUFTRAG_UI_SECURE_COOKIES")]
        ui_secure_cookies: bool,
        /// MongoDB history store: `mongodb://HOST:PORT/DATABASE`. Every
        /// change of an order is copied there (through an outbox in the
        /// database, so MongoDB being away loses nothing); searches and
        /// statistics are answered from it. Without it they are answered
        /// from the database.
        #[arg(long, env = "AUFTRAG_HISTORY")]
        history: Option<String>,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Print a one-time sign-in link to the web pages for a person.
    LoginLink {
        /// PERS_KEY of the person.
        #[arg(long)]
        person: String,
        /// Where people reach the server.
        #[arg(long, env = "AUFTRAG_UI_BASE", default_value = "http://127.0.0.1:8080")]
        base: String,
        /// Minutes until the link expires (it works once).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(i64).range(1..=10080))]
        minutes: i64,
    },
    /// Preview an order's mails or send a test mail.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Check the XML definitions or draw their workflows (needs no database).
    Definitions {
        #[command(subcommand)]
        command: DefinitionsCommand,
    },
    /// Explain whether a person may place an order, and why (the deciding
    /// policy and rule and the attribute values they read).
    Explain {
        /// PERS_KEY of the person.
        #[arg(long)]
        person: String,
        /// The order type, or its start (`change` for change_device).
        #[arg(long)]
        action: String,
        /// The device (host name) the order would be about.
        #[arg(long)]
        host: Option<String>,
        /// Print the full decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Set or rotate the shared secret agencies authenticate with.
    AgencySecret {
        #[command(subcommand)]
        command: AgencySecretCommand,
    },
    /// Search the order history or count it (reads the database, or the
    /// MongoDB history store with --history; operators see every order),
    /// or copy it to the MongoDB history store.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Fill the device database with a generated, realistic network (for
    /// benchmarks and load tests): persons in 50 org units, IT officers,
    /// subnets, devices with interfaces, aliases, admins, users, deputies.
    /// Deterministic for a seed; keys far from the demo data's.
    DemoData {
        /// Number of devices.
        #[arg(long)]
        devices: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write a generated history of this many orders about the
        /// network's devices, over the last two years (in bulk: nothing is
        /// checked or executed, the device database stays as generated).
        /// With a network already loaded (same --devices and --seed), only
        /// the orders are added.
        #[arg(long, default_value_t = 0)]
        orders: usize,
    },
}

/// Mail: where to send (`--smtp`; without it mails stay in the outbox) and
/// what every mail says about its sender.
#[derive(Debug, clap::Args)]
struct MailArgs {
    /// SMTP server: `smtp://HOST:PORT` (plain), `smtp://HOST:PORT?tls=required`
    /// (STARTTLS), `smtps://HOST:PORT` (TLS). Without it no mail is sent:
    /// mails wait in the outbox (shown with their order).
    #[arg(long, env = "AUFTRAG_SMTP")]
    smtp: Option<String>,
    /// File with the SMTP AUTH credentials: its first line not starting
    /// with `#` is `USER:PASSWORD`.
    #[arg(long, env = "AUFTRAG_SMTP_AUTH_FILE")]
    smtp_auth_file: Option<std::path::PathBuf>,
    /// Seconds a connection or an SMTP answer may take.
    #[arg(long, env = "AUFTRAG_SMTP_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    smtp_timeout: u64,
    /// The longest wait, in seconds, between two tries of a mail (the wait
    /// doubles from one second).
    #[arg(long, env = "AUFTRAG_SMTP_RETRY_MAX", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    smtp_retry_max: u64,
    /// The From address of every mail.
    #[arg(long, env = "AUFTRAG_MAIL_FROM", default_value = "auftrag@localhost")]
    mail_from: String,
    /// The staff mailbox (recipients of kind `staff`).
    #[arg(long, env = "AUFTRAG_MAIL_STAFF")]
    mail_staff: Option<String>,
    /// The language of recipients whose language the device database does
    /// not give (default: `default_language` of notifications.xml).
    #[arg(long, env = "AUFTRAG_MAIL_LANGUAGE")]
    mail_language: Option<String>,
    /// The server's public URL, the start of `{link}` in mails.
    #[arg(long, env = "AUFTRAG_MAIL_LINK_BASE")]
    mail_link_base: Option<String>,
}

impl MailArgs {
    fn settings(&self) -> auftrag_engine::notify::sender::MailSettings {
        auftrag_engine::notify::sender::MailSettings {
            from: self.mail_from.clone(),
            staff: self.mail_staff.clone(),
            language: self.mail_language.clone(),
            link_base: self.mail_link_base.clone(),
        }
    }

    fn smtp(&self) -> Result<Option<auftrag_engine::notify::sender::SmtpConfig>, String> {
        let Some(url) = &self.smtp else {
            return Ok(None);
        };
        let credentials = match &self.smtp_auth_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read --smtp-auth-file {}: {e}", path.display()))?;
                let line = text
                    .lines()
                    .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                    .ok_or("--smtp-auth-file has no `USER:PASSWORD` line")?;
                let (user, password) = line
                    .split_once(':')
                    .ok_or("--smtp-auth-file: write `USER:PASSWORD`")?;
                Some((user.to_owned(), password.to_owned()))
            }
        };
        Ok(Some(auftrag_engine::notify::sender::SmtpConfig {
            url: url.clone(),
            credentials,
            timeout: std::time::Duration::from_secs(self.smtp_timeout),
            retry_max: std::time::Duration::from_secs(self.smtp_retry_max),
        }))
    }
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Print what an order's mails say (recipient, subject, body), as the
    /// sender would render them now.
    Preview {
        /// The order's id.
        order_id: i64,
    },
    /// Send one test mail through --smtp.
    Test {
        /// The recipient.
        #[arg(long)]
        to: String,
    },
}

/// Where `auftrag history` reads.
#[derive(Debug, clap::Args)]
struct HistorySource {
    /// Ask the MongoDB history store (`mongodb://HOST:PORT/DB`) instead of
    /// the SQL database.
    #[arg(long, env = "AUFTRAG_HISTORY")]
    history: Option<String>,
}

// parsed once; the filters' size does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Print a page of history documents matching the filters as JSON
    /// (`{"orders": […], "next": CURSOR|null}`), as GET /api/v1/history.
    Search {
        #[arg(long)]
        host: Option<String>,
        /// PERS_KEY of the requester.
        #[arg(long)]
        requester: Option<String>,
        /// Order type.
        #[arg(long = "type")]
        order_type: Option<String>,
        /// Current state.
        #[arg(long)]
        state: Option<String>,
        /// A field the order changed.
        #[arg(long)]
        field: Option<String>,
        /// Its old value (or any field's, without --field).
        #[arg(long)]
        old: Option<String>,
        /// Its new value (or any field's, without --field).
        #[arg(long)]
        new: Option<String>,
        /// A check that reported an error or warning.
        #[arg(long)]
        check: Option<String>,
        /// `error` or `warning` (with --check).
        #[arg(long)]
        severity: Option<String>,
        /// Case-insensitive part of a comment in the states.
        #[arg(long)]
        text: Option<String>,
        /// Created at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Created before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// `newest` (default) or `oldest` first.
        #[arg(long)]
        sort: Option<String>,
        /// Documents per page, 1-1000 (50).
        #[arg(long)]
        limit: Option<String>,
        /// `next` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        source: HistorySource,
    },
    /// Copy every order's history document to the MongoDB history store
    /// (fills an empty or new one; documents it holds at the same or a
    /// later version stay).
    Export {
        /// Every order (the only scope there is; say it to mean it).
        #[arg(long, required = true)]
        all: bool,
        /// The MongoDB history store: `mongodb://HOST:PORT/DATABASE`.
        #[arg(long, env = "AUFTRAG_HISTORY")]
        history: String,
    },
    /// Print statistics as JSON, as GET /api/v1/stats.
    Stats {
        /// Created at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Created before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// `type` (default), `state`, `day`, `month` or a recorded attribute (`org`).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        source: HistorySource,
    },
}

/// `auftrag history …`: the API's queries, for operators (every order).
async fn history_command(
    mut engine: Engine,
    command: HistoryCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    use auftrag_engine::history::{search, stats};
    let params = |pairs: Vec<(&str, Option<String>)>| -> std::collections::HashMap<String, String> {
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect()
    };
    let problem = |e: auftrag_engine::EngineError| -> Box<dyn std::error::Error> {
        match e {
            auftrag_engine::EngineError::InvalidFields(problems) => problems
                .iter()
                .map(|p| {
                    format!(
                        "--{} {}",
                        p.field,
                        p.message.trim_start_matches("(a query parameter) ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
                .into(),
            other => other.to_string().into(),
        }
    };
    let source = match command {
        HistoryCommand::Export { all: _, history } => {
            return export_history(&engine, &history).await;
        }
        HistoryCommand::Search { ref source, .. } | HistoryCommand::Stats { ref source, .. } => {
            source.history.clone()
        }
    };
    if let Some(url) = source {
        engine.history = Some(auftrag_engine::history::mongo::HistoryDb::connect(&url).await?);
    }
    let json = match command {
        HistoryCommand::Export { .. } => unreachable!("answered above"),
        HistoryCommand::Search {
            host,
            requester,
            order_type,
            state,
            field,
            old,
            new,
            check,
            severity,
            text,
            since,
            until,
            sort,
            limit,
            cursor,
            source: _,
        } => {
            let query = params(vec![
                ("host", host),
                ("requester", requester),
                ("type", order_type),
                ("state", state),
                ("field", field),
                ("old", old),
                ("new", new),
                ("check", check),
                ("severity", severity),
                ("text", text),
                ("since", since),
                ("until", until),
                ("sort", sort),
                ("limit", limit),
                ("cursor", cursor),
            ]);
            let query = search::SearchQuery::parse(engine.defs, &query).map_err(problem)?;
            serde_json::to_string_pretty(&search::search(&engine, None, &query).await?)?
        }
        HistoryCommand::Stats {
            since,
            until,
            by,
            source: _,
        } => {
            let query = params(vec![("since", since), ("until", until), ("by", by)]);
            let query = stats::StatsQuery::parse(engine.defs, &query).map_err(problem)?;
            serde_json::to_string_pretty(&stats::stats(&engine, None, &query).await?)?
        }
    };
    println!("{json}");
    Ok(())
}

/// `auftrag history export --all`.
async fn export_history(engine: &Engine, history: &str) -> Result<(), Box<dyn std::error::Error>> {
    let db = auftrag_engine::history::mongo::HistoryDb::connect(history).await?;
    db.ensure(engine.defs, auftrag_engine::history::mongo_indexes())
        .await?;
    auftrag_engine::history::exporter::enable(&engine.store).await?;
    let started = std::time::Instant::now();
    let (read, written) = auftrag_engine::history::exporter::export_all(
        &engine.store,
        engine.defs,
        &db,
        |read, written| {
            if read % 100_000 == 0 {
                eprintln!("{read} orders read, {written} documents written");
            }
        },
    )
    .await?;
    println!(
        "exported {read} orders to {} ({written} documents written, the others were up to date) in {:.1} s",
        db.shown_url,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Subcommand)]
enum AgencySecretCommand {
    /// Set the secret (at least 8 characters) from the first line of FILE
    /// that does not start with `#` (`-` or no --file: standard input).
    Set {
        #[arg(long, default_value = "-")]
        file: String,
    },
    /// Generate a new secret (32 random bytes, hex), store it and print it
    /// once; write it into the agencies' secret files.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum DefinitionsCommand {
    /// Validate a definitions folder without building, with the build's
    /// file:line:col diagnostics; exit status 1 if it has errors.
    Check {
        /// The folder.
        #[arg(default_value = "definitions")]
        dir: std::path::PathBuf,
    },
    /// Print workflows as a diagram: those of a definitions folder, or
    /// without one those compiled into this binary.
    Graph {
        #[arg(long, default_value = "mermaid", value_parser = ["dot", "mermaid"])]
        format: String,
        /// A definitions folder (checked first, like `definitions check`).
        dir: Option<std::path::PathBuf>,
    },
}

/// `auftrag definitions …`: runs without opening the database.
fn definitions(
    command: DefinitionsCommand,
    compiled: &'static auftrag_engine::defs::Definitions,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        DefinitionsCommand::Check { dir } => match auftrag_compiler::compile_dir(&dir) {
            Ok(c) => {
                let m = &c.model;
                println!(
                    "{}: ok ({} workflows, {} order types, {} actions, {} checks, {} queues, {} attributes, {} policy items)",
                    dir.display(),
                    m.workflows.len(),
                    m.order_types.len(),
                    m.actions.len(),
                    m.checks.len(),
                    m.queues.len(),
                    m.attributes.len(),
                    m.policies.as_ref().map_or(0, |p| p.items.len()),
                );
                Ok(())
            }
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}\n");
                }
                Err(format!("{} error(s) in {}", diags.len(), dir.display()).into())
            }
        },
        DefinitionsCommand::Graph { format, dir } => {
            use auftrag_engine::workflow::graph::{Diagram, Format};
            let format: Format = format.parse()?;
            let diagram = match dir {
                None => Diagram::of(compiled),
                Some(dir) => match auftrag_compiler::compile_dir(&dir) {
                    Ok(c) => diagram_of(&c.model),
                    Err(diags) => {
                        for d in &diags {
                            eprintln!("{d}\n");
                        }
                        return Err(format!("{} error(s) in {}", diags.len(), dir.display()).into());
                    }
                },
            };
            print!("{}", diagram.render(format));
            Ok(())
        }
    }
}

/// The workflows of a compiled folder's model as the engine draws them
/// (the same labels and finals as from the compiled tables).
fn diagram_of(model: &auftrag_compiler::Model) -> auftrag_engine::workflow::graph::Diagram {
    use auftrag_compiler::model::NOCHANGE;
    use auftrag_engine::workflow::graph::{Diagram, StateBox, WorkflowDiagram, label};
    Diagram {
        workflows: model
            .workflows
            .iter()
            .map(|wf| {
                let mut edges = Vec::new();
                for (i, s) in wf.states.iter().enumerate() {
                    for t in &s.transitions {
                        let cond = t.condition.as_ref().map(|c| c.source.as_str());
                        let target = |id: u16| if id == NOCHANGE { i } else { usize::from(id) };
                        for r in &t.results {
                            edges.push((
                                i,
                                target(r.state_id),
                                label(&t.action, cond, Some(&r.ret)),
                            ));
                        }
                        let star = (!t.results.is_empty()).then_some("*");
                        edges.push((
                            i,
                            target(t.resulting_state_id),
                            label(&t.action, cond, star),
                        ));
                    }
                }
                WorkflowDiagram {
                    name: wf.name.clone(),
                    initial: usize::from(wf.initial),
                    states: wf
                        .states
                        .iter()
                        .map(|s| StateBox {
                            name: s.name.clone(),
                            is_final: s.is_final || s.transitions.is_empty(),
                            autorun: s.autorun,
                        })
                        .collect(),
                    edges,
                }
            })
            .collect(),
    }
}

/// `auftrag mail …`.
async fn mail_command(
    engine: &Engine,
    command: MailCommand,
    args: &MailArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    use auftrag_engine::notify::{outbox, sender};
    let settings = args.settings();
    match command {
        MailCommand::Preview { order_id } => {
            let mut conn = engine.store.pool.acquire().await?;
            let rows = outbox::rows_of(&mut conn, order_id).await?;
            drop(conn);
            if rows.is_empty() {
                println!("order {order_id} has no mails");
            }
            for row in rows {
                match sender::render(engine, &settings, &row).await? {
                    Ok(mail) => {
                        println!(
                            "To: {}\nSubject: {}\nMessage-ID: {}\nContent-Language: {}\n\n{}\n",
                            mail.to, mail.subject, mail.message_id, mail.language, mail.body
                        );
                    }
                    Err(why) => println!("({}: not sendable: {why})\n", row.recipient),
                }
            }
        }
        MailCommand::Test { to } => {
            let config = args
                .smtp()?
                .ok_or("`mail test` needs --smtp (or AUFTRAG_SMTP)")?;
            let mail = sender::Rendered {
                to: to.parse().map_err(|e| format!("--to `{to}`: {e}"))?,
                language: "en".into(),
                subject: "auftrag: test mail".into(),
                body: "This is a test mail from auftrag; mail delivery works.".into(),
                message_id: format!(
                    "<auftrag.test.{}@{}>",
                    auftrag_engine::notify::now_ms(),
                    settings
                        .from
                        .rsplit_once('@')
                        .map_or("localhost", |(_, d)| d)
                ),
            };
            let message = sender::message(&settings, &mail)?;
            let transport = sender::transport(&config)?;
            match sender::send(&transport, message, &mail.message_id, 1, config.retry_max).await {
                outbox::Outcome::Sent { message_id } => println!("sent {message_id} to {to}"),
                outbox::Outcome::Retry { error, .. } => {
                    return Err(format!("not sent (temporary): {error}").into());
                }
                outbox::Outcome::Failed { error } => {
                    return Err(format!("refused: {error}").into());
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum UiLanguage {
    De,
    En,
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
    /// Revoke every token issued to a person so far; tokens issued
    /// afterwards work. Running servers refuse the old ones within seconds.
    Revoke {
        /// PERS_KEY of the person.
        #[arg(long)]
        person: String,
    },
}

/// Runs the command line of the process's arguments for `domain` (on a
/// multi-threaded Tokio runtime of its own).
pub fn main(domain: Arc<dyn Domain>) -> ExitCode {
    start(domain)
}

#[tokio::main]
async fn start(domain: Arc<dyn Domain>) -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(cli, domain).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, domain: Arc<dyn Domain>) -> Result<(), Box<dyn std::error::Error>> {
    // `definitions` needs no database: dispatch it before opening one
    let command = match cli.command {
        Command::Definitions { command } => return definitions(command, domain.definitions()),
        other => other,
    };
    let engine = Engine::open(&cli.database, domain).await?;
    match command {
        Command::Definitions { .. } => unreachable!("dispatched above"),
        Command::Serve {
            listen,
            demo,
            max_connections,
            header_timeout,
            body_timeout,
            metrics_token_file,
            claim_minutes,
            ui_language,
            ui_session_hours,
            ui_secure_cookies,
            history,
            mail,
        } => {
            let mut engine = engine;
            let filled =
                auftrag_engine::history::document::backfill(&engine.store, engine.defs).await?;
            if filled > 0 {
                tracing::info!(filled, "derived history columns of older orders filled");
            }
            if let Some(url) = &history {
                let db = auftrag_engine::history::mongo::HistoryDb::connect(url).await?;
                auftrag_engine::history::exporter::enable(&engine.store).await?;
                engine.history = Some(db);
            }
            engine.claim_ttl = time::Duration::minutes(claim_minutes);
            engine.ui = auftrag_engine::ui::UiSettings {
                default_language: match ui_language {
                    UiLanguage::De => auftrag_engine::ui::i18n::Lang::De,
                    UiLanguage::En => auftrag_engine::ui::i18n::Lang::En,
                },
                session_ttl: time::Duration::hours(ui_session_hours),
                secure_cookies: ui_secure_cookies,
            };
            if let Some(file) = metrics_token_file {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    format!("cannot read the metrics token file {}: {e}", file.display())
                })?;
                let token = text.lines().next().unwrap_or_default().trim();
                if token.len() < 16 {
                    return Err(format!(
                        "the metrics token in {} must have at least 16 characters",
                        file.display()
                    )
                    .into());
                }
                engine.metrics_token = Some(token.to_owned());
            }
            let smtp = mail.smtp()?;
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
            // Catch SIGTERM before announcing the address: whoever waits
            // for that line may stop the server right away.
            let shutdown = shutdown_signal();
            eprintln!("auftrag listening on http://{}", listener.local_addr()?);
            let limits = Limits {
                max_connections: max_connections as usize,
                header_read_timeout: std::time::Duration::from_secs(header_timeout),
                body_read_timeout: std::time::Duration::from_secs(body_timeout),
            };
            let engine = Arc::new(engine);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let sender = match smtp {
                Some(config) => Some(tokio::spawn(auftrag_engine::notify::sender::run(
                    engine.clone(),
                    mail.settings(),
                    config,
                    async move {
                        let mut stopped = stopped;
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                ))),
                None => {
                    tracing::info!("no --smtp: mails stay in the outbox");
                    None
                }
            };
            let exporter = engine.history.clone().map(|db| {
                let mut stopped = stop.subscribe();
                tokio::spawn(auftrag_engine::history::exporter::run(
                    engine.clone(),
                    db,
                    auftrag_engine::history::mongo_indexes(),
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                ))
            });
            serve_with(engine, listener, shutdown, limits).await?;
            let _ = stop.send(true);
            if let Some(exporter) = exporter {
                exporter.await?;
            }
            if let Some(sender) = sender {
                sender.await??;
            }
        }
        Command::AgencySecret { command } => {
            let mut conn = engine.store.pool.acquire().await?;
            match command {
                AgencySecretCommand::Set { file } => {
                    let text = if file == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&file)
                            .map_err(|e| format!("cannot read {file}: {e}"))?
                    };
                    let secret = text
                        .lines()
                        .find(|l| !l.starts_with('#'))
                        .ok_or("no secret: the input has no line that does not start with `#`")?;
                    auftrag_engine::jobs::token::set_secret(&mut conn, secret).await?;
                    eprintln!("agency secret set; agencies must use the same secret");
                }
                AgencySecretCommand::Rotate => {
                    let secret = auftrag_engine::jobs::token::rotate_secret(&mut conn).await?;
                    println!("{secret}");
                }
            }
        }
        Command::Explain {
            person,
            action,
            host,
            json,
        } => {
            engine.domain.check_person_key(&person)?;
            let response =
                auftrag_engine::pdp::pep::explain(&engine, &person, &action, host.as_deref())
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&response)?);
            } else {
                println!("{}", auftrag_engine::pdp::summary(&response));
                for o in &response.obligations {
                    println!("obligation {} ({})", o.id, o.description);
                }
            }
        }
        Command::Mail { command, mail } => mail_command(&engine, command, &mail).await?,
        Command::History { command } => history_command(engine, command).await?,
        Command::DemoData {
            devices,
            seed,
            orders,
        } => {
            if devices == 0 {
                return Err("--devices must be at least 1".into());
            }
            let domain = engine.domain.clone();
            domain
                .generate(&engine.store, engine.defs, devices, seed, orders, &|line| {
                    println!("{line}")
                })
                .await?;
            engine.store.analyze().await?;
        }
        Command::Token {
            command: TokenCommand::Revoke { person },
        } => {
            let epoch = engine.revoke_tokens(&person).await?;
            eprintln!(
                "tokens of person {person} revoked (token epoch {epoch}); running servers refuse them within {} seconds; issue a new one with `auftrag token issue --person {person}`",
                auftrag_engine::http::auth::SUBJECT_CHECK_TTL.as_secs()
            );
        }
        Command::LoginLink {
            person,
            base,
            minutes,
        } => {
            engine.domain.check_person_key(&person)?;
            let secret = auftrag_engine::ui::session::create_link(
                &engine,
                &person,
                time::Duration::minutes(minutes),
            )
            .await?;
            println!("{}/ui/login/{secret}", base.trim_end_matches('/'));
        }
        Command::Token {
            command: TokenCommand::Issue { person, days },
        } => {
            if days <= 0 {
                return Err("--days must be at least 1".into());
            }
            engine.domain.check_person_key(&person)?;
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
