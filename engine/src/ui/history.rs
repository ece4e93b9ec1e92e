//! The history search (`/ui/history`) and the statistics (`/ui/stats`).
//!
//! Both are GET forms over the functions the API answers with
//! ([`crate::history::search::search`], [`crate::history::stats::stats`]),
//! called with the signed-in person: staff search and count every order,
//! everyone else what they may read. The form's parameters are parsed by
//! [`SearchQuery::parse`] / [`StatsQuery::parse`] as the API parses them,
//! so a bad value is refused with the API's reason, shown at its input.
//! The one difference: `since` and `until` are date inputs, so a day
//! (`2026-11-24`) is taken as its start (UTC), and `until` includes its day.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::charts::{self, Bar, Chart};
use super::views::{Chrome, problem, render, signed_in, when};
use crate::error::EngineError;
use crate::history::search::{SearchPage, SearchQuery};
use crate::history::stats::{By, Group, Stats, StatsQuery};
use crate::http::server::{AppState, Engine};
use crate::store::history::OrderDocument;

/// A choice of a filter's select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One input of a filter form (`q-NAME`, its error `e-q-NAME`).
pub struct Filter {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `date` or `select`.
    pub kind: &'static str,
    pub value: String,
    pub choices: Vec<Choice>,
    pub hint: &'static str,
    pub error: String,
}

impl Filter {
    fn new(name: &'static str, label: &'static str, kind: &'static str, value: &str) -> Self {
        Filter {
            name,
            label,
            kind,
            value: value.to_owned(),
            choices: Vec::new(),
            hint: "",
            error: String::new(),
        }
    }

    /// A select of `values` (and "any" first, when `any` is given).
    fn select<I: IntoIterator<Item = (String, String)>>(
        mut self,
        any: Option<&str>,
        values: I,
    ) -> Self {
        self.kind = "select";
        if let Some(any) = any {
            self.choices.push(Choice {
                value: String::new(),
                label: any.to_owned(),
                selected: self.value.is_empty(),
            });
        }
        for (value, label) in values {
            let selected = value == self.value;
            self.choices.push(Choice {
                value,
                label,
                selected,
            });
        }
        self
    }

    fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }
}

/// The query's parameters as the form sent them (the last of a repeated
/// name wins, as in the API's query extractor).
fn params(query: &[(String, String)]) -> BTreeMap<String, String> {
    query.iter().cloned().collect()
}

/// The parameters as the API takes them: empty values left out, the days
/// of `since` and `until` as instants (`until` the start of the next day).
fn api_params(form: &BTreeMap<String, String>) -> HashMap<String, String> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    form.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let value = match (k.as_str(), time::Date::parse(v, &day)) {
                ("since", Ok(d)) => format!("{d}T00:00:00Z"),
                ("until", Ok(d)) => match d.next_day() {
                    Some(next) => format!("{next}T00:00:00Z"),
                    None => v.to_owned(),
                },
                _ => v.to_owned(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// The refusal's messages by parameter (without the API's "(a query
/// parameter)", which the page's label says), and the rest.
fn refusal(e: EngineError) -> Result<(BTreeMap<String, String>, Vec<String>), EngineError> {
    match e {
        EngineError::InvalidFields(list) => {
            let mut by_field = BTreeMap::new();
            for f in list {
                let message = f
                    .message
                    .strip_prefix("(a query parameter) ")
                    .unwrap_or(&f.message)
                    .to_owned();
                by_field.insert(f.field, message);
            }
            Ok((by_field, Vec::new()))
        }
        other => Err(other),
    }
}

/// Puts each message at its input; those of no input are general errors.
fn place_errors(
    filters: &mut [Filter],
    mut errors: BTreeMap<String, String>,
    general: &mut Vec<String>,
) {
    for f in filters.iter_mut() {
        if let Some(m) = errors.remove(f.name) {
            f.error = m;
        }
    }
    general.extend(errors.into_iter().map(|(k, m)| format!("{k}: {m}")));
}

// ---------------------------------------------------------------- search

pub struct ResultRow {
    pub id: i64,
    pub created: String,
    pub order_type: String,
    pub host: String,
    pub requester: String,
    pub state: String,
    /// `field: old → new`.
    pub changed: Vec<String>,
    pub comments: Vec<String>,
    /// `check (error)`, `check (warning)`.
    pub checks: Vec<String>,
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn result_row(d: &OrderDocument) -> ResultRow {
    let mut checks: Vec<String> = d
        .errors
        .iter()
        .map(|f| format!("{} (error)", f.check))
        .chain(
            d.warnings
                .iter()
                .chain(&d.accepted_warnings)
                .map(|f| format!("{} (warning)", f.check)),
        )
        .collect();
    checks.dedup();
    ResultRow {
        id: d.id,
        created: when(&d.created_at),
        order_type: d.order_type.clone(),
        host: d.host_id.clone().unwrap_or_default(),
        requester: d.requester.clone(),
        state: d.state.clone(),
        changed: d
            .changed
            .iter()
            .map(|(k, [old, new])| format!("{k}: {} → {}", scalar(old), scalar(new)))
            .collect(),
        comments: d.states.iter().filter_map(|s| s.comment.clone()).collect(),
        checks,
    }
}

#[derive(Template)]
#[template(path = "ui/history.html")]
struct HistoryPage<'a> {
    c: &'a Chrome,
    filters: Vec<Filter>,
    general_errors: Vec<String>,
    /// Whether the query was run (not refused).
    searched: bool,
    rows: Vec<ResultRow>,
    /// The link to the next page, if there is one.
    next: String,
}

fn history_filters(engine: &Engine, c: &Chrome, form: &BTreeMap<String, String>) -> Vec<Filter> {
    let t = c.t;
    let v = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let defs = engine.defs;
    let mut states: Vec<&str> = defs
        .workflows
        .iter()
        .flat_map(|w| w.states.iter().map(|s| s.name))
        .collect();
    states.sort_unstable();
    states.dedup();
    let mut checks: Vec<&str> = defs.checks.iter().map(|c| c.name).collect();
    checks.sort_unstable();
    checks.dedup();
    let own = |list: Vec<&str>| {
        list.into_iter()
            .map(|s| (s.to_owned(), s.to_owned()))
            .collect::<Vec<_>>()
    };
    vec![
        Filter::new("host", t.device, "text", v("host")).hint("zam2212.zam.kfa-juelich.de"),
        Filter::new("requester", t.requester, "text", v("requester")).hint("PERS_KEY"),
        Filter::new("type", t.kind, "text", v("type")).select(
            Some(t.any),
            own(defs.order_types.iter().map(|o| o.name).collect()),
        ),
        Filter::new("state", t.state, "text", v("state")).select(Some(t.any), own(states)),
        Filter::new("field", t.changed_field, "text", v("field")).hint("hwa"),
        Filter::new("old", t.old_value, "text", v("old")),
        Filter::new("new", t.new_value, "text", v("new")).hint("00:1a:2b:3c:4d:5e"),
        Filter::new("check", t.check, "text", v("check")).select(Some(t.any), own(checks)),
        Filter::new("severity", t.severity, "text", v("severity"))
            .select(Some(t.any), own(vec!["error", "warning"])),
        Filter::new("text", t.comment_text, "text", v("text")),
        Filter::new("since", t.created_from, "date", v("since")),
        Filter::new("until", t.created_to, "date", v("until")),
        Filter::new("sort", t.sort, "text", v("sort")).select(
            None,
            [
                ("newest".to_owned(), t.newest_first.to_owned()),
                ("oldest".to_owned(), t.oldest_first.to_owned()),
            ],
        ),
    ]
}

/// A link to this page with `form`'s parameters and `cursor`.
fn next_link(form: &BTreeMap<String, String>, cursor: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        if k != "cursor" && !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.append_pair("cursor", cursor);
    format!("/ui/history?{}", s.finish())
}

pub(super) async fn history_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = params(&query);
    let mut filters = history_filters(engine, &c, &form);
    let mut general_errors = Vec::new();
    let searched = match SearchQuery::parse(engine.defs, &api_params(&form)) {
        Ok(q) => crate::history::search::search(engine, Some(&session.principal.person), &q)
            .await
            .map(Some),
        Err(e) => match refusal(e) {
            Ok((by_field, general)) => {
                general_errors = general;
                place_errors(&mut filters, by_field, &mut general_errors);
                Ok(None)
            }
            Err(e) => Err(e),
        },
    };
    let page: Option<SearchPage> = match searched {
        Ok(p) => p,
        Err(e) => return problem(&c, e),
    };
    let status = if page.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let (rows, next) = match &page {
        Some(p) => (
            p.orders.iter().map(result_row).collect(),
            p.next
                .as_deref()
                .map(|n| next_link(&form, n))
                .unwrap_or_default(),
        ),
        None => (Vec::new(), String::new()),
    };
    render(
        status,
        &HistoryPage {
            c: &c,
            filters,
            general_errors,
            searched: page.is_some(),
            rows,
            next,
        },
    )
}

// ---------------------------------------------------------------- statistics

/// A row of the numbers' table.
pub struct NumbersRow {
    pub key: String,
    pub orders: i64,
    pub closed: i64,
    pub automated: i64,
    pub rate: String,
    pub p50: String,
    pub p90: String,
    pub max: String,
    pub waited: i64,
}

#[derive(Template)]
#[template(path = "ui/stats.html")]
struct StatsPage<'a> {
    c: &'a Chrome,
    filters: Vec<Filter>,
    general_errors: Vec<String>,
    /// The person sees all orders (staff) or those they may read.
    all: bool,
    charts: Vec<Chart>,
    by_label: String,
    numbers: Vec<NumbersRow>,
}

/// The ways to group: those of the API (`type`, `state`, `day`, `month`,
/// and the attributes recorded with the orders).
fn groupings(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = ["type", "state", "day", "month"]
        .map(str::to_owned)
        .to_vec();
    if let Some(a) = engine.defs.authorization {
        names.extend(
            a.attributes
                .iter()
                .filter(|a| a.recorded)
                .map(|a| a.name.split_once('.').map_or(a.name, |(_, n)| n).to_owned()),
        );
    }
    names
}

fn stats_filters(engine: &Engine, c: &Chrome, form: &BTreeMap<String, String>) -> Vec<Filter> {
    let t = c.t;
    let v = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let by = if v("by").is_empty() { "type" } else { v("by") };
    vec![
        Filter::new("since", t.created_from, "date", v("since")),
        Filter::new("until", t.created_to, "date", v("until")),
        Filter::new("by", t.group_by, "text", by)
            .select(None, groupings(engine).into_iter().map(|g| (g.clone(), g))),
    ]
}

fn key_text(c: &Chrome, g: &Group) -> String {
    g.key.clone().unwrap_or_else(|| c.t.none_value.to_owned())
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.0} %", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn ms_text(ms: Option<i64>) -> String {
    ms.map(charts::duration).unwrap_or_else(|| "—".into())
}

/// Orders per day (or per month, over more than 62 days) of each order
/// type, from the statistics `by=day|month` of each type.
async fn per_period_by_type(
    engine: &Engine,
    person: &str,
    q: &StatsQuery,
    c: &Chrome,
) -> Result<Chart, EngineError> {
    let mut days = q.clone();
    days.by = By::Day;
    days.by_name = "day".into();
    days.order_type = None;
    let all_days = crate::history::stats::stats(engine, Some(person), &days).await?;
    let keys: Vec<String> = all_days
        .groups
        .iter()
        .filter_map(|g| g.key.clone())
        .collect();
    let span = match (keys.first(), keys.last()) {
        (Some(a), Some(b)) => periods(a, b, false).len(),
        _ => 0,
    };
    let monthly = span > 62;
    let (mut per, title) = if monthly {
        let mut months = days.clone();
        months.by = By::Month;
        months.by_name = "month".into();
        (months, c.t.per_month_by_type)
    } else {
        (days, c.t.per_day_by_type)
    };
    let mut series: Vec<(String, BTreeMap<String, i64>)> = Vec::new();
    for order_type in engine.defs.order_types {
        per.order_type = Some(order_type.name.to_owned());
        let s = crate::history::stats::stats(engine, Some(person), &per).await?;
        if s.total.orders == 0 {
            continue;
        }
        let counts = s
            .groups
            .iter()
            .filter_map(|g| Some((g.key.clone()?, g.orders)))
            .collect();
        series.push((order_type.name.to_owned(), counts));
    }
    let mut all_keys: Vec<&String> = series.iter().flat_map(|(_, m)| m.keys()).collect();
    all_keys.sort();
    let periods = match (all_keys.first(), all_keys.last()) {
        (Some(a), Some(b)) => periods(a, b, monthly),
        _ => Vec::new(),
    };
    let series: Vec<(String, Vec<i64>)> = series
        .into_iter()
        .map(|(name, counts)| {
            let values = periods
                .iter()
                .map(|p| counts.get(p).copied().unwrap_or(0))
                .collect();
            (name, values)
        })
        .collect();
    Ok(charts::stacked_columns(
        "chart-per-period",
        title.to_owned(),
        &periods,
        &series,
    ))
}

/// Every day (`YYYY-MM-DD`) or month (`YYYY-MM`) from `first` to `last`.
fn periods(first: &str, last: &str, monthly: bool) -> Vec<String> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let parse = |s: &str| {
        let s = if s.len() == 7 {
            format!("{s}-01")
        } else {
            s.to_owned()
        };
        time::Date::parse(&s, &day).ok()
    };
    let (Some(mut d), Some(end)) = (parse(first), parse(last)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while d <= end && out.len() < 1000 {
        if monthly {
            let key = format!("{:04}-{:02}", d.year(), u8::from(d.month()));
            if out.last() != Some(&key) {
                out.push(key);
            }
            // the first of the next month
            d = match d
                .replace_day(1)
                .ok()
                .and_then(|d| d.checked_add(time::Duration::days(32)))
            {
                Some(n) => n.replace_day(1).unwrap_or(n),
                None => break,
            };
        } else {
            out.push(d.to_string());
            d = match d.next_day() {
                Some(n) => n,
                None => break,
            };
        }
    }
    out
}

fn charts_of(c: &Chrome, s: &Stats, by_label: &str) -> Vec<Chart> {
    let t = c.t;
    let title = |what: &str| format!("{what} {by_label}");
    let mut out = Vec::new();
    out.push(charts::bars(
        "chart-orders",
        title(t.orders_by),
        s.groups
            .iter()
            .map(|g| {
                (
                    key_text(c, g),
                    vec![Bar {
                        value: g.orders as f64,
                        fill: charts::colour(0),
                        shown: g.orders.to_string(),
                        tip: format!("{}: {}", key_text(c, g), g.orders),
                    }],
                )
            })
            .collect(),
        None,
        Vec::new(),
    ));
    out.push(charts::bars(
        "chart-automation",
        t.automation_rate.to_owned(),
        s.groups
            .iter()
            .chain(std::iter::once(&s.total))
            .filter(|g| g.closed > 0)
            .map(|g| {
                let key = if std::ptr::eq(g, &s.total) {
                    t.total.to_owned()
                } else {
                    key_text(c, g)
                };
                let shown = format!(
                    "{} ({} {} {})",
                    percent(g.automation_rate),
                    g.automated,
                    t.of,
                    g.closed
                );
                (
                    key,
                    vec![Bar {
                        value: g.automation_rate.unwrap_or(0.0),
                        fill: charts::colour(2),
                        tip: shown.clone(),
                        shown,
                    }],
                )
            })
            .collect(),
        Some(1.0),
        Vec::new(),
    ));
    let spread = [("p50", 0usize), ("p90", 1), ("max", 6)];
    out.push(charts::bars(
        "chart-duration",
        t.processing_time.to_owned(),
        s.groups
            .iter()
            .filter(|g| g.duration_ms.count > 0)
            .map(|g| {
                let d = &g.duration_ms;
                let bars = spread
                    .iter()
                    .zip([d.p50, d.p90, d.max])
                    .map(|((name, colour), v)| Bar {
                        value: v.unwrap_or(0) as f64,
                        fill: charts::colour(*colour),
                        shown: ms_text(v),
                        tip: format!("{} · {name}: {}", key_text(c, g), ms_text(v)),
                    })
                    .collect();
                (key_text(c, g), bars)
            })
            .collect(),
        None,
        spread
            .iter()
            .map(|(name, colour)| (charts::colour(*colour), (*name).to_owned()))
            .collect(),
    ));
    let mut checks: Vec<_> = s.total.checks.iter().collect();
    checks.sort_by_key(|k| std::cmp::Reverse(k.errors + k.warnings));
    out.push(charts::bars(
        "chart-checks",
        t.frequent_findings.to_owned(),
        checks
            .into_iter()
            .take(10)
            .map(|k| {
                let bars = [(k.errors, 4usize, t.errors), (k.warnings, 1, t.warnings)]
                    .into_iter()
                    .map(|(n, colour, what)| Bar {
                        value: n as f64,
                        fill: charts::colour(colour),
                        shown: n.to_string(),
                        tip: format!("{} · {what}: {n}", k.check),
                    })
                    .collect();
                (k.check.clone(), bars)
            })
            .collect(),
        None,
        vec![
            (charts::colour(4), t.errors.to_owned()),
            (charts::colour(1), t.warnings.to_owned()),
        ],
    ));
    out
}

pub(super) async fn stats_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let person = session.principal.person.as_str();
    let form = params(&query);
    let mut filters = stats_filters(engine, &c, &form);
    let mut general_errors = Vec::new();
    let parsed = match StatsQuery::parse(engine.defs, &api_params(&form)) {
        Ok(q) => Some(q),
        Err(e) => match refusal(e) {
            Ok((by_field, general)) => {
                general_errors = general;
                place_errors(&mut filters, by_field, &mut general_errors);
                None
            }
            Err(e) => return problem(&c, e),
        },
    };
    let mut charts = Vec::new();
    let mut numbers = Vec::new();
    let by_label = parsed
        .as_ref()
        .map(|q| q.by_name.clone())
        .unwrap_or_default();
    if let Some(q) = &parsed {
        let stats = match crate::history::stats::stats(engine, Some(person), q).await {
            Ok(s) => s,
            Err(e) => return problem(&c, e),
        };
        match per_period_by_type(engine, person, q, &c).await {
            Ok(chart) => charts.push(chart),
            Err(e) => return problem(&c, e),
        }
        charts.extend(charts_of(&c, &stats, &by_label));
        numbers = stats
            .groups
            .iter()
            .map(|g| (key_text(&c, g), g))
            .chain(std::iter::once((c.t.total.to_owned(), &stats.total)))
            .map(|(key, g)| NumbersRow {
                key,
                orders: g.orders,
                closed: g.closed,
                automated: g.automated,
                rate: percent(g.automation_rate),
                p50: ms_text(g.duration_ms.p50),
                p90: ms_text(g.duration_ms.p90),
                max: ms_text(g.duration_ms.max),
                waited: g.waited,
            })
            .collect();
    }
    let status = if parsed.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(
        status,
        &StatsPage {
            all: c.staff,
            c: &c,
            filters,
            general_errors,
            charts,
            by_label,
            numbers,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_instants() {
        let form: BTreeMap<String, String> = [
            ("since", "2026-11-24"),
            ("until", "2026-11-30"),
            ("host", ""),
            ("text", " x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = api_params(&form);
        assert_eq!(p["since"], "2026-11-24T00:00:00Z");
        assert_eq!(p["until"], "2026-12-01T00:00:00Z", "until includes its day");
        assert!(!p.contains_key("host"));
        assert_eq!(p["text"], " x", "the rest as the API takes it");
        // what is no day goes to the API's parser as it is
        let form: BTreeMap<String, String> = [("since".to_owned(), "2026-13-01".to_owned())].into();
        assert_eq!(api_params(&form)["since"], "2026-13-01");
    }

    #[test]
    fn periods_have_no_gaps() {
        assert_eq!(
            periods("2026-02-27", "2026-03-02", false),
            ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
        );
        assert_eq!(
            periods("2026-11", "2027-02", true),
            ["2026-11", "2026-12", "2027-01", "2027-02"]
        );
        assert_eq!(
            periods("2026-11-30", "2027-01-02", true),
            ["2026-11", "2026-12", "2027-01"]
        );
    }
}
