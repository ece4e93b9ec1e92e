//! The agency's TOML configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which protocol the node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// auftrag's JSON API (`/api/v1/agency/…`): leases, heartbeats, long-poll.
    Auftrag,
    /// CRIMSy's NetJob XML (`/ui/rest/print`): works with an auftrag or a
    /// CRIMSy node; plain polling.
    Crimsy,
}

/// Seconds, written as an integer or a decimal number.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Secs {
    Int(u64),
    Float(f64),
}

impl Secs {
    fn duration(self) -> Result<Duration, String> {
        match self {
            Secs::Int(n) => Ok(Duration::from_secs(n)),
            Secs::Float(f) if f.is_finite() && f >= 0.0 => Ok(Duration::from_secs_f64(f)),
            Secs::Float(f) => Err(format!("{f} is not a number of seconds")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    node: String,
    #[serde(default = "default_protocol")]
    protocol: Protocol,
    secret_file: PathBuf,
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    job_types: Vec<String>,
    script: PathBuf,
    name: Option<String>,
    poll_interval_secs: Option<Secs>,
    long_poll_secs: Option<Secs>,
    max_jobs: Option<usize>,
    job_timeout_secs: Option<Secs>,
    output_limit_bytes: Option<usize>,
    stderr_tail_bytes: Option<usize>,
    heartbeat_secs: Option<Secs>,
    shutdown_grace_secs: Option<Secs>,
    max_backoff_secs: Option<Secs>,
    ca_cert: Option<PathBuf>,
}

fn default_protocol() -> Protocol {
    Protocol::Auftrag
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the node, without a trailing slash.
    pub node: String,
    pub protocol: Protocol,
    /// Never logged.
    pub secret: String,
    pub queues: Vec<String>,
    pub job_types: Vec<String>,
    pub script: PathBuf,
    pub name: String,
    pub poll_interval: Duration,
    /// 0: plain polling every `poll_interval`.
    pub long_poll: Duration,
    pub max_jobs: usize,
    pub job_timeout: Duration,
    pub output_limit: usize,
    pub stderr_tail: usize,
    /// `None`: a third of the lease the node grants.
    pub heartbeat: Option<Duration>,
    pub shutdown_grace: Duration,
    pub max_backoff: Duration,
    pub ca_cert: Option<PathBuf>,
}

/// The secret: the first line of the file that does not start with `#`.
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    let line = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .map(|l| l.trim_end_matches('\r'))
        .ok_or_else(|| {
            format!(
                "the secret file {} has no line that does not start with `#`",
                path.display()
            )
        })?;
    if line.chars().count() < 8 {
        return Err(format!(
            "the secret in {} is shorter than 8 characters",
            path.display()
        ));
    }
    Ok(line.to_owned())
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        let raw: Raw =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let dur = |what: &str, v: Option<Secs>, default: Duration| -> Result<Duration, String> {
            v.map(|s| s.duration().map_err(|e| format!("`{what}`: {e}")))
                .transpose()
                .map(|d| d.unwrap_or(default))
        };
        if raw.queues.is_empty() && raw.job_types.is_empty() {
            return Err("name the `queues` or `job_types` this agency serves".into());
        }
        for t in &raw.job_types {
            if !matches!(t.as_str(), "PRINT" | "COMPUTE") {
                return Err(format!("job type `{t}` is unknown: PRINT or COMPUTE"));
            }
        }
        let node = raw.node.trim_end_matches('/').to_owned();
        if !(node.starts_with("http://") || node.starts_with("https://")) {
            return Err(format!(
                "`node` must be an http:// or https:// URL, not `{node}`"
            ));
        }
        let max_jobs = raw.max_jobs.unwrap_or(4);
        if !(1..=100).contains(&max_jobs) {
            return Err("`max_jobs` must be from 1 to 100".into());
        }
        let long_poll = dur(
            "long_poll_secs",
            raw.long_poll_secs,
            Duration::from_secs(25),
        )?;
        if long_poll > Duration::from_secs(60) {
            return Err("`long_poll_secs` must be at most 60".into());
        }
        let script = resolve(&raw.script);
        Ok(Self {
            node,
            protocol: raw.protocol,
            secret: read_secret(&resolve(&raw.secret_file))?,
            queues: raw.queues,
            job_types: raw.job_types,
            script,
            name: raw.name.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_owned())
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "agency".into())
            }),
            poll_interval: dur(
                "poll_interval_secs",
                raw.poll_interval_secs,
                Duration::from_secs(5),
            )?,
            long_poll,
            max_jobs,
            job_timeout: dur(
                "job_timeout_secs",
                raw.job_timeout_secs,
                Duration::from_secs(3600),
            )?,
            output_limit: raw.output_limit_bytes.unwrap_or(1024 * 1024),
            stderr_tail: raw.stderr_tail_bytes.unwrap_or(4096),
            heartbeat: raw
                .heartbeat_secs
                .map(|s| s.duration().map_err(|e| format!("`heartbeat_secs`: {e}")))
                .transpose()?,
            shutdown_grace: dur(
                "shutdown_grace_secs",
                raw.shutdown_grace_secs,
                Duration::from_secs(30),
            )?,
            max_backoff: dur(
                "max_backoff_secs",
                raw.max_backoff_secs,
                Duration::from_secs(60),
            )?,
            ca_cert: raw.ca_cert.map(|p| resolve(&p)),
        })
    }
}
