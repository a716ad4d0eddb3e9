//! The [`MappingEngine`] over `jlens-core`: the only file of Tessera that imports `jlens_core`.
//!
//! jlens-core evaluates a compiled expression against a borrowed `serde_json::Value`, converting
//! the parts of it the expression reaches, and grows the native stack on demand: deep recursion
//! fails with `D1011` at the depth limit instead of overflowing a 2 MiB worker stack.

use std::sync::Arc;
use std::time::Duration;

use jlens_core::{Bindings, Expression, Options};
use serde_json::{Map, Value};

use crate::mapping::{CompiledExpr, Expr, Limits, MappingEngine, MappingError, Vars};

/// Longest quoted value, in characters of its JSON form, kept in an error message. Messages
/// such as `T2009` quote the operands, which may come from the input document: past this the
/// value is cut so that a log line never holds a whole record.
const MAX_QUOTED_CHARS: usize = 64;

/// Longest error message kept, in characters (messages of `$eval` nest another message).
const MAX_MESSAGE_CHARS: usize = 512;

/// jlens-core with fixed [`Limits`].
pub(super) struct JlensEngine {
    /// Built once from the limits and shared by every expression the engine compiles.
    options: Arc<Options>,
}

impl JlensEngine {
    pub(super) fn new(limits: Limits) -> JlensEngine {
        JlensEngine {
            options: Arc::new(options(&limits)),
        }
    }
}

/// The jlens options for `limits`.
///
/// [`Limits`] has no fields for the strings and arrays built during an evaluation, so they are
/// derived from the result size: a string longer than `max_result_bytes`, or an array of more
/// than `max_result_bytes / 2` items (each item takes at least one character and a comma in
/// compact JSON), could never be returned whole, and in a mapping of one record it is the mark
/// of a runaway. jlens checks them as the values are built, long before the result is
/// serialized; its defaults (256 MiB, 16 Mi items) would let one evaluation take gigabytes.
fn options(limits: &Limits) -> Options {
    Options::new()
        .timeout(limits.timeout)
        .max_depth(limits.max_depth)
        .max_steps(limits.max_steps)
        .max_result_size(limits.max_result_bytes)
        .max_string_length(limits.max_result_bytes)
        .max_array_length((limits.max_result_bytes / 2).max(1))
}

impl MappingEngine for JlensEngine {
    fn compile(&self, source: &str) -> Result<Expr, MappingError> {
        let expression = Expression::compile(source).map_err(|err| mapping_error(&err))?;
        Ok(Expr::new(Arc::new(JlensExpr {
            expression,
            options: Arc::clone(&self.options),
        })))
    }
}

/// A compiled jlens expression with its engine's options.
struct JlensExpr {
    /// Shares its syntax tree between clones; immutable, so evaluations run concurrently.
    expression: Expression,
    options: Arc<Options>,
}

impl CompiledExpr for JlensExpr {
    fn source(&self) -> &str {
        self.expression.source()
    }

    fn evaluate(&self, input: Option<&Value>, vars: &Vars) -> Result<Option<Value>, MappingError> {
        self.run(input, vars, &self.options)
    }

    fn evaluate_within(
        &self,
        input: Option<&Value>,
        vars: &Vars,
        timeout: Duration,
    ) -> Result<Option<Value>, MappingError> {
        match self.options.timeout {
            // Options are a handful of words: built per evaluation only when they differ.
            Some(own) if own > timeout => {
                let options = Options::clone(&self.options).timeout(timeout);
                self.run(input, vars, &options)
            }
            _ => self.run(input, vars, &self.options),
        }
    }
}

impl JlensExpr {
    fn run(
        &self,
        input: Option<&Value>,
        vars: &Vars,
        options: &Options,
    ) -> Result<Option<Value>, MappingError> {
        // Empty bindings allocate nothing, so the common case without variables is free.
        let empty;
        let bindings = match vars.bound.as_deref() {
            Some(bound) => &bound.bindings,
            None => {
                empty = Bindings::new();
                &empty
            }
        };
        self.expression
            .evaluate_with(input, bindings, options)
            .map_err(|err| mapping_error(&err))
    }
}

/// Variables already in jlens' form, built once per [`Vars`].
#[derive(Debug)]
pub(super) struct BoundVars {
    bindings: Bindings,
}

impl BoundVars {
    /// Moves the values of `map` into bindings (no copy of the values).
    pub(super) fn new(map: Map<String, Value>) -> BoundVars {
        BoundVars {
            bindings: map.into_iter().collect(),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.bindings.get(name)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.bindings.iter()
    }
}

/// Converts a jlens error, truncating the document values its message quotes.
fn mapping_error(err: &jlens_core::Error) -> MappingError {
    let mut message = err.message();
    // Templates insert `value` and `value2` in their JSON form (`{{value}}`), so that text is
    // what to look for in the message.
    for key in ["value", "value2"] {
        if let Some(value) = err.detail(key) {
            let quoted = value.to_string();
            if quoted.chars().count() > MAX_QUOTED_CHARS {
                message = message.replace(&quoted, &truncate(&quoted, MAX_QUOTED_CHARS));
            }
        }
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = truncate(&message, MAX_MESSAGE_CHARS);
    }
    MappingError {
        code: err.code().to_owned(),
        message,
        position: err.position(),
    }
}

/// The first `max` characters of `text`, and an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}
