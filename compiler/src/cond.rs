//! The condition language of `<condition test="...">`:
//!
//! ```text
//! expr  := or
//! or    := and (('or' | '||') and)*
//! and   := unary (('and' | '&&') unary)*
//! unary := ('!' | 'not') unary | '(' expr ')' | ident
//! ```

use crate::model::CondExpr;

/// The built-in named conditions: `CondCtx` methods.
pub const BUILTIN: [&str; 2] = ["has_errors", "has_warnings"];

/// A problem at byte `offset` of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CondError {
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Not,
    And,
    Or,
    Open,
    Close,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Not => "`!`".into(),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Open => "`(`".into(),
            Tok::Close => "`)`".into(),
            Tok::End => "end of condition".into(),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, CondError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            b'!' => {
                i += 1;
                Tok::Not
            }
            b'(' => {
                i += 1;
                Tok::Open
            }
            b')' => {
                i += 1;
                Tok::Close
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                i += 2;
                Tok::And
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                i += 2;
                Tok::Or
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                match &src[start..i] {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    s => Tok::Ident(s.to_owned()),
                }
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(CondError {
                    offset: start,
                    message: format!("unexpected character `{ch}` in condition"),
                    help: Some(
                        "conditions combine names with `!`, `and`, `or` and parentheses".into(),
                    ),
                });
            }
        };
        out.push((tok, start));
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

struct Parser<'k> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    known: &'k [&'k str],
}

impl Parser<'_> {
    fn peek(&self) -> &(Tok, usize) {
        &self.toks[self.pos]
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if t.0 != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<CondExpr, CondError> {
        let mut lhs = self.and()?;
        while self.peek().0 == Tok::Or {
            self.next();
            let rhs = self.and()?;
            lhs = CondExpr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<CondExpr, CondError> {
        let mut lhs = self.unary()?;
        while self.peek().0 == Tok::And {
            self.next();
            let rhs = self.unary()?;
            lhs = CondExpr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<CondExpr, CondError> {
        let (tok, at) = self.next();
        match tok {
            Tok::Not => Ok(CondExpr::Not(Box::new(self.unary()?))),
            Tok::Open => {
                let inner = self.or()?;
                let (close, close_at) = self.next();
                if close != Tok::Close {
                    return Err(CondError {
                        offset: close_at,
                        message: format!("expected `)`, found {}", close.describe()),
                        help: Some(format!("the `(` at offset {at} is not closed")),
                    });
                }
                Ok(inner)
            }
            Tok::Ident(name) => {
                if self.known.contains(&name.as_str()) {
                    Ok(CondExpr::Ident(name))
                } else {
                    let known = self.known;
                    Err(CondError {
                        offset: at,
                        message: format!("unknown condition `{name}`"),
                        help: Some(crate::suggest(&name, known.iter().copied()).unwrap_or_else(
                            || {
                                format!(
                                    "known conditions: {}; declare others in actions.xml",
                                    known.join(", ")
                                )
                            },
                        )),
                    })
                }
            }
            other => Err(CondError {
                offset: at,
                message: format!(
                    "expected a condition name, `!` or `(`, found {}",
                    other.describe()
                ),
                help: None,
            }),
        }
    }
}

/// Parses a condition expression over the `known` condition names.
pub(crate) fn parse(src: &str, known: &[&str]) -> Result<CondExpr, CondError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        known,
    };
    let e = p.or()?;
    let (tok, at) = p.next();
    if tok != Tok::End {
        return Err(CondError {
            offset: at,
            message: format!(
                "expected `and`, `or` or end of condition, found {}",
                tok.describe()
            ),
            help: None,
        });
    }
    Ok(e)
}

/// Evaluates `e` with the named conditions set as in `env`.
pub(crate) fn eval(e: &CondExpr, env: &dyn Fn(&str) -> bool) -> bool {
    match e {
        CondExpr::Ident(n) => env(n),
        CondExpr::Not(a) => !eval(a, env),
        CondExpr::And(a, b) => eval(a, env) && eval(b, env),
        CondExpr::Or(a, b) => eval(a, env) || eval(b, env),
    }
}

/// The names an expression uses.
pub(crate) fn idents<'e>(e: &'e CondExpr, out: &mut Vec<&'e str>) {
    match e {
        CondExpr::Ident(n) => {
            if !out.contains(&n.as_str()) {
                out.push(n)
            }
        }
        CondExpr::Not(a) => idents(a, out),
        CondExpr::And(a, b) | CondExpr::Or(a, b) => {
            idents(a, out);
            idents(b, out);
        }
    }
}

/// Whether at least one of `exprs` holds whatever the named conditions are
/// (checked by truth table; `None` when there are too many names to try).
pub(crate) fn covers_all(exprs: &[&CondExpr]) -> Option<bool> {
    let mut names = Vec::new();
    for e in exprs {
        idents(e, &mut names);
    }
    if names.len() > 12 {
        return None;
    }
    for bits in 0u32..(1 << names.len()) {
        let env = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .is_some_and(|i| bits & (1 << i) != 0)
        };
        if !exprs.iter().any(|e| eval(e, &env)) {
            return Some(false);
        }
    }
    Some(true)
}

/// Rust source of the expression, reading `ctx: &CondCtx`; `path` maps a
/// declared condition to its Rust handler (built-ins are `CondCtx` methods).
pub(crate) fn to_rust(e: &CondExpr, path: &dyn Fn(&str) -> Option<String>) -> String {
    fn go(e: &CondExpr, parent: u8, out: &mut String, path: &dyn Fn(&str) -> Option<String>) {
        // precedence: or = 1, and = 2, unary = 3
        match e {
            CondExpr::Ident(n) => match path(n) {
                Some(p) => {
                    out.push_str(&p);
                    out.push_str("(ctx)");
                }
                None => {
                    out.push_str("ctx.");
                    out.push_str(n);
                    out.push_str("()");
                }
            },
            CondExpr::Not(inner) => {
                out.push('!');
                go(inner, 3, out, path);
            }
            CondExpr::And(a, b) | CondExpr::Or(a, b) => {
                let (prec, op) = if matches!(e, CondExpr::And(..)) {
                    (2, " && ")
                } else {
                    (1, " || ")
                };
                let paren = parent > prec;
                if paren {
                    out.push('(');
                }
                go(a, prec, out, path);
                out.push_str(op);
                go(b, prec + 1, out, path);
                if paren {
                    out.push(')');
                }
            }
        }
    }
    let mut s = String::new();
    go(e, 0, &mut s, path);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CondExpr, CondError> {
        super::parse(s, &BUILTIN)
    }

    fn rust(s: &str) -> String {
        to_rust(&parse(s).unwrap(), &|_| None)
    }

    #[test]
    fn coverage() {
        let e: Vec<CondExpr> = [
            "has_errors",
            "has_warnings",
            "!(has_warnings or has_errors)",
        ]
        .iter()
        .map(|s| parse(s).unwrap())
        .collect();
        assert_eq!(covers_all(&e.iter().collect::<Vec<_>>()), Some(true));
        assert_eq!(covers_all(&e[..2].iter().collect::<Vec<_>>()), Some(false));
    }

    #[test]
    fn precedence_and_rendering() {
        assert_eq!(rust("has_errors"), "ctx.has_errors()");
        assert_eq!(
            rust("!(has_warnings or has_errors)"),
            "!(ctx.has_warnings() || ctx.has_errors())"
        );
        assert_eq!(
            rust("has_errors || has_warnings && not has_errors"),
            "ctx.has_errors() || ctx.has_warnings() && !ctx.has_errors()"
        );
        assert_eq!(
            rust("(has_errors or has_warnings) and has_errors"),
            "(ctx.has_errors() || ctx.has_warnings()) && ctx.has_errors()"
        );
        assert_eq!(rust("!!has_errors"), "!!ctx.has_errors()");
    }

    #[test]
    fn errors() {
        let e = parse("has_errors or").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (
                13,
                "expected a condition name, `!` or `(`, found end of condition"
            )
        );
        let e = parse("(has_errors").unwrap_err();
        assert_eq!(e.offset, 11);
        assert_eq!(e.message, "expected `)`, found end of condition");
        let e = parse("has_eror").unwrap_err();
        assert_eq!(e.message, "unknown condition `has_eror`");
        assert_eq!(e.help.as_deref(), Some("did you mean `has_errors`?"));
        let e = parse("has_errors has_warnings").unwrap_err();
        assert_eq!(e.offset, 11);
        let e = parse("has_errors & has_warnings").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (11, "unexpected character `&` in condition")
        );
    }
}
