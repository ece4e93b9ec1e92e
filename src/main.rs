//! `auftrag`: the order engine's server and command-line interface
//! (`auftrag-cli`) for the JuNet domain with the compiled definitions.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: auftrag::Allocator = auftrag::ALLOCATOR;

fn main() -> ExitCode {
    auftrag_cli::main(auftrag::domain())
}
