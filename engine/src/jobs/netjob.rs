//! CRIMSy's NetJob XML (`POST /ui/rest/print`), so that an unmodified CRIMSy
//! agency can poll auftrag and auftrag's agency can poll a CRIMSy node.
//!
//! A request is one `<netJob>` with `requesttype` QUERY or UPDATE and the
//! agency `token`. A QUERY filters by `jobid`, `jobtype`, `queue` and
//! `status`; a QUERY for PENDING jobs leases what it returns (one job, BUSY,
//! the queue's lease time), since CRIMSy agencies claim a job by asking for
//! it. An UPDATE sets `status` (and `output`, base64) of `jobid`. Answers are
//! a `<netJob>` whose `<joblist>` holds `<job>` elements of the same fields.
//!
//! The endpoint faces the DMZ, so the XML is read by a bounded streaming
//! parser (quick-xml's [`Reader`], no recursion, no serde), in two steps:
//!
//! 1. before authentication, [`scan_token`] reads at most the first
//!    [`PRE_AUTH_BYTES`] of the body, only until the root's `<token>` ends;
//! 2. after the token is verified, [`NetJob::parse`] reads the whole body
//!    (at most [`MAX_BODY_BYTES`]).
//!
//! Both refuse a root other than `<netJob>`, DTDs and entities other than
//! XML's five and character references, elements nested deeper than
//! [`MAX_DEPTH`], more than [`MAX_ATTRIBUTES`] attributes on an element, more
//! than [`MAX_ELEMENTS`] elements and a field given twice. Their error texts
//! never echo the input beyond a short, cut name ([`shown`]).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;

use super::{Job, b64, shown};

/// Bytes of a `/ui/rest/print` body read before the token is verified: the
/// `<token>` element must end within them. Requests (QUERY, UPDATE of a
/// status, small outputs) are far smaller; an UPDATE with a larger output
/// must put `<token>` before `<output>` (auftrag's agency does).
pub const PRE_AUTH_BYTES: usize = 256 * 1024;
/// Largest `/ui/rest/print` body, read only after the token is verified: a
/// job's largest output ([`super::MAX_OUTPUT_BYTES`]) in base64 with line
/// breaks, and the other fields.
pub const MAX_BODY_BYTES: usize = 24 * 1024 * 1024;
/// Deepest nesting: `netJob` / `joblist` / `job` / field.
pub const MAX_DEPTH: usize = 4;
/// Most attributes on one element (NetJob has none; namespace declarations
/// are tolerated).
pub const MAX_ATTRIBUTES: usize = 8;
/// Most elements in one document: a request has a dozen; an answer of 100
/// jobs about 1,300.
pub const MAX_ELEMENTS: usize = 4096;

/// One NetJob element; every field optional, as in CRIMSy's JAXB class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobList {
    #[serde(default)]
    pub job: Vec<NetJob>,
}

/// Why a NetJob body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a NetJob document, or over a structural limit (400).
    Malformed(String),
    /// Over a size limit (413).
    TooLarge(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(d) | Self::TooLarge(d) => f.write_str(d),
        }
    }
}

/// What [`scan_token`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScan {
    /// The text of the root's `<token>`.
    Found(String),
    /// The whole document was read; it has no `<token>`.
    Absent,
    /// The bytes given end before a `<token>` did (the body goes on).
    NotYet,
}

/// Looks for the root's `<token>` in the first bytes of a body (`complete`:
/// they are the whole body), checking the structure and limits on the way.
/// Stops at the end of `<token>`; what follows is read by [`NetJob::parse`]
/// once the token is verified.
pub fn scan_token(bytes: &[u8], complete: bool) -> Result<TokenScan, Refusal> {
    // A cut through a UTF-8 sequence at the end is the window's, not the
    // sender's, fault.
    let bytes = match std::str::from_utf8(bytes) {
        Ok(_) => bytes,
        Err(e) if e.error_len().is_none() && !complete => &bytes[..e.valid_up_to()],
        Err(e) => return Err(not_utf8(e.valid_up_to())),
    };
    match walk(bytes, true) {
        Ok(Walked::Token(t)) => Ok(TokenScan::Found(t)),
        Ok(Walked::Done(_)) => Ok(TokenScan::Absent),
        Err(Stop::Truncated | Stop::NoRoot) if !complete => Ok(TokenScan::NotYet),
        Err(stop) => Err(stop.refusal()),
    }
}

/// The refusal of a body that is not UTF-8 from byte `at` on.
pub fn not_utf8(at: usize) -> Refusal {
    Refusal::Malformed(format!(
        "the body is not UTF-8 (from byte {at} on): send NetJob XML encoded in UTF-8"
    ))
}

impl NetJob {
    /// Parses a whole NetJob document within the limits of this module.
    pub fn parse(xml: &str) -> Result<Self, Refusal> {
        if xml.len() > MAX_BODY_BYTES {
            return Err(Refusal::TooLarge(format!(
                "the NetJob document has {} bytes; at most {MAX_BODY_BYTES} are accepted",
                xml.len()
            )));
        }
        match walk(xml.as_bytes(), false) {
            Ok(Walked::Done(job)) => Ok(*job),
            Ok(Walked::Token(_)) => unreachable!("a full parse does not stop at the token"),
            Err(stop) => Err(stop.refusal()),
        }
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

    fn field_mut(&mut self, name: &[u8]) -> Option<&mut Option<String>> {
        Some(match name {
            b"jobid" => &mut self.jobid,
            b"input" => &mut self.input,
            b"jobdate" => &mut self.jobdate,
            b"jobtype" => &mut self.jobtype,
            b"output" => &mut self.output,
            b"ownername" => &mut self.ownername,
            b"queue" => &mut self.queue,
            b"requesttype" => &mut self.requesttype,
            b"status" => &mut self.status,
            b"token" => &mut self.token,
            _ => return None,
        })
    }
}

// ------------------------------------------------------------------ parser

enum Walked {
    /// `stop_at_token`: the root's token.
    Token(String),
    Done(Box<NetJob>),
}

enum Stop {
    /// The input ended inside the document.
    Truncated,
    /// The input ended before the root element began.
    NoRoot,
    Refused(Refusal),
}

impl Stop {
    /// The refusal of a whole body that stopped so.
    fn refusal(self) -> Refusal {
        match self {
            Self::Truncated => {
                Refusal::Malformed("the NetJob document ends before its `</netJob>`".into())
            }
            Self::NoRoot => Refusal::Malformed(
                "the body holds no `<netJob>` element: send CRIMSy's NetJob XML \
                 (`<netJob><requesttype>QUERY</requesttype>…<token>…</token></netJob>`)"
                    .into(),
            ),
            Self::Refused(r) => r,
        }
    }
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

fn malformed(at: u64, what: impl std::fmt::Display) -> Stop {
    Stop::Refused(Refusal::Malformed(format!(
        "the body is not a NetJob document (at byte {at}): {what}"
    )))
}

/// What an open element is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Root,
    JobList,
    Job,
    /// A known field of the root (`in_job`: of the last `<job>`).
    Field {
        in_job: bool,
    },
    /// An element NetJob does not know; its content is skipped.
    Other,
}

/// Reads `bytes` as a NetJob document; iterative, so nesting costs no stack.
fn walk(bytes: &[u8], stop_at_token: bool) -> Result<Walked, Stop> {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut job = NetJob::default();
    let mut open: Vec<Open> = Vec::with_capacity(MAX_DEPTH);
    let mut elements = 0usize;
    let mut root_done = false;
    // The field being read: its name and text so far.
    let mut field: Option<(Vec<u8>, String)> = None;

    loop {
        let at = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(xml_error(&e, reader.error_position(), bytes.len())),
        };
        match event {
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::DocType(_) => {
                return Err(malformed(at, "DTDs (`<!DOCTYPE …>`) are not accepted"));
            }
            Event::Start(_) | Event::Empty(_) if root_done => {
                return Err(malformed(at, "there is more after `</netJob>`"));
            }
            Event::Start(e) => {
                let kind = enter(&e, at, &open, &mut elements, &mut job)?;
                if let Open::Field { .. } = kind {
                    field = Some((e.local_name().as_ref().to_vec(), String::new()));
                }
                open.push(kind);
            }
            Event::Empty(e) => {
                let kind = enter(&e, at, &open, &mut elements, &mut job)?;
                match kind {
                    Open::Field { in_job } => {
                        let name = e.local_name().as_ref().to_vec();
                        if let Some(t) =
                            store(&mut job, in_job, &name, String::new(), at, stop_at_token)?
                        {
                            return Ok(Walked::Token(t));
                        }
                    }
                    Open::Root => root_done = true,
                    _ => {}
                }
            }
            Event::End(_) => {
                let Some(kind) = open.pop() else {
                    return Err(malformed(at, "an end tag closes nothing"));
                };
                match kind {
                    Open::Root => root_done = true,
                    Open::Field { in_job } => {
                        let (name, text) = field.take().unwrap_or_default();
                        if let Some(t) = store(&mut job, in_job, &name, text, at, stop_at_token)? {
                            return Ok(Walked::Token(t));
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|_| malformed(at, "the text is not UTF-8"))?;
                match (&mut field, open.last()) {
                    (Some((_, value)), _) => value.push_str(&text),
                    (None, None) if !text.trim().is_empty() => {
                        return Err(malformed(
                            at,
                            if root_done {
                                "there is text after `</netJob>`"
                            } else {
                                "there is text before `<netJob>`"
                            },
                        ));
                    }
                    // Whitespace between elements, text in unknown elements.
                    _ => {}
                }
            }
            Event::CData(t) => {
                let text = t
                    .decode()
                    .map_err(|_| malformed(at, "the CDATA section is not UTF-8"))?;
                match (&mut field, open.last()) {
                    (Some((_, value)), _) => value.push_str(&text),
                    (None, None) => {
                        return Err(malformed(at, "there is a CDATA section outside `<netJob>`"));
                    }
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let resolved = resolve(&r).ok_or_else(|| {
                    malformed(
                        at,
                        format_args!(
                            "`&{};` is no character reference nor one of XML's five entities \
                             (amp, lt, gt, quot, apos); other entities are not accepted",
                            shown(&String::from_utf8_lossy(&r))
                        ),
                    )
                })?;
                match (&mut field, open.last()) {
                    (Some((_, value)), _) => value.push_str(&resolved),
                    (None, None) => {
                        return Err(malformed(at, "there is a reference outside `<netJob>`"));
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if !open.is_empty() {
                    return Err(Stop::Truncated);
                }
                if !root_done {
                    return Err(Stop::NoRoot);
                }
                return Ok(Walked::Done(Box::new(job)));
            }
        }
    }
}

/// Checks a start tag against the limits and says what it opens.
fn enter(
    e: &BytesStart<'_>,
    at: u64,
    open: &[Open],
    elements: &mut usize,
    job: &mut NetJob,
) -> Result<Open, Stop> {
    let name = e.local_name();
    let name = name.as_ref();
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(malformed(
            at,
            format_args!("it has more than {MAX_ELEMENTS} elements"),
        ));
    }
    if open.len() >= MAX_DEPTH {
        return Err(malformed(
            at,
            format_args!(
                "elements are nested deeper than {MAX_DEPTH} levels \
                 (netJob / joblist / job / field)"
            ),
        ));
    }
    let mut attributes = e.attributes();
    // Duplicate checks are quadratic; the count is bounded first.
    attributes.with_checks(false);
    for (i, a) in attributes.enumerate() {
        if i >= MAX_ATTRIBUTES {
            return Err(malformed(
                at,
                format_args!(
                    "`<{}>` has more than {MAX_ATTRIBUTES} attributes",
                    shown(&String::from_utf8_lossy(name))
                ),
            ));
        }
        if a.is_err() {
            return Err(malformed(at, "an attribute is malformed"));
        }
    }
    Ok(match open.last() {
        None => {
            if name != b"netJob" {
                return Err(malformed(
                    at,
                    format_args!(
                        "the root element must be `<netJob>`, not `<{}>`",
                        shown(&String::from_utf8_lossy(name))
                    ),
                ));
            }
            Open::Root
        }
        Some(Open::Root) if name == b"joblist" => {
            job.joblist.get_or_insert_with(JobList::default);
            Open::JobList
        }
        Some(Open::JobList) if name == b"job" => {
            if let Some(list) = job.joblist.as_mut() {
                list.job.push(NetJob::default());
            }
            Open::Job
        }
        Some(parent @ (Open::Root | Open::Job)) if NetJob::default().field_mut(name).is_some() => {
            Open::Field {
                in_job: *parent == Open::Job,
            }
        }
        Some(Open::Field { .. }) => {
            return Err(malformed(
                at,
                format_args!(
                    "`<{}>` is inside a field; NetJob fields hold text only",
                    shown(&String::from_utf8_lossy(name))
                ),
            ));
        }
        _ => Open::Other,
    })
}

/// Stores a field's text; with `stop_at_token`, the root's token is
/// returned.
fn store(
    job: &mut NetJob,
    in_job: bool,
    name: &[u8],
    text: String,
    at: u64,
    stop_at_token: bool,
) -> Result<Option<String>, Stop> {
    if stop_at_token && !in_job && name == b"token" {
        return Ok(Some(text));
    }
    let target = if in_job {
        match job.joblist.as_mut().and_then(|l| l.job.last_mut()) {
            Some(j) => j,
            None => return Ok(None),
        }
    } else {
        job
    };
    let Some(slot) = target.field_mut(name) else {
        return Ok(None);
    };
    if slot.is_some() {
        return Err(malformed(
            at,
            format_args!(
                "`<{}>` is given twice",
                shown(&String::from_utf8_lossy(name))
            ),
        ));
    }
    *slot = Some(text);
    Ok(None)
}

/// A character reference or one of XML's five entities.
fn resolve(r: &[u8]) -> Option<Cow<'static, str>> {
    let r = std::str::from_utf8(r).ok()?;
    if let Some(num) = r.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code)
            .filter(|&c| c != '\0')
            .map(|c| Cow::Owned(c.to_string()));
    }
    quick_xml::escape::resolve_xml_entity(r).map(Cow::Borrowed)
}

/// A quick-xml error as a refusal, naming no more of the input than a cut
/// name. Errors that mean "the input ended" are [`Stop::Truncated`].
fn xml_error(e: &XmlError, at: u64, len: usize) -> Stop {
    // `<!` markup cut by the end of the input (`<![CDA`) is not known yet to
    // be a comment, CDATA or DOCTYPE: quick-xml calls it invalid.
    const LONGEST_BANG: u64 = "<![CDATA[".len() as u64;
    match e {
        XmlError::Syntax(SyntaxError::InvalidBangMarkup) if at + LONGEST_BANG >= len as u64 => {
            Stop::Truncated
        }
        XmlError::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedPIOrXmlDecl,
        )
        | XmlError::IllFormed(IllFormedError::UnclosedReference) => Stop::Truncated,
        XmlError::Syntax(s) => malformed(at, s),
        XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => malformed(
            at,
            format_args!("`</{}>` closes `<{}>`", shown(found), shown(expected)),
        ),
        XmlError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            malformed(at, format_args!("`</{}>` closes nothing", shown(name)))
        }
        XmlError::IllFormed(IllFormedError::MissingEndTag(name)) => {
            malformed(at, format_args!("`<{}>` is not closed", shown(name)))
        }
        XmlError::IllFormed(IllFormedError::DoubleHyphenInComment) => {
            malformed(at, "a comment holds `--`")
        }
        XmlError::IllFormed(_) => malformed(at, "the XML declaration or DOCTYPE is malformed"),
        XmlError::InvalidAttr(_) => malformed(at, "an attribute is malformed"),
        XmlError::Encoding(_) => malformed(at, "the text is not UTF-8"),
        XmlError::Escape(_) => malformed(at, "a character or entity reference is malformed"),
        XmlError::Io(_) | XmlError::Namespace(_) => malformed(at, "the XML is malformed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(xml: &str) -> String {
        match NetJob::parse(xml) {
            Err(Refusal::Malformed(d)) => d,
            other => panic!("{xml:.80}: {other:?}"),
        }
    }

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
                job: vec![
                    NetJob {
                        jobid: Some("7".into()),
                        ..Default::default()
                    },
                    NetJob {
                        jobid: Some("8".into()),
                        output: Some("a<b&c".into()),
                        ..Default::default()
                    },
                ],
            }),
            ..Default::default()
        };
        let text = answer.to_xml();
        assert!(
            text.contains("<joblist><job><jobid>7</jobid></job>"),
            "{text}"
        );
        assert_eq!(NetJob::parse(&text).unwrap(), answer);
    }

    #[test]
    fn text_forms() {
        let job = NetJob::parse(
            "<netJob xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <!-- c --><queue><![CDATA[la]]>b&#101;&#x6c;s&amp;</queue><status/>\
             <unknown><deep>x</deep></unknown></netJob>\n",
        )
        .unwrap();
        assert_eq!(job.queue.as_deref(), Some("labels&"));
        assert_eq!(job.status.as_deref(), Some(""));
    }

    #[test]
    fn refusals() {
        assert!(refused("<foo/>").contains("must be `<netJob>`, not `<foo>`"));
        assert!(refused("").contains("no `<netJob>`"));
        assert!(refused("<netJob>").contains("ends before"));
        assert!(refused("<!DOCTYPE netJob [<!ENTITY x \"y\">]><netJob/>").contains("DTD"));
        assert!(refused("<netJob><queue>&x;</queue></netJob>").contains("entities"));
        assert!(refused("<netJob><queue>a</queue><queue>b</queue></netJob>").contains("twice"));
        assert!(refused("<netJob><queue><b/></queue></netJob>").contains("text only"));
        assert!(refused("<netJob/><netJob/>").contains("after `</netJob>`"));
        assert!(refused("\"\"\"").contains("text before"));
        let deep = format!(
            "<netJob>{}{}</netJob>",
            "<joblist><job>".repeat(1000),
            "</job></joblist>".repeat(1000)
        );
        assert!(refused(&deep).contains("deeper than 4"));
        let attrs: String = (0..100).map(|i| format!(" a{i}=\"\"")).collect();
        assert!(refused(&format!("<netJob{attrs}/>")).contains("more than 8 attributes"));
        let many = format!("<netJob>{}</netJob>", "<x/>".repeat(MAX_ELEMENTS));
        assert!(refused(&many).contains("more than 4096 elements"));
        let long = "n".repeat(10_000);
        let d = refused(&format!("<{long}/>"));
        assert!(d.len() < 200, "{d}");
    }

    #[test]
    fn token_scan() {
        let body = "<netJob><token>t#n#m</token><output>AAAA</output></netJob>";
        assert_eq!(
            scan_token(&body.as_bytes()[..30], false),
            Ok(TokenScan::Found("t#n#m".into()))
        );
        assert_eq!(
            scan_token(&body.as_bytes()[..20], false),
            Ok(TokenScan::NotYet)
        );
        assert_eq!(
            scan_token(b"<netJob><queue>q</queue></netJob>", true),
            Ok(TokenScan::Absent)
        );
        // a token inside a job is not the request's
        assert_eq!(
            scan_token(
                b"<netJob><joblist><job><token>x</token></job></joblist></netJob>",
                true
            ),
            Ok(TokenScan::Absent)
        );
        assert!(matches!(
            scan_token(b"<foo>", false),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            scan_token(b"<netJob>\xff</netJob>", true),
            Err(Refusal::Malformed(d)) if d.contains("not UTF-8")
        ));
        // an empty window, or one of a comment only
        assert_eq!(scan_token(b"", false), Ok(TokenScan::NotYet));
        assert_eq!(scan_token(b"<!-- x -->", false), Ok(TokenScan::NotYet));
        // a window cut inside `<![CDATA[`
        assert_eq!(
            scan_token(b"<netJob><queue><![CDA", false),
            Ok(TokenScan::NotYet)
        );
        // a window cut inside a UTF-8 sequence
        assert_eq!(
            scan_token("<netJob><queue>ä".as_bytes().split_last().unwrap().1, false),
            Ok(TokenScan::NotYet)
        );
    }
}
