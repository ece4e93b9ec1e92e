//! A second order domain: firewall unlock requests (the thesis's next
//! candidate). It is nothing but XML (`definitions/`) and the handler
//! functions below; the engine is used as it is. `definitions!(…, emit)`
//! compiles the XML at build time into the same typed tables `build.rs`
//! makes for JuNet — here without a build script.

use auftrag_engine::store::Backend;
use auftrag_engine::{BoxFuture, DemoPerson, Domain, EngineError};
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;

auftrag_macros::definitions!("definitions/", emit);

/// The firewall domain as the engine sees it.
pub struct Firewall;

impl Domain for Firewall {
    fn definitions(&self) -> &'static auftrag_engine::defs::Definitions {
        &DEFINITIONS
    }

    fn migrator(&self, _backend: Backend) -> Migrator {
        sqlx::migrate!("examples/firewall/migrations")
    }

    fn person_exists<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        person: &'a str,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        Box::pin(async move {
            Ok(sqlx::query("SELECT 1 FROM fw_person WHERE id = $1")
                .bind(person)
                .fetch_optional(conn)
                .await?
                .is_some())
        })
    }

    fn seed_demo<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Vec<DemoPerson>, EngineError>> {
        Box::pin(async move {
            for (id, name) in [("alice", "Alice Requester"), ("sec", "Security Team")] {
                sqlx::query(
                    "INSERT INTO fw_person (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(name)
                .execute(&mut *conn)
                .await?;
            }
            Ok(vec![
                DemoPerson {
                    role: "requester",
                    person: "alice".into(),
                    staff: false,
                },
                DemoPerson {
                    role: "staff",
                    person: "sec".into(),
                    staff: true,
                },
            ])
        })
    }
}

/// The handlers `definitions/` names.
pub mod handlers {
    use std::net::Ipv4Addr;

    use auftrag_engine::HandlerError;
    use auftrag_engine::context::{ActionCtx, CheckCtx, CondCtx};
    use auftrag_engine::pdp::{PipCtx, Value};
    use auftrag_engine::types::Subnet;
    use auftrag_macros::{action, check, condition, resolver};

    use super::Unlock;

    /// Open rules per destination before a request needs review.
    pub const MAX_RULES_PER_HOST: i64 = 2;

    /// `subject.is_staff` of attributes.xml: the person is on the security
    /// team (the engine's staff table).
    #[resolver]
    pub async fn is_staff(ctx: &mut PipCtx<'_>) -> Result<Option<Value>, HandlerError> {
        let staff = auftrag_engine::store::is_staff(ctx.conn, ctx.subject)
            .await
            .map_err(|e| HandlerError::Failed(e.to_string()))?;
        Ok(Some(Value::Boolean(staff)))
    }

    #[check]
    pub async fn check_requester_known(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        let known = sqlx::query("SELECT 1 FROM fw_person WHERE id = $1")
            .bind(&ctx.order.requester)
            .fetch_optional(&mut *ctx.conn)
            .await?
            .is_some();
        if !known {
            ctx.report(format!("{} is not a known person", ctx.order.requester));
        }
        Ok(())
    }

    /// Only hosts of the internal network (10.0.0.0/8) are opened.
    #[check(field = "ipv4")]
    pub async fn check_destination_internal(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        if let Some(ip) = ctx.typed::<Ipv4Addr>()
            && ip.octets()[0] != 10
        {
            ctx.report(format!("{ip} is not an internal host (10.0.0.0/8)"));
        }
        Ok(())
    }

    /// Telnet and SMB are never opened.
    #[check(field = "integer")]
    pub async fn check_port_allowed(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        if let Some(port) = ctx.typed::<i64>()
            && matches!(port, 23 | 445)
        {
            ctx.report(format!("port {port} is never opened"));
        }
        Ok(())
    }

    /// Opening for the whole internet needs a person's look.
    #[check(field = "subnet")]
    pub async fn check_source_not_world(ctx: &mut CheckCtx<'_>) -> Result<(), HandlerError> {
        if let Some(Subnet(net)) = ctx.typed::<Subnet>()
            && net.prefix_len() < 8
        {
            ctx.report(format!(
                "{net} opens the port to (almost) the whole internet"
            ));
        }
        Ok(())
    }

    /// HTTP or HTTPS for at most a day.
    #[condition]
    pub fn is_low_risk(ctx: &CondCtx<'_>) -> bool {
        Unlock::from_order(ctx.order).is_ok_and(|u| matches!(u.port, 80 | 443) && u.duration <= 24)
    }

    /// Writes the rule; returns `full` when the destination already has
    /// [`MAX_RULES_PER_HOST`] rules.
    #[action]
    pub async fn open_port(ctx: &mut ActionCtx<'_>) -> Result<(), HandlerError> {
        let u = Unlock::from_order(ctx.order)?;
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fw_rule WHERE destination = $1")
            .bind(u.destination.to_string())
            .fetch_one(&mut *ctx.conn)
            .await?;
        if open >= MAX_RULES_PER_HOST {
            ctx.comment = Some(format!("{} already has {open} open rules", u.destination));
            ctx.set_result("full");
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO fw_rule (order_id, source, destination, port, protocol, hours) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ctx.order.id.unwrap_or_default())
        .bind(u.source.to_string())
        .bind(u.destination.to_string())
        .bind(u.port)
        .bind(u.protocol.name())
        .bind(u.duration)
        .execute(&mut *ctx.conn)
        .await?;
        let rule = format!(
            "{} -> {}:{}/{}",
            u.source,
            u.destination,
            u.port,
            u.protocol.name()
        );
        // the firewall's agency applies the rule (typed queue handle,
        // generated from queues.xml)
        auftrag_engine::jobs::enqueue_for_order(ctx, super::queues::RULES, rule.as_bytes()).await?;
        ctx.order
            .record_change("rule", serde_json::Value::Null, rule);
        ctx.set_result("opened");
        Ok(())
    }
}
