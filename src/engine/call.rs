//! One logical upstream call with the gateway's manners: refuse at once when the account's
//! circuit is open or its rate-limit budget is known to be used up; retry idempotent reads
//! on 502/503/504, timeouts and dropped connections with capped exponential backoff and
//! full jitter, honouring `Retry-After`, within the call's deadline; never retry writes; and
//! tell the observer about every attempt.

use std::time::{Duration, Instant};

use rand::Rng;

use super::breaker::Transition;
use super::error::EngineError;
use super::observe::CallRecord;
use super::refusal::Refusal;
use super::upstream::{self, Reply, Target};
use super::{AccountHandle, Engine};

/// Whether a call may be repeated without effect: reads may, writes may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Write,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff ceiling; it doubles per retry up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform wait between zero and the capped exponential ceiling.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }
}

impl Engine {
    pub(super) async fn call(
        &self,
        account: &AccountHandle,
        target: Target,
        kind: CallKind,
    ) -> Result<Reply, EngineError> {
        self.call_expecting(account, target, kind, None).await
    }

    /// As [`Engine::call`]; a refusal `expired` (JSONata over `{status, body, headers}`)
    /// matches is [`EngineError::FeedExpired`], whatever the error rules say of it.
    pub(super) async fn call_expecting(
        &self,
        account: &AccountHandle,
        target: Target,
        kind: CallKind,
        expired: Option<&crate::mapping::Expr>,
    ) -> Result<Reply, EngineError> {
        let key = format!("{}/{}", account.provider.name, account.id);
        let mut permit = match self.breakers.admit(&key) {
            Ok(permit) => permit,
            Err(retry_in) => return Err(EngineError::CircuitOpen { retry_in }),
        };
        if let Some(rate_limit) = self.budgets.exhausted(&account.id) {
            account.spend.note(&rate_limit);
            return Err(EngineError::BudgetExhausted { rate_limit });
        }
        let deadline = crate::bounds::instant_after(Instant::now(), self.options.deadline);
        let mut retry = 0;
        // The account with a token renewed after a 401, for the one retry that allows.
        let mut renewed: Option<AccountHandle> = None;
        loop {
            // Every attempt counts against the request's ceiling, and waits for a slot of
            // the account's (the wait is part of the call's deadline).
            if account.spend.count_call() > self.options.max_calls_per_request {
                return Err(EngineError::CallCeiling {
                    limit: self.options.max_calls_per_request,
                });
            }
            let waiting = deadline.saturating_duration_since(Instant::now());
            let Ok(_slot) = tokio::time::timeout(waiting, self.gates.enter(&account.id)).await
            else {
                return Err(EngineError::Timeout);
            };
            let handle = renewed.as_ref().unwrap_or(account);
            let started = Instant::now();
            let left = deadline.saturating_duration_since(started);
            let result = match self.upstreams.check_url(&target.url) {
                // An IP literal reqwest would connect to without asking the resolver.
                Err(refused) => Err(EngineError::UpstreamRefused(refused)),
                Ok(()) => match tokio::time::timeout(
                    left,
                    upstream::send(&self.http, handle, target.clone(), expired),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(EngineError::Timeout),
                },
            };
            self.observe(account, &target, &result, started.elapsed(), retry);
            let err = match result {
                Ok(reply) => {
                    self.note_budget(&account.id, &reply.rate_limit, false);
                    self.breaker_changed(account, permit.success());
                    return Ok(reply);
                }
                Err(EngineError::CutOff { what, .. }) if kind == CallKind::Write => {
                    EngineError::CutOff { what, write: true }
                }
                Err(e) => e,
            };
            if let EngineError::RateLimited { rate_limit, .. } = &err {
                self.note_budget(&account.id, rate_limit, true);
            }
            if let (EngineError::Unauthorized { status, summary }, Some(hook)) =
                (&err, &self.refusals)
            {
                self.breaker_changed(account, permit.success());
                let reason = format!("HTTP {status}{summary}");
                let retried = renewed.is_some();
                match hook
                    .refused(&account.id, &handle.token, &reason, retried)
                    .await
                {
                    Refusal::Retry(token) if !retried => {
                        let next = AccountHandle {
                            token,
                            ..handle.clone()
                        };
                        renewed = Some(next);
                        retry += 1;
                        continue;
                    }
                    Refusal::Retry(_) | Refusal::Parked => return Err(err),
                    Refusal::Unsettled(reason) => {
                        return Err(EngineError::Unavailable {
                            status: *status,
                            summary: format!(
                                ": the vendor refused the token and it could not be refreshed now ({reason})"
                            ),
                            retry_after: None,
                        });
                    }
                }
            }
            if !err.is_outage() {
                // The vendor answered: it is up, whatever it thought of the request.
                self.breaker_changed(account, permit.success());
                return Err(err);
            }
            let transition = permit.failure();
            let opened = transition == Some(Transition::Opened);
            self.breaker_changed(account, transition);
            if kind == CallKind::Write
                || !err.is_retryable()
                || opened
                || retry >= self.options.retry.max_retries
            {
                return Err(err);
            }
            let mut wait = self.options.retry.backoff(retry);
            if let Some(secs) = err.wait_hint() {
                wait = wait.max(Duration::from_secs(secs));
            }
            if deadline.saturating_duration_since(Instant::now()) <= wait {
                return Err(err);
            }
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// Updates the account's budget, and tells the observer when a window is now used up.
    pub(super) fn note_budget(&self, account: &str, rl: &super::RateLimit, throttled: bool) {
        let Some(w) = self.budgets.note(account, rl, throttled) else {
            return;
        };
        if let (Some(o), Some(reset_in)) = (&self.observer, w.reset_in()) {
            o.exhausted(account, &w.window, w.limit, reset_in);
        }
    }

    fn breaker_changed(&self, account: &AccountHandle, t: Option<Transition>) {
        if let (Some(t), Some(o)) = (t, &self.observer) {
            o.breaker(&account.provider.name, &account.id, t == Transition::Opened);
        }
    }

    fn observe(
        &self,
        account: &AccountHandle,
        target: &Target,
        result: &Result<Reply, EngineError>,
        latency: Duration,
        retry: u32,
    ) {
        let Some(observer) = &self.observer else {
            return;
        };
        let (status, rate_limit, error_class, throttled) = match result {
            Ok(r) => (Some(r.status), r.rate_limit.clone(), None, false),
            Err(e) => (
                e.status(),
                e.rate_limit().cloned().unwrap_or_default(),
                Some(e.class()),
                matches!(e, EngineError::RateLimited { .. }),
            ),
        };
        observer.call(&CallRecord {
            account_id: account.id.clone(),
            provider: account.provider.name.clone(),
            method: target.method.to_string(),
            path: target.url.path().to_string(),
            status,
            latency,
            rate_limit,
            error_class,
            retry,
            throttled,
        });
    }
}
