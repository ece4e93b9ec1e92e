//! `definitions!("path/to/definitions/")`: validates an auftrag definitions
//! folder at compile time.
//!
//! The path is resolved relative to the directory of the source file that
//! invokes the macro (falling back to `CARGO_MANIFEST_DIR`). Every problem in
//! the definitions becomes a `compile_error!` with the compiler's diagnostic
//! text, e.g.
//!
//! ```text
//! error: definitions/workflow.xml:15:19: error: unknown action `chek_request`
//!          = help: did you mean `check_request`?
//! ```
//!
//! On success the macro expands to `const _: () = ();` (plus an
//! `include_bytes!` per XML file, so that editing the definitions re-runs the
//! check); the Rust tables themselves are emitted by `build.rs` through
//! `auftrag_compiler::compile_dir`.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};
use syn::{LitStr, parse_macro_input};

#[proc_macro]
pub fn definitions(input: TokenStream) -> TokenStream {
    let lit = parse_macro_input!(input as LitStr);
    let rel = PathBuf::from(lit.value());
    let dir = base_dir().join(&rel);
    match auftrag_compiler::compile_dir_as(&dir, &rel) {
        Ok(compiled) => {
            let includes = compiled.inputs.iter().filter(|p| p.is_file()).map(|p| {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let abs = abs.to_string_lossy().into_owned();
                quote! { const _: &[u8] = include_bytes!(#abs); }
            });
            quote! {
                const _: () = ();
                #( #includes )*
            }
            .into()
        }
        Err(diags) => {
            let span = lit.span();
            let errors = diags.iter().map(|d| {
                let msg = d.to_string();
                quote_spanned! {span=> ::core::compile_error!(#msg); }
            });
            quote! { #( #errors )* }.into()
        }
    }
}

/// The directory of the invoking source file, else the crate's manifest dir.
fn base_dir() -> PathBuf {
    let file_dir = proc_macro::Span::call_site()
        .local_file()
        .and_then(|f| f.parent().map(Path::to_path_buf));
    match file_dir {
        Some(dir) if dir.as_os_str().is_empty() => PathBuf::from("."),
        Some(dir) => dir,
        None => {
            std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
        }
    }
}
