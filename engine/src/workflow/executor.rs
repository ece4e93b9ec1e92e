//! The workflow executor. It stores new orders and moves orders through their
//! workflow: the action a person triggers, then every autorun state as a
//! bounded loop, all in one transaction together with the history append and
//! whatever the actions write to the domain's tables.

use serde::Serialize;
use tracing::{debug, info, instrument, warn};

use crate::error::{EngineError, FieldProblem};
use crate::http::server::Engine;
use crate::store::history::{INSERTED, StateEntry, now};
use crate::store::{self, StoredOrder};
use crate::workflow::context::{
    ActionCtx, ActionInput, CondCtx, Fields, Finding, Memo, OrderData, Principal,
};
use crate::workflow::defs::{
    Actor, Definitions, NOCHANGE, OrderTypeDef, StateId, TransitionDef, WorkflowDef,
};

/// A workflow that has not come to rest after this many steps has a cycle of
/// autorun states; the order is left where it was and the error reported.
pub const MAX_STEPS: usize = 64;

/// Where an order stands after a request: `POST /api/v1/orders` and the
/// staff actions answer with it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub id: i64,
    pub state: String,
    pub closed: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl From<&StoredOrder> for Outcome {
    fn from(o: &StoredOrder) -> Self {
        Self {
            id: o.data.id.unwrap_or_default(),
            state: o.state.clone(),
            closed: o.closed,
            errors: o.data.errors.clone(),
            warnings: o.data.warnings.clone(),
        }
    }
}

/// Checks the shape of submitted fields against the order type: known names,
/// JSON kinds (text, number or boolean for a value; an array for a list; an
/// object for a record), required fields present. The *content* of each field
/// is judged by the checks (the built-in `syntax` check parses every typed
/// field), so that a wrong value becomes an explained error of a recorded
/// order.
pub fn validate_fields(
    order_type: &OrderTypeDef,
    fields: &Fields,
    partial: bool,
) -> Result<(), EngineError> {
    let mut problems = Vec::new();
    for (name, value) in fields {
        let Some(def) = order_type.field(name) else {
            let known: Vec<&str> = order_type.fields.iter().map(|f| f.name).collect();
            let hint = crate::http::did_you_mean(name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; known fields: {}", known.join(", ")));
            problems.push(FieldProblem {
                field: name.clone(),
                message: format!("is unknown to order type `{}`{hint}", order_type.name),
            });
            continue;
        };
        use serde_json::Value;
        let shape_ok = match value {
            Value::String(s) if def.required && s.trim().is_empty() => {
                problems.push(FieldProblem {
                    field: name.clone(),
                    message: "is required and must not be empty".into(),
                });
                continue;
            }
            Value::Null => !def.required,
            Value::Array(_) => def.list,
            Value::Object(_) => !def.list && def.ty == crate::workflow::defs::FieldType::Record,
            Value::String(_) => !def.list && def.ty != crate::workflow::defs::FieldType::Record,
            Value::Number(_) => !def.list && def.ty == crate::workflow::defs::FieldType::Integer,
            Value::Bool(_) => !def.list && def.ty == crate::workflow::defs::FieldType::Bool,
        };
        if !shape_ok {
            let ty = serde_json::to_value(def.ty)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("text")
                .to_owned();
            let want = match (def.list, def.ty) {
                (true, _) => format!("a list of {ty}"),
                (false, crate::workflow::defs::FieldType::Record) => {
                    "a record (JSON object)".to_owned()
                }
                (false, crate::workflow::defs::FieldType::String) => "a string".to_owned(),
                (false, _) => format!("a string ({ty})"),
            };
            problems.push(FieldProblem {
                field: name.clone(),
                message: format!("must be {want}, not {}", json_kind(value)),
            });
        }
    }
    if !partial {
        for def in order_type.fields.iter().filter(|f| f.required) {
            if !fields.contains_key(def.name) {
                problems.push(FieldProblem {
                    field: def.name.to_owned(),
                    message: "is required".into(),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EngineError::InvalidFields(problems))
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Stores a new order (state INSERTED in its history) and processes it up to
/// its first waiting or final state.
///
/// Storing and processing are one transaction: the order is processed
/// under the id it will have, and its row, its decisions, its history and
/// its effect on the domain's tables are written and committed together. If
/// processing fails, that is rolled back and the order is stored alone, so
/// nothing of the request is lost: in its initial state when the failure
/// may be gone on the next try (the database out of reach; start-up
/// resumes it), else (a handler refusing it, data a constraint refuses)
/// in the state its workflow reaches on errors, with the reason as its
/// error ([`PROCESSING_CHECK`], see [`record_failure`]), answered like any
/// refused order.
pub async fn submit(
    engine: &Engine,
    requester: &Principal,
    order_type: &str,
    fields: Fields,
) -> Result<Outcome, EngineError> {
    submit_with(engine, requester, order_type, fields, None).await
}

/// [`submit`], for an order placed to roll back order `rollback_of`
/// (`Some`): the link (`crate::history::rollback::record_link`) is written
/// in the transaction that stores the new order, so it exists exactly when
/// the order does.
#[instrument(skip(engine, fields), fields(requester = %requester.person))]
pub async fn submit_with(
    engine: &Engine,
    requester: &Principal,
    order_type: &str,
    fields: Fields,
    rollback_of: Option<i64>,
) -> Result<Outcome, EngineError> {
    let defs = engine.defs;
    let order_type_def = defs
        .order_type(order_type)
        .ok_or_else(|| EngineError::UnknownOrderType(order_type.to_owned()))?;
    validate_fields(order_type_def, &fields, false)?;
    let workflow = defs.workflow_of(order_type_def);
    let data = OrderData {
        id: None,
        order_type: order_type_def,
        requester: requester.person.clone(),
        fields,
        errors: Vec::new(),
        warnings: Vec::new(),
        accepted: Vec::new(),
        changes: Default::default(),
        facts: None,
    };
    let at = now();
    let states = vec![StateEntry {
        state: INSERTED.to_owned(),
        at: at.clone(),
        comment: None,
        by: None,
    }];
    let initial = workflow.state(workflow.initial).name;

    // One transaction; the row is written once, after processing, with the
    // decisions the checks took (see above). Start-up resumes an order that
    // was stored alone. The transaction may be shared with orders queued
    // behind this one (group commit, `crate::store::commit`); if it is rolled back
    // for one of them, the order runs again in a transaction of its own.
    let mut alone = false;
    let (order, processed) = loop {
        let mut tx = if alone {
            engine.store.begin_write().await?
        } else {
            engine.store.begin_shared().await?
        };
        if let Some(of) = rollback_of {
            // judged again where it cannot change under the rollback: two
            // rollbacks of one order sent at once are not both placed
            if let Err(e) = crate::history::rollback::guard(&mut tx, engine.store.backend, of).await
            {
                let _ = tx.rollback().await;
                if !alone && crate::store::commit::retry_alone(&e) {
                    alone = true;
                    continue;
                }
                return Err(e);
            }
        }
        let id = engine.store.next_order_id(&mut tx).await?;
        let mut order = StoredOrder {
            data: OrderData {
                id: Some(id),
                ..data.clone()
            },
            state: initial.to_owned(),
            closed: false,
            created_at: at.clone(),
            updated_at: at.clone(),
            states: states.clone(),
        };
        let mut pending = store::Pending::default();
        crate::notify::record_event(
            defs,
            &mut pending.notify,
            &order.data,
            0,
            None,
            INSERTED,
            None,
            crate::notify::Trigger::Requester,
            None,
        );
        // Processing, the final write (which carries the actions' deferred
        // writes and the mails) and the commit either all succeed or none
        // counts.
        let processed = async {
            drive(&mut tx, engine, &mut order, None, &mut pending).await?;
            pending.take_mail(defs, &order);
            let woken = (pending.has_jobs(), pending.has_mail());
            store::insert_processed_order(&mut tx, defs, &order, std::mem::take(&mut pending))
                .await?;
            if let (Some(of), Some(id)) = (rollback_of, order.data.id) {
                crate::history::rollback::record_link(&mut tx, id, of).await?;
            }
            Ok::<_, EngineError>(woken)
        }
        .await;
        let processed = match processed {
            Ok(jobs) => tx.commit().await.map(|()| jobs),
            Err(e) => {
                // the transaction's failure is the error to report; a failing
                // rollback (a broken connection) only drops the connection
                let _ = tx.rollback().await;
                Err(e)
            }
        };
        match processed {
            Err(e) if !alone && crate::store::commit::retry_alone(&e) => {
                debug!(order_type, reason = %e, "shared transaction rolled back; running the order alone");
                alone = true;
            }
            processed => break (order, processed),
        }
    };
    match processed {
        Ok(woken) => {
            wake(woken);
            info!(id = order.data.id, order_type, state = %order.state, "order processed");
            count_closed(&order);
            Ok(Outcome::from(&order))
        }
        Err(e) => {
            let mut tx = engine.store.begin_write().await?;
            let id = store::insert_order(&mut tx, &data, initial, &states, &at).await?;
            if let Some(of) = rollback_of {
                crate::history::rollback::record_link(&mut tx, id, of).await?;
            }
            tx.commit().await?;
            if transient(&e) {
                warn!(id, order_type, error = %e, "order stored; processing failed and is resumed on restart");
                return Err(e);
            }
            // A failure of the order's own (a handler refusing it, data a
            // table's constraint refuses) would fail again on every start:
            // the order ends now, in the state its workflow reaches on
            // errors, with the reason recorded, and the requester learns
            // its id and state like those of any refused order.
            warn!(id, order_type, error = %e, "processing the order failed; it is stopped with the reason in its history");
            record_failure_as(engine, workflow, id, PROCESSING_CHECK, &e).await?;
            let mut conn = engine.store.pool.acquire().await?;
            let order = store::load_order(&mut conn, defs, id).await?;
            count_closed(&order);
            Ok(Outcome::from(&order))
        }
    }
}

/// Whether processing failed for a reason that may be gone on the next
/// try: the database was out of reach, or it chose this transaction as a
/// deadlock's or serialization conflict's victim, or a lock wait timed out.
fn transient(e: &EngineError) -> bool {
    if crate::store::commit::unreachable(e) {
        return true;
    }
    let db = match e {
        EngineError::Db(e)
        | EngineError::Handler {
            source: crate::error::HandlerError::Db(e),
            ..
        } => e,
        EngineError::Aborted(_) => return true,
        _ => return false,
    };
    db.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| matches!(c.as_ref(), "40001" | "40P01" | "55P03"))
}

/// Runs whatever an order can do without a person: the start action of the
/// initial state and autorun states. Used after submission and, for orders
/// left unfinished by a crash, at start-up.
pub async fn resume(engine: &Engine, id: i64) -> Result<Outcome, EngineError> {
    let mut tx = engine.store.begin_write().await?;
    let mut order = store::lock_order(&mut tx, engine.store.backend, engine.defs, id).await?;
    let mut pending = store::Pending::default();
    if order.states.len() == 1 {
        // stored alone after its processing failed: it was never announced
        crate::notify::record_event(
            engine.defs,
            &mut pending.notify,
            &order.data,
            0,
            None,
            INSERTED,
            None,
            crate::notify::Trigger::Requester,
            None,
        );
    }
    drive(&mut tx, engine, &mut order, None, &mut pending).await?;
    pending.take_mail(engine.defs, &order);
    let woken = (pending.has_jobs(), pending.has_mail());
    store::update_order(&mut tx, engine.defs, &order, pending).await?;
    tx.commit().await?;
    wake(woken);
    count_closed(&order);
    Ok(Outcome::from(&order))
}

/// Counts an order that reached a final state (`auftrag_orders_closed_total`).
fn count_closed(order: &StoredOrder) {
    if order.closed {
        metrics::counter!(
            "auftrag_orders_closed_total",
            "type" => order.data.order_type.name,
            "state" => order.state.clone()
        )
        .increment(1);
    }
}

/// The check name of the error [`record_failure`] gives an order whose
/// processing failed when start-up resumed it.
pub const RESUME_CHECK: &str = "resume";

/// The check name of the error [`record_failure`] gives a new order whose
/// processing failed for a reason of its own (see [`submit`]).
pub const PROCESSING_CHECK: &str = "processing";

/// Records that processing order `id` failed for good (`error`): the order
/// goes to the state its workflow reaches when an order has errors — from
/// where it stands, following the autorun transitions whose condition holds
/// for an order with this one error, without running their actions (in the
/// shipped workflows: ABORTED) — with the reason as an error of the order
/// and as the comment of that state in its history. Reads only the row's
/// type, state, history and errors, so that a row the engine cannot load
/// (fields that are not JSON, an order type the definitions lost) is
/// recorded too; `workflow` is the one to use when the order type is unknown.
/// The error's check is [`RESUME_CHECK`].
pub async fn record_failure(
    engine: &Engine,
    workflow: &'static WorkflowDef,
    id: i64,
    error: &EngineError,
) -> Result<(), EngineError> {
    record_failure_as(engine, workflow, id, RESUME_CHECK, error).await
}

/// [`record_failure`], with `check` naming the error's source
/// ([`RESUME_CHECK`], [`PROCESSING_CHECK`]).
pub async fn record_failure_as(
    engine: &Engine,
    workflow: &'static WorkflowDef,
    id: i64,
    check: &str,
    error: &EngineError,
) -> Result<(), EngineError> {
    use sqlx::Row;
    let defs = engine.defs;
    let mut reason: String = error.to_string().chars().take(1000).collect();
    reason = format!("the engine could not process the order: {reason}");
    let finding = Finding {
        check: check.to_owned(),
        field: None,
        message: reason.clone(),
    };
    let mut tx = engine.store.begin_write().await?;
    let lock = match engine.store.backend {
        store::Backend::Sqlite => "",
        store::Backend::Postgres => " FOR UPDATE",
    };
    let row = sqlx::query(&format!(
        "SELECT order_type, state, states, errors FROM auftrag_orders WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(EngineError::NotFound(id))?;
    let type_name: String = row.try_get(0)?;
    let state: String = row.try_get(1)?;
    let mut states: Vec<StateEntry> =
        serde_json::from_str(&row.try_get::<String, _>(2)?).unwrap_or_default();
    let mut errors: Vec<Finding> =
        serde_json::from_str(&row.try_get::<String, _>(3)?).unwrap_or_default();
    let (workflow, order_type) = match defs.order_type(&type_name) {
        Some(t) => (defs.workflow_of(t), Some(t)),
        None => (workflow, None),
    };
    // conditions are asked about an order with this error and no fields
    let order_type = order_type.or_else(|| {
        defs.order_types
            .iter()
            .find(|t| std::ptr::eq(defs.workflow_of(t), workflow))
    });
    let mut at_state = workflow.state_id(&state).unwrap_or(workflow.initial);
    if let Some(order_type) = order_type {
        let probe = OrderData {
            id: Some(id),
            order_type,
            requester: String::new(),
            fields: Fields::new(),
            errors: vec![finding.clone()],
            warnings: Vec::new(),
            accepted: Vec::new(),
            changes: Default::default(),
            facts: None,
        };
        for _ in 0..MAX_STEPS {
            let s = workflow.state(at_state);
            let next = if s.is_final() {
                None
            } else if at_state == workflow.initial {
                s.transitions.first()
            } else if s.autorun {
                s.transitions.iter().find(|t| condition_holds(t, &probe))
            } else {
                None
            };
            match next.map(|t| t.resulting_state) {
                Some(target) if target != NOCHANGE => at_state = target,
                _ => break,
            }
        }
    }
    let end = workflow.state(at_state);
    let at = now();
    states.push(StateEntry {
        state: end.name.to_owned(),
        at: at.clone(),
        comment: Some(reason),
        by: None,
    });
    errors.push(finding);
    let created_at = states.first().map(|s| s.at.clone()).unwrap_or_default();
    let derived = order_type
        .map(|t| crate::history::Derived::of(defs, t, &states, end.is_final(), &created_at))
        .unwrap_or_default();
    sqlx::query(
        "UPDATE auftrag_orders SET state = $1, closed = $2, updated_at = $3, states = $4, errors = $5, \
         closed_at = $7, duration_ms = $8, waiting_ms = $9, waited = $10, version = version + 1 \
         WHERE id = $6",
    )
    .bind(end.name)
    .bind(i64::from(end.is_final()))
    .bind(&at)
    .bind(serde_json::to_string(&states).map_err(|e| EngineError::Internal(e.to_string()))?)
    .bind(serde_json::to_string(&errors).map_err(|e| EngineError::Internal(e.to_string()))?)
    .bind(id)
    .bind(derived.closed_at)
    .bind(derived.duration_ms)
    .bind(derived.waiting_ms)
    .bind(i64::from(derived.waited))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    warn!(
        id,
        state = end.name,
        "order stopped after its processing failed"
    );
    Ok(())
}

/// Refuses `actor` unless the policies let them act as staff on `order`
/// ([`crate::pdp::STAFF_ACTION`]; without policies: membership of the staff
/// table). Someone who may not even read the order learns nothing of it
/// (404).
pub async fn ensure_staff(
    conn: &mut sqlx::AnyConnection,
    defs: &'static Definitions,
    order: &OrderData,
    actor: &Principal,
    id: i64,
) -> Result<(), EngineError> {
    let (permitted, why) = match defs.authorization {
        Some(auth) => {
            let r = crate::pdp::decide_action(
                conn,
                auth,
                order,
                &actor.person,
                crate::pdp::STAFF_ACTION,
            )
            .await;
            (
                r.decision == crate::pdp::Decision::Permit,
                format!(" ({})", crate::pdp::summary_for_subject(&r)),
            )
        }
        None => (store::is_staff(conn, &actor.person).await?, String::new()),
    };
    if !permitted {
        if !crate::pdp::may_read(conn, defs, order, &actor.person).await? {
            return Err(EngineError::NotFound(id));
        }
        return Err(EngineError::Forbidden(format!(
            "only staff may do this{why}"
        )));
    }
    Ok(())
}

/// A person triggers `action` on order `id`, in `role`.
#[instrument(skip(engine, input), fields(person = %actor.person))]
pub async fn act(
    engine: &Engine,
    actor: &Principal,
    role: Actor,
    id: i64,
    action: &str,
    input: ActionInput,
) -> Result<Outcome, EngineError> {
    let defs = engine.defs;
    if let Some(comment) = &input.comment {
        check_comment(comment)?;
    }
    let mut tx = engine.store.begin_write().await?;
    let mut order = store::lock_order(&mut tx, engine.store.backend, defs, id).await?;
    match role {
        Actor::Requester if order.data.requester != actor.person => {
            // Someone who may not read the order learns nothing of it, not
            // even that it exists.
            if !crate::pdp::may_read(&mut tx, defs, &order.data, &actor.person).await? {
                return Err(EngineError::NotFound(id));
            }
            return Err(EngineError::Forbidden(format!(
                "only the requester of order {id} may do this"
            )));
        }
        Actor::Staff => {
            ensure_staff(&mut tx, defs, &order.data, actor, id).await?;
            crate::workflow::claims::ensure_not_held_by_other(&mut tx, id, &actor.person).await?;
        }
        _ => {}
    }
    if let Some(expected) = &input.if_match {
        let current = order.etag();
        let matches = expected
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == current);
        if !matches {
            return Err(EngineError::PreconditionFailed(format!(
                "order {id} changed since the version you sent ({expected}); it is now {current} in state {}: read it again (GET /api/v1/orders/{id}) and decide anew",
                order.state
            )));
        }
    }
    let workflow = defs.workflow_of(order.data.order_type);
    let state = state_of(workflow, &order)?;
    let transition = defs
        .action_id(action)
        .and_then(|a| {
            workflow
                .state(state)
                .transitions
                .iter()
                .find(|t| t.action == a && condition_holds(t, &order.data))
        })
        .ok_or_else(|| {
            EngineError::Conflict(format!(
                "order {id} is in state {}; `{action}` is not possible there{}",
                order.state,
                possible_actions(defs, workflow, state)
            ))
        })?;
    if !defs.action(transition.action).allowed.contains(&role) {
        return Err(EngineError::Forbidden(format!(
            "`{action}` may not be triggered by the {}",
            match role {
                Actor::Requester => "requester",
                Actor::Staff => "staff",
            }
        )));
    }
    if let Some(fields) = &input.fields {
        validate_fields(order.data.order_type, fields, true)?;
    }
    let mut pending = store::Pending::default();
    drive(
        &mut tx,
        engine,
        &mut order,
        Some(Step {
            transition,
            actor,
            role,
            input: &input,
        }),
        &mut pending,
    )
    .await?;
    pending.take_mail(defs, &order);
    let woken = (pending.has_jobs(), pending.has_mail());
    store::update_order(&mut tx, defs, &order, pending).await?;
    tx.commit().await?;
    wake(woken);
    info!(id, action, state = %order.state, "action done");
    count_closed(&order);
    Ok(Outcome::from(&order))
}

/// The longest comment a person may give with an action (characters).
pub const COMMENT_MAX_LENGTH: usize = 2000;

/// A comment on an action (`{"comment": …}` of withdraw, accept, abort and
/// `PATCH …/fields`) goes into the order's history: lines of printable
/// text (LF and TAB allowed), at most [`COMMENT_MAX_LENGTH`] characters.
fn check_comment(comment: &str) -> Result<(), EngineError> {
    crate::workflow::types::check_text(comment, COMMENT_MAX_LENGTH, true).map_err(|message| {
        EngineError::InvalidFields(vec![FieldProblem {
            field: "comment".into(),
            message,
        }])
    })
}

/// Jobs and mails an order created exist once its transaction has
/// committed: now long-polling agencies and the mail sender of this process
/// may look.
fn wake((jobs, mail): (bool, bool)) {
    if jobs {
        crate::jobs::wake_pollers();
    }
    if mail {
        crate::notify::NEW_MAIL.notify_waiters();
    }
}

fn possible_actions(defs: &Definitions, workflow: &WorkflowDef, state: StateId) -> String {
    let names: Vec<&str> = workflow
        .state(state)
        .transitions
        .iter()
        .filter(|t| !defs.action(t.action).allowed.is_empty())
        .map(|t| defs.action(t.action).name)
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (possible: {})", names.join(", "))
    }
}

struct Step<'a> {
    transition: &'static TransitionDef,
    actor: &'a Principal,
    role: Actor,
    input: &'a ActionInput,
}

fn state_of(workflow: &WorkflowDef, order: &StoredOrder) -> Result<StateId, EngineError> {
    workflow.state_id(&order.state).ok_or_else(|| {
        EngineError::Internal(format!(
            "order {} is in state `{}`, which workflow `{}` no longer has",
            order.data.id.unwrap_or_default(),
            order.state,
            workflow.name
        ))
    })
}

fn condition_holds(t: &TransitionDef, order: &OrderData) -> bool {
    t.condition
        .as_ref()
        .is_none_or(|c| (c.eval)(&CondCtx { order }))
}

/// Executes the first step (if any), then runs the workflow on its own while
/// the order sits in its initial state or in an autorun state.
async fn drive(
    conn: &mut sqlx::AnyConnection,
    engine: &Engine,
    order: &mut StoredOrder,
    first: Option<Step<'_>>,
    pending: &mut store::Pending,
) -> Result<(), EngineError> {
    let defs = engine.defs;
    let workflow = defs.workflow_of(order.data.order_type);
    let no_input = ActionInput::default();
    let mut memo = Memo::default();
    if let Some(step) = first {
        execute(
            conn,
            &mut memo,
            pending,
            defs,
            workflow,
            order,
            step.transition,
            Some((step.actor, step.role)),
            step.input,
        )
        .await?;
        device_people(conn, engine, &mut memo, order, pending).await?;
    }
    for _ in 0..MAX_STEPS {
        let state_id = state_of(workflow, order)?;
        let state = workflow.state(state_id);
        let next = if state_id == workflow.initial {
            // The initial state waits for the start of the check, which the
            // engine gives at once (the compiler ensures a single action).
            state.transitions.first()
        } else if state.autorun {
            let next = state
                .transitions
                .iter()
                .find(|t| condition_holds(t, &order.data));
            if next.is_none() && !state.may_stop {
                warn!(
                    state = state.name,
                    "autorun state has no applicable action; the order stays"
                );
            }
            next
        } else {
            None
        };
        let Some(transition) = next else {
            return Ok(());
        };
        execute(
            conn, &mut memo, pending, defs, workflow, order, transition, None, &no_input,
        )
        .await?;
        device_people(conn, engine, &mut memo, order, pending).await?;
    }
    Err(EngineError::Internal(format!(
        "workflow `{}` did not come to rest after {MAX_STEPS} steps (a cycle of autorun states?)",
        workflow.name
    )))
}

/// Asks the domain for the device's admins and deputies once a matched
/// notification rule names them (see [`crate::notify`]): after a step, from
/// what the checks remembered, before a later step changes the device.
async fn device_people(
    conn: &mut sqlx::AnyConnection,
    engine: &Engine,
    memo: &mut Memo,
    order: &StoredOrder,
    pending: &mut store::Pending,
) -> Result<(), EngineError> {
    if pending.notify.needs_people(engine.defs) {
        let people = engine.domain.device_people(conn, memo, &order.data).await?;
        pending.notify.people = Some(people);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    conn: &mut sqlx::AnyConnection,
    memo: &mut Memo,
    pending: &mut store::Pending,
    defs: &'static Definitions,
    workflow: &'static WorkflowDef,
    order: &mut StoredOrder,
    transition: &'static TransitionDef,
    actor: Option<(&Principal, Actor)>,
    input: &ActionInput,
) -> Result<(), EngineError> {
    let action = defs.action(transition.action);
    let mut ctx = ActionCtx {
        conn,
        defs,
        order: &mut order.data,
        actor: actor.map(|(p, _)| p),
        role: actor.map(|(_, r)| r),
        input,
        comment: None,
        result: None,
        memo,
        pending,
    };
    (action.handler)(&mut ctx)
        .await
        .map_err(|source| EngineError::Handler {
            action: action.name.to_owned(),
            source,
        })?;
    let comment = ctx.comment.take();
    let target = transition.target(ctx.result.as_deref());
    if target == NOCHANGE {
        // the order stays where it is (a waiting state, as the compiler ensures)
        return Ok(());
    }
    let next = workflow.state(target);
    let from = workflow
        .states
        .iter()
        .find(|s| s.name == order.state)
        .map(|s| s.name);
    let trigger = match actor.map(|(_, r)| r) {
        Some(Actor::Requester) => crate::notify::Trigger::Requester,
        Some(Actor::Staff) => crate::notify::Trigger::Staff,
        None => crate::notify::Trigger::Engine,
    };
    crate::notify::record_event(
        defs,
        &mut pending.notify,
        &order.data,
        order.states.len(),
        from,
        next.name,
        Some(action.name),
        trigger,
        comment.as_deref(),
    );
    let at = now();
    order.state = next.name.to_owned();
    order.closed = next.is_final();
    order.updated_at.clone_from(&at);
    order.states.push(StateEntry {
        state: next.name.to_owned(),
        at,
        comment,
        by: actor.map(|(p, _)| p.person.clone()),
    });
    Ok(())
}
