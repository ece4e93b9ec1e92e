//! Proc macros of auftrag.
//!
//! `definitions!("path/to/definitions/")` validates an auftrag definitions
//! folder at compile time. The path is resolved relative to the directory of
//! the source file that invokes the macro (falling back to
//! `CARGO_MANIFEST_DIR`). Every problem in the definitions becomes a
//! `compile_error!` with the compiler's diagnostic text, e.g.
//!
//! ```text
//! error: definitions/workflow.xml:15:19: error: unknown action `chek_request`
//!          = help: did you mean `check_request`?
//! ```
//!
//! A second argument chooses what else it expands to:
//! - nothing: only validation (`const _: () = ();` and an `include_bytes!`
//!   per XML file, so that editing the definitions re-runs the check);
//! - `handlers`: also assertions that every handler the XML names exists and
//!   carries the right attribute — engine-free, the failure names the XML line
//!   (with a `queues.xml`, also the typed queue handles `queues::NAME`, which
//!   name `auftrag_engine::jobs::Queue`);
//! - `emit`: the whole generated code (as `build.rs` writes it with
//!   `auftrag_compiler::compile_dir`): enums, typed field structs and the
//!   `DEFINITIONS` table for `auftrag_engine`. Handler paths resolve from the
//!   module of the invocation. This is how a second domain builds without a
//!   build script (see `examples/firewall/`).
//!
//! `#[check]`, `#[action]`, `#[condition]` and `#[resolver]` mark handler functions: they
//! check the signature (with the error at the offending part) and register
//! the function, so that the definitions can find it.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, Token, parse_macro_input};

struct Args {
    path: LitStr,
    mode: Option<Ident>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: LitStr = input.parse()?;
        let mode = if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                None
            } else {
                let m: Ident = input.parse()?;
                if m != "emit" && m != "handlers" {
                    return Err(syn::Error::new(
                        m.span(),
                        "expected `emit` or `handlers` (or nothing: validate only)",
                    ));
                }
                Some(m)
            }
        } else {
            None
        };
        Ok(Args { path, mode })
    }
}

#[proc_macro]
pub fn definitions(input: TokenStream) -> TokenStream {
    let Args { path: lit, mode } = parse_macro_input!(input as Args);
    let rel = PathBuf::from(lit.value());
    let dir = base_dir().join(&rel);
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let display = display_dir(&dir, manifest.as_deref(), &rel);
    match auftrag_compiler::compile_dir_as(&dir, &display) {
        Ok(compiled) => {
            let includes = compiled.inputs.iter().filter(|p| p.is_file()).map(|p| {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let abs = abs.to_string_lossy().into_owned();
                quote! { const _: &[u8] = include_bytes!(#abs); }
            });
            let body = match mode.as_ref().map(|m| m.to_string()).as_deref() {
                Some("emit") => auftrag_compiler::emit_tokens(&compiled.model),
                Some("handlers") => {
                    let mut t = auftrag_compiler::handler_assertions(&compiled.model);
                    if !compiled.model.queues.is_empty() {
                        t.extend(auftrag_compiler::queue_handles(&compiled.model));
                    }
                    t
                }
                _ => quote! {},
            };
            quote! {
                const _: () = ();
                #( #includes )*
                #body
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

/// How build errors name the definitions folder: relative to the root of
/// the package being built (`CARGO_MANIFEST_DIR`), as build.rs names
/// `definitions/` (e.g. `examples/firewall/definitions/checks.xml:4:12`
/// for a macro call in `examples/firewall/firewall.rs`); as written in the
/// call when the folder lies outside the package.
fn display_dir(dir: &Path, manifest: Option<&Path>, written: &Path) -> PathBuf {
    let (Some(manifest), Ok(dir)) = (manifest, std::path::absolute(dir)) else {
        return written.to_path_buf();
    };
    let manifest = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    // `a/./b` and `a/b` are one folder: compare normal components only
    let normal = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    };
    match normal(&dir).strip_prefix(normal(&manifest)) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rel) => rel.to_path_buf(),
        Err(_) => written.to_path_buf(),
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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Check,
    Action,
    Condition,
    Resolver,
}

/// Marks `async fn NAME(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError>`
/// as a check that `checks.xml` may name.
///
/// A check that judges a field declares the field types it can judge:
/// `#[check(field = "mac")]`, `#[check(field = "hostname dnsname")]`, or
/// `#[check(field = "any")]`. Binding a check in a `<field>` of
/// `checks.xml` whose type it does not declare (or binding a check that
/// declares none) is a build error at the binding. A check without
/// `field` is a global check.
#[proc_macro_attribute]
pub fn check(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler(Kind::Check, attr, item)
}

/// Marks `async fn NAME(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError>`
/// as an action handler that `actions.xml` may bind.
#[proc_macro_attribute]
pub fn action(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler(Kind::Action, attr, item)
}

/// Marks `fn NAME(ctx: &CondCtx<'_>) -> bool` as a named workflow condition
/// that `actions.xml` may declare.
#[proc_macro_attribute]
pub fn condition(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler(Kind::Condition, attr, item)
}

/// Marks `async fn NAME(ctx: &mut PipCtx<'_>) -> Result<Option<Value>,
/// HandlerError>` as an attribute resolver that `attributes.xml` may name as
/// `source`.
#[proc_macro_attribute]
pub fn resolver(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler(Kind::Resolver, attr, item)
}

fn last_ident(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn signature_errors(kind: Kind, f: &ItemFn) -> Option<syn::Error> {
    let sig = &f.sig;
    let (ctx, attr, want_async, want_mut, ret) = match kind {
        Kind::Check => ("CheckCtx", "check", true, true, "Result"),
        Kind::Action => ("ActionCtx", "action", true, true, "Result"),
        Kind::Condition => ("CondCtx", "condition", false, false, "bool"),
        Kind::Resolver => ("PipCtx", "resolver", true, true, "Result"),
    };
    let shape = match kind {
        Kind::Check => "async fn NAME(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError>",
        Kind::Action => "async fn NAME(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError>",
        Kind::Condition => "fn NAME(ctx: &CondCtx<'_>) -> bool",
        Kind::Resolver => {
            "async fn NAME(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError>"
        }
    };
    let err = |span: proc_macro2::Span, what: String| {
        Some(syn::Error::new(
            span,
            format!("#[{attr}] {what}; the signature must be `{shape}`"),
        ))
    };
    if want_async && sig.asyncness.is_none() {
        return err(sig.fn_token.span, "needs an `async fn`".into());
    }
    if !want_async && sig.asyncness.is_some() {
        return err(sig.asyncness.span(), "must not be `async`".into());
    }
    if !sig.generics.params.is_empty() {
        return err(sig.generics.span(), "takes no generic parameters".into());
    }
    if sig.inputs.len() != 1 {
        return err(
            sig.inputs.span(),
            format!("takes exactly one argument, found {}", sig.inputs.len()),
        );
    }
    let arg = sig.inputs.first().expect("one input");
    let syn::FnArg::Typed(pt) = arg else {
        return err(arg.span(), "cannot take `self`".into());
    };
    let ok_arg = match &*pt.ty {
        syn::Type::Reference(r) => {
            r.mutability.is_some() == want_mut && last_ident(&r.elem).as_deref() == Some(ctx)
        }
        _ => false,
    };
    if !ok_arg {
        let want = if want_mut {
            format!("&mut {ctx}<'_>")
        } else {
            format!("&{ctx}<'_>")
        };
        return err(pt.ty.span(), format!("takes `{want}`"));
    }
    let ok_ret = match &sig.output {
        syn::ReturnType::Type(_, t) => last_ident(t).as_deref() == Some(ret),
        syn::ReturnType::Default => false,
    };
    if !ok_ret {
        return err(sig.output.span(), format!("must return `{ret}`"));
    }
    None
}

/// The field types of `#[check(field = "…")]` as a bit mask (see
/// `auftrag_compiler::check_field_mask`); 0 without `field`.
fn field_mask(attr: TokenStream) -> syn::Result<u32> {
    let mut mask = 0;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("field") {
            let lit: LitStr = meta.value()?.parse()?;
            mask = auftrag_compiler::check_field_mask(&lit.value())
                .map_err(|e| syn::Error::new(lit.span(), e))?;
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; a check takes only `field = \"TYPE\"`, the field types it judges",
            ))
        }
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(mask)
}

fn handler(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut fields = 0u32;
    if kind == Kind::Check {
        match field_mask(attr) {
            Ok(m) => fields = m,
            Err(e) => return e.to_compile_error().into(),
        }
    } else if !attr.is_empty() {
        let a = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(a.span(), "takes no arguments")
            .to_compile_error()
            .into();
    }
    let f = parse_macro_input!(item as ItemFn);
    if let Some(e) = signature_errors(kind, &f) {
        let e = e.to_compile_error();
        return quote! { #f #e }.into();
    }
    let name = &f.sig.ident;
    let vis = &f.vis;
    let id: u8 = match kind {
        Kind::Check => 1,
        Kind::Action => 2,
        Kind::Condition => 3,
        Kind::Resolver => 4,
    };
    let boxed = boxed(&f);
    quote! {
        #f

        /// Registration of the handler of the same name for the definitions.
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        #[allow(dead_code)]
        impl #name {
            #[doc(hidden)]
            #vis const AUFTRAG_HANDLER: u8 = #id;
            /// The field types a check judges, one bit per type.
            #[doc(hidden)]
            #vis const AUFTRAG_FIELDS: u32 = #fields;
            #boxed
        }
    }
    .into()
}

/// For an async handler (its signature checked): `auftrag_boxed`, the
/// handler's future boxed — what the generated tables call. The boxing is
/// here, in the handler's crate, so that the future's code (the handler and
/// every async fn it awaits) is compiled with the handler, not again in
/// the crate of the tables: an async fn's body is compiled in every crate
/// that names its future's type. Written with the handler's own argument
/// and result types (`futures::future::BoxFuture`, spelled out), so it needs
/// no engine.
fn boxed(f: &ItemFn) -> proc_macro2::TokenStream {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return quote! {};
    }
    let (Some(syn::FnArg::Typed(pt)), syn::ReturnType::Type(_, ret)) =
        (sig.inputs.first(), &sig.output)
    else {
        return quote! {};
    };
    let syn::Type::Reference(r) = &*pt.ty else {
        return quote! {};
    };
    let (name, vis, ctx) = (&sig.ident, &f.vis, &r.elem);
    quote! {
        /// The handler's future, boxed, for the generated tables.
        #[doc(hidden)]
        #[inline(never)]
        #vis fn auftrag_boxed<'auftrag>(
            ctx: &'auftrag mut #ctx,
        ) -> ::core::pin::Pin<
            ::std::boxed::Box<
                dyn ::core::future::Future<Output = #ret> + ::core::marker::Send + 'auftrag,
            >,
        > {
            ::std::boxed::Box::pin(#name(ctx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::display_dir;
    use std::path::Path;

    #[test]
    fn errors_name_the_folder_relative_to_the_package() {
        let root = std::env::current_dir().unwrap().join("pkg");
        // a call in examples/firewall/firewall.rs naming "definitions/"
        assert_eq!(
            display_dir(
                &root.join("examples/firewall/./definitions/"),
                Some(&root),
                Path::new("definitions/")
            ),
            Path::new("examples/firewall/definitions")
        );
        // rustc gives workspace-relative source paths: made absolute first
        assert_eq!(
            display_dir(
                Path::new("pkg/examples/firewall/definitions"),
                Some(&root),
                Path::new("definitions")
            ),
            Path::new("examples/firewall/definitions")
        );
        // outside the package: as written
        assert_eq!(
            display_dir(
                Path::new("/elsewhere/defs"),
                Some(&root),
                Path::new("defs/")
            ),
            Path::new("defs/")
        );
        assert_eq!(
            display_dir(&root.join("definitions"), None, Path::new("definitions/")),
            Path::new("definitions/")
        );
    }
}
