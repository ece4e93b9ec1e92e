//! CRIMSy's NetJob XML (`POST /ui/rest/print`), so that an unmodified CRIMSy
//! agency can poll auftrag and auftrag's agency can poll a CRIMSy node.
//!
//! A request is one `<netJob>` with `requesttype` QUERY or UPDATE and the
//! agency `token`. A QUERY filters by `jobid`, `jobtype`, `queue` and
//! `status`; a QUERY for PENDING jobs leases what it returns (one job, BUSY,
//! the queue's lease time), since CRIMSy agencies claim a job by asking for
//! it. An UPDATE sets `status` (and `output`, base64) of `jobid`. Answers are
//! a `<netJob>` whose `<joblist>` holds `<job>` elements of the same fields.

use serde::{Deserialize, Serialize};

use super::{Job, JobError, b64};

/// One NetJob element; every field optional, as in CRIMSy's JAXB class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "netJob")]
pub struct NetJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobid: Option<String>,
    /// Job data, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobdate: Option<String>,
    /// PRINT, COMPUTE, REPORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobtype: Option<String>,
    /// Job result, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownername: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// QUERY or UPDATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requesttype: Option<String>,
    /// PENDING, BUSY, FAILED, COMPLETED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joblist: Option<JobList>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    #[serde(default)]
    pub job: Vec<NetJob>,
}

impl NetJob {
    pub fn parse(xml: &str) -> Result<Self, JobError> {
        quick_xml::de::from_str(xml)
            .map_err(|e| JobError::BadRequest(format!("the body is not a NetJob document: {e}")))
    }

    pub fn to_xml(&self) -> String {
        let body = quick_xml::se::to_string(self).unwrap_or_default();
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>{body}")
    }

    /// A field's value, with blank meaning absent.
    pub fn get(field: &Option<String>) -> Option<&str> {
        field.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// A stored job as CRIMSy describes it.
    pub fn from_job(job: &Job) -> Self {
        Self {
            jobid: Some(job.id.to_string()),
            input: Some(b64(&job.input)),
            jobdate: Some(super::format_ms(job.created_ms)),
            jobtype: Some(job.job_type.clone()),
            output: job.output.as_ref().map(|o| b64(o)),
            ownername: Some(job.owner.clone()),
            queue: Some(job.queue.clone()),
            requesttype: None,
            status: Some(job.state.as_str().to_owned()),
            token: None,
            joblist: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let xml = "<?xml version=\"1.0\"?><netJob><jobtype>PRINT</jobtype><queue>labels</queue>\
                   <requesttype>QUERY</requesttype><status>PENDING</status><token>a#b#c</token></netJob>";
        let job = NetJob::parse(xml).unwrap();
        assert_eq!(job.queue.as_deref(), Some("labels"));
        assert_eq!(job.token.as_deref(), Some("a#b#c"));
        let answer = NetJob {
            requesttype: Some("QUERY".into()),
            joblist: Some(JobList {
                job: vec![NetJob {
                    jobid: Some("7".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let text = answer.to_xml();
        assert!(
            text.contains("<joblist><job><jobid>7</jobid></job></joblist>"),
            "{text}"
        );
        assert_eq!(NetJob::parse(&text).unwrap(), answer);
    }
}
