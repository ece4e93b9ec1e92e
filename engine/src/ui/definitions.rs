//! The definitions page (`/ui/definitions`): each workflow drawn as an SVG
//! diagram laid out in Rust (layout-rs; no script, nothing from elsewhere),
//! the checks with their severity per stage, the order types with their
//! fields.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::workflow::defs::{Definitions, Severity, WorkflowDef};

/// A workflow as an SVG document: a box per state (final states doubled
/// in name: `[STATE]`), an arrow per transition labelled with its action
/// (and condition, and returned value).
pub fn svg(defs: &Definitions, wf: &WorkflowDef) -> String {
    let mut vg = VisualGraph::new(Orientation::TopToBottom);
    let handles: Vec<_> = wf
        .states
        .iter()
        .map(|s| {
            let label = if s.is_final() {
                format!("[{}]", s.name)
            } else {
                s.name.to_owned()
            };
            let width = 24.0 + 9.0 * label.chars().count() as f64;
            let element = Element::create(
                ShapeKind::new_box(&label),
                StyleAttr::simple(),
                Orientation::LeftToRight,
                Point::new(width, 40.0),
            );
            vg.add_node(element)
        })
        .collect();
    for (from, to, label) in crate::workflow::graph::edges(defs, wf) {
        if from == to {
            // layout-rs draws no loops; a transition that stays is listed
            // with the state's actions on the page instead
            continue;
        }
        vg.add_edge(Arrow::simple(&label), handles[from], handles[to]);
    }
    let mut writer = SVGWriter::new();
    vg.do_it(false, false, false, &mut writer);
    writer.finalize()
}

/// The name of a severity as the page shows it.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Off => "off",
    }
}
