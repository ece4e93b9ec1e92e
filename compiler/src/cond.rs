//! The condition language of `<condition test="...">`:
//!
//! ```text
//! expr  := or
//! or    := and (('or' | '||') and)*
//! and   := unary (('and' | '&&') unary)*
//! unary := ('!' | 'not') unary | '(' expr ')' | ident
//! ```

use crate::model::CondExpr;

/// The named conditions and the `CondCtx` method each calls.
pub const KNOWN: [&str; 2] = ["has_errors", "has_warnings"];

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

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
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
                if KNOWN.contains(&name.as_str()) {
                    Ok(CondExpr::Ident(name))
                } else {
                    Err(CondError {
                        offset: at,
                        message: format!("unknown condition `{name}`"),
                        help: Some(
                            crate::suggest(&name, KNOWN).unwrap_or_else(|| {
                                format!("known conditions: {}", KNOWN.join(", "))
                            }),
                        ),
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

/// Parses a condition expression.
pub(crate) fn parse(src: &str) -> Result<CondExpr, CondError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
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

/// Rust source of the expression, reading `ctx: &CondCtx`.
pub(crate) fn to_rust(e: &CondExpr) -> String {
    fn go(e: &CondExpr, parent: u8, out: &mut String) {
        // precedence: or = 1, and = 2, unary = 3
        match e {
            CondExpr::Ident(n) => {
                out.push_str("ctx.");
                out.push_str(n);
                out.push_str("()");
            }
            CondExpr::Not(inner) => {
                out.push('!');
                go(inner, 3, out);
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
                go(a, prec, out);
                out.push_str(op);
                go(b, prec + 1, out);
                if paren {
                    out.push(')');
                }
            }
        }
    }
    let mut s = String::new();
    go(e, 0, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(s: &str) -> String {
        to_rust(&parse(s).unwrap())
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
