//! Running a job's script: `SCRIPT TYPE QUEUE JOB_ID`, the job data on stdin.
//!
//! stdout and stderr are read concurrently while the script runs, so a script
//! that writes a lot never blocks on a full pipe; stdout is kept up to the
//! output limit (the rest is read and dropped), stderr as its last bytes. The
//! script runs in its own process group: on timeout or shutdown the whole
//! group (the script and everything it started) is killed, and so is anything
//! it left running after it exited.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::watch;

/// How a script ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Killed because the agency stopped.
    pub cancelled: bool,
    pub stdout: Vec<u8>,
    /// stdout had more bytes than the limit.
    pub truncated: bool,
    pub stderr_tail: Vec<u8>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// Why the job failed, for the node.
    pub fn failure(&self, timeout: Duration) -> String {
        let tail = String::from_utf8_lossy(&self.stderr_tail);
        let tail = tail.trim_end();
        let why = if self.cancelled {
            "the agency stopped before the script finished; its process group was killed".to_owned()
        } else if self.timed_out {
            format!(
                "the script ran longer than {} s; its process group was killed",
                timeout.as_secs_f64()
            )
        } else if let Some(code) = self.exit_code {
            format!("the script exited with code {code}")
        } else {
            format!(
                "the script was killed by signal {}",
                self.signal.unwrap_or_default()
            )
        };
        if tail.is_empty() {
            why
        } else {
            format!("{why}; stderr: {tail}")
        }
    }
}

/// Reads `r` to its end, keeping the first `limit` bytes.
async fn read_head(mut r: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Reads `r` to its end, keeping the last `limit` bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * limit.max(1024) {
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
    }
    kept
}

fn kill_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no
        // memory is touched.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

pub struct Limits {
    pub timeout: Duration,
    pub output: usize,
    pub stderr_tail: usize,
}

/// Runs the script for one job. `cancel` turning true kills it.
pub async fn run(
    script: &Path,
    job_type: &str,
    queue: &str,
    job_id: i64,
    input: Vec<u8>,
    limits: &Limits,
    mut cancel: watch::Receiver<bool>,
) -> std::io::Result<Finished> {
    let mut child = Command::new(script)
        .arg(job_type)
        .arg(queue)
        .arg(job_id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child.id().map(|p| p as i32).unwrap_or_default();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = tokio::spawn(async move {
        // A script that does not read its input gets EPIPE; that is its choice.
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    let stdout = tokio::spawn(read_head(
        child.stdout.take().expect("piped stdout"),
        limits.output,
    ));
    let stderr = tokio::spawn(read_tail(
        child.stderr.take().expect("piped stderr"),
        limits.stderr_tail,
    ));

    let mut timed_out = false;
    let mut cancelled = false;
    let status = tokio::select! {
        status = child.wait() => Some(status?),
        () = tokio::time::sleep(limits.timeout) => { timed_out = true; None }
        _ = cancel.wait_for(|c| *c) => { cancelled = true; None }
    };
    let status = match status {
        Some(s) => s,
        None => {
            kill_group(pgid, libc::SIGTERM);
            match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
                Ok(s) => s?,
                Err(_) => {
                    kill_group(pgid, libc::SIGKILL);
                    child.wait().await?
                }
            }
        }
    };
    // Whatever the script left running in its group goes too; then the
    // pipes close and the readers finish.
    kill_group(pgid, libc::SIGKILL);
    writer.abort();
    let (stdout, truncated) = tokio::time::timeout(Duration::from_secs(10), stdout)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr_tail = tokio::time::timeout(Duration::from_secs(10), stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    Ok(Finished {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        cancelled,
        stdout,
        truncated,
        stderr_tail,
    })
}
