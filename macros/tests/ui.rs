//! Definitions errors surface as compile errors at the `definitions!` call.
//! Cases live in the workspace's `tests/ui/`: `<case>.rs` invokes the macro
//! on the folder `<case>/`; `<case>.stderr` is the expected output
//! (regenerate with `TRYBUILD=overwrite cargo test -p auftrag-macros`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("../tests/ui/pass/*.rs");
    t.compile_fail("../tests/ui/*.rs");
}
