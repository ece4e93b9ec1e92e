//! The workflows as diagrams: Graphviz `dot` and Mermaid `stateDiagram-v2`
//! (`auftrag definitions graph`, `GET /api/v1/definitions/graph`).

use std::fmt::Write;

use crate::workflow::defs::{Definitions, NOCHANGE, WorkflowDef};

/// A diagram format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dot" => Ok(Self::Dot),
            "mermaid" => Ok(Self::Mermaid),
            other => Err(format!("unknown format `{other}`; use dot or mermaid")),
        }
    }
}

/// Edges of a workflow: (from, to, label).
pub(crate) fn edges(defs: &Definitions, wf: &WorkflowDef) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (i, s) in wf.states.iter().enumerate() {
        for t in s.transitions {
            let action = defs.action(t.action).name;
            let cond = t
                .condition
                .as_ref()
                .map(|c| format!(" [{}]", c.source))
                .unwrap_or_default();
            let target = |id: u16| if id == NOCHANGE { i } else { usize::from(id) };
            for (ret, st) in t.results {
                out.push((i, target(*st), format!("{action}{cond} = {ret}")));
            }
            let star = if t.results.is_empty() { "" } else { " = *" };
            out.push((
                i,
                target(t.resulting_state),
                format!("{action}{cond}{star}"),
            ));
        }
    }
    out
}

/// Renders every workflow of `defs`.
pub fn render(defs: &Definitions, format: Format) -> String {
    let mut out = String::new();
    for wf in defs.workflows {
        let e = edges(defs, wf);
        match format {
            Format::Dot => {
                let _ = writeln!(out, "digraph \"{}\" {{", wf.name);
                let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
                for s in wf.states {
                    let mut attrs = Vec::new();
                    if s.is_final() {
                        attrs.push("peripheries=2".to_owned());
                    }
                    if s.autorun {
                        attrs.push("style=\"rounded,dashed\"".to_owned());
                    }
                    let _ = writeln!(out, "  \"{}\" [{}];", s.name, attrs.join(", "));
                }
                for (a, b, label) in e {
                    let _ = writeln!(
                        out,
                        "  \"{}\" -> \"{}\" [label=\"{}\"];",
                        wf.states[a].name,
                        wf.states[b].name,
                        label.replace('"', "\\\"")
                    );
                }
                out.push_str("}\n");
            }
            Format::Mermaid => {
                let _ = writeln!(out, "---\ntitle: {}\n---\nstateDiagram-v2", wf.name);
                let _ = writeln!(out, "  [*] --> {}", wf.states[usize::from(wf.initial)].name);
                for (a, b, label) in e {
                    let _ = writeln!(
                        out,
                        "  {} --> {}: {}",
                        wf.states[a].name,
                        wf.states[b].name,
                        label.replace(':', "∶")
                    );
                }
                for s in wf.states.iter().filter(|s| s.is_final()) {
                    let _ = writeln!(out, "  {} --> [*]", s.name);
                }
            }
        }
    }
    out
}
