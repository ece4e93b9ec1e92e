//! Talking to the node: auftrag's JSON API or CRIMSy's NetJob XML, both
//! authenticated with CRIMSy's token (a fresh nonce per request).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, Protocol};

/// A leased job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub job_type: String,
    /// The lease token (auftrag protocol); CRIMSy has none.
    pub lease: Option<String>,
    pub lease_secs: Option<u64>,
    pub input: Vec<u8>,
}

/// What the agency tells the node about a job.
#[derive(Debug, Clone)]
pub enum Report {
    /// Still running: extend the lease.
    Busy,
    Done {
        completed: bool,
        output: Vec<u8>,
        exit_code: Option<i64>,
        error: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Worth trying again later: the node is down, overloaded, or refused
    /// the token (secret or clock wrong: an operator must look).
    #[error("{0}")]
    Transient(String),
    /// The node refuses this report for good (lease lost, job finished or gone).
    #[error("{0}")]
    Refused(String),
}

pub struct Node {
    cfg: Config,
    http: reqwest::Client,
    key: [u8; 32],
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Node {
    pub fn new(cfg: Config) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("auftrag-agency/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read the CA certificate {}: {e}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("{} is not a PEM certificate: {e}", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let key = Sha256::digest(cfg.secret.as_bytes()).into();
        Ok(Self { cfg, http, key })
    }

    /// A fresh token: `hex(ms)#hex(rand)hex(rand)#hex(HMAC-SHA256(SHA-256(secret), "ts#nonce#"))`.
    pub fn token(&self) -> String {
        let ts = format!("{:x}", now_ms());
        let nonce = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{ts}#{nonce}#").as_bytes());
        format!("{ts}#{nonce}#{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Leases up to `free` jobs, waiting up to the long-poll time when the
    /// protocol allows it.
    pub async fn poll(&self, free: usize, skip: &[i64]) -> Result<Vec<Job>, NodeError> {
        match self.cfg.protocol {
            Protocol::Auftrag => self.poll_json(free).await,
            Protocol::Crimsy => self.poll_crimsy(free, skip).await,
        }
    }

    pub async fn report(&self, job: &Job, report: &Report) -> Result<(), NodeError> {
        match self.cfg.protocol {
            Protocol::Auftrag => self.report_json(job, report).await,
            Protocol::Crimsy => self.report_crimsy(job, report).await,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, NodeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| NodeError::Transient(format!("node unreachable: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(match status.as_u16() {
            401 => NodeError::Transient(
                "the node refused the agency token: check the secret file and the clock".into(),
            ),
            400 | 404 | 409 | 410 => NodeError::Refused(format!("{status}: {detail}")),
            _ => NodeError::Transient(format!("{status}: {detail}")),
        })
    }

    // ------------------------------------------------------------ JSON

    async fn poll_json(&self, free: usize) -> Result<Vec<Job>, NodeError> {
        #[derive(Deserialize)]
        struct Answer {
            jobs: Vec<Leased>,
        }
        #[derive(Deserialize)]
        struct Leased {
            id: i64,
            queue: String,
            job_type: String,
            lease: String,
            lease_secs: u64,
            input_base64: String,
        }
        let body = serde_json::json!({
            "agency": self.cfg.name,
            "queues": self.cfg.queues,
            "job_types": self.cfg.job_types,
            "wait_secs": self.cfg.long_poll.as_secs(),
            "max_jobs": free,
        });
        let req = self
            .http
            .post(format!("{}/api/v1/agency/poll", self.cfg.node))
            .header("Authorization", format!("Agency {}", self.token()))
            .timeout(self.cfg.long_poll + Duration::from_secs(30))
            .json(&body);
        let resp = match self.send(req).await {
            Err(NodeError::Refused(e)) => {
                return Err(NodeError::Transient(format!("poll refused: {e}")));
            }
            other => other?,
        };
        let answer: Answer = resp
            .json()
            .await
            .map_err(|e| NodeError::Transient(format!("poll answer unreadable: {e}")))?;
        answer
            .jobs
            .into_iter()
            .map(|j| {
                Ok(Job {
                    input: B64.decode(j.input_base64.as_bytes()).map_err(|e| {
                        NodeError::Transient(format!("job {} input is not base64: {e}", j.id))
                    })?,
                    id: j.id,
                    queue: j.queue,
                    job_type: j.job_type,
                    lease: Some(j.lease),
                    lease_secs: Some(j.lease_secs),
                })
            })
            .collect()
    }

    async fn report_json(&self, job: &Job, report: &Report) -> Result<(), NodeError> {
        #[derive(Serialize)]
        struct Body<'a> {
            lease: &'a str,
            status: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            output_base64: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            exit_code: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a str>,
        }
        let lease = job.lease.as_deref().unwrap_or_default();
        let body = match report {
            Report::Busy => Body {
                lease,
                status: "BUSY",
                output_base64: None,
                exit_code: None,
                error: None,
            },
            Report::Done {
                completed,
                output,
                exit_code,
                error,
            } => Body {
                lease,
                status: if *completed { "COMPLETED" } else { "FAILED" },
                output_base64: Some(B64.encode(output)),
                exit_code: *exit_code,
                error: error.as_deref(),
            },
        };
        let req = self
            .http
            .post(format!("{}/api/v1/agency/jobs/{}", self.cfg.node, job.id))
            .header("Authorization", format!("Agency {}", self.token()))
            .timeout(Duration::from_secs(60))
            .json(&body);
        self.send(req).await.map(|_| ())
    }

    // ------------------------------------------------------------ CRIMSy

    async fn netjob(&self, fields: &[(&str, String)]) -> Result<Vec<NetJob>, NodeError> {
        // The token comes first: an auftrag node checks it before it reads
        // more than the body's first 256 KiB (a large `<output>` follows).
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><netJob><token>{}</token>",
            self.token()
        );
        for (name, value) in fields {
            xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        xml.push_str("</netJob>");
        let req = self
            .http
            .post(format!("{}/ui/rest/print", self.cfg.node))
            .header("Content-Type", "application/xml")
            .timeout(Duration::from_secs(60))
            .body(xml);
        let text = self
            .send(req)
            .await?
            .text()
            .await
            .map_err(|e| NodeError::Transient(format!("answer unreadable: {e}")))?;
        let answer: NetJob = quick_xml::de::from_str(&text)
            .map_err(|e| NodeError::Transient(format!("answer is not NetJob XML: {e}")))?;
        Ok(answer.joblist.map(|l| l.job).unwrap_or_default())
    }

    async fn poll_crimsy(&self, free: usize, skip: &[i64]) -> Result<Vec<Job>, NodeError> {
        let mut asks: Vec<Vec<(&str, String)>> = Vec::new();
        if self.cfg.queues.is_empty() {
            for t in &self.cfg.job_types {
                asks.push(vec![("jobtype", t.clone())]);
            }
        } else {
            for q in &self.cfg.queues {
                asks.push(vec![("queue", q.clone())]);
            }
        }
        let mut jobs = Vec::new();
        for mut ask in asks {
            if jobs.len() >= free {
                break;
            }
            ask.push(("requesttype", "QUERY".into()));
            ask.push(("status", "PENDING".into()));
            for nj in self.netjob(&ask).await? {
                let Some(id) = nj
                    .jobid
                    .as_deref()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                else {
                    continue;
                };
                if skip.contains(&id) || jobs.iter().any(|j: &Job| j.id == id) {
                    continue;
                }
                if !self.cfg.job_types.is_empty()
                    && !self
                        .cfg
                        .job_types
                        .iter()
                        .any(|t| Some(t.as_str()) == nj.jobtype.as_deref())
                {
                    continue;
                }
                if jobs.len() >= free {
                    break;
                }
                let input = match nj.input.as_deref().map(str::trim) {
                    Some(b) if !b.is_empty() => {
                        let cleaned: String =
                            b.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                        B64.decode(cleaned.as_bytes()).map_err(|e| {
                            NodeError::Transient(format!("job {id} input is not base64: {e}"))
                        })?
                    }
                    _ => Vec::new(),
                };
                let job = Job {
                    id,
                    queue: nj.queue.unwrap_or_default(),
                    job_type: nj.jobtype.unwrap_or_default(),
                    lease: None,
                    lease_secs: None,
                    input,
                };
                // Claim it: a CRIMSy node hands a PENDING job to every
                // QUERY until it is BUSY.
                match self.report_crimsy(&job, &Report::Busy).await {
                    Ok(()) => jobs.push(job),
                    Err(NodeError::Refused(e)) => {
                        tracing::info!(job = id, "job taken by someone else: {e}")
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(jobs)
    }

    async fn report_crimsy(&self, job: &Job, report: &Report) -> Result<(), NodeError> {
        let mut fields = vec![
            ("jobid", job.id.to_string()),
            ("requesttype", "UPDATE".to_owned()),
        ];
        match report {
            Report::Busy => fields.push(("status", "BUSY".into())),
            Report::Done {
                completed, output, ..
            } => {
                fields.push(("output", B64.encode(output)));
                fields.push((
                    "status",
                    if *completed { "COMPLETED" } else { "FAILED" }.into(),
                ));
            }
        }
        self.netjob(&fields).await.map(|_| ())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Debug, Default, Deserialize)]
struct NetJob {
    #[serde(default)]
    jobid: Option<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    jobtype: Option<String>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    joblist: Option<JobList>,
}

#[derive(Debug, Default, Deserialize)]
struct JobList {
    #[serde(default)]
    job: Vec<NetJob>,
}
