//! The sender task: claims due outbox rows, resolves each recipient to an
//! address and language, renders the template and sends the mail with
//! lettre over SMTP; records the outcome.
//!
//! A 4xx answer or no connection at all is temporary: the row is tried
//! again after a backoff that doubles from one second up to
//! [`SmtpConfig::retry_max`]. A 5xx answer is permanent: the row is FAILED
//! with the server's answer. Each row is one recipient, so a refusal of
//! one recipient does not hold up the others.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tracing::{debug, info, warn};

use super::outbox::{self, Claimed, Outcome};
use crate::error::EngineError;
use crate::http::server::Engine;

/// What `auftrag serve --smtp …` configures.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `smtp://HOST:PORT` (plain), `smtp://HOST:PORT?tls=required`
    /// (STARTTLS), `smtps://HOST:PORT` (TLS from the start).
    pub url: String,
    /// AUTH user and password.
    pub credentials: Option<(String, String)>,
    /// Seconds a connection, a command or an answer may take.
    pub timeout: Duration,
    /// The longest wait between two tries of a mail.
    pub retry_max: Duration,
}

/// What every mail needs, with or without a sender (also `mail preview`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The `From:` mailbox.
    pub from: String,
    /// The staff mailbox (recipients of kind `staff`).
    pub staff: Option<String>,
    /// The language of recipients whose language the domain does not know
    /// (default: `default_language` of notifications.xml).
    pub language: Option<String>,
    /// The start of `{link}`: `{link}` is `BASE/api/v1/orders/ID`.
    pub link_base: Option<String>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "auftrag@localhost".into(),
            staff: None,
            language: None,
            link_base: None,
        }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// A mail as rendered for one recipient.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub to: Mailbox,
    pub language: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
}

/// Why a row could not be rendered: a permanent failure.
type RenderError = String;

/// Resolves the recipient of `row` and renders its mail.
pub async fn render(
    engine: &Engine,
    settings: &MailSettings,
    row: &Claimed,
) -> Result<Result<Rendered, RenderError>, EngineError> {
    let n = engine.defs.notifications;
    let default_language = settings.language.as_deref().unwrap_or(n.default_language);
    let (address, name, language) = if let Some(person) = row.recipient.strip_prefix("person:") {
        let mut conn = engine.store.pool.acquire().await?;
        match engine.domain.person_mail(&mut conn, person).await? {
            Some(p) => (p.address, p.name, p.language),
            None => return Ok(Err(format!("person {person} has no e-mail address"))),
        }
    } else if let Some(address) = row.recipient.strip_prefix("address:") {
        (address.to_owned(), None, None)
    } else if row.recipient == "staff" {
        match &settings.staff {
            Some(s) => (s.clone(), None, None),
            None => {
                return Ok(Err(
                    "no staff mailbox is configured (serve --mail-staff)".into()
                ));
            }
        }
    } else {
        return Ok(Err(format!("unknown recipient `{}`", row.recipient)));
    };
    let to = match address.parse::<lettre::Address>() {
        Ok(a) => Mailbox::new(name, a),
        Err(e) => return Ok(Err(format!("`{address}` is not an e-mail address: {e}"))),
    };
    let Some(template) = n.template(&row.template) else {
        return Ok(Err(format!(
            "template `{}` is no longer in notifications.xml",
            row.template
        )));
    };
    let language = language.unwrap_or_else(|| default_language.to_owned());
    let text = template.text(&language, default_language);
    let mut vars: BTreeMap<String, String> = serde_json::from_str(&row.vars)
        .map_err(|e| EngineError::Internal(format!("outbox row {}: {e}", row.id)))?;
    vars.insert(
        "link".into(),
        match &settings.link_base {
            Some(base) => format!(
                "{}/api/v1/orders/{}",
                base.trim_end_matches('/'),
                row.order_id
            ),
            None => format!("/api/v1/orders/{}", row.order_id),
        },
    );
    vars.insert("recipient".into(), to.to_string());
    let domain = settings
        .from
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d.trim_end_matches('>'));
    Ok(Ok(Rendered {
        to,
        language: text.language.to_owned(),
        subject: super::render::fill(text.subject, &vars),
        body: super::render::fill(text.body, &vars),
        message_id: super::message_id(row.order_id, row.seq as usize, &row.recipient, domain),
    }))
}

/// The lettre message of a rendered mail.
pub fn message(settings: &MailSettings, mail: &Rendered) -> Result<Message, String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("the From address `{}`: {e}", settings.from))?;
    Message::builder()
        .from(from)
        .to(mail.to.clone())
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()))
        .header(AutoSubmitted)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| e.to_string())
}

/// The transport for `config`.
pub fn transport(config: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, EngineError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
        .map_err(|e| EngineError::Internal(format!("--smtp `{}`: {e}", config.url)))?
        .timeout(Some(config.timeout));
    if let Some((user, password)) = &config.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Sends `message`; the outcome as the outbox records it.
pub async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: Message,
    message_id: &str,
    attempts: i64,
    retry_max: Duration,
) -> Outcome {
    match transport.send(message).await {
        Ok(_) => Outcome::Sent {
            message_id: message_id.to_owned(),
        },
        Err(e) if e.is_permanent() => Outcome::Failed {
            error: e.to_string(),
        },
        Err(e) => {
            let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
            let wait = Duration::from_secs(1u64 << exp).min(retry_max);
            Outcome::Retry {
                next_ms: super::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                error: e.to_string(),
            }
        }
    }
}

/// Sends the outbox's mails until `shutdown` completes.
pub async fn run(
    engine: Arc<Engine>,
    settings: MailSettings,
    config: SmtpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError> {
    let transport = transport(&config)?;
    // a lease outlives a send (connect, a few commands, each within the timeout)
    let lease_ms = i64::try_from(config.timeout.as_millis() * 4).unwrap_or(i64::MAX);
    info!(url = %config.url, "sending mail");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let batch = match outbox::claim(&engine.store, 16, lease_ms).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "claiming mails");
                Vec::new()
            }
        };
        let idle = batch.is_empty();
        for row in batch {
            let (address, outcome) = match render(&engine, &settings, &row).await {
                Ok(Ok(mail)) => {
                    let address = mail.to.email.to_string();
                    let outcome = match message(&settings, &mail) {
                        Ok(m) => {
                            send(
                                &transport,
                                m,
                                &mail.message_id,
                                row.attempts,
                                config.retry_max,
                            )
                            .await
                        }
                        Err(error) => Outcome::Failed { error },
                    };
                    (Some(address), outcome)
                }
                Ok(Err(error)) => (None, Outcome::Failed { error }),
                Err(e) => {
                    // the database: leave the row to its lease
                    warn!(error = %e, id = row.id, "rendering a mail");
                    continue;
                }
            };
            match &outcome {
                Outcome::Sent { .. } => debug!(id = row.id, order = row.order_id, "mail sent"),
                Outcome::Retry { error, .. } => {
                    warn!(id = row.id, attempts = row.attempts, %error, "mail not sent; will retry")
                }
                Outcome::Failed { error } => warn!(id = row.id, %error, "mail refused"),
            }
            if let Err(e) = outbox::record(&engine.store, &row, address.as_deref(), &outcome).await
            {
                warn!(error = %e, id = row.id, "recording a mail's outcome");
            }
        }
        if idle {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = super::NEW_MAIL.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        } else if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
            return Ok(());
        }
    }
}
