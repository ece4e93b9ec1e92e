//! The agency's loop: poll for as many jobs as there are free slots, run each
//! in its own task with heartbeats, report results (again, once the node is
//! back, when it was down), stop cleanly on SIGTERM.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::config::{Config, Protocol};
use crate::node::{Job, Node, NodeError, Report};
use crate::script::{self, Limits};

/// Results the node has not taken yet.
type Outbox = Arc<Mutex<Vec<(Job, Report)>>>;

pub struct Agent {
    cfg: Config,
    node: Arc<Node>,
    slots: Arc<Semaphore>,
    running: Arc<Mutex<HashSet<i64>>>,
    outbox: Outbox,
    /// Turns true when running scripts must be killed (shutdown grace over).
    kill: watch::Sender<bool>,
}

impl Agent {
    pub fn new(cfg: Config) -> Result<Self, String> {
        let node = Arc::new(Node::new(cfg.clone())?);
        Ok(Self {
            slots: Arc::new(Semaphore::new(cfg.max_jobs)),
            cfg,
            node,
            running: Arc::default(),
            outbox: Arc::default(),
            kill: watch::channel(false).0,
        })
    }

    /// Runs until `stop` turns true; then stops polling, waits for running
    /// jobs up to the grace time, kills and reports the rest as FAILED.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        info!(
            node = %self.cfg.node,
            protocol = ?self.cfg.protocol,
            queues = ?self.cfg.queues,
            job_types = ?self.cfg.job_types,
            max_jobs = self.cfg.max_jobs,
            "agency started"
        );
        let mut tasks = JoinSet::new();
        let mut backoff = Duration::from_millis(500);
        loop {
            if *stop.borrow() {
                break;
            }
            // Results first: a result held back while the node was down is
            // delivered before this agency asks for (and might re-lease) work.
            if !self.flush_outbox().await {
                if sleep_or_stop(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(self.cfg.max_backoff);
                continue;
            }
            // Wait for a free slot (a long job never blocks the others).
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => p.expect("semaphore open"),
                _ = stop.wait_for(|s| *s) => break,
            };
            let free = self.slots.available_permits() + 1;
            let skip: Vec<i64> = self.running.lock().expect("lock").iter().copied().collect();
            let polled = tokio::select! {
                r = self.node.poll(free, &skip) => r,
                _ = stop.wait_for(|s| *s) => break,
            };
            match polled {
                Ok(jobs) => {
                    backoff = Duration::from_millis(500);
                    let empty = jobs.is_empty();
                    let mut permit = Some(permit);
                    for job in jobs {
                        let permit = match permit.take() {
                            Some(p) => p,
                            None => match self.slots.clone().try_acquire_owned() {
                                Ok(p) => p,
                                Err(_) => {
                                    warn!(job = job.id, "node handed out more jobs than asked for");
                                    self.slots.clone().acquire_owned().await.expect("open")
                                }
                            },
                        };
                        self.running.lock().expect("lock").insert(job.id);
                        tasks.spawn(run_job(
                            self.cfg.clone(),
                            self.node.clone(),
                            job,
                            self.kill.subscribe(),
                            self.outbox.clone(),
                            self.running.clone(),
                            permit,
                        ));
                    }
                    let plain_polling =
                        self.cfg.protocol == Protocol::Crimsy || self.cfg.long_poll.is_zero();
                    if empty
                        && plain_polling
                        && sleep_or_stop(&mut stop, self.cfg.poll_interval).await
                    {
                        break;
                    }
                }
                Err(e) => {
                    warn!(retry_in = ?backoff, "poll failed: {e}");
                    if sleep_or_stop(&mut stop, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    error!("job task failed: {e}");
                }
            }
        }

        let running = tasks.len();
        info!(
            running,
            grace = ?self.cfg.shutdown_grace,
            "stopping: no more polling; waiting for running jobs"
        );
        let waited = tokio::time::timeout(self.cfg.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if waited.is_err() {
            warn!(
                left = tasks.len(),
                "grace time over: killing the remaining scripts"
            );
            let _ = self.kill.send(true);
            while tasks.join_next().await.is_some() {}
        }
        // Last attempts to deliver what the node did not take.
        for _ in 0..5 {
            if self.flush_outbox().await {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let lost = self.outbox.lock().expect("lock").len();
        if lost > 0 {
            error!(
                lost,
                "results not delivered; the node hands those jobs out again when their leases expire"
            );
        }
        info!("agency stopped");
    }

    /// Delivers held-back results; false when the node is still unreachable.
    async fn flush_outbox(&self) -> bool {
        let pending: Vec<(Job, Report)> = std::mem::take(&mut *self.outbox.lock().expect("lock"));
        let mut iter = pending.into_iter();
        while let Some((job, report)) = iter.next() {
            match self.node.report(&job, &report).await {
                Ok(()) => info!(job = job.id, "held-back result delivered"),
                Err(NodeError::Refused(e)) => {
                    warn!(job = job.id, "held-back result refused: {e}")
                }
                Err(NodeError::Transient(e)) => {
                    debug!(job = job.id, "node still unreachable: {e}");
                    let mut outbox = self.outbox.lock().expect("lock");
                    outbox.push((job, report));
                    outbox.extend(iter);
                    return false;
                }
            }
        }
        true
    }
}

/// Sleeps, or returns true at once when `stop` turns true.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

async fn run_job(
    cfg: Config,
    node: Arc<Node>,
    job: Job,
    kill: watch::Receiver<bool>,
    outbox: Outbox,
    running: Arc<Mutex<HashSet<i64>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    info!(job = job.id, queue = %job.queue, job_type = %job.job_type, "job started");
    // Heartbeats keep the lease while the script runs.
    let interval = cfg.heartbeat.unwrap_or_else(|| {
        Duration::from_secs_f64((job.lease_secs.unwrap_or(30) as f64 / 3.0).max(0.2))
    });
    let heartbeat = {
        let node = node.clone();
        let job = job.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                match node.report(&job, &Report::Busy).await {
                    Ok(()) => debug!(job = job.id, "heartbeat"),
                    Err(NodeError::Refused(e)) => {
                        warn!(job = job.id, "lease lost: {e}");
                        break;
                    }
                    Err(NodeError::Transient(e)) => warn!(job = job.id, "heartbeat failed: {e}"),
                }
            }
        })
    };
    let limits = Limits {
        timeout: cfg.job_timeout,
        output: cfg.output_limit,
        stderr_tail: cfg.stderr_tail,
    };
    let report = match script::run(
        &cfg.script,
        &job.job_type,
        &job.queue,
        job.id,
        job.input.clone(),
        &limits,
        kill,
    )
    .await
    {
        Ok(done) if done.success() => {
            if done.truncated {
                warn!(
                    job = job.id,
                    limit = cfg.output_limit,
                    "output cut at the output limit"
                );
            }
            Report::Done {
                completed: true,
                output: done.stdout,
                exit_code: Some(0),
                error: done
                    .truncated
                    .then(|| format!("output cut at {} bytes", cfg.output_limit)),
            }
        }
        Ok(done) => {
            let why = done.failure(cfg.job_timeout);
            warn!(job = job.id, "job failed: {why}");
            Report::Done {
                completed: false,
                exit_code: done.exit_code.map(i64::from),
                output: done.stdout,
                error: Some(why),
            }
        }
        Err(e) => Report::Done {
            completed: false,
            output: Vec::new(),
            exit_code: None,
            error: Some(format!(
                "cannot start the script {}: {e}",
                cfg.script.display()
            )),
        },
    };
    heartbeat.abort();
    match node.report(&job, &report).await {
        Ok(()) => info!(job = job.id, "result delivered"),
        Err(NodeError::Refused(e)) => warn!(job = job.id, "result refused: {e}"),
        Err(NodeError::Transient(e)) => {
            warn!(job = job.id, "result not delivered, held back: {e}");
            outbox.lock().expect("lock").push((job.clone(), report));
        }
    }
    running.lock().expect("lock").remove(&job.id);
}
