//! Fuzzes the bounded NetJob parser of `POST /ui/rest/print` (the agency
//! endpoint in the DMZ): the pre-authentication token scan over a window of
//! the body, and the full parse after it, as the handler runs them.
//!
//! Properties: no panic; every refusal's text is short (no echo of the
//! input); the scan and the full parse agree on the token; a parsed document
//! written out again parses to the same value.
#![no_main]

use auftrag_engine::jobs::netjob::{self, NetJob, Refusal, TokenScan};
use libfuzzer_sys::fuzz_target;

/// Longest refusal text: a fixed sentence, a byte offset, a cut name.
const MAX_DETAIL: usize = 400;

fn short(r: &Refusal) {
    let d = r.to_string();
    assert!(d.len() <= MAX_DETAIL, "{} bytes: {d:.200}", d.len());
}

fuzz_target!(|data: &[u8]| {
    // The first byte cuts a window, as the handler's pre-auth limit does.
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let window = if cut == 0xff {
        body.len()
    } else {
        body.len() * usize::from(cut) / 255
    };
    let complete = window == body.len();
    let scan = netjob::scan_token(&body[..window], complete);
    if let Err(r) = &scan {
        short(r);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let full = NetJob::parse(text);
    match (&scan, &full) {
        (_, Err(r)) => short(r),
        // What the whole document says about the token, the scan said first.
        (Ok(TokenScan::Found(t)), Ok(job)) => assert_eq!(job.token.as_ref(), Some(t)),
        (Ok(TokenScan::Absent), Ok(job)) => assert_eq!(job.token, None),
        (Ok(TokenScan::NotYet), Ok(_)) => assert!(!complete),
        (Err(r), Ok(_)) => panic!("the scan refused what the parse accepts: {r}"),
    }
    if let Ok(job) = full {
        let again = job.to_xml();
        match NetJob::parse(&again) {
            Ok(back) => assert_eq!(back, job, "{again:.300}"),
            Err(r) => panic!("written out, it does not parse: {r}; {again:.300}"),
        }
    }
});
