//! Charts of the statistics page as SVG, laid out here and drawn by the
//! template `ui/chart.html` inside the page: no script, nothing from
//! elsewhere, and every text (an order type, a check's name, a group's
//! key) escaped by askama like any other value of the pages.
//!
//! A chart is a list of shapes with their coordinates in a `viewBox`; the
//! style sheet scales it to the width of the page (phones included).

/// Colours of the series: distinguishable, dark enough for white text's
/// neighbour and for the legend (cycled when there are more series).
pub const PALETTE: [&str; 8] = [
    "#0b5cad", "#d46b08", "#1a7f37", "#8250df", "#a8071a", "#0e7c86", "#6e7781", "#b08800",
];

/// The colour of the `i`th series.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub fill: &'static str,
    /// Shown by the browser on hover (`<title>`).
    pub tip: String,
}

pub struct Text {
    pub x: f64,
    pub y: f64,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
    /// `label`, `value` or `axis` (the style sheet's classes).
    pub class: &'static str,
    pub text: String,
}

pub struct Line {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// A chart: an SVG document's shapes, a legend, and its title.
pub struct Chart {
    /// The element id of the chart (`chart-…`).
    pub id: &'static str,
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub rects: Vec<Rect>,
    pub texts: Vec<Text>,
    pub lines: Vec<Line>,
    /// (colour, name) of each series.
    pub legend: Vec<(&'static str, String)>,
    /// Said instead of the chart when there is nothing to draw.
    pub empty: bool,
}

/// Rounded to a tenth, so the SVG stays short.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A round number at or above `max` (1, 2, 5 × 10ⁿ), the top of an axis.
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let exp = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * exp >= max {
            return m * exp;
        }
    }
    10.0 * exp
}

/// A whole number without decimals, else one decimal.
fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Text width estimate (the pages' sans-serif at 12 px).
fn text_width(text: &str) -> f64 {
    7.5 * text.chars().count() as f64
}

impl Chart {
    fn new(id: &'static str, title: String) -> Self {
        Chart {
            id,
            title,
            width: 0.0,
            height: 0.0,
            rects: Vec::new(),
            texts: Vec::new(),
            lines: Vec::new(),
            legend: Vec::new(),
            empty: false,
        }
    }

    fn text(&mut self, x: f64, y: f64, anchor: &'static str, class: &'static str, text: String) {
        self.texts.push(Text {
            x: r(x),
            y: r(y),
            anchor,
            class,
            text,
        });
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &'static str, tip: String) {
        self.rects.push(Rect {
            x: r(x),
            y: r(y),
            w: r(w),
            h: r(h),
            fill,
            tip,
        });
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        self.lines.push(Line {
            x1: r(x1),
            y1: r(y1),
            x2: r(x2),
            y2: r(y2),
        });
    }
}

/// Vertical bars, one per period, stacked by series: `series` is (name,
/// value per period). The total stands above each bar.
pub fn stacked_columns(
    id: &'static str,
    title: String,
    periods: &[String],
    series: &[(String, Vec<i64>)],
) -> Chart {
    let mut c = Chart::new(id, title);
    let totals: Vec<i64> = (0..periods.len())
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    c.legend = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (colour(i), name.clone()))
        .collect();
    if periods.is_empty() || max == 0 {
        c.empty = true;
        return c;
    }
    let (left, top, plot_h, bottom) = (44.0, 22.0, 200.0, 40.0);
    let slot = (720.0 / periods.len() as f64).clamp(8.0, 56.0);
    let bar = slot * 0.72;
    c.width = left + slot * periods.len() as f64 + 12.0;
    c.height = top + plot_h + bottom;
    let top_value = nice_top(max as f64);
    let y_of = |v: f64| top + plot_h - v / top_value * plot_h;
    // counts: a middle line only where it is a whole number
    let middle = top_value / 2.0;
    let ticks = if middle.fract() == 0.0 {
        vec![0.0, middle, top_value]
    } else {
        vec![0.0, top_value]
    };
    for tick in ticks {
        let y = y_of(tick);
        c.line(left, y, c.width - 8.0, y);
        c.text(left - 6.0, y + 4.0, "end", "axis", number(tick));
    }
    // a label under every k-th bar, so that they do not overlap
    let every = ((periods.len() as f64 * 48.0) / 720.0).ceil().max(1.0) as usize;
    for (i, period) in periods.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0i64;
        for (s, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let (y0, y1) = (y_of(base as f64), y_of((base + v) as f64));
            c.rect(
                x,
                y1,
                bar,
                y0 - y1,
                colour(s),
                format!("{period} · {name}: {v}"),
            );
            base += v;
        }
        if totals[i] > 0 {
            c.text(
                x + bar / 2.0,
                y_of(totals[i] as f64) - 4.0,
                "middle",
                "value",
                totals[i].to_string(),
            );
        }
        if i % every == 0 {
            c.text(
                x + bar / 2.0,
                top + plot_h + 16.0,
                "middle",
                "axis",
                short_period(period),
            );
        }
    }
    c
}

/// `2026-11-24` as `11-24`; months stay `2026-11`.
fn short_period(p: &str) -> String {
    if p.len() == 10 {
        p[5..].to_owned()
    } else {
        p.to_owned()
    }
}

/// One bar of a row of [`bars`].
pub struct Bar {
    pub value: f64,
    pub fill: &'static str,
    /// Written after the bar.
    pub shown: String,
    pub tip: String,
}

/// Horizontal bars: one row per label, each with one or more bars (drawn
/// one under the other), scaled to the largest value (or to `scale`).
pub fn bars(
    id: &'static str,
    title: String,
    rows: Vec<(String, Vec<Bar>)>,
    scale: Option<f64>,
    legend: Vec<(&'static str, String)>,
) -> Chart {
    let mut c = Chart::new(id, title);
    c.legend = legend;
    let max = scale.unwrap_or_else(|| {
        rows.iter()
            .flat_map(|(_, b)| b.iter().map(|b| b.value))
            .fold(0.0, f64::max)
    });
    if rows.is_empty() || max <= 0.0 {
        c.empty = true;
        return c;
    }
    let label_w = rows
        .iter()
        .map(|(l, _)| text_width(l))
        .fold(40.0, f64::max)
        .min(240.0);
    let value_w = rows
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| text_width(&b.shown)))
        .fold(30.0, f64::max)
        .min(200.0);
    let (left, plot_w, bar_h, gap) = (label_w + 12.0, 380.0, 16.0, 12.0);
    let mut y = 8.0;
    for (label, row) in rows {
        let row_h = bar_h * row.len() as f64;
        c.text(left - 8.0, y + row_h / 2.0 + 4.0, "end", "label", label);
        for (i, b) in row.into_iter().enumerate() {
            let by = y + bar_h * i as f64;
            let w = (b.value / max * plot_w).max(if b.value > 0.0 { 1.0 } else { 0.0 });
            c.rect(left, by + 1.0, w, bar_h - 2.0, b.fill, b.tip);
            c.text(left + w + 6.0, by + bar_h - 4.0, "start", "value", b.shown);
        }
        y += row_h + gap;
    }
    c.line(left, 4.0, left, y - gap + 4.0);
    c.width = left + plot_w + value_w + 16.0;
    c.height = y - gap + 8.0;
    c
}

/// Milliseconds as a person reads them: `850 ms`, `12.3 s`, `4.5 min`,
/// `3.2 h`, `2.1 d`.
pub fn duration(ms: i64) -> String {
    let ms = ms as f64;
    if ms < 1000.0 {
        format!("{ms} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms < 86_400_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else {
        format!("{:.1} d", ms / 86_400_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(1.0), 1.0);
        assert_eq!(nice_top(3.0), 5.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(12.0), 20.0);
        assert_eq!(nice_top(480.0), 500.0);
    }

    #[test]
    fn stacked_columns_stack_and_total() {
        let periods = vec!["2026-11-24".to_owned(), "2026-11-25".to_owned()];
        let series = vec![
            ("change_device".to_owned(), vec![2, 0]),
            ("register_device".to_owned(), vec![1, 4]),
        ];
        let c = stacked_columns("chart-t", "t".into(), &periods, &series);
        assert!(!c.empty);
        // three segments (a zero draws none), totals 3 and 4 above the bars
        assert_eq!(c.rects.len(), 3);
        let values: Vec<&str> = c
            .texts
            .iter()
            .filter(|t| t.class == "value")
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(values, ["3", "4"]);
        // the segments of the first bar touch: one ends where the next begins
        assert_eq!(c.rects[0].y, c.rects[1].y + c.rects[1].h);
        assert_eq!(c.legend[1], (colour(1), "register_device".to_owned()));
    }

    #[test]
    fn nothing_to_draw_is_said() {
        assert!(stacked_columns("c", "t".into(), &[], &[]).empty);
        assert!(bars("c", "t".into(), vec![], None, vec![]).empty);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_300), "12.3 s");
        assert_eq!(duration(270_000), "4.5 min");
        assert_eq!(duration(2 * 86_400_000), "2.0 d");
    }
}
