//! The mapping layer: compiling and evaluating the JSONata expressions that map vendor records
//! to the unified schema (and back).
//!
//! This folder owns:
//!
//! - the engine-neutral API the rest of Tessera uses: [`MappingEngine`] (compiles), [`Expr`] (a
//!   compiled expression: compile once, evaluate many, share between threads), [`Vars`] (the
//!   `$variables` of one evaluation), [`Limits`] (the guardrails every evaluation runs under)
//!   and [`MappingError`] (a JSONata error code, message and position);
//! - its only implementation, over the `jlens-core` engine, in `jlens.rs`. That file is the
//!   only one in the crate that may import `jlens_core`: swapping or upgrading the engine then
//!   touches one file, and no engine type leaks into the gateway, the provider loader or the
//!   CLI.
//!
//! The layer does no I/O: documents come in as `serde_json::Value` and results go out the same
//! way. Reading files or stdin (`tessera map`) and fetching vendor records are the callers'
//! business. It also never logs or prints an input document: errors carry the expression's
//! code and position, and a message whose quoted values are truncated.
//!
//! The gateway and `tessera map` both use [`default_engine`], so that an expression behaves the
//! same, limits included, when tried from the command line and when serving requests.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

mod cpu;
mod jlens;

pub use cpu::CpuTimer;

/// Guardrails applied to every evaluation (gateway and `tessera map` alike).
///
/// Mapping expressions are data shipped with provider definitions, so a typo or a malicious
/// definition must not be able to hang a worker, blow its stack or eat the memory of the
/// gateway. Each limit ends the evaluation with a [`MappingError`] carrying its own code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one evaluation (`D1012` when exceeded).
    pub timeout: Duration,
    /// Maximum nesting of the evaluation: nested sub-expressions plus non-tail-recursive calls
    /// (`D1011`, "Stack overflow", when exceeded). The engine grows the native stack on demand,
    /// so this bounds the memory a recursion may take rather than protecting the stack itself.
    pub max_depth: usize,
    /// Maximum number of evaluation steps, roughly one per node evaluated and per function
    /// called back (`U1006` when exceeded). Unlike the timeout it is deterministic: the same
    /// expression and document succeed or fail identically on a laptop, in CI and in
    /// production, whatever the load.
    pub max_steps: u64,
    /// Maximum size of the result as compact JSON text, in bytes (`U1001` when exceeded). The
    /// implementation also caps the strings and arrays the evaluation builds on the way from
    /// it (see `jlens.rs`), so that a blow-up stops before it is returned.
    pub max_result_bytes: usize,
}

impl Default for Limits {
    /// The gateway defaults. A field mapping evaluates in microseconds on a CRM record; these
    /// leave room for mappings over a whole page of records while stopping runaways fast.
    fn default() -> Self {
        Limits {
            // A backstop for what steps do not see: a single expensive step (a large sort,
            // regex backtracking) or a starved machine. Half a second is far above any sane
            // mapping (microseconds a record; the heaviest cases of the JSONata suite, building
            // 200,000-item sequences, take about 0.1 s) yet well below the request timeouts
            // clients use, so a runaway fails the request with a clear error instead of
            // timing it out.
            timeout: Duration::from_millis(500),
            // Expressions can only be parsed up to 1,000 levels of nesting (the engine's own
            // limit), so 2,000 evaluates any expression that compiles, plus about 1,000 levels
            // of non-tail recursion (JSONata's suite needs ~300 for `$factorial(99)`). Tail
            // calls run in constant depth and are not counted against it. Infinite recursion
            // hits it within milliseconds, having used a few MiB of stack at most.
            max_depth: 2_000,
            // About 0.1-0.3 s of evaluation in an optimized build: enough for a mapping that
            // visits every field of a page of a few thousand records several times (the
            // suite's heaviest case takes 400,000 steps), and the deterministic limit that stops
            // loops (`$f := function($x){ $f($x) }`) before the timeout does.
            max_steps: 2_000_000,
            // 8 MiB: the largest thing a mapping returns is a unified record or a page of
            // them, and CRM list endpoints page at 100 to 2,000 records, well below it.
            // Anything bigger is a runaway we would refuse to return anyway. It also caps
            // built arrays at 4 Mi items, so `$count([1..10000000])` fails.
            max_result_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The CPU time one caller request may spend evaluating mappings, across every record,
/// account and resource it reads (`TESSERA_MAPPING_BUDGET_MS`).
///
/// An override is refused when its cost on the sample records would not let a request map
/// [`MappingBudget::RECORDS`] records within the budget, so an expression that passed
/// validation fails a request only when that request reads far more records than usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingBudget {
    pub per_request: Duration,
}

impl MappingBudget {
    /// One second: the mappings of the provider files take microseconds a record, so a
    /// listing of the largest page (1,000 records) with its links spends a few milliseconds.
    pub const DEFAULT: MappingBudget = MappingBudget {
        per_request: Duration::from_secs(1),
    };

    /// Records a request must be able to map within the budget: the usual page of a listing.
    pub const RECORDS: u32 = 100;

    /// The most one record's mapping may cost for an override to be accepted.
    pub fn per_record(&self) -> Duration {
        self.per_request / Self::RECORDS
    }
}

impl Default for MappingBudget {
    fn default() -> Self {
        MappingBudget::DEFAULT
    }
}

/// An error compiling or evaluating an expression.
///
/// `code` is the stable JSONata error code (`S0xxx` syntax, `T0xxx`/`T1xxx`/`T2xxx` type,
/// `D1xxx`-`D3xxx` dynamic, `U1xxx` limits); match on it rather than on the message.
/// `position` is JSONata's: an offset in UTF-16 code units in the expression source, usually
/// just after the offending token.
#[derive(Clone, Debug, PartialEq)]
pub struct MappingError {
    /// The JSONata error code, e.g. `"D3030"`, `"S0203"`, `"U1001"`.
    pub code: String,
    /// The human-readable message. Values from the document quoted in it are truncated, so it
    /// can be logged without leaking a record.
    pub message: String,
    /// Where in the expression the error was detected, if known.
    pub position: Option<usize>,
}

impl fmt::Display for MappingError {
    /// `S0203 at position 14: Expected "]" before end of expression`. Only the expression's
    /// code, position and message: never the input document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(f, "{} at position {position}: {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for MappingError {}

/// Compiles mapping expressions.
pub trait MappingEngine: Send + Sync + 'static {
    /// Parses and compiles `source`. Syntax errors (`S0xxx`) come back with their position.
    fn compile(&self, source: &str) -> Result<Expr, MappingError>;
}

/// A compiled expression, as an engine implements it. Callers use [`Expr`].
pub trait CompiledExpr: Send + Sync {
    /// The source the expression was compiled from.
    fn source(&self) -> &str;
    /// Evaluates against `input` (`None`: no input, i.e. undefined) with `vars` bound as
    /// `$name`. `Ok(None)` means the result is undefined.
    fn evaluate(&self, input: Option<&Value>, vars: &Vars) -> Result<Option<Value>, MappingError>;
    /// As [`CompiledExpr::evaluate`], with the wall-clock limit lowered to `timeout` when that
    /// is below the engine's own.
    fn evaluate_within(
        &self,
        input: Option<&Value>,
        vars: &Vars,
        timeout: Duration,
    ) -> Result<Option<Value>, MappingError>;
}

/// A compiled expression: compile once, evaluate many, cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Expr(Arc<dyn CompiledExpr>);

impl Expr {
    /// Wraps an engine's compiled expression (engines and test doubles use it).
    pub fn new(compiled: Arc<dyn CompiledExpr>) -> Expr {
        Expr(compiled)
    }

    /// The source the expression was compiled from.
    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Evaluates against `input` (`None`: no input, i.e. undefined) with `vars` bound as
    /// `$name`, under the engine's [`Limits`]. `Ok(None)` means the result is undefined (a
    /// mapped field that is then left out).
    pub fn evaluate(
        &self,
        input: Option<&Value>,
        vars: &Vars,
    ) -> Result<Option<Value>, MappingError> {
        self.0.evaluate(input, vars)
    }

    /// As [`Expr::evaluate`], stopped with `D1012` after `timeout` if that comes before the
    /// engine's own limit: how a caller's remaining mapping budget bounds one evaluation.
    pub fn evaluate_within(
        &self,
        input: Option<&Value>,
        vars: &Vars,
        timeout: Duration,
    ) -> Result<Option<Value>, MappingError> {
        self.0.evaluate_within(input, vars, timeout)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source()).finish()
    }
}

/// Variables bound as `$name` during an evaluation.
///
/// Cheap when empty (no allocation, at construction or per evaluation) and cheap to clone
/// (shared). The variables are converted to the engine's form once, here, rather than at every
/// evaluation, so the same `Vars` can serve many evaluations for nothing.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// `None` when there are no variables, so that the common case allocates nothing.
    bound: Option<Arc<jlens::BoundVars>>,
}

impl Vars {
    /// No variables.
    pub fn none() -> Vars {
        Vars { bound: None }
    }

    /// Binds each key of `map` as a variable: `{"portalId": 7}` makes `$portalId` 7. Names are
    /// given without the `$`.
    pub fn from_map(map: Map<String, Value>) -> Vars {
        if map.is_empty() {
            return Vars::none();
        }
        Vars {
            bound: Some(Arc::new(jlens::BoundVars::new(map))),
        }
    }

    /// Whether no variable is bound.
    pub fn is_empty(&self) -> bool {
        self.bound.is_none()
    }

    /// The value of `$name` (`name` without the `$`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.bound.as_deref()?.get(name)
    }

    /// The variables, in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.bound
            .as_deref()
            .into_iter()
            .flat_map(jlens::BoundVars::iter)
    }
}

impl From<Map<String, Value>> for Vars {
    fn from(map: Map<String, Value>) -> Vars {
        Vars::from_map(map)
    }
}

/// What kind of JSON value `v` is, for messages: `a string`, `an array`, `null`.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The engine Tessera uses everywhere (jlens-core with the given limits).
pub fn engine(limits: Limits) -> Arc<dyn MappingEngine> {
    Arc::new(jlens::JlensEngine::new(limits))
}

/// The engine with [`Limits::default`]: what the gateway and `tessera map` use. Built once and
/// shared.
pub fn default_engine() -> Arc<dyn MappingEngine> {
    static DEFAULT: OnceLock<Arc<dyn MappingEngine>> = OnceLock::new();
    DEFAULT.get_or_init(|| engine(Limits::default())).clone()
}
