//! The engine as a running service: database, definitions, domain, token
//! keys, and the HTTP server with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::domain::{DemoPerson, Domain};
use crate::error::EngineError;
use crate::http::auth::TokenKeys;
use crate::store::{self, Store};
use crate::workflow::defs::Definitions;

pub struct Engine {
    pub store: Store,
    pub defs: &'static Definitions,
    pub domain: Arc<dyn Domain>,
    pub tokens: TokenKeys,
    /// The token Prometheus scrapes `/metrics` with, besides staff tokens
    /// (`auftrag serve --metrics-token-file`).
    pub metrics_token: Option<String>,
    /// How long a claim on an order holds (`auftrag serve --claim-minutes`;
    /// see [`crate::workflow::claims`]).
    pub claim_ttl: time::Duration,
    /// The web pages' settings (`crate::ui`).
    pub ui: crate::ui::UiSettings,
    /// The MongoDB history store, when `auftrag serve --history` names one;
    /// searches and statistics are answered from it instead of from SQL.
    pub history: Option<crate::history::mongo::HistoryDb>,
    /// What the history exporter last saw go wrong (`/healthz`).
    pub history_status: crate::history::exporter::ExportStatus,
    /// The read policy's conditions of the persons who listed or searched
    /// recently ([`crate::history::access::AccessCache`]).
    pub access: crate::history::access::AccessCache,
}

/// Axum state: the shared engine.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

impl Engine {
    /// Connects to `database`, applies migrations (engine, then domain) and
    /// loads the token key; the database is created when it is a missing
    /// SQLite file.
    pub async fn open(database: &str, domain: Arc<dyn Domain>) -> Result<Self, EngineError> {
        let store = Store::connect(database).await?;
        store.migrate(domain.migrator(store.backend)).await?;
        crate::history::access::index_facts(&store, domain.definitions()).await?;
        let mut conn = store.pool.acquire().await?;
        let tokens = TokenKeys::load_or_create(&mut conn).await?;
        drop(conn);
        crate::metrics::handle();
        Ok(Self {
            defs: domain.definitions(),
            store,
            domain,
            tokens,
            metrics_token: None,
            claim_ttl: time::Duration::minutes(60),
            ui: crate::ui::UiSettings::default(),
            history: None,
            history_status: Default::default(),
            access: Default::default(),
        })
    }

    /// Loads the domain's demo data and registers its staff (idempotent).
    pub async fn seed_demo(&self) -> Result<Vec<DemoPerson>, EngineError> {
        let mut tx = self.store.begin_write().await?;
        let people = self.domain.seed_demo(&mut tx).await?;
        for p in people.iter().filter(|p| p.staff) {
            store::add_staff(&mut tx, &p.person).await?;
        }
        tx.commit().await?;
        Ok(people)
    }

    /// Issues a token for an existing person.
    pub async fn issue_token(
        &self,
        person: &str,
        ttl: time::Duration,
    ) -> Result<String, EngineError> {
        let mut conn = self.store.pool.acquire().await?;
        if !self.domain.person_exists(&mut conn, person).await? {
            return Err(EngineError::Forbidden(format!(
                "there is no person with key `{person}`"
            )));
        }
        let epoch = crate::http::auth::token_epoch(&mut conn, person).await?;
        self.tokens.issue(person, epoch, ttl)
    }

    /// Revokes every token issued to `person` so far (whether or not the
    /// person still exists): their token epoch goes up, and tokens of an
    /// older one are refused — by this engine at once, by other running
    /// instances within [`crate::http::auth::SUBJECT_CHECK_TTL`]. Returns
    /// the new epoch.
    pub async fn revoke_tokens(&self, person: &str) -> Result<i64, EngineError> {
        let mut conn = self.store.write_conn().await?;
        let epoch = crate::http::auth::revoke(&mut conn, person).await?;
        drop(conn);
        self.tokens.forget(person);
        Ok(epoch)
    }

    /// Orders left in a state the engine would move on from by itself (a
    /// crash between storing and processing) are processed now. An order
    /// whose processing fails for a reason of its own (a stored row the
    /// engine cannot read, a handler that fails on its fields) does not
    /// stop the others or the start: it is put in the state its workflow
    /// reaches on errors, with the reason in its history
    /// ([`crate::workflow::executor::record_failure`]). One that fails
    /// because the database is out of reach stays for the next start.
    pub async fn resume_unfinished(&self) -> Result<usize, EngineError> {
        let mut resumed = 0;
        for workflow in self.defs.workflows {
            let movable: Vec<&str> = workflow
                .states
                .iter()
                .enumerate()
                .filter(|(i, s)| (*i as u16 == workflow.initial || s.autorun) && !s.is_final())
                .map(|(_, s)| s.name)
                .collect();
            for state in movable {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM auftrag_orders WHERE state = $1 AND closed = 0",
                )
                .bind(state)
                .fetch_all(&self.store.pool)
                .await?;
                for id in ids {
                    match crate::workflow::executor::resume(self, id).await {
                        Ok(_) => resumed += 1,
                        Err(e) if crate::store::commit::unreachable(&e) => {
                            warn!(id, error = %e, "resuming an order failed; it stays and is resumed on the next start");
                        }
                        Err(e) => {
                            error!(id, error = %e, "resuming an order failed; it is stopped with the reason in its history");
                            if let Err(e2) =
                                crate::workflow::executor::record_failure(self, workflow, id, &e)
                                    .await
                            {
                                error!(id, error = %e2, "recording the failure of an order failed; it stays");
                            }
                        }
                    }
                }
            }
        }
        Ok(resumed)
    }
}

/// Limits on what a client may hold of the server: connections, and the
/// time to send a request's head and body. A client in the DMZ that opens
/// connections and sends nothing (or a byte at a time) holds a task and a
/// socket each; these bound both.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; further ones wait in the kernel's
    /// accept backlog until one closes.
    pub max_connections: usize,
    /// Time to send the request line and headers (on a kept-alive
    /// connection: from the end of the previous response), else the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// Time to send a request's whole body, from the end of its head; a
    /// body still arriving then is refused with 408.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves the API on `listener` with the default [`Limits`] until
/// `shutdown` completes; requests in flight are finished first.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    serve_with(engine, listener, shutdown, Limits::default()).await
}

/// Serves the API on `listener` within `limits` until `shutdown`
/// completes; requests in flight are finished first.
///
/// A loop of its own around hyper rather than `axum::serve`, which offers
/// no header read timeout (hyper's needs a timer) and no connection limit.
pub async fn serve_with(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> Result<(), EngineError> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let app = crate::http::router(AppState { engine }, limits.body_read_timeout);
    tracing::debug!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.map_err(|e| EngineError::Internal(format!("server: {e}")))?,
        };
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, as
                    // axum::serve does, rather than spin or stop serving.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Responses go out at once: with Nagle's algorithm a response
        // written in two parts waits for the client's delayed ACK (up to
        // 40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on an accepted connection");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
///
/// The SIGTERM handler is installed when this is called, not when the future
/// is first polled: a SIGTERM right after the server says it listens must
/// stop it cleanly, not kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        info!("shutting down");
    }
}
