//! The committed `generated/` is what `definitions/` compiles to, and a broken
//! definition is reported with file:line:col.

use std::path::Path;

#[test]
fn generated_definitions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // named as build.rs names the folder: positions in the generated
    // assertions are relative to the package root
    let compiled = auftrag_compiler::compile_tables_dir_as(
        &root.join("definitions"),
        Path::new("definitions"),
        "::auftrag_junet_types",
    )
    .expect("shipped definitions compile");
    let committed = std::fs::read_to_string(root.join("generated/definitions.rs"))
        .expect("generated/definitions.rs");
    assert!(
        committed == compiled.rust,
        "generated/definitions.rs is stale: run `cargo build` and commit generated/"
    );
    // junet-types/build.rs: orders.xml and queues.xml alone
    let types =
        auftrag_compiler::compile_types_dir_as(&root.join("definitions"), Path::new("definitions"))
            .expect("shipped orders.xml and queues.xml compile");
    let committed =
        std::fs::read_to_string(root.join("generated/types.rs")).expect("generated/types.rs");
    assert!(
        committed == types.rust,
        "generated/types.rs is stale: run `cargo build` and commit generated/"
    );
}

/// The two halves of a split workspace hold what the single-crate form
/// holds: every item of `compile_dir_as`'s output is in the types or in
/// the tables, and the tables begin by re-exporting the types.
#[test]
fn types_and_tables_together_are_the_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("definitions");
    let display = Path::new("definitions");
    let whole = auftrag_compiler::compile_dir_as(&dir, display).expect("whole");
    let types = auftrag_compiler::compile_types_dir_as(&dir, display).expect("types");
    let tables = auftrag_compiler::compile_tables_dir_as(&dir, display, "::auftrag_junet_types")
        .expect("tables");
    assert!(
        tables.rust.contains("pub use ::auftrag_junet_types::*;"),
        "the tables re-export the types"
    );
    // top-level items (a line starting an item at column 0), in order
    let items = |rust: &str| -> Vec<String> {
        rust.lines()
            .filter(|l| l.starts_with("pub ") || l.starts_with("fn ") || l.starts_with("impl "))
            .filter(|l| !l.starts_with("pub use "))
            .map(str::to_owned)
            .collect()
    };
    let mut split = items(&types.rust);
    split.extend(items(&tables.rust));
    let mut whole_items = items(&whole.rust);
    split.sort();
    whole_items.sort();
    assert_eq!(split, whole_items);
    // the types come from orders.xml and queues.xml alone
    let inputs: Vec<_> = types
        .inputs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inputs, ["orders.xml", "queues.xml"]);
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

const BIN: &str = env!("CARGO_BIN_EXE_auftrag");

#[test]
fn definitions_check_and_graph_need_no_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .current_dir(work.path())
            .env("AUFTRAG_DATABASE", work.path().join("never.db"))
            .output()
            .expect("run auftrag")
    };
    let shipped = root.join("definitions");
    let out = run(&["definitions", "check", shipped.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (2 workflows"));

    // a broken copy: the diagnostics of the build, exit status 1
    let broken = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&shipped).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "xml") {
            let text = std::fs::read_to_string(&f).unwrap();
            let text = text.replace("type=\"building\"", "type=\"bulding\"");
            std::fs::write(broken.path().join(f.file_name().unwrap()), text).unwrap();
        }
    }
    let out = run(&["definitions", "check", broken.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders.xml:")
            && err.contains("unknown field type `bulding`")
            && err.contains("did you mean `building`?"),
        "{err}"
    );

    let out = run(&["definitions", "graph", "--format", "dot"]);
    assert!(out.status.success(), "{out:?}");
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.contains("digraph \"auftragssystem\""), "{dot}");
    assert!(
        dot.contains(
            "\"CHECKS_DONE\" -> \"CHECKS_OK\" [label=\"null [!(has_warnings or has_errors)]\"];"
        ),
        "{dot}"
    );
    let out = run(&["definitions", "graph"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stateDiagram-v2"));

    // any folder: the shipped one draws as the compiled-in tables do
    for format in ["dot", "mermaid"] {
        let built_in = run(&["definitions", "graph", "--format", format]);
        let folder = run(&[
            "definitions",
            "graph",
            "--format",
            format,
            shipped.to_str().unwrap(),
        ]);
        assert!(folder.status.success(), "{folder:?}");
        assert_eq!(
            String::from_utf8_lossy(&folder.stdout),
            String::from_utf8_lossy(&built_in.stdout)
        );
    }
    // another domain's folder draws its own workflow
    let firewall = root.join("examples/firewall/definitions");
    let out = run(&["definitions", "graph", firewall.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mermaid = String::from_utf8_lossy(&out.stdout);
    assert!(mermaid.contains("title: freischaltung"), "{mermaid}");
    assert!(!mermaid.contains("auftragssystem"), "{mermaid}");
    // a broken folder: its diagnostics, no drawing
    let out = run(&["definitions", "graph", broken.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field type `bulding`"),
        "{out:?}"
    );
    assert!(
        !work.path().join("never.db").exists(),
        "no database is opened"
    );
}

#[tokio::test]
async fn definitions_endpoint_serves_the_compiled_model() {
    use crate::support::TestServer;
    use reqwest::{Method, StatusCode};
    let s = TestServer::start().await;
    let r = s.call(None, Method::GET, "/api/v1/definitions", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = s
        .call(Some("employee"), Method::GET, "/api/v1/definitions", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["workflows"][0]["name"], "auftragssystem");
    assert_eq!(d["workflows"][0]["states"][1]["name"], "CHECKS_DONE");
    assert_eq!(
        d["workflows"][0]["states"][1]["transitions"][2]["condition"]["source"],
        "!(has_warnings or has_errors)"
    );
    assert!(
        d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "accept")
    );
    assert!(
        d["check_bindings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["field"] == "hwa" && b["syntax"] == true),
        "check_hwa_syntax judges the syntax of hwa"
    );
    let register = d["order_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "register_device")
        .unwrap();
    let interfaces = register["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "interfaces")
        .unwrap();
    assert_eq!(interfaces["fields"][2]["name"], "hwa");
    assert_eq!(interfaces["fields"][2]["ty"], "mac");
    assert_eq!(d["queues"][0]["name"], "labels");
    assert_eq!(d["queues"][0]["job_type"], "PRINT");
    assert_eq!(d["policies"]["combining"], "deny-unless-permit");
    assert_eq!(d["attributes"].as_array().unwrap().len(), 22);
    let r = s
        .call(
            Some("employee"),
            Method::GET,
            "/api/v1/definitions/graph?format=mermaid",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.as_str().unwrap().contains("stateDiagram-v2"));
}

/// Typed fields parse at the edge: lists of records are JSON arrays of
/// objects; a malformed nested value is recorded and named by its path.
#[tokio::test]
async fn register_device_with_nested_records_parses_at_the_edge() {
    use crate::support::TestServer;
    use reqwest::{Method, StatusCode};
    use serde_json::json;
    let s = TestServer::start().await;
    let order = |hwa: &str| {
        json!({"type": "register_device", "fields": {
            "host": "newbox.zam.kfa-juelich.de", "dv_class": "PC", "geb": "16.3", "raum": "R 227",
            "persdata": "N",
            "interfaces": [{"hwa": hwa, "net": "134.94.32.0/24", "ipv4": "134.94.32.77",
                            "aliases": [{"name": "newbox.zam.kfa-juelich.de", "canonical": "Y"},
                                        {"name": "nb.zam.kfa-juelich.de"}]}]
        }})
    };
    let r = s
        .call(
            Some("staff"),
            Method::POST,
            "/api/v1/orders",
            Some(order("00:1a:2b:3c:4d:77")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);

    let r = s
        .call(
            Some("staff"),
            Method::POST,
            "/api/v1/orders",
            Some(order("00:1a:2b")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "ABORTED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["check"], "syntax");
    assert_eq!(r.body["errors"][0]["field"], "interfaces[0].hwa");

    // the wrong shape (an object for a list) stores nothing
    let mut bad = order("00:1a:2b:3c:4d:78");
    bad["fields"]["interfaces"] = json!({"hwa": "00:1a:2b:3c:4d:78"});
    let r = s
        .call(Some("staff"), Method::POST, "/api/v1/orders", Some(bad))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("must be a list of record"),
        "{}",
        r.body
    );
}

/// The tables call the handlers' `auftrag_boxed` (made by `#[check]`,
/// `#[action]`, `#[resolver]` in the handlers' crate) instead of boxing
/// their futures themselves: an async fn's body is compiled in every crate
/// that names its future's type, so boxing in the tables compiled all of
/// JuNet's async code again with every XML edit.
#[test]
fn tables_leave_the_handlers_futures_to_the_handlers_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tables = auftrag_compiler::compile_tables_dir_as(
        &root.join("definitions"),
        Path::new("definitions"),
        "::auftrag_junet_types",
    )
    .expect("tables");
    let boxing: Vec<&str> = tables
        .rust
        .lines()
        .filter(|l| l.contains("Box::pin("))
        .collect();
    assert!(boxing.is_empty(), "the tables box futures: {boxing:?}");
    let calls = tables.rust.matches("::auftrag_boxed(ctx)").count();
    let m = &tables.model;
    let resolvers = m
        .attributes
        .iter()
        .filter(|a| a.source.contains("::"))
        .count();
    assert_eq!(calls, m.actions.len() + m.checks.len() + resolvers);
}
