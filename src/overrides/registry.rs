//! The overrides in force, in memory on every replica, and the provider models they compile
//! to. A request asks for the effective provider of its linked account: with no override in
//! its scope that is the loaded file itself; otherwise the file with the account's platform,
//! environment and account overrides merged in, compiled once and cached until one of those
//! overrides changes. Replicas learn of changes made elsewhere by polling the store for
//! versions newer than the last one seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};

use super::error::OverrideError;
use super::layer::{FieldSource, Layer, Merged, merge};
use super::spec::{Level, OverrideSpec, Scope};
use crate::config::{ProviderModel, Providers};
use crate::mapping::{CpuTimer, MappingBudget, MappingEngine, Vars};
use crate::schema::{UnifiedModel, misfits};
use crate::store::{OverrideVersion, Store, StoreError};

/// Versions are read again this far back when polling: on PostgreSQL a sequence number can
/// become visible after a higher one committed first.
const POLL_OVERLAP: i32 = 100;
/// Sample records an override is tried on, at most.
const MAX_SAMPLES: usize = 25;

/// The current (latest) version of one scope.
#[derive(Debug, Clone)]
pub struct Current {
    pub scope: Scope,
    pub version: i32,
    pub spec: OverrideSpec,
}

#[derive(Default)]
struct State {
    current: HashMap<String, Current>,
    last_seq: i32,
}

/// (provider, environment, account)
type CacheKey = (String, String, String);

pub struct OverrideRegistry {
    base: Providers,
    model: UnifiedModel,
    engine: Arc<dyn MappingEngine>,
    state: RwLock<State>,
    /// Every account's provider model in use (the loaded file itself when no override
    /// applies), until an override it takes part in changes.
    compiled: Mutex<HashMap<CacheKey, Arc<ProviderModel>>>,
    /// Bumped by every applied change, so a model compiled from the state before it is not
    /// cached after it.
    generation: AtomicU64,
    /// What a request may spend on mappings: an override that would not let a request map
    /// a usual page within it is refused.
    budget: MappingBudget,
}

/// A linked account's mapping of one resource, explained.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub provider: String,
    pub fields: Vec<FieldSource>,
    /// The operations as they will be sent (file plus request patches).
    pub operations: Value,
    pub custom_field_types: Value,
    /// The overrides that took part, lowest level first: (scope, version).
    pub applied: Vec<(Scope, i32)>,
}

impl OverrideRegistry {
    pub fn new(
        base: Providers,
        model: UnifiedModel,
        engine: Arc<dyn MappingEngine>,
    ) -> OverrideRegistry {
        OverrideRegistry {
            base,
            model,
            engine,
            state: RwLock::default(),
            compiled: Mutex::default(),
            generation: AtomicU64::new(0),
            budget: MappingBudget::DEFAULT,
        }
    }

    /// Validates overrides against `budget` (the engine's) instead of the default.
    pub fn with_budget(mut self, budget: MappingBudget) -> OverrideRegistry {
        self.budget = budget;
        self
    }

    /// Reads the versions stored since the last call (all of them the first time) and
    /// applies the new ones. Returns how many changed what is in force.
    pub async fn refresh(&self, store: &Store) -> Result<usize, StoreError> {
        let after = self
            .state
            .read()
            .map(|s| (s.last_seq - POLL_OVERLAP).max(0))
            .unwrap_or(0);
        let versions = store.override_versions_after(after).await?;
        Ok(versions.iter().filter(|v| self.apply(v)).count())
    }

    /// Puts a stored version in force if it is newer than what this replica has for its
    /// scope, and forgets the compiled models it touches. Returns whether it changed anything.
    pub fn apply(&self, v: &OverrideVersion) -> bool {
        // Polling reads the last versions again: skip what is known before parsing it.
        if self.state.read().is_ok_and(|s| {
            s.current
                .get(&v.scope_key)
                .is_some_and(|c| c.version >= v.version)
        }) {
            return false;
        }
        let Some(level) = Level::parse(&v.level) else {
            tracing::warn!(
                seq = v.seq,
                "override version with an unknown level ignored"
            );
            return false;
        };
        let spec: OverrideSpec = match serde_json::from_str(&v.spec) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(seq = v.seq, error = %e, "unreadable override version ignored");
                return false;
            }
        };
        let scope = Scope {
            level,
            environment_id: v.environment_id.clone(),
            account_id: v.account_id.clone(),
            provider: v.provider.clone(),
            resource: v.resource.clone(),
        };
        let Ok(mut state) = self.state.write() else {
            return false;
        };
        state.last_seq = state.last_seq.max(v.seq);
        if state
            .current
            .get(&v.scope_key)
            .is_some_and(|c| c.version >= v.version)
        {
            return false;
        }
        state.current.insert(
            v.scope_key.clone(),
            Current {
                scope: scope.clone(),
                version: v.version,
                spec,
            },
        );
        drop(state);
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Only the compiled models this scope takes part in.
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled
                .retain(|(provider, env, account), _| !scope.applies_to(provider, env, account));
        }
        true
    }

    /// The current override of a scope, if any.
    pub fn current(&self, scope: &Scope) -> Option<Current> {
        self.state
            .read()
            .ok()
            .and_then(|s| s.current.get(&scope.key()).cloned())
    }

    /// Every current override, for listing.
    pub fn all_current(&self) -> Vec<Current> {
        self.state
            .read()
            .map(|s| s.current.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The overrides in force for an account, lowest level first.
    fn layers_for(&self, provider: &str, environment: &str, account: &str) -> Vec<Current> {
        let mut list: Vec<Current> = self
            .state
            .read()
            .map(|s| {
                s.current
                    .values()
                    .filter(|c| c.scope.applies_to(provider, environment, account))
                    .filter(|c| !c.spec.is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by(|a, b| {
            (a.scope.level, &a.scope.resource).cmp(&(b.scope.level, &b.scope.resource))
        });
        list
    }

    fn base(&self, provider: &str) -> Result<&Arc<ProviderModel>, OverrideError> {
        self.base
            .get(provider)
            .ok_or_else(|| OverrideError::invalid(format!("no provider `{provider}` is loaded")))
    }

    /// The provider model a linked account's requests use.
    pub fn effective(
        &self,
        provider: &str,
        environment: &str,
        account: &str,
    ) -> Result<Arc<ProviderModel>, OverrideError> {
        let key = (
            provider.to_string(),
            environment.to_string(),
            account.to_string(),
        );
        // The hot path: one map lookup per request, overrides or not.
        if let Some(hit) = self.compiled.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let base = self.base(provider)?;
        let generation = self.generation.load(Ordering::SeqCst);
        let layers = self.layers_for(provider, environment, account);
        let model = if layers.is_empty() {
            base.clone()
        } else {
            let (mut model, _) = self.compile(base, &layers).map_err(|problems| {
                // Each override was valid when stored; a combination (or a newer provider
                // file) that no longer compiles is an operator's problem, named as such.
                OverrideError::Config(format!(
                    "the overrides of provider `{provider}` for this account no longer compile: {}",
                    problems.join("; ")
                ))
            })?;
            model.tenant_mappings = layers.iter().any(|c| c.scope.level != Level::Platform);
            Arc::new(model)
        };
        if let Ok(mut c) = self.compiled.lock() {
            // An override applied meanwhile may have made this model stale: do not keep it.
            if self.generation.load(Ordering::SeqCst) == generation {
                c.insert(key, model.clone());
            }
        }
        Ok(model)
    }

    /// The provider model an account would use with `spec` stored at `scope` (replacing
    /// what is there now), for `previewOverride`: compiled, never cached, never stored.
    pub fn effective_with(
        &self,
        scope: &Scope,
        spec: &OverrideSpec,
        environment: &str,
        account: &str,
    ) -> Result<Arc<ProviderModel>, OverrideError> {
        let base = self.base(&scope.provider)?;
        let mut layers: Vec<Current> = self
            .layers_for(&scope.provider, environment, account)
            .into_iter()
            .filter(|c| c.scope != *scope)
            .collect();
        layers.push(Current {
            scope: scope.clone(),
            version: 0,
            spec: spec.clone(),
        });
        layers.sort_by(|a, b| {
            (a.scope.level, &a.scope.resource).cmp(&(b.scope.level, &b.scope.resource))
        });
        let (mut model, merged) = self
            .compile(base, &layers)
            .map_err(|problems| OverrideError::invalid(problems.join("; ")))?;
        if let Some(note) = merged.notes.first() {
            return Err(OverrideError::invalid(note.clone()));
        }
        model.tenant_mappings = layers.iter().any(|c| c.scope.level != Level::Platform);
        Ok(Arc::new(model))
    }

    fn compile(
        &self,
        base: &ProviderModel,
        layers: &[Current],
    ) -> Result<(ProviderModel, Merged), Vec<String>> {
        let refs: Vec<Layer<'_>> = layers
            .iter()
            .map(|c| Layer {
                level: c.scope.level,
                version: c.version,
                resource: &c.scope.resource,
                spec: &c.spec,
            })
            .collect();
        let merged = merge(&base.source, &refs);
        let text = merged.document.to_string();
        match crate::config::load_file_text(&base.file, &text, &self.model, self.engine.as_ref()) {
            Ok(model) => Ok((model, merged)),
            Err(problems) => Err(problems.iter().map(describe_problem).collect()),
        }
    }

    /// How an account's resource is mapped, field by field, and from which level.
    pub fn explain(
        &self,
        provider: &str,
        environment: &str,
        account: &str,
        resource: &str,
    ) -> Result<Explanation, OverrideError> {
        let base = self.base(provider)?;
        if !base.resources.contains_key(resource) {
            return Err(OverrideError::invalid(format!(
                "provider `{provider}` has no resource `{resource}`"
            )));
        }
        let layers = self.layers_for(provider, environment, account);
        let merged = merge(
            &base.source,
            &layers
                .iter()
                .map(|c| Layer {
                    level: c.scope.level,
                    version: c.version,
                    resource: &c.scope.resource,
                    spec: &c.spec,
                })
                .collect::<Vec<_>>(),
        );
        let res = &merged.document["resources"][resource];
        Ok(Explanation {
            provider: provider.to_string(),
            fields: merged.provenance.get(resource).cloned().unwrap_or_default(),
            operations: res["operations"].clone(),
            custom_field_types: res
                .get("customFieldTypes")
                .cloned()
                .unwrap_or(Value::Object(Map::new())),
            applied: layers
                .into_iter()
                .filter(|c| c.scope.resource == resource)
                .map(|c| (c.scope, c.version))
                .collect(),
        })
    }

    /// Tries `spec` at `scope` before it is stored: the merged provider must compile (every
    /// expression within limits, every request patch a valid operation), and the merged
    /// mapping must give values that fit the SDL on the sample records (the caller's, or the
    /// provider's).
    pub fn validate(
        &self,
        scope: &Scope,
        spec: &OverrideSpec,
        samples: Option<Vec<Value>>,
    ) -> Result<(), OverrideError> {
        let base = self.base(&scope.provider)?;
        if !base.resources.contains_key(&scope.resource) {
            return Err(OverrideError::invalid(format!(
                "provider `{}` has no resource `{}` (it has: {})",
                scope.provider,
                scope.resource,
                base.resources
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let environment = scope.environment_id.clone().unwrap_or_default();
        let account = scope.account_id.clone().unwrap_or_default();
        // What applies at this scope today, with the candidate in place of its current version.
        let mut layers: Vec<Current> = self
            .layers_for(&scope.provider, &environment, &account)
            .into_iter()
            .filter(|c| {
                c.scope.level < scope.level || (c.scope.level == scope.level && c.scope != *scope)
            })
            .filter(|c| c.scope.level <= scope.level)
            .collect();
        layers.push(Current {
            scope: scope.clone(),
            version: 0,
            spec: spec.clone(),
        });
        let (model, merged) = self
            .compile(base, &layers)
            .map_err(|problems| OverrideError::invalid(problems.join("; ")))?;
        if let Some(note) = merged.notes.first() {
            return Err(OverrideError::invalid(note.clone()));
        }
        let Some(res) = model.resources.get(&scope.resource) else {
            return Err(OverrideError::invalid(
                "the resource vanished from the merged provider",
            ));
        };
        let Some(def) = self.model.resource(&scope.resource) else {
            return Ok(());
        };
        // The caller's records, else the provider's own (`providers/samples/`).
        let samples = match samples {
            Some(s) => s,
            None => self
                .base
                .samples(&scope.provider, &scope.resource)
                .map(<[Value]>::to_vec)
                .unwrap_or_default(),
        };
        let sources = merged
            .provenance
            .get(&scope.resource)
            .cloned()
            .unwrap_or_default();
        let origin = |key: &str| {
            sources
                .iter()
                .find(|f| f.field == key || f.field.starts_with(&format!("{key}.")))
                .or_else(|| sources.iter().find(|f| f.field == "*"))
                .map(|f| format!(" (expression `{}`)", f.expression))
                .unwrap_or_default()
        };
        for (i, sample) in samples.iter().take(MAX_SAMPLES).enumerate() {
            // Field by field first, so a failure names its field and its position.
            for f in &res.mapping.fields {
                if let Err(e) = f.expr.evaluate(Some(sample), &Vars::none()) {
                    return Err(OverrideError::invalid(format!(
                        "field `{}` (expression `{}`) fails on sample record {i}: {e}",
                        f.path,
                        f.expr.source()
                    )));
                }
            }
            let (result, cost) = cost_of(self.budget.per_record(), || {
                res.mapping.composed.evaluate(Some(sample), &Vars::none())
            });
            if cost > self.budget.per_record() {
                return Err(OverrideError::invalid(format!(
                    "the mapping takes {} of CPU per record on sample record {i}, more than the {} a record may take: one request may spend {} ms on mappings (TESSERA_MAPPING_BUDGET_MS), which must map a page of {} records; simplify the expression",
                    describe_cost(cost),
                    describe_cost(self.budget.per_record()),
                    self.budget.per_request.as_millis(),
                    MappingBudget::RECORDS,
                )));
            }
            let mapped = match result {
                Ok(Some(Value::Object(map))) => map,
                Ok(None) => Map::new(),
                Ok(Some(_)) => {
                    return Err(OverrideError::invalid(format!(
                        "the mapping gives no object on sample record {i}"
                    )));
                }
                Err(e) => {
                    return Err(OverrideError::invalid(format!(
                        "the mapping fails on sample record {i}: {e}"
                    )));
                }
            };
            if let Some(m) = misfits(def, &mapped, &self.model).into_iter().next() {
                return Err(OverrideError::invalid(format!(
                    "field `{}`{} gives a value that does not fit `{}` on sample record {i}: {}",
                    m.key,
                    origin(&m.key),
                    m.ty,
                    m.why
                )));
            }
        }
        Ok(())
    }
}

/// Runs `evaluate` and measures its CPU time; over `limit`, twice more, keeping the cheapest:
/// the expression's own cost, with as little as possible of the machine's noise (an
/// interrupt, a cold cache), so a cheap expression is never refused for a hiccup.
fn cost_of<T>(
    limit: std::time::Duration,
    mut evaluate: impl FnMut() -> T,
) -> (T, std::time::Duration) {
    let timer = CpuTimer::start();
    let mut result = evaluate();
    let mut cheapest = timer.elapsed();
    for _ in 0..2 {
        if cheapest <= limit {
            break;
        }
        let timer = CpuTimer::start();
        result = evaluate();
        cheapest = cheapest.min(timer.elapsed());
    }
    (result, cheapest)
}

/// `0.4 ms`, `52 ms`, `1.2 s`.
fn describe_cost(cost: std::time::Duration) -> String {
    let ms = cost.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A validator problem in an override's words: the pointer into the merged document becomes
/// the override's part (`field `phone``, `request `list/query``).
fn describe_problem(p: &crate::problem::Problem) -> String {
    let parts: Vec<&str> = p.location.trim_start_matches('/').split('/').collect();
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    match parts.as_slice() {
        ["resources", _, "fields", field] => {
            format!("field `{}`: {}", unescape(field), p.message)
        }
        ["resources", _, "responseMapping"] => format!("responseMapping: {}", p.message),
        ["resources", _, "operations", rest @ ..] => {
            format!("request `{}`: {}", rest.join("/"), p.message)
        }
        ["resources", _, "customFieldTypes", rest @ ..] => {
            format!("customFieldTypes `{}`: {}", rest.join("/"), p.message)
        }
        _ => format!("{}: {}", p.location, p.message),
    }
}
