//! Postgres fast path for audit batches: one statement whose parameters are column arrays
//! (`INSERT ... SELECT * FROM UNNEST(...)`). Its text does not depend on the batch size, so it
//! is prepared once, and Postgres parses and plans it once instead of a 27 × N-parameter
//! VALUES list per batch. Each lane sends it on a connection of its own: a pooled connection
//! is pinged before every use, a round trip (and two process wake-ups) per batch on a path
//! whose latency bounds throughput.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::entity::audit_record;

const INSERT: &str = "INSERT INTO audit_records (time, request_id, trace_id, principal, action, resource, key_id, \
     key_version, decision, determining_policies, policy_version, outcome, reason, encryption_context, source_ip, \
     user_agent, dry_run, duration_us, principal_groups, policy_errors, justification, chain_id, sequence, \
     prev_hash, hash, interface, details) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
     $16::text[], $17::bool[], $18::bigint[], $19::text[], $20::text[], $21::text[], $22::text[], $23::bigint[], \
     $24::text[], $25::text[], $26::text[], $27::text[])";

/// A lane's own connection, opened on first use. A connection whose statement failed, or was
/// abandoned at the commit deadline, is closed rather than reused (its state is unknown); the
/// next batch opens a fresh one. One idle for a while is pinged first, and replaced if the
/// ping fails: a connection dropped while idle (a firewall, `idle_session_timeout`) must not
/// cost a batch of refused requests. Under load it is never idle, so never pinged.
#[derive(Debug, Default)]
pub(crate) struct LaneConnection(tokio::sync::Mutex<Option<(PgConnection, Instant)>>);

/// Idle time after which the lane's connection is checked before use.
const IDLE_CHECK: Duration = Duration::from_secs(10);

impl LaneConnection {
    /// Inserts the rows atomically: one statement in autocommit is its own transaction, which
    /// saves the BEGIN and COMMIT round trips of an explicit one.
    pub(crate) async fn insert(&self, pool: &sqlx::PgPool, rows: &[audit_record::Model]) -> Result<(), sqlx::Error> {
        let mut slot = self.0.lock().await;
        let kept = match slot.take() {
            Some((mut conn, used)) if used.elapsed() >= IDLE_CHECK => conn.ping().await.ok().map(|()| conn),
            kept => kept.map(|(conn, _)| conn),
        };
        let mut conn = match kept {
            Some(conn) => conn,
            None => PgConnection::connect_with(&pool.connect_options()).await?,
        };
        insert(&mut conn, rows).await?;
        *slot = Some((conn, Instant::now()));
        Ok(())
    }
}

async fn insert(conn: &mut PgConnection, rows: &[audit_record::Model]) -> Result<(), sqlx::Error> {
    // Columns borrow from the rows: a batch allocates one vector per column, not a string
    // per field (the writer's thread spends its time in the allocator otherwise).
    fn col<'a, T>(rows: &'a [audit_record::Model], f: impl Fn(&'a audit_record::Model) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    sqlx::query(INSERT)
        .bind(col(rows, |r| r.time))
        .bind(col(rows, |r| r.request_id.as_str()))
        .bind(col(rows, |r| r.trace_id.as_str()))
        .bind(col(rows, |r| r.principal.as_str()))
        .bind(col(rows, |r| r.action.as_str()))
        .bind(col(rows, |r| r.resource.as_deref()))
        .bind(col(rows, |r| r.key_id.as_deref()))
        .bind(col(rows, |r| r.key_version))
        .bind(col(rows, |r| r.decision.as_deref()))
        .bind(col(rows, |r| r.determining_policies.as_str()))
        .bind(col(rows, |r| r.policy_version.as_deref()))
        .bind(col(rows, |r| r.outcome.as_str()))
        .bind(col(rows, |r| r.reason.as_deref()))
        .bind(col(rows, |r| r.encryption_context.as_str()))
        .bind(col(rows, |r| r.source_ip.as_deref()))
        .bind(col(rows, |r| r.user_agent.as_deref()))
        .bind(col(rows, |r| r.dry_run))
        .bind(col(rows, |r| r.duration_us))
        .bind(col(rows, |r| r.principal_groups.as_str()))
        .bind(col(rows, |r| r.policy_errors.as_str()))
        .bind(col(rows, |r| r.justification.as_deref()))
        .bind(col(rows, |r| r.chain_id.as_deref()))
        .bind(col(rows, |r| r.sequence))
        .bind(col(rows, |r| r.prev_hash.as_deref()))
        .bind(col(rows, |r| r.hash.as_deref()))
        .bind(col(rows, |r| r.interface.as_deref()))
        .bind(col(rows, |r| r.details.as_deref()))
        .execute(conn)
        .await?;
    Ok(())
}
