//! Emission of `attributes.xml` and `policies.xml` into the static tables of
//! `auftrag_engine::pdp`: attribute ids as constants, one source per
//! attribute, targets and conditions as Rust functions over typed attribute
//! values. Nothing is interpreted at run time.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::policy::{Attribute, Expr, Node, Obligation, PolicyNode, PolicyRoot, Rule};

/// How values of a definition type are held at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Str,
    Int,
    Bool,
    Ip,
    Subnet,
    Time,
}

fn class(ty: &str) -> Class {
    match ty {
        "integer" => Class::Int,
        "bool" => Class::Bool,
        "ipv4" | "ipv6" => Class::Ip,
        "subnet" => Class::Subnet,
        "date" | "datetime" => Class::Time,
        _ => Class::Str,
    }
}

fn value_type(c: Class) -> TokenStream {
    let v = match c {
        Class::Str => quote! { String },
        Class::Int => quote! { Integer },
        Class::Bool => quote! { Boolean },
        Class::Ip => quote! { Ip },
        Class::Subnet => quote! { Subnet },
        Class::Time => quote! { Time },
    };
    quote! { ::auftrag_engine::pdp::ValueType::#v }
}

/// `subject.is_staff` → `SUBJECT_IS_STAFF`.
fn const_name(attr: &str) -> proc_macro2::Ident {
    format_ident!("{}", attr.replace('.', "_").to_ascii_uppercase())
}

struct Emitter<'m> {
    attributes: &'m [Attribute],
    items: TokenStream,
    preds: usize,
    statics: usize,
}

impl Emitter<'_> {
    fn attr(&self, name: &str) -> (&Attribute, proc_macro2::Ident) {
        let a = self
            .attributes
            .iter()
            .find(|a| a.name == name)
            .expect("validated attribute");
        (a, const_name(name))
    }

    /// An operand as an `Option<T>` expression (may use `?` on `c`).
    fn operand(&self, n: &Node) -> (Class, TokenStream) {
        match n {
            Node::Attr { name } => {
                let (a, id) = self.attr(name);
                let c = class(&a.ty);
                let get = match c {
                    Class::Str => quote! { c.string(attr::#id)? },
                    Class::Int => quote! { c.integer(attr::#id)? },
                    Class::Bool => quote! { c.boolean(attr::#id)? },
                    Class::Ip => quote! { c.ip(attr::#id)? },
                    Class::Subnet => quote! { c.subnet(attr::#id)? },
                    Class::Time => quote! { c.time(attr::#id)? },
                };
                (c, get)
            }
            Node::Lit { ty, value } => {
                let c = class(ty);
                let lit = match c {
                    Class::Str => quote! { Some(#value) },
                    Class::Int => {
                        let n: i64 = value.parse().expect("validated integer");
                        let n = Literal::i64_suffixed(n);
                        quote! { Some(#n) }
                    }
                    Class::Bool => {
                        let b = value == "true";
                        quote! { Some(#b) }
                    }
                    Class::Ip => ip_literal(value),
                    Class::Subnet => quote! { ::auftrag_engine::pdp::parse_subnet(#value) },
                    Class::Time => {
                        let t = Literal::i64_suffixed(timestamp(value));
                        quote! { Some(#t) }
                    }
                };
                (c, lit)
            }
            _ => unreachable!("validated: comparisons take attributes and values"),
        }
    }

    /// An expression of type `Result<bool, AttrError>`.
    fn pred(&self, n: &Node) -> TokenStream {
        let result = quote! { ::core::result::Result<bool, ::auftrag_engine::pdp::AttrError> };
        match n {
            Node::Attr { .. } => {
                let (_, get) = self.operand(n);
                quote! { (|| -> #result { Ok(#get == Some(true)) })() }
            }
            Node::Lit { value, .. } => {
                let b = value == "true";
                quote! { Ok::<bool, ::auftrag_engine::pdp::AttrError>(#b) }
            }
            Node::Not { arg } => {
                let a = self.pred(arg);
                quote! { (#a).map(|b| !b) }
            }
            Node::And { args } | Node::Or { args } => {
                let f = if matches!(n, Node::And { .. }) {
                    quote! { ::auftrag_engine::pdp::and3 }
                } else {
                    quote! { ::auftrag_engine::pdp::or3 }
                };
                let mut it = args.iter().rev();
                let last = self.pred(it.next().expect("and/or has arguments"));
                it.fold(last, |acc, a| {
                    let a = self.pred(a);
                    quote! { #f(#a, || #acc) }
                })
            }
            Node::Cmp { cmp, lhs, rhs } => {
                let body = self.compare(cmp, lhs, rhs);
                quote! { (|| -> #result { Ok(#body) })() }
            }
        }
    }

    fn compare(&self, op: &str, lhs: &Node, rhs: &Node) -> TokenStream {
        if op == "in" {
            let rhs_bag = match rhs {
                Node::Attr { name } => self.attr(name).0.multi,
                _ => false,
            };
            if rhs_bag {
                let Node::Attr { name } = rhs else {
                    unreachable!()
                };
                let (_, id) = self.attr(name);
                let (c, l) = self.operand(lhs);
                return if c == Class::Str {
                    quote! { ::auftrag_engine::pdp::Ctx::contains_str(c.set(attr::#id)?, #l) }
                } else {
                    let v = value_of(c, quote! { __v });
                    quote! {
                        {
                            let __set = c.set(attr::#id)?;
                            #l.is_some_and(|__v| __set.contains(&#v))
                        }
                    }
                };
            }
            // an address in a subnet
            let (_, l) = self.operand(lhs);
            let (_, r) = self.operand(rhs);
            return quote! { matches!((#l, #r), (Some(__ip), Some(__net)) if __net.contains(&__ip)) };
        }
        let (_, l) = self.operand(lhs);
        let (_, r) = self.operand(rhs);
        let op: TokenStream = op.parse().expect("comparison operator");
        // XACML: a comparison with an empty bag (a missing value) is false.
        quote! { matches!((#l, #r), (Some(__a), Some(__b)) if __a #op __b) }
    }

    /// The expression as data (`auftrag_engine::pdp::Expr`), a constant.
    fn expr(&self, n: &Node) -> TokenStream {
        let pdp = quote! { ::auftrag_engine::pdp };
        match n {
            Node::Attr { name } => {
                let (_, id) = self.attr(name);
                quote! { #pdp::Expr::Attr(attr::#id) }
            }
            Node::Lit { ty, value } => {
                let lit = match class(ty) {
                    Class::Str => quote! { Str(#value) },
                    Class::Int => {
                        let n = Literal::i64_suffixed(value.parse().expect("validated integer"));
                        quote! { Int(#n) }
                    }
                    Class::Bool => {
                        let b = value == "true";
                        quote! { Bool(#b) }
                    }
                    Class::Ip => {
                        let ip = ip_value(value);
                        quote! { Ip(#ip) }
                    }
                    Class::Subnet => quote! { Subnet(#value) },
                    Class::Time => {
                        let t = Literal::i64_suffixed(timestamp(value));
                        quote! { Time(#t) }
                    }
                };
                quote! { #pdp::Expr::Lit(#pdp::Lit::#lit) }
            }
            Node::Not { arg } => {
                let a = self.expr(arg);
                quote! { #pdp::Expr::Not(&#a) }
            }
            Node::And { args } | Node::Or { args } => {
                let items = args.iter().map(|a| self.expr(a));
                let v = if matches!(n, Node::And { .. }) {
                    quote! { And }
                } else {
                    quote! { Or }
                };
                quote! { #pdp::Expr::#v(&[#( #items ),*]) }
            }
            Node::Cmp { cmp, lhs, rhs } => {
                let op = format_ident!(
                    "{}",
                    match cmp.as_str() {
                        "==" => "Eq",
                        "!=" => "Ne",
                        "<" => "Lt",
                        "<=" => "Le",
                        ">" => "Gt",
                        ">=" => "Ge",
                        _ => "In",
                    }
                );
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                quote! { #pdp::Expr::Cmp(#pdp::CmpOp::#op, &#l, &#r) }
            }
        }
    }

    fn predicate_fn(&mut self, e: &Option<Expr>) -> TokenStream {
        let Some(e) = e else { return quote! { None } };
        let name = format_ident!("policy_predicate_{}", self.preds);
        let expr_name = format_ident!("POLICY_EXPR_{}", self.preds);
        self.preds += 1;
        let body = self.pred(&e.tree);
        let expr = self.expr(&e.tree);
        let source = format!(" `{}`", e.source);
        self.items.extend(quote! {
            #[doc = #source]
            #[allow(clippy::redundant_closure_call, unused_parens)]
            fn #name(c: &mut ::auftrag_engine::pdp::eval::Ctx<'_>) -> ::core::result::Result<bool, ::auftrag_engine::pdp::AttrError> {
                #body
            }
            #[doc = #source]
            static #expr_name: ::auftrag_engine::pdp::Expr = #expr;
        });
        quote! { Some(::auftrag_engine::pdp::Predicate { eval: #name, expr: &#expr_name }) }
    }

    fn obligations(&self, obligations: &[Obligation]) -> TokenStream {
        let items = obligations.iter().map(|o| {
            let id = &o.name;
            let on = effect(&o.on);
            let description = o
                .arguments
                .iter()
                .map(|a| format!("{}={}", a.name, a.attribute.clone().or(a.value.clone()).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ");
            let arguments = o.arguments.iter().map(|a| {
                let name = &a.name;
                let attribute = match &a.attribute {
                    Some(x) => quote! { Some(#x) },
                    None => quote! { None },
                };
                let value = match &a.value {
                    Some(x) => quote! { Some(#x) },
                    None => quote! { None },
                };
                quote! { ::auftrag_engine::pdp::ArgumentDef { name: #name, attribute: #attribute, value: #value } }
            });
            quote! {
                ::auftrag_engine::pdp::ObligationDef { id: #id, on: #on, advice: false, description: #description, arguments: &[#( #arguments ),*] }
            }
        });
        quote! { &[#( #items ),*] }
    }

    fn rule(&mut self, r: &Rule) -> TokenStream {
        let (id, description) = (&r.name, &r.description);
        let effect = effect(&r.effect);
        let target = self.predicate_fn(&r.target);
        let condition = self.predicate_fn(&r.condition);
        let obligations = self.obligations(&r.obligations);
        quote! {
            ::auftrag_engine::pdp::RuleDef {
                id: #id,
                description: #description,
                effect: #effect,
                target: #target,
                condition: #condition,
                obligations: #obligations,
            }
        }
    }

    /// Emits a static for the node; returns the `PolicyNode` expression.
    fn node(&mut self, n: &PolicyNode) -> TokenStream {
        let ident = format_ident!("POLICY_{}", self.statics);
        self.statics += 1;
        match n {
            PolicyNode::PolicySet {
                name,
                description,
                combining,
                target,
                items,
                ..
            } => {
                let target = self.predicate_fn(target);
                let algorithm = algorithm(combining);
                let children: Vec<TokenStream> = items.iter().map(|c| self.node(c)).collect();
                self.items.extend(quote! {
                    static #ident: ::auftrag_engine::pdp::PolicySetDef = ::auftrag_engine::pdp::PolicySetDef {
                        id: #name,
                        description: #description,
                        target: #target,
                        algorithm: #algorithm,
                        children: &[#( #children ),*],
                    };
                });
                quote! { ::auftrag_engine::pdp::PolicyNode::Set(&#ident) }
            }
            PolicyNode::Policy {
                name,
                description,
                combining,
                target,
                rules,
                obligations,
            } => {
                let target = self.predicate_fn(target);
                let algorithm = algorithm(combining);
                let rules: Vec<TokenStream> = rules.iter().map(|r| self.rule(r)).collect();
                let obligations = self.obligations(obligations);
                self.items.extend(quote! {
                    static #ident: ::auftrag_engine::pdp::PolicyDef = ::auftrag_engine::pdp::PolicyDef {
                        id: #name,
                        description: #description,
                        target: #target,
                        algorithm: #algorithm,
                        rules: &[#( #rules ),*],
                        obligations: #obligations,
                    };
                });
                quote! { ::auftrag_engine::pdp::PolicyNode::Policy(&#ident) }
            }
        }
    }
}

fn effect(e: &str) -> TokenStream {
    if e == "Deny" {
        quote! { ::auftrag_engine::pdp::Effect::Deny }
    } else {
        quote! { ::auftrag_engine::pdp::Effect::Permit }
    }
}

fn algorithm(name: &str) -> TokenStream {
    let variant = format_ident!(
        "{}",
        name.split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
    );
    quote! { ::auftrag_engine::pdp::Algorithm::#variant }
}

fn value_of(c: Class, v: TokenStream) -> TokenStream {
    let variant = match c {
        Class::Str => quote! { String },
        Class::Int => quote! { Integer },
        Class::Bool => quote! { Boolean },
        Class::Ip => quote! { Ip },
        Class::Subnet => quote! { Subnet },
        Class::Time => quote! { Time },
    };
    quote! { ::auftrag_engine::pdp::Value::#variant(#v) }
}

fn ip_literal(v: &str) -> TokenStream {
    let ip = ip_value(v);
    quote! { Some(#ip) }
}

fn ip_value(v: &str) -> TokenStream {
    match v.parse::<std::net::IpAddr>().expect("validated address") {
        std::net::IpAddr::V4(a) => {
            let [x, y, z, w] = a.octets();
            quote! { ::std::net::IpAddr::V4(::std::net::Ipv4Addr::new(#x, #y, #z, #w)) }
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            quote! { ::std::net::IpAddr::V6(::std::net::Ipv6Addr::new(#(#s),*)) }
        }
    }
}

/// Seconds since the epoch of a validated `date("YYYY-MM-DD")` or RFC 3339 time.
fn timestamp(v: &str) -> i64 {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return t.unix_timestamp();
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .expect("validated date")
}

/// The authorization tables, and the `authorization:` field of `DEFINITIONS`.
pub(crate) fn tokens(
    attributes: &[Attribute],
    root: Option<&PolicyRoot>,
) -> (TokenStream, TokenStream) {
    let Some(root) = root else {
        return (quote! {}, quote! { None });
    };
    let mut e = Emitter {
        attributes,
        items: TokenStream::new(),
        preds: 0,
        statics: 0,
    };
    let n = Literal::usize_unsuffixed(attributes.len());
    let consts = attributes.iter().enumerate().map(|(i, a)| {
        let id = const_name(&a.name);
        let i = Literal::u16_unsuffixed(i as u16);
        let doc = format!(
            " `{}` ({}{})",
            a.name,
            a.ty,
            if a.multi { ", multi" } else { "" }
        );
        quote! { #[doc = #doc] pub const #id: ::auftrag_engine::pdp::AttrId = #i; }
    });
    let defs = attributes.iter().enumerate().map(|(i, a)| {
        let id = Literal::u16_unsuffixed(i as u16);
        let (name, source, description) = (&a.name, &a.source, &a.description);
        let category = format_ident!(
            "{}",
            match a.category.as_str() {
                "subject" => "Subject",
                "resource" => "Resource",
                "action" => "Action",
                _ => "Environment",
            }
        );
        let ty = value_type(class(&a.ty));
        let multi = a.multi;
        let recorded = a.record;
        // Values the request itself carries must be there; resolved ones
        // may be absent (an empty bag).
        let must = matches!(a.source.as_str(), "request" | "now");
        quote! {
            ::auftrag_engine::pdp::AttributeDef {
                id: #id,
                name: #name,
                category: ::auftrag_engine::pdp::Category::#category,
                ty: #ty,
                multi: #multi,
                must_be_present: #must,
                recorded: #recorded,
                source: #source,
                description: #description,
            }
        }
    });
    let sources: Vec<TokenStream> = attributes
        .iter()
        .enumerate()
        .map(|(i, a)| match a.source.as_str() {
            "request" if a.category == "subject" => quote! { ::auftrag_engine::pdp::Source::Subject },
            "request" => quote! { ::auftrag_engine::pdp::Source::Action },
            "now" => quote! { ::auftrag_engine::pdp::Source::Now },
            "fields" => quote! { ::auftrag_engine::pdp::Source::Fields },
            "requester" => quote! { ::auftrag_engine::pdp::Source::Requester },
            "order_type" => quote! { ::auftrag_engine::pdp::Source::OrderType },
            s if s.starts_with("order.") => {
                let field = &s["order.".len()..];
                quote! { ::auftrag_engine::pdp::Source::Field(#field) }
            }
            path => {
                let wrapper = format_ident!("resolve_{}", i);
                let path: syn::Path = syn::parse_str(path).expect("validated resolver path");
                // boxed in the resolver's crate (`#[resolver]`): boxing
                // the future here would compile its code here too
                e.items.extend(quote! {
                    fn #wrapper<'a, 'b>(ctx: &'a mut ::auftrag_engine::pdp::PipCtx<'b>)
                        -> ::auftrag_engine::BoxFuture<'a, ::core::result::Result<Option<::auftrag_engine::pdp::Value>, ::auftrag_engine::error::HandlerError>> {
                        #path::auftrag_boxed(ctx)
                    }
                });
                quote! { ::auftrag_engine::pdp::Source::Resolver(#wrapper) }
            }
        })
        .collect();
    // The root `<policies>` is a policy set of its own.
    let root_node = PolicyNode::PolicySet {
        name: "policies".into(),
        description: "All policies (policies.xml).".into(),
        combining: root.combining.clone(),
        target: None,
        items: root.items.clone(),
        obligations: Vec::new(),
    };
    let root_expr = e.node(&root_node);
    let items = e.items;
    (
        quote! {
            /// Attribute ids (`attributes.xml`), as compiled policies read them.
            pub mod attr {
                #( #consts )*
            }

            /// The attributes of `attributes.xml`.
            pub static ATTRIBUTES: [::auftrag_engine::pdp::AttributeDef; #n] = [#( #defs ),*];

            /// Where each attribute's value comes from (same order as [`ATTRIBUTES`]).
            pub static ATTRIBUTE_SOURCES: [::auftrag_engine::pdp::Source; #n] = [#( #sources ),*];

            #items

            /// The root of the compiled policies (`policies.xml`).
            pub static POLICIES: ::auftrag_engine::pdp::PolicyNode = #root_expr;

            /// Attributes, sources and policies for the policy enforcement point.
            pub static AUTHORIZATION: ::auftrag_engine::pdp::Authorization = ::auftrag_engine::pdp::Authorization {
                attributes: &ATTRIBUTES,
                sources: &ATTRIBUTE_SOURCES,
                policies: &POLICIES,
            };
        },
        quote! { Some(&AUTHORIZATION) },
    )
}
