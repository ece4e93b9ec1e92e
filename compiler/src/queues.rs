//! `queues.xml`: job queues the agency polls (DESIGN.md §8).

use std::collections::HashMap;

use crate::model::{JobType, Queue};
use crate::parse::XQueues;
use crate::validate::{is_name, norm};
use crate::{Diagnostic, Source, suggest};

/// A duration such as `60s`, `5m`, `2h`, `30d` in seconds.
pub(crate) fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u32 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&v| v > 0)
}

pub(crate) fn build((src, x): &(Source, XQueues), diags: &mut Vec<Diagnostic>) -> Vec<Queue> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, q) in x.queues.iter().enumerate() {
        let Some(e) = src.idx.child(0, "queue", i) else {
            continue;
        };
        let pos = e.attr_pos("name");
        if !is_name(&q.name) {
            diags.push(src.diag(
                pos,
                format!("queue name `{}` is not a name", q.name),
                Some("use letters, digits and `_`, starting with a letter".into()),
            ));
            continue;
        }
        if let Some(&first) = seen.get(q.name.to_ascii_uppercase().as_str()) {
            diags.push(src.diag(
                pos,
                format!(
                    "duplicate queue `{}` (handlers name it `queues::{}`)",
                    q.name,
                    q.name.to_ascii_uppercase()
                ),
                Some(format!("first defined on line {}", src.line_of(first))),
            ));
            continue;
        }
        seen.insert(q.name.to_ascii_uppercase(), pos);
        let job_type = JobType::from_name(&q.job_type);
        if job_type.is_none() {
            diags.push(
                src.diag(
                    e.attr_pos("job_type"),
                    format!("unknown job type `{}`", q.job_type),
                    suggest(&q.job_type, JobType::NAMES)
                        .or(Some("job types are `PRINT` and `COMPUTE`".into())),
                ),
            );
        }
        let mut duration = |attr: &str, value: &str| {
            let d = parse_duration(value);
            if d.is_none() {
                diags.push(src.diag(
                    e.attr_pos(attr),
                    format!("`{attr}` must be a duration such as `60s`, `5m`, `2h` or `30d`, found `{value}`"),
                    None,
                ));
            }
            d
        };
        let lease = duration("lease", &q.lease);
        let retention = duration("retention", &q.retention);
        let attempts = q.attempts.trim().parse::<u32>().ok().filter(|&n| n >= 1);
        if attempts.is_none() {
            diags.push(src.diag(
                e.attr_pos("attempts"),
                format!(
                    "`attempts` must be a whole number of at least 1, found `{}`",
                    q.attempts
                ),
                None,
            ));
        }
        if let (Some(job_type), Some(lease_secs), Some(retention_secs), Some(max_attempts)) =
            (job_type, lease, retention, attempts)
        {
            out.push(Queue {
                name: q.name.clone(),
                description: norm(&q.description),
                job_type,
                lease_secs,
                max_attempts,
                retention_secs,
            });
        }
    }
    out
}
