//! The deployable auftrag: the engine with the tables compiled from
//! `definitions/` and the JuNet domain handlers they name.
//!
//! This package is the thin top of the workspace: `build.rs` generates the
//! tables (workflows, actions, checks, conditions, policies, notifications,
//! `DEFINITIONS`) into [`generated`]; the handlers live in `auftrag-junet`
//! (re-exported as [`junet`], so the handler paths of the XML,
//! `crate::junet::…`, resolve here), the typed order fields they use in
//! `auftrag-junet-types` (generated from `orders.xml` and `queues.xml`
//! only, re-exported in [`generated`]), the command line in `auftrag-cli`.
//! An edit of a definition file other than those two recompiles only this
//! package.

use std::sync::Arc;

/// The JuNet domain: handlers, demo data, device listing
/// (crate `auftrag-junet`).
pub use auftrag_junet as junet;

/// Rust compiled from `definitions/` by `build.rs`: the tables (a copy is
/// committed in `generated/definitions.rs`), which begin by re-exporting
/// the typed order fields and queue handles of `auftrag-junet-types`
/// (`generated/types.rs`), so both are here: `generated::DEFINITIONS`,
/// `generated::ChangeDevice`, `generated::queues::LABELS`.
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

/// The JuNet domain as the engine sees it, with the compiled tables.
pub fn domain() -> Arc<dyn auftrag_engine::Domain> {
    Arc::new(junet::Junet::new(&generated::DEFINITIONS))
}
