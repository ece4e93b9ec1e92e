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
            let cond = t.condition.as_ref().map(|c| c.source);
            let target = |id: u16| if id == NOCHANGE { i } else { usize::from(id) };
            for (ret, st) in t.results {
                out.push((i, target(*st), label(action, cond, Some(ret))));
            }
            let star = (!t.results.is_empty()).then_some("*");
            out.push((i, target(t.resulting_state), label(action, cond, star)));
        }
    }
    out
}

/// The workflows of a definitions folder as boxes and arrows: what
/// [`Diagram::render`] draws. Built from the compiled tables
/// ([`Diagram::of`]) or, by the CLI, from the compiler's model of any folder,
/// so both draw the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagram {
    pub workflows: Vec<WorkflowDiagram>,
}

/// One workflow: its states and transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowDiagram {
    pub name: String,
    /// Index of `INITIAL` in `states`.
    pub initial: usize,
    pub states: Vec<StateBox>,
    /// (from, to, label): `action [condition] = return`, indexes into `states`.
    pub edges: Vec<(usize, usize, String)>,
}

/// One state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateBox {
    pub name: String,
    /// Final, or without transitions: the order is closed there.
    pub is_final: bool,
    pub autorun: bool,
}

/// The label of a transition (`action [condition]`, then ` = return` or
/// ` = *` for the fallback of a resulting-state map): shared by the compiled
/// tables and the CLI's drawing of a folder.
pub fn label(action: &str, condition: Option<&str>, ret: Option<&str>) -> String {
    let cond = condition.map(|c| format!(" [{c}]")).unwrap_or_default();
    match ret {
        Some(r) => format!("{action}{cond} = {r}"),
        None => format!("{action}{cond}"),
    }
}

impl Diagram {
    /// The workflows of compiled definitions.
    pub fn of(defs: &Definitions) -> Self {
        Self {
            workflows: defs
                .workflows
                .iter()
                .map(|wf| WorkflowDiagram {
                    name: wf.name.to_owned(),
                    initial: usize::from(wf.initial),
                    states: wf
                        .states
                        .iter()
                        .map(|s| StateBox {
                            name: s.name.to_owned(),
                            is_final: s.is_final(),
                            autorun: s.autorun,
                        })
                        .collect(),
                    edges: edges(defs, wf),
                })
                .collect(),
        }
    }

    /// Renders every workflow.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        for wf in &self.workflows {
            let e = &wf.edges;
            match format {
                Format::Dot => {
                    let _ = writeln!(out, "digraph \"{}\" {{", wf.name);
                    let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box, style=rounded];");
                    for s in &wf.states {
                        let mut attrs = Vec::new();
                        if s.is_final {
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
                            wf.states[*a].name,
                            wf.states[*b].name,
                            label.replace('"', "\\\"")
                        );
                    }
                    out.push_str("}\n");
                }
                Format::Mermaid => {
                    let _ = writeln!(out, "---\ntitle: {}\n---\nstateDiagram-v2", wf.name);
                    let _ = writeln!(out, "  [*] --> {}", wf.states[wf.initial].name);
                    for (a, b, label) in e {
                        let _ = writeln!(
                            out,
                            "  {} --> {}: {}",
                            wf.states[*a].name,
                            wf.states[*b].name,
                            label.replace(':', "∶")
                        );
                    }
                    for s in wf.states.iter().filter(|s| s.is_final) {
                        let _ = writeln!(out, "  {} --> [*]", s.name);
                    }
                }
            }
        }
        out
    }
}

/// Renders every workflow of `defs`.
pub fn render(defs: &Definitions, format: Format) -> String {
    Diagram::of(defs).render(format)
}
