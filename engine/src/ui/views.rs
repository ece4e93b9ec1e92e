//! The pages' routes, handlers and templates.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{self, FormView, Node, Problems};
use super::i18n::{Lang, Texts};
use super::session::{self, FORM_COOKIE, SESSION_COOKIE, Session};
use crate::error::EngineError;
use crate::http::server::{AppState, Engine};
use crate::store::{self, OrderFilter, StoredOrder};
use crate::workflow::claims::{self, ClaimEvent};
use crate::workflow::context::{ActionInput, Finding, Principal};
use crate::workflow::defs::Actor;
use crate::workflow::executor;

/// The pages' routes. The pages are not part of the JSON API's contract
/// (they answer HTML and are not in the OpenAPI document), so they are
/// registered on a plain axum router, merged in [`crate::http::router`].
#[allow(clippy::disallowed_methods)]
pub fn router() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/style.css", get(style))
        .route("/ui/login", get(login_page).post(login_token))
        .route("/ui/login/{secret}", get(link_page).post(login_link))
        .route("/ui/logout", post(logout))
        .route("/ui/queue", get(queue))
        .route("/ui/orders", get(my_orders))
        .route("/ui/devices", get(my_devices))
        .route("/ui/orders/{id}", get(order_page))
        .route("/ui/orders/{id}/{action}", post(order_action))
        .route("/ui/definitions", get(definitions_page))
        .route("/ui/definitions/{file}", get(workflow_svg))
        .route("/ui/new", get(order_types))
        .route("/ui/new/{order_type}", get(new_order).post(place_order))
        .route("/ui/history", get(super::history::history_page))
        .route("/ui/stats", get(super::history::stats_page))
        .route("/ui/jobs", get(super::jobs::jobs_page))
}

const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

// ---------------------------------------------------------------- chrome

/// What every page shows around its content.
pub struct Chrome {
    pub t: &'static Texts,
    pub lang: &'static str,
    pub person: Option<String>,
    pub staff: bool,
    pub csrf: String,
    /// The domain lists the objects a person looks after ("my devices").
    pub my_objects: bool,
}

fn lang(engine: &Engine, headers: &HeaderMap) -> Lang {
    Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
        engine.ui.default_language,
    )
}

fn anonymous(engine: &Engine, headers: &HeaderMap) -> Chrome {
    let lang = lang(engine, headers);
    Chrome {
        t: lang.texts(),
        lang: lang.code(),
        person: None,
        staff: false,
        csrf: String::new(),
        my_objects: false,
    }
}

/// The signed-in person and the chrome, or the way to the sign-in page.
pub(super) async fn signed_in(
    engine: &Engine,
    headers: &HeaderMap,
) -> Result<(Session, Chrome), Response> {
    let session = match session::find(engine, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Redirect::to("/ui/login").into_response()),
        Err(e) => return Err(problem(&anonymous(engine, headers), e)),
    };
    let staff = match session.principal.is_staff(&engine.store).await {
        Ok(s) => s,
        Err(e) => return Err(problem(&anonymous(engine, headers), e)),
    };
    let mut chrome = anonymous(engine, headers);
    chrome.person = Some(session.principal.person.clone());
    chrome.staff = staff;
    chrome.csrf = session.csrf.clone();
    chrome.my_objects = engine.domain.has_my_objects();
    Ok((session, chrome))
}

/// The refusal of a form that does not carry the session's form token.
fn csrf_refusal(session: &Session, chrome: &Chrome, form: &[(String, String)]) -> Option<Response> {
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    (!session::same_token(sent, &session.csrf)).then(|| forbidden_form(chrome))
}

fn forbidden_form(chrome: &Chrome) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ProblemPage {
            c: chrome,
            status: 403,
            detail: "this form was not sent from a page of this site, or it is too old (its form token is missing or wrong); open the page again and send the form from there".into(),
        },
    )
}

pub(super) fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            crate::http::Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "the page could not be rendered",
            )
            .into_response()
        }
    }
}

/// An error as a page, with the status and the reason the API would give.
pub(super) fn problem(chrome: &Chrome, e: EngineError) -> Response {
    problem_page(chrome, crate::http::Problem::from(e))
}

/// A problem document (as the API answers it) as a page.
pub(super) fn problem_page(chrome: &Chrome, p: crate::http::Problem) -> Response {
    let mut detail = p.detail;
    for f in &p.errors {
        if !detail.contains(&f.message) {
            detail.push_str(&format!("; {}: {}", f.field, f.message));
        }
    }
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    render(
        status,
        &ProblemPage {
            c: chrome,
            status: p.status,
            detail,
        },
    )
}

#[derive(Template)]
#[template(path = "ui/problem.html")]
struct ProblemPage<'a> {
    c: &'a Chrome,
    status: u16,
    detail: String,
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state.engine, &headers).await {
        Ok((_, c)) if c.staff => see_other("/ui/queue"),
        Ok(_) => see_other("/ui/orders"),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage<'a> {
    c: &'a Chrome,
    form_token: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/link.html")]
struct LinkPage<'a> {
    c: &'a Chrome,
    form_token: String,
    secret: String,
}

/// A sign-in form with a fresh form token in its cookie.
fn with_form_cookie(
    engine: &Engine,
    headers: &HeaderMap,
    token: String,
    mut response: Response,
) -> Response {
    let cookie = session::set_cookie(
        engine,
        headers,
        FORM_COOKIE,
        token,
        time::Duration::hours(1),
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

fn login_form(
    engine: &Engine,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let c = anonymous(engine, headers);
    let token = session::form_token();
    let page = render(
        status,
        &LoginPage {
            c: &c,
            form_token: token.clone(),
            error,
        },
    );
    with_form_cookie(engine, headers, token, page)
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_form(&state.engine, &headers, StatusCode::OK, None)
}

/// The sign-in forms' double-submitted form token.
fn form_cookie_matches(headers: &HeaderMap, form: &[(String, String)]) -> bool {
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    session::cookie(headers, FORM_COOKIE).is_some_and(|c| session::same_token(sent, &c))
}

/// Signs in with the session's token and goes to the first page.
async fn begin_session(
    engine: &Engine,
    headers: &HeaderMap,
    person: &str,
    token: &str,
) -> Response {
    match session::start(engine, person, token).await {
        Ok(secret) => {
            let mut r = see_other("/ui");
            r.headers_mut().append(
                header::SET_COOKIE,
                session::set_cookie(
                    engine,
                    headers,
                    SESSION_COOKIE,
                    secret,
                    engine.ui.session_ttl,
                ),
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                session::set_cookie(
                    engine,
                    headers,
                    FORM_COOKIE,
                    String::new(),
                    time::Duration::ZERO,
                ),
            );
            r
        }
        Err(e) => problem(&anonymous(engine, headers), e),
    }
}

async fn login_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    if !form_cookie_matches(&headers, &form) {
        return forbidden_form(&anonymous(engine, &headers));
    }
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let mut auth = HeaderMap::new();
    let principal = match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) if !token.is_empty() => {
            auth.insert(header::AUTHORIZATION, v);
            crate::http::auth::authenticate(engine, &auth).await
        }
        _ => Err(EngineError::Unauthorized("paste a bearer token".into())),
    };
    match principal {
        Ok(p) => begin_session(engine, &headers, &p.person, &token).await,
        Err(EngineError::Unauthorized(why)) => {
            login_form(engine, &headers, StatusCode::UNAUTHORIZED, Some(why))
        }
        Err(e) => problem(&anonymous(engine, &headers), e),
    }
}

async fn link_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Response {
    // A GET does not use the link (mail scanners follow links): the page
    // asks the person to confirm with a POST.
    let engine = &state.engine;
    let c = anonymous(engine, &headers);
    let token = session::form_token();
    let page = render(
        StatusCode::OK,
        &LinkPage {
            c: &c,
            form_token: token.clone(),
            secret,
        },
    );
    with_form_cookie(engine, &headers, token, page)
}

async fn login_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    if !form_cookie_matches(&headers, &form) {
        return forbidden_form(&anonymous(engine, &headers));
    }
    let person = match session::use_link(engine, &secret).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return login_form(
                engine,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some("this sign-in link was used already or has expired; ask for a new one (`auftrag login-link --person PERS_KEY`)".into()),
            );
        }
        Err(e) => return problem(&anonymous(engine, &headers), e),
    };
    match engine.issue_token(&person, engine.ui.session_ttl).await {
        Ok(token) => begin_session(engine, &headers, &person, &token).await,
        Err(e) => problem(&anonymous(engine, &headers), e),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = csrf_refusal(&session, &c, &form) {
        return r;
    }
    if let Err(e) = session::end(engine, &session).await {
        return problem(&c, e);
    }
    let mut r = see_other("/ui/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            engine,
            &headers,
            SESSION_COOKIE,
            String::new(),
            time::Duration::ZERO,
        ),
    );
    r
}

// ---------------------------------------------------------------- queue

struct QueueRow {
    id: i64,
    age: String,
    order_type: String,
    host: String,
    requester: String,
    warnings: Vec<String>,
    claimed_by: String,
    until: String,
    mine: bool,
}

#[derive(Template)]
#[template(path = "ui/queue.html")]
struct QueuePage<'a> {
    c: &'a Chrome,
    rows: Vec<QueueRow>,
    mine: bool,
    claim_minutes: i64,
}

/// The states where orders wait for a person: neither initial, autorun
/// nor final (JuNet: WAITING).
fn waiting_states(engine: &Engine) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for w in engine.defs.workflows {
        for (i, s) in w.states.iter().enumerate() {
            if i as u16 != w.initial && !s.autorun && !s.is_final() && !names.contains(&s.name) {
                names.push(s.name);
            }
        }
    }
    names
}

/// "3 h 5 min" from an RFC 3339 instant to now.
fn age(since: &str) -> String {
    let Ok(t) = time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
    else {
        return String::new();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// An instant as the pages show it: `2026-11-24 08:00:00 UTC`.
pub(super) fn when(at: &str) -> String {
    match at.split_once('T') {
        Some((day, rest)) => {
            let clock = rest.split(['.', 'Z', '+']).next().unwrap_or(rest);
            format!("{day} {clock} UTC")
        }
        None => at.to_owned(),
    }
}

#[derive(Deserialize)]
struct QueueQuery {
    #[serde(default)]
    mine: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !c.staff {
        // as GET /api/v1/orders: only staff see others' orders
        return problem(
            &c,
            EngineError::Forbidden("the queue of waiting orders is for staff".into()),
        );
    }
    let mine = query.mine.is_some_and(|m| !m.is_empty() && m != "0");
    let mut orders: Vec<StoredOrder> = Vec::new();
    for s in waiting_states(engine) {
        let filter = OrderFilter {
            state: Some(s.to_owned()),
            limit: 1000,
            ..Default::default()
        };
        match store::list_orders(&engine.store.pool, engine.defs, &filter).await {
            Ok(o) => orders.extend(o),
            Err(e) => return problem(&c, e),
        }
    }
    orders.sort_by_key(|o| o.data.id);
    let ids: Vec<i64> = orders.iter().filter_map(|o| o.data.id).collect();
    let held = match engine.store.pool.acquire().await {
        Ok(mut conn) => claims::current_of(&mut conn, &ids).await,
        Err(e) => Err(e.into()),
    };
    let held = match held {
        Ok(h) => h,
        Err(e) => return problem(&c, e),
    };
    let me = &session.principal.person;
    let rows = orders
        .iter()
        .filter_map(|o| {
            let id = o.data.id?;
            let claim = held.get(&id);
            let is_mine = claim.is_some_and(|c| &c.person == me);
            (!mine || is_mine).then(|| QueueRow {
                id,
                age: age(&o.created_at),
                order_type: o.data.order_type.name.to_owned(),
                host: o.data.key().unwrap_or_default().to_owned(),
                requester: o.data.requester.clone(),
                warnings: o.data.warnings.iter().map(finding_text).collect(),
                claimed_by: claim.map(|c| c.person.clone()).unwrap_or_default(),
                until: claim
                    .and_then(|c| c.until.as_deref())
                    .map(when)
                    .unwrap_or_default(),
                mine: is_mine,
            })
        })
        .collect();
    render(
        StatusCode::OK,
        &QueuePage {
            c: &c,
            rows,
            mine,
            claim_minutes: engine.claim_ttl.whole_minutes(),
        },
    )
}

fn finding_text(f: &Finding) -> String {
    match &f.field {
        Some(field) => format!("{field}: {} ({})", f.message, f.check),
        None => format!("{} ({})", f.message, f.check),
    }
}

// ---------------------------------------------------------------- my orders

struct OrderRow {
    id: i64,
    order_type: String,
    host: String,
    state: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "ui/orders.html")]
struct OrdersPage<'a> {
    c: &'a Chrome,
    rows: Vec<OrderRow>,
}

async fn my_orders(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = OrderFilter {
        requester: Some(session.principal.person.clone()),
        limit: 200,
        ..Default::default()
    };
    let orders = match store::list_orders(&engine.store.pool, engine.defs, &filter).await {
        Ok(o) => o,
        Err(e) => return problem(&c, e),
    };
    let rows = orders
        .iter()
        .map(|o| OrderRow {
            id: o.data.id.unwrap_or_default(),
            order_type: o.data.order_type.name.to_owned(),
            host: o.data.key().unwrap_or_default().to_owned(),
            state: o.state.clone(),
            updated: when(&o.updated_at),
        })
        .collect();
    render(StatusCode::OK, &OrdersPage { c: &c, rows })
}

// ---------------------------------------------------------------- my devices

struct ObjectRow {
    label: String,
    roles: Vec<String>,
    details: Vec<(String, String)>,
    /// (order type, link to its form filled in with the key)
    links: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "ui/devices.html")]
struct DevicesPage<'a> {
    c: &'a Chrome,
    rows: Vec<ObjectRow>,
}

/// The objects the person looks after ([`crate::Domain::my_objects`]), each
/// with links to the order types that act on it.
async fn my_devices(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let objects = match engine.store.pool.acquire().await {
        Ok(mut conn) => {
            engine
                .domain
                .my_objects(&mut conn, &session.principal.person)
                .await
        }
        Err(e) => Err(e.into()),
    };
    let objects = match objects {
        Ok(o) => o,
        Err(e) => return problem(&c, e),
    };
    let rows = objects
        .into_iter()
        .map(|o| {
            let links = engine
                .defs
                .order_types
                .iter()
                .filter(|t| o.order_types.is_empty() || o.order_types.contains(&t.name))
                .filter_map(|t| {
                    let key = t.key_field?;
                    let query = form_urlencoded::Serializer::new(String::new())
                        .append_pair(key, &o.key)
                        .finish();
                    Some((t.name, format!("/ui/new/{}?{query}", t.name)))
                })
                .collect();
            ObjectRow {
                label: o.label,
                roles: o.roles,
                details: o.details,
                links,
            }
        })
        .collect();
    render(StatusCode::OK, &DevicesPage { c: &c, rows })
}

// ---------------------------------------------------------------- order page

struct Event {
    at: String,
    what: String,
    by: String,
    comment: String,
    claim: bool,
}

struct Change {
    field: String,
    old: String,
    new: String,
}

struct FindingView {
    check: String,
    field: String,
    message: String,
}

struct DecisionView {
    at: String,
    decision: String,
    subject: String,
    rule: String,
    attributes: String,
    obligations: String,
}

struct NoteView {
    to: String,
    transition: String,
    template: String,
    status: String,
    sent_at: String,
    error: String,
}

/// id, queue, state, exit code, error of a job the order created.
type JobRow = (i64, String, String, Option<i64>, Option<String>);

struct JobView {
    id: i64,
    queue: String,
    state: String,
    exit_code: String,
    error: String,
}

#[derive(Template)]
#[template(path = "ui/order.html")]
struct OrderPage<'a> {
    c: &'a Chrome,
    id: i64,
    order_type: String,
    host: String,
    requester: String,
    state: String,
    created: String,
    fields: Vec<(String, String)>,
    timeline: Vec<Event>,
    changed: Vec<Change>,
    errors: Vec<FindingView>,
    warnings: Vec<FindingView>,
    accepted: Vec<FindingView>,
    decisions: Vec<DecisionView>,
    notifications: Vec<NoteView>,
    jobs: Vec<JobView>,
    /// Staff forms are drawn (the actions decide anyway).
    staff_forms: bool,
    /// The requester may withdraw.
    can_withdraw: bool,
    claimed_by: String,
    claim_until: String,
    claimed_by_me: bool,
    form: FormView,
    /// The edit form is drawn open (it was sent and comes back).
    edit_open: bool,
    edit_errors: Vec<String>,
    /// The comment the edit form was sent with (kept when it comes back).
    edit_comment: String,
    message: String,
    /// The "Roll back" form is drawn: the order is closed, changed
    /// something, and the `rollback_order` policy permits the reader (the
    /// rollback decides anyway).
    can_rollback: bool,
    /// The history document's `links`: the order this one rolls back.
    rollback_of: Option<i64>,
    /// … and the orders that roll this one back.
    rolled_back_by: Vec<i64>,
    /// The orders a refused rollback names (those in its way), linked.
    conflicts: Vec<i64>,
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn views(list: &[Finding]) -> Vec<FindingView> {
    list.iter()
        .map(|f| FindingView {
            check: f.check.clone(),
            field: f.field.clone().unwrap_or_default(),
            message: f.message.clone(),
        })
        .collect()
}

fn decision_view(d: &serde_json::Value) -> DecisionView {
    let s = |p: &str| d.pointer(p).map(text_of).unwrap_or_default();
    let attributes = d
        .pointer("/explanation/attributes")
        .and_then(|a| a.as_array())
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    format!(
                        "{} = {}",
                        p.get(0).map(text_of).unwrap_or_default(),
                        p.get(1).map(|v| v.to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let obligations = d
        .get("obligations")
        .and_then(|o| o.as_array())
        .filter(|o| !o.is_empty())
        .map(|o| serde_json::Value::Array(o.clone()).to_string())
        .unwrap_or_default();
    let mut rule = s("/explanation/policy");
    let r = s("/explanation/rule");
    if !r.is_empty() {
        rule = format!("{rule} / {r}");
    }
    let error = s("/explanation/error");
    if !error.is_empty() && error != "—" {
        rule = format!("{rule} ({error})");
    }
    DecisionView {
        at: when(&s("/at")),
        decision: s("/decision"),
        subject: s("/subject"),
        rule,
        attributes,
        obligations,
    }
}

/// What the order page needs beyond the order: everything read with the
/// reader's rights, as `GET /api/v1/orders/{id}` reads it.
async fn order_view<'a>(
    engine: &Engine,
    c: &'a Chrome,
    session: &Session,
    id: i64,
) -> Result<OrderPage<'a>, EngineError> {
    let mut conn = engine.store.pool.acquire().await?;
    let order = store::load_order(&mut conn, engine.defs, id).await?;
    if !crate::pdp::may_read(
        &mut conn,
        engine.defs,
        &order.data,
        &session.principal.person,
    )
    .await?
    {
        return Err(EngineError::NotFound(id));
    }
    let mut decisions = store::decisions_of(&mut conn, id).await?;
    if !c.staff {
        for d in &mut decisions {
            crate::pdp::redact_for_requester(d);
        }
    }
    let notes = crate::notify::outbox::of_order(&mut conn, id).await?;
    let claim_events: Vec<ClaimEvent> = claims::events(&mut conn, id).await?;
    let held = claims::current(&mut conn, id).await?;
    let links = crate::history::rollback::links_of(&mut conn, id).await?;
    let can_rollback = order.closed
        && !order.data.changes.is_empty()
        && crate::history::rollback::permitted(
            &mut conn,
            engine,
            &order,
            &session.principal.person,
        )
        .await?
        .0;
    let jobs: Vec<JobRow> = sqlx::query_as(
        "SELECT id, queue, state, exit_code, error FROM auftrag_jobs WHERE order_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut timeline: Vec<(String, Event)> = order
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let by = match (&s.by, i) {
                (Some(p), _) => p.clone(),
                (None, 0) => order.data.requester.clone(),
                (None, _) => String::new(),
            };
            (
                s.at.clone(),
                Event {
                    at: when(&s.at),
                    what: s.state.clone(),
                    by,
                    comment: s.comment.clone().unwrap_or_default(),
                    claim: false,
                },
            )
        })
        .collect();
    for e in &claim_events {
        timeline.push((
            e.at.clone(),
            Event {
                at: when(&e.at),
                what: e.event.clone(),
                by: e.person.clone(),
                comment: e
                    .until
                    .as_deref()
                    .map(|u| format!("→ {}", when(u)))
                    .unwrap_or_default(),
                claim: true,
            },
        ));
    }
    timeline.sort_by(|a, b| a.0.cmp(&b.0));
    let values = form::values_of(order.data.order_type, &order.data.fields);
    let problems = Problems::findings(&order.data.errors, &order.data.warnings);
    let form = form_view(
        &mut conn,
        engine,
        c,
        order.data.order_type,
        &values,
        &problems,
    )
    .await?;
    let me = &session.principal.person;
    Ok(OrderPage {
        c,
        id,
        order_type: order.data.order_type.name.to_owned(),
        host: order.data.key().unwrap_or_default().to_owned(),
        requester: order.data.requester.clone(),
        state: order.state.clone(),
        created: when(&order.created_at),
        fields: order
            .data
            .fields
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                };
                (k.clone(), shown)
            })
            .collect(),
        timeline: timeline.into_iter().map(|(_, e)| e).collect(),
        changed: order
            .data
            .changes
            .iter()
            .map(|(k, [old, new])| Change {
                field: k.clone(),
                old: text_of(old),
                new: text_of(new),
            })
            .collect(),
        errors: views(&order.data.errors),
        warnings: views(&order.data.warnings),
        accepted: views(&order.data.accepted),
        decisions: decisions.iter().map(decision_view).collect(),
        notifications: notes
            .iter()
            .map(|n| NoteView {
                to: n.address.clone().unwrap_or_else(|| n.to.clone()),
                transition: n.transition.clone(),
                template: n.template.clone(),
                status: n.status.clone(),
                sent_at: n.sent_at.as_deref().map(when).unwrap_or_default(),
                error: n.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        jobs: jobs
            .into_iter()
            .map(|(id, queue, state, exit, error)| JobView {
                id,
                queue,
                state,
                exit_code: exit.map(|e| e.to_string()).unwrap_or_default(),
                error: error.unwrap_or_default(),
            })
            .collect(),
        staff_forms: c.staff && !order.closed,
        can_withdraw: !order.closed && order.data.requester == *me,
        claimed_by: held.as_ref().map(|h| h.person.clone()).unwrap_or_default(),
        claim_until: held
            .as_ref()
            .and_then(|h| h.until.as_deref())
            .map(when)
            .unwrap_or_default(),
        claimed_by_me: held.as_ref().is_some_and(|h| &h.person == me),
        form,
        edit_open: false,
        edit_errors: Vec::new(),
        edit_comment: String::new(),
        message: String::new(),
        can_rollback,
        rollback_of: links.rollback_of,
        rolled_back_by: links.rolled_back_by,
        conflicts: Vec::new(),
    })
}

fn order_id(raw: &str) -> Result<i64, EngineError> {
    crate::http::parse_id(raw).ok_or(EngineError::NotFound(0))
}

async fn order_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = match order_id(&id) {
        Ok(id) => id,
        Err(e) => return problem(&c, e),
    };
    match order_view(engine, &c, &session, id).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => problem(&c, e),
    }
}

#[derive(Template)]
#[template(path = "ui/takeover.html")]
struct TakeOverPage<'a> {
    c: &'a Chrome,
    id: i64,
    action: String,
    holder: String,
    until: String,
    hidden: Vec<(String, String)>,
}

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Claims the order for the acting person (taking it over when the form
/// says so); a claim someone else holds asks whether to take it over (the
/// page it answers with instead).
async fn claim_first(
    engine: &Engine,
    c: &Chrome,
    principal: &Principal,
    id: i64,
    action: &str,
    form: &[(String, String)],
) -> Option<Response> {
    let take_over = field(form, "take_over") == "1";
    if action != "claim" {
        // working an order one holds already does not claim it again
        let mine = match engine.store.pool.acquire().await {
            Ok(mut conn) => claims::current(&mut conn, id)
                .await
                .ok()
                .flatten()
                .is_some_and(|h| h.person == principal.person),
            Err(_) => false,
        };
        if mine {
            return None;
        }
    }
    match claims::claim(engine, principal, id, take_over).await {
        Ok(_) => None,
        Err(e @ EngineError::Conflict(_)) => {
            let held = match engine.store.pool.acquire().await {
                Ok(mut conn) => claims::current(&mut conn, id).await.ok().flatten(),
                Err(_) => None,
            };
            match held {
                Some(h) if h.person != principal.person => Some(render(
                    StatusCode::CONFLICT,
                    &TakeOverPage {
                        c,
                        id,
                        action: action.to_owned(),
                        holder: h.person,
                        until: h.until.as_deref().map(when).unwrap_or_default(),
                        hidden: form
                            .iter()
                            .filter(|(k, _)| k != "csrf" && k != "take_over")
                            .cloned()
                            .collect(),
                    },
                )),
                _ => Some(problem(c, e)),
            }
        }
        Err(e) => Some(problem(c, e)),
    }
}

async fn order_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = csrf_refusal(&session, &c, &form) {
        return r;
    }
    let id = match order_id(&id) {
        Ok(id) => id,
        Err(e) => return problem(&c, e),
    };
    let p = &session.principal;
    let back = format!("/ui/orders/{id}");
    let comment = Some(field(&form, "comment").trim().to_owned()).filter(|s| !s.is_empty());
    let result = match action.as_str() {
        "claim" => {
            if let Some(r) = claim_first(engine, &c, p, id, &action, &form).await {
                return r;
            }
            Ok(())
        }
        "unclaim" => claims::unclaim(engine, p, id).await.map(drop),
        "rollback" => {
            return match crate::history::rollback::roll_back(engine, p, id).await {
                Ok(outcome) => see_other(&format!("/ui/orders/{}", outcome.id)),
                // refused because of the order (open, nothing changed,
                // later orders in the way): the order page with the reason
                // and the orders it names
                Err(refusal) if refusal.status == 409 => {
                    match order_view(engine, &c, &session, id).await {
                        Ok(mut page) => {
                            page.message = refusal.detail;
                            page.conflicts = refusal.orders.map(Vec::from).unwrap_or_default();
                            render(StatusCode::CONFLICT, &page)
                        }
                        Err(e) => problem(&c, e),
                    }
                }
                Err(refusal) => problem_page(&c, refusal),
            };
        }
        "withdraw" => {
            let input = ActionInput {
                comment,
                ..Default::default()
            };
            executor::act(engine, p, Actor::Requester, id, "abort", input)
                .await
                .map(drop)
        }
        "accept" | "reject" => {
            if action == "reject" && comment.is_none() {
                return edit_failed(
                    engine,
                    &c,
                    &session,
                    id,
                    vec![],
                    "say why the order is rejected (a comment for the requester)".into(),
                )
                .await;
            }
            if let Some(r) = claim_first(engine, &c, p, id, &action, &form).await {
                return r;
            }
            let input = ActionInput {
                comment,
                ..Default::default()
            };
            let name = if action == "accept" {
                "accept"
            } else {
                "abort"
            };
            executor::act(engine, p, Actor::Staff, id, name, input)
                .await
                .map(drop)
        }
        "fields" => {
            // the order as the person may read it, for the current values
            let current = match order_view_fields(engine, p, id).await {
                Ok(f) => f,
                Err(e) => return problem(&c, e),
            };
            let (order_type, current) = current;
            let (mut values, op) = form::posted(order_type, &form);
            if op != form::Op::Submit {
                // "add another" / "remove": the form again, as typed
                form::apply(order_type, &mut values, &op);
                return edit_again(
                    engine,
                    &c,
                    &session,
                    id,
                    (values, Problems::default(), comment.as_deref()),
                    StatusCode::OK,
                )
                .await;
            }
            form::compact(&mut values);
            let fields = form::to_fields(order_type, &values, Some(&current));
            if fields.is_empty() {
                return edit_failed(
                    engine,
                    &c,
                    &session,
                    id,
                    vec![],
                    "no field was changed".into(),
                )
                .await;
            }
            if let Some(r) = claim_first(engine, &c, p, id, &action, &form).await {
                return r;
            }
            let input = ActionInput {
                comment: comment.clone(),
                fields: Some(fields),
                if_match: None,
            };
            match executor::act(engine, p, Actor::Staff, id, "change_field", input).await {
                Err(EngineError::InvalidFields(list)) => {
                    let mut problems = Problems::default();
                    for f in &list {
                        problems.error(Some(&f.field), &f.message);
                    }
                    return edit_again(
                        engine,
                        &c,
                        &session,
                        id,
                        (values, problems, comment.as_deref()),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
                other => other.map(drop),
            }
        }
        _ => Err(EngineError::NotFound(id)),
    };
    match result {
        Ok(()) => see_other(&back),
        Err(e) => problem(&c, e),
    }
}

/// The form of `order_type` with `values` and `problems`, with the
/// choices the domain offers for its field types.
async fn form_view(
    conn: &mut sqlx::AnyConnection,
    engine: &Engine,
    c: &Chrome,
    order_type: &'static crate::workflow::defs::OrderTypeDef,
    values: &form::Row,
    problems: &Problems,
) -> Result<FormView, EngineError> {
    use crate::workflow::defs::FieldType;
    let mut choices = Vec::new();
    for ty in form::field_types(order_type) {
        if matches!(ty, FieldType::Record | FieldType::Enum | FieldType::Bool) {
            continue;
        }
        let offered = engine.domain.choices(conn, ty).await?;
        if !offered.is_empty() {
            choices.push((ty, offered));
        }
    }
    let ctx = form::FormCtx {
        t: c.t,
        lang: c.lang,
        defs: engine.defs,
        choices: &choices,
    };
    Ok(form::form(order_type, values, problems, &ctx))
}

/// The order page again with the edit form as the person sent it (open),
/// and what the checks found at its inputs.
async fn edit_again(
    engine: &Engine,
    c: &Chrome,
    session: &Session,
    id: i64,
    (values, problems, comment): (form::Row, Problems, Option<&str>),
    status: StatusCode,
) -> Response {
    let page = match order_view(engine, c, session, id).await {
        Ok(page) => page,
        Err(e) => return problem(c, e),
    };
    let mut page = page;
    page.edit_comment = comment.unwrap_or_default().to_owned();
    let drawn = match engine.store.pool.acquire().await {
        Ok(mut conn) => {
            let order_type = engine
                .defs
                .order_type(&page.order_type)
                .expect("the order's type is defined");
            form_view(&mut conn, engine, c, order_type, &values, &problems).await
        }
        Err(e) => Err(e.into()),
    };
    match drawn {
        Ok(f) => {
            page.edit_errors = f.general_errors.clone();
            page.edit_open = true;
            page.form = f;
            render(status, &page)
        }
        Err(e) => problem(c, e),
    }
}

/// The order type and fields of an order the person may read.
async fn order_view_fields(
    engine: &Engine,
    p: &Principal,
    id: i64,
) -> Result<
    (
        &'static crate::workflow::defs::OrderTypeDef,
        crate::workflow::context::Fields,
    ),
    EngineError,
> {
    let mut conn = engine.store.pool.acquire().await?;
    let order = store::load_order(&mut conn, engine.defs, id).await?;
    if !crate::pdp::may_read(&mut conn, engine.defs, &order.data, &p.person).await? {
        return Err(EngineError::NotFound(id));
    }
    Ok((order.data.order_type, order.data.fields))
}

/// The order page again, with what went wrong with the person's request.
async fn edit_failed(
    engine: &Engine,
    c: &Chrome,
    session: &Session,
    id: i64,
    errors: Vec<String>,
    message: String,
) -> Response {
    match order_view(engine, c, session, id).await {
        Ok(mut page) => {
            page.edit_open = !errors.is_empty();
            page.edit_errors = errors;
            page.message = message;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => problem(c, e),
    }
}

// ---------------------------------------------------------------- new orders

#[derive(Template)]
#[template(path = "ui/types.html")]
struct TypesPage<'a> {
    c: &'a Chrome,
    types: Vec<(&'static str, &'static str)>,
}

async fn order_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let engine = &state.engine;
    let (_, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let types = engine
        .defs
        .order_types
        .iter()
        .map(|o| {
            let key = format!("order[{}]", o.name);
            (o.name, engine.defs.text(c.lang, &key, o.description))
        })
        .collect();
    render(StatusCode::OK, &TypesPage { c: &c, types })
}

#[derive(Template)]
#[template(path = "ui/new.html")]
struct NewPage<'a> {
    c: &'a Chrome,
    order_type: &'static str,
    description: &'static str,
    form: FormView,
}

async fn new_page<'a>(
    engine: &Engine,
    c: &'a Chrome,
    order_type: &'static crate::workflow::defs::OrderTypeDef,
    values: &form::Row,
    problems: &Problems,
) -> Result<NewPage<'a>, EngineError> {
    let mut conn = engine.store.pool.acquire().await?;
    let form = form_view(&mut conn, engine, c, order_type, values, problems).await?;
    Ok(NewPage {
        c,
        order_type: order_type.name,
        description: engine.defs.text(
            c.lang,
            &format!("order[{}]", order_type.name),
            order_type.description,
        ),
        form,
    })
}

async fn new_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(prefill): Query<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (_, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(order_type) = engine.defs.order_type(&name) else {
        return problem(&c, EngineError::UnknownOrderType(name));
    };
    // `?host=…` (a field's name): the form filled in with it, as the
    // "my devices" page links to it; names that are no field are ignored
    let values = form::prefilled(order_type, prefill);
    match new_page(engine, &c, order_type, &values, &Problems::default()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => problem(&c, e),
    }
}

async fn place_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let engine = &state.engine;
    let (session, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = csrf_refusal(&session, &c, &form) {
        return r;
    }
    let Some(order_type) = engine.defs.order_type(&name) else {
        return problem(&c, EngineError::UnknownOrderType(name));
    };
    let (mut values, op) = form::posted(order_type, &form);
    let again = async |values: &form::Row, problems: &Problems, status: StatusCode| match new_page(
        engine, &c, order_type, values, problems,
    )
    .await
    {
        Ok(page) => render(status, &page),
        Err(e) => problem(&c, e),
    };
    if op != form::Op::Submit {
        // "add another" / "remove": the form again, as typed
        form::apply(order_type, &mut values, &op);
        return again(&values, &Problems::default(), StatusCode::OK).await;
    }
    // blank records are left out; the findings' indices are those left
    form::compact(&mut values);
    let fields = form::to_fields(order_type, &values, None);
    let mut problems = Problems::default();
    // the portal stage first (POST /api/v1/validate): nothing is stored
    // while it finds errors
    match crate::http::validate::validate(
        engine,
        &session.principal,
        order_type.name,
        fields.clone(),
    )
    .await
    {
        Ok(report) if !report.errors.is_empty() => {
            return again(
                &values,
                &Problems::findings(&report.errors, &report.warnings),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Ok(_) => {}
        Err(EngineError::InvalidFields(list)) => {
            for f in &list {
                problems.error(Some(&f.field), &f.message);
            }
            return again(&values, &problems, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) => return problem(&c, e),
    }
    match executor::submit(engine, &session.principal, order_type.name, fields).await {
        Ok(outcome) => see_other(&format!("/ui/orders/{}", outcome.id)),
        Err(EngineError::InvalidFields(list)) => {
            for f in &list {
                problems.error(Some(&f.field), &f.message);
            }
            again(&values, &problems, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => problem(&c, e),
    }
}

// ---------------------------------------------------------------- definitions

struct WorkflowView {
    name: &'static str,
    description: &'static str,
    /// (state, what leaves it: action → state)
    states: Vec<(String, String)>,
}

struct CheckView {
    check: &'static str,
    description: &'static str,
    field: String,
    order_types: String,
    portal: &'static str,
    engine: &'static str,
}

struct TypeView {
    name: &'static str,
    description: &'static str,
    workflow: &'static str,
    fields: Vec<form::FieldRow>,
}

#[derive(Template)]
#[template(path = "ui/definitions.html")]
struct DefinitionsPage<'a> {
    c: &'a Chrome,
    workflows: Vec<WorkflowView>,
    checks: Vec<CheckView>,
    types: Vec<TypeView>,
}

async fn definitions_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let engine = &state.engine;
    let (_, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let defs = engine.defs;
    let workflows = defs
        .workflows
        .iter()
        .map(|wf| WorkflowView {
            name: wf.name,
            description: defs.text(c.lang, &format!("workflow[{}]", wf.name), wf.description),
            states: wf
                .states
                .iter()
                .map(|s| {
                    let leaves = s
                        .transitions
                        .iter()
                        .map(|t| {
                            let to = if t.resulting_state == crate::workflow::defs::NOCHANGE {
                                s.name
                            } else {
                                wf.state(t.resulting_state).name
                            };
                            format!("{} → {to}", defs.action(t.action).name)
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let mut name = s.name.to_owned();
                    if s.autorun {
                        name.push_str(" (autorun)");
                    }
                    if s.is_final() {
                        name.push_str(" (final)");
                    }
                    (name, leaves)
                })
                .collect(),
        })
        .collect();
    let checks = defs
        .check_bindings
        .iter()
        .map(|b| {
            let check = &defs.checks[usize::from(b.check)];
            CheckView {
                check: check.name,
                description: check.description,
                field: b.field.unwrap_or("").to_owned(),
                order_types: b.order_types.join(", "),
                portal: super::definitions::severity(b.portal),
                engine: super::definitions::severity(b.engine),
            }
        })
        .collect();
    let types = defs
        .order_types
        .iter()
        .map(|o| TypeView {
            name: o.name,
            description: defs.text(c.lang, &format!("order[{}]", o.name), o.description),
            workflow: defs.workflow_of(o).name,
            fields: form::field_rows(defs, c.lang, o),
        })
        .collect();
    render(
        StatusCode::OK,
        &DefinitionsPage {
            c: &c,
            workflows,
            checks,
            types,
        },
    )
}

/// A workflow's diagram (`/ui/definitions/NAME.svg`), an image of its own
/// so that the page embeds no markup it did not escape.
async fn workflow_svg(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let engine = &state.engine;
    let (_, c) = match signed_in(engine, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let wf = file
        .strip_suffix(".svg")
        .and_then(|name| engine.defs.workflows.iter().find(|w| w.name == name));
    match wf {
        Some(wf) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            super::definitions::svg(engine.defs, wf),
        )
            .into_response(),
        None => problem(
            &c,
            EngineError::Forbidden(format!("there is no workflow diagram `{file}`")),
        ),
    }
}
