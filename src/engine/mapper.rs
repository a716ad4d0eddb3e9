//! The engine's mapping step: raw vendor records to unified ones, under the request's
//! mapping budget.
//!
//! Mappings a tenant wrote (environment and account overrides) run on a bounded pool of
//! blocking threads, never on the async workers: an override that costs 50 ms a record then
//! slows the requests of its own account, not `/healthz`, the webhook intake or the other
//! tenants' requests. The provider files' own mappings, and platform overrides (the
//! operator's), are trusted data checked by `tessera check`; they run where they are, which
//! keeps the common list path free of a thread hop.
//!
//! Wherever it runs, every evaluation is charged in CPU time to the request's
//! [`RequestSpend`]; once the request has spent its [`MappingBudget`] it stops mapping and
//! fails with [`EngineError::MappingBudget`]. One evaluation is cut short by the budget that
//! is left (its wall-clock limit lowered to it), so a request overruns the budget by at most
//! the scheduling noise of one evaluation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::spend::RequestSpend;
use super::{AccountHandle, EngineError, Record, coerce};
use crate::config::{IdSource, ProviderModel, ResourceModel};
use crate::mapping::{CpuTimer, Expr, MappingBudget, MappingError, Vars, json_kind};

/// JSONata's code for an evaluation stopped by its time limit.
const TIMEOUT_CODE: &str = "D1012";

pub struct Mapper {
    /// Permits of the pool: tenant mappings evaluating at once, on blocking threads.
    pool: Arc<Semaphore>,
    budget: MappingBudget,
}

impl Mapper {
    pub(super) fn new(threads: usize, budget: MappingBudget) -> Mapper {
        Mapper {
            pool: Arc::new(Semaphore::new(threads.max(1))),
            budget,
        }
    }

    /// Maps `raws` (each with its index in the vendor's page, for error messages) as
    /// `resource` of `account`'s effective provider.
    pub(super) async fn map(
        &self,
        account: &AccountHandle,
        resource: &str,
        raws: Vec<(usize, Value)>,
    ) -> Result<Vec<Record>, EngineError> {
        if raws.is_empty() {
            return Ok(Vec::new());
        }
        if !account.provider.tenant_mappings {
            let res = resource_of(&account.provider, resource)?;
            return map_all(res, raws, &account.spend, self.budget);
        }
        let provider = Arc::clone(&account.provider);
        let spend = Arc::clone(&account.spend);
        let resource = resource.to_owned();
        let budget = self.budget;
        self.offload(move || {
            let res = resource_of(&provider, &resource)?;
            map_all(res, raws, &spend, budget)
        })
        .await?
    }

    /// Evaluates one expression of `account`'s effective provider (a write's body, a
    /// filter's translation): on the pool when a tenant's override took part, charged to the
    /// request like a record's mapping.
    pub(super) async fn evaluate(
        &self,
        account: &AccountHandle,
        expr: &Expr,
        input: Option<Value>,
        vars: Vars,
    ) -> Result<Result<Option<Value>, MappingError>, EngineError> {
        let spend = Arc::clone(&account.spend);
        let budget = self.budget;
        let run = move |expr: &Expr| {
            let left = budget.per_request.saturating_sub(spend.mapping_spent());
            if left.is_zero() {
                return Err(EngineError::MappingBudget {
                    budget: budget.per_request,
                });
            }
            let timer = CpuTimer::start();
            let result = expr.evaluate_within(input.as_ref(), &vars, left);
            spend.charge_mapping(timer.elapsed());
            Ok(result)
        };
        if !account.provider.tenant_mappings {
            return run(expr);
        }
        let expr = expr.clone();
        self.offload(move || run(&expr)).await?
    }

    /// Runs `work` (an evaluation of tenant expressions) on the pool, waiting for a free
    /// thread first: the pool is bounded, so a burst of costly mappings queues here instead
    /// of taking every thread of the machine.
    pub async fn offload<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.pool)
            .acquire_owned()
            .await
            .map_err(|_| EngineError::MappingAborted)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        // A panic inside the evaluation (the engine's bug, not the caller's): the request
        // fails, the pool and the process go on.
        .map_err(|_| EngineError::MappingAborted)
    }
}

fn resource_of<'a>(
    provider: &'a ProviderModel,
    resource: &str,
) -> Result<&'a ResourceModel, EngineError> {
    provider
        .resources
        .get(resource)
        .ok_or_else(|| EngineError::Unsupported {
            provider: provider.name.clone(),
            resource: resource.to_owned(),
            operation: "map",
        })
}

/// Maps each record in turn, charging each evaluation to `spend`.
fn map_all(
    res: &ResourceModel,
    raws: Vec<(usize, Value)>,
    spend: &RequestSpend,
    budget: MappingBudget,
) -> Result<Vec<Record>, EngineError> {
    let exhausted = || EngineError::MappingBudget {
        budget: budget.per_request,
    };
    let mut out = Vec::with_capacity(raws.len());
    // The thread's CPU clock is a system call (no vDSO for it): reading it twice a record
    // was a twentieth of a list request's CPU. It is read once at least a millisecond of
    // wall time has passed since the last reading (the wall clock is cheap, and a thread
    // cannot use more CPU than wall time), so `left` is at most that, plus one record,
    // behind.
    let timer = CpuTimer::start();
    let mut charged = Duration::ZERO;
    let mut read_at = std::time::Instant::now();
    let mut charge = || {
        let used = timer.elapsed();
        let spent = spend.charge_mapping(used.saturating_sub(charged));
        charged = used;
        spent
    };
    for (index, raw) in raws {
        let left = budget.per_request.saturating_sub(spend.mapping_spent());
        if left.is_zero() {
            return Err(exhausted());
        }
        let record = map_record(res, raw, index, left);
        let timed_out =
            matches!(&record, Ok(r) if r.mapped.as_ref().is_err_and(|e| e.code == TIMEOUT_CODE));
        let spent = if timed_out || read_at.elapsed() >= CHARGE_EVERY {
            read_at = std::time::Instant::now();
            charge()
        } else {
            spend.mapping_spent()
        };
        let record = record?;
        // Stopped by the budget that was left rather than by the engine's own limit.
        if timed_out
            && (spent >= budget.per_request || left < crate::mapping::Limits::default().timeout)
        {
            return Err(exhausted());
        }
        out.push(record);
    }
    charge();
    Ok(out)
}

/// Wall time between two readings of the CPU clock while mapping a page.
const CHARGE_EVERY: Duration = Duration::from_millis(1);

/// The vendor's id of a raw record, as the provider file says to read it.
pub(super) fn record_id(res: &ResourceModel, raw: &Value) -> Option<String> {
    let value = match &res.id {
        IdSource::Pointer(p) => raw.pointer(p).cloned(),
        IdSource::Expr(e) => e.evaluate(Some(raw), &Vars::none()).ok().flatten(),
    };
    match value? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn map_record(
    res: &ResourceModel,
    raw: Value,
    index: usize,
    left: Duration,
) -> Result<Record, EngineError> {
    let remote_id = record_id(res, &raw).ok_or_else(|| EngineError::Drift {
        what: match &res.id {
            IdSource::Pointer(p) => format!("record {index} has no id at `{p}`"),
            IdSource::Expr(e) => format!("record {index} has no id (`{}` gave none)", e.source()),
        },
    })?;
    let mut mapped = match res
        .mapping
        .composed
        .evaluate_within(Some(&raw), &Vars::none(), left)
    {
        Ok(Some(Value::Object(map))) => Ok(map),
        Ok(None) => Ok(Map::new()),
        Ok(Some(other)) => Err(MappingError {
            code: "T0001".into(),
            message: format!(
                "the mapping produced {} instead of an object",
                json_kind(&other)
            ),
            position: None,
        }),
        Err(e) => Err(e),
    };
    let warnings = match &mut mapped {
        Ok(map) => coerce::custom_fields(map, &res.mapping.custom_field_types),
        Err(_) => Vec::new(),
    };
    Ok(Record {
        remote_id,
        raw,
        mapped,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_saturate() {
        let spend = RequestSpend::default();
        assert_eq!(
            spend.charge_mapping(Duration::from_millis(3)),
            Duration::from_millis(3)
        );
        assert_eq!(
            spend.charge_mapping(Duration::from_millis(4)),
            Duration::from_millis(7)
        );
        spend.charge_mapping(Duration::MAX);
        assert!(spend.mapping_spent() >= Duration::from_secs(1_000_000));
    }
}
