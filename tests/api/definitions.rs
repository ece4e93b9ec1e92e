//! The committed `generated/` is what `definitions/` compiles to, and a broken
//! definition is reported with file:line:col.

use std::path::Path;

#[test]
fn generated_definitions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compiled = auftrag_compiler::compile_dir(&root.join("definitions"))
        .expect("shipped definitions compile");
    let committed = std::fs::read_to_string(root.join("generated/definitions.rs"))
        .expect("generated/definitions.rs");
    assert!(
        committed == compiled.rust,
        "generated/definitions.rs is stale: run `cargo build` and commit generated/"
    );
}

#[test]
fn misspelt_action_fails_with_position() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for file in ["workflow.xml", "actions.xml", "checks.xml", "orders.xml"] {
        let text = std::fs::read_to_string(root.join("definitions").join(file)).unwrap();
        let text = if file == "workflow.xml" {
            text.replace("name=\"run_request\"", "name=\"run_reqest\"")
        } else {
            text
        };
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let diagnostics = auftrag_compiler::compile_dir_as(dir.path(), Path::new("definitions"))
        .expect_err("a misspelt action must not compile");
    let text: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
    let workflow = std::fs::read_to_string(root.join("definitions/workflow.xml")).unwrap();
    let line = workflow
        .lines()
        .position(|l| l.contains("name=\"run_request\""))
        .unwrap()
        + 1;
    let col = workflow
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("run_request")
        .unwrap()
        + 1;
    let expected =
        format!("definitions/workflow.xml:{line}:{col}: error: unknown action `run_reqest`");
    assert!(
        text.iter()
            .any(|t| t.starts_with(&expected) && t.contains("did you mean `run_request`?")),
        "expected {expected:?} with a suggestion, got {text:#?}"
    );
}
