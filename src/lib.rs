//! The deployable auftrag: the engine with the compiled definitions of
//! `definitions/` and the JuNet domain handlers they name.

use std::sync::Arc;

pub mod junet;

/// Rust compiled from `definitions/` by `build.rs` (a copy is committed in
/// `generated/definitions.rs`).
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/definitions.rs"));
}

/// The JuNet domain as the engine sees it.
pub fn domain() -> Arc<dyn auftrag_engine::Domain> {
    Arc::new(junet::Junet)
}
