//! The deployable auftrag: the engine with the compiled definitions of
//! `definitions/` and the JuNet domain handlers they name.

use std::sync::Arc;

pub mod junet;

/// Rust compiled from `definitions/` by `build.rs` (a copy is committed in
/// `generated/definitions.rs`).
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/definitions.rs"));
}

/// The memory allocator of the `auftrag` binary (mimalloc): it makes an
/// order cost 10–20 % less CPU in the server than glibc's allocator
/// (BENCHMARKS.md). Benchmarks that run the server in their own process
/// install it too, to measure the server as it ships.
pub type Allocator = mimalloc::MiMalloc;

/// The [`Allocator`], for a `#[global_allocator]` static.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// The JuNet domain as the engine sees it.
pub fn domain() -> Arc<dyn auftrag_engine::Domain> {
    Arc::new(junet::Junet)
}
