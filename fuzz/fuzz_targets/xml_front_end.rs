//! Fuzzes the definition compiler's front end: XML scanning, schema check,
//! serde, validation, policy expressions and code emission. The input
//! replaces one file of the shipped definitions (the first byte chooses
//! which), so the fuzzer explores both malformed XML and well-formed but
//! wrong definitions. The compiler must answer with diagnostics or code,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const FILES: [(&str, &str); 7] = [
    ("workflow.xml", include_str!("../../definitions/workflow.xml")),
    ("actions.xml", include_str!("../../definitions/actions.xml")),
    ("checks.xml", include_str!("../../definitions/checks.xml")),
    ("orders.xml", include_str!("../../definitions/orders.xml")),
    ("queues.xml", include_str!("../../definitions/queues.xml")),
    ("attributes.xml", include_str!("../../definitions/attributes.xml")),
    ("policies.xml", include_str!("../../definitions/policies.xml")),
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let which = usize::from(which) % FILES.len();
    let files: Vec<(&str, &str)> = FILES
        .iter()
        .enumerate()
        .map(|(i, (n, t))| (*n, if i == which { text } else { *t }))
        .collect();
    match auftrag_compiler::compile_texts(&files) {
        Ok(c) => assert!(!c.rust.is_empty()),
        Err(d) => assert!(!d.is_empty()),
    }
});
