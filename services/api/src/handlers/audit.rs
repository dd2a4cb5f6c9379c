//! QueryAudit and VerifyAudit.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use keyward_core::Error;
use keyward_core::operation::Operation;
use keyward_core::ports::audit::AuditFilter;

use super::run;
use crate::dto::audit::{AuditRecordDto, QueryAuditQuery, QueryAuditResponse, VerifyAuditResponse};
use crate::dto::keys::rfc3339;
use crate::dto::{limit, parse_query};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

fn time(field: &str, value: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc())
                .map_err(|_| Error::invalid(format!("`{field}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// Audit records matching the filters, oldest first, with cursor pagination.
#[utoipa::path(
    operation_id = "QueryAudit", tag = "audit", params(QueryAuditQuery),
    responses((status = 200, body = QueryAuditResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/audit")]
pub async fn query_audit(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::QueryAudit, StatusCode::OK, b"", async |scope| {
        let q: QueryAuditQuery = parse_query(req.query_string())?;
        let limit = limit(q.limit)?;
        let decision = match q.decision.as_deref() {
            None => None,
            Some("Allow") => Some(true),
            Some("Deny") => Some(false),
            Some(_) => return Err(Error::invalid("`decision` must be Allow or Deny")),
        };
        let filter = AuditFilter {
            principal: q.principal,
            key_id: q.key_id.as_deref().map(str::parse).transpose()?,
            action: q.action,
            decision,
            from: time("from", q.from.as_deref())?,
            to: time("to", q.to.as_deref())?,
            after_id: q
                .next_token
                .as_deref()
                .map(|t| t.parse::<i64>().map_err(|_| Error::invalid("`next_token` is not valid")))
                .transpose()?,
            limit,
        };
        let rows = state.service.query_audit(scope, filter).await?;
        let next_token = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
        let records = rows
            .into_iter()
            .map(|s| {
                let r = s.record;
                AuditRecordDto {
                    id: s.id,
                    time: rfc3339(r.time),
                    request_id: r.request_id,
                    trace_id: r.trace_id,
                    principal: r.principal,
                    principal_groups: r.principal_groups,
                    action: r.action,
                    resource: r.resource,
                    key_id: r.key_id.map(|k| k.to_string()),
                    key_version: r.key_version,
                    decision: r.decision.map(|a| if a { "Allow" } else { "Deny" }.to_owned()),
                    determining_policies: r.determining_policies,
                    policy_errors: r.policy_errors,
                    policy_version: r.policy_version,
                    outcome: r.outcome,
                    encryption_context: r.encryption_context,
                    source_ip: r.source_ip,
                    user_agent: r.user_agent,
                    justification: r.justification,
                    dry_run: r.dry_run,
                    duration_us: r.duration_us,
                    chain_id: s.chain_id,
                    sequence: s.sequence,
                    hash: s.hash,
                    interface: r.interface,
                    details: r.details,
                }
            })
            .collect();
        Ok(QueryAuditResponse { records, next_token })
    })
    .await
}

/// Walks every hash chain and signed checkpoint of the trail and reports the first break.
#[utoipa::path(
    operation_id = "VerifyAudit", tag = "audit",
    responses((status = 200, body = VerifyAuditResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/audit/verify")]
pub async fn verify_audit(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::VerifyAudit, StatusCode::OK, b"", async |scope| {
        let v = state.service.verify_audit(scope).await?;
        Ok(VerifyAuditResponse {
            ok: v.ok,
            records_checked: v.records_checked,
            verified_records: v.verified_records,
            unsigned_tail_records: v.unsigned_tail_records,
            first_break: v.first_break,
        })
    })
    .await
}
