//! Compiles a definitions folder and prints the generated Rust (or the
//! diagnostics): `cargo run -p auftrag-compiler --example compile -- definitions`.
fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "definitions".into());
    match auftrag_compiler::compile_dir(std::path::Path::new(&dir)) {
        Ok(c) => print!("{}", c.rust),
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            std::process::exit(1);
        }
    }
}
