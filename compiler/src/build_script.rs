//! What a domain's `build.rs` does with compiled definitions: stop the
//! build on diagnostics (each `file:line:col` with its help), write the
//! Rust to `OUT_DIR`, and keep a committed mirror of it for review — which
//! under CI (`CI` set) is checked, not rewritten: a stale mirror fails the
//! build.

use std::path::Path;

use crate::Diagnostic;

/// The compiled value, or every diagnostic printed and the build stopped.
pub fn or_exit<T>(compiled: Result<T, Vec<Diagnostic>>) -> T {
    match compiled {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}\n");
            }
            eprintln!(
                "{} error(s) in definitions/; fix them and build again",
                diagnostics.len()
            );
            std::process::exit(1);
        }
    }
}

/// Writes `rust` to `OUT_DIR/file` and mirrors it to `mirror` (committed);
/// `from` names what it is compiled from, for the stale-mirror message.
pub fn write(rust: &str, file: &str, mirror: &Path, from: &str) {
    println!("cargo:rerun-if-env-changed=CI");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join(file), rust)
        .unwrap_or_else(|e| panic!("writing {file} to OUT_DIR: {e}"));
    let current = std::fs::read_to_string(mirror).unwrap_or_default();
    if current == rust {
        return;
    }
    let shown = mirror
        .strip_prefix("..")
        .unwrap_or(mirror)
        .display()
        .to_string();
    if std::env::var_os("CI").is_some() {
        eprintln!(
            "{shown} is stale: it differs from the Rust compiled from {from}.\n\
             Run `cargo build` locally (it rewrites the file) and commit generated/."
        );
        std::process::exit(1);
    }
    if let Some(dir) = mirror.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(mirror, rust).unwrap_or_else(|e| panic!("writing {shown}: {e}"));
}
