//! `tessera map`: evaluates a mapping expression on a JSON document, to try a provider's
//! mappings from the command line with exactly the engine, conversions and limits the gateway
//! uses ([`crate::mapping::default_engine`]).
//!
//! The pure part, [`evaluate_cli`], takes texts and returns the line to print; [`run`] adds the
//! I/O: reading the file or stdin, printing, and the exit code.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::mapping::{MappingError, Vars, default_engine};

/// Arguments of `tessera map`.
#[derive(clap::Args, Debug)]
pub struct MapArgs {
    /// The JSONata expression to evaluate (it may start with `-`: `--expr '-5 ?: 99'`).
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    pub expr: String,
    /// JSON document to evaluate the expression on [default: standard input; empty input means
    /// no input document]
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// JSON object whose keys are bound as $variables, e.g. '{"portalId": 7}'
    #[arg(long, value_name = "JSON")]
    pub bindings: Option<String>,
}

/// Why `tessera map` failed. Each message names what was wrong: the file, the argument, or the
/// expression's error code and position.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input file could not be read.
    #[error("cannot read input file {}: {source}", path.display())]
    ReadInput {
        /// The file given to `--input`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    ReadStdin(std::io::Error),
    /// The result could not be written to standard output.
    #[error("cannot write the result to standard output: {0}")]
    WriteStdout(std::io::Error),
    /// The input document is not JSON.
    #[error("invalid JSON in {origin} at line {line}, column {column}: {message}")]
    InvalidInput {
        /// Where the document came from: the file, or standard input.
        origin: String,
        /// serde_json's line, from 1.
        line: usize,
        /// serde_json's column, from 1 (0 at the very start of the text).
        column: usize,
        /// What serde_json expected.
        message: String,
    },
    /// `--bindings` is not JSON.
    #[error("invalid JSON in --bindings at line {line}, column {column}: {message}")]
    InvalidBindings {
        /// serde_json's line, from 1.
        line: usize,
        /// serde_json's column, from 1.
        column: usize,
        /// What serde_json expected.
        message: String,
    },
    /// `--bindings` is JSON but not an object.
    #[error("--bindings must be a JSON object whose keys become $variables, got {found}")]
    BindingsNotObject {
        /// The JSON type given instead (`an array`, `a string`...).
        found: &'static str,
    },
    /// The expression failed to compile or evaluate: its JSONata code, position and message.
    #[error("{0}")]
    Mapping(#[from] MappingError),
}

impl CliError {
    /// The JSONata error code, when the expression itself failed.
    pub fn code(&self) -> Option<&str> {
        match self {
            CliError::Mapping(err) => Some(&err.code),
            _ => None,
        }
    }
}

/// Runs `tessera map`: prints the result as one line of compact JSON, or nothing when it is
/// undefined, and exits 0; on any failure prints the reason to stderr and exits 1.
pub fn run(args: &MapArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tessera map: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &MapArgs) -> Result<(), CliError> {
    let (origin, text) = match &args.input {
        Some(path) => (path.display().to_string(), Some(read_file(path)?)),
        None => ("standard input".to_owned(), read_stdin()?),
    };
    let result = evaluate_from(
        &args.expr,
        text.as_deref(),
        &origin,
        args.bindings.as_deref(),
    )?;
    if let Some(line) = result {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`tessera map ... | head -c0`) is not worth a panic, but is a failure.
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(CliError::WriteStdout)?;
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::ReadInput {
        path: path.to_owned(),
        source,
    })
}

/// Standard input, or `None` when it is a terminal: nobody is piping a document in, and
/// waiting for one would look like a hang.
fn read_stdin() -> Result<Option<String>, CliError> {
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(CliError::ReadStdin)?;
    // An empty pipe (`< /dev/null`) means "no input document", i.e. undefined.
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Evaluates `expr` on the JSON document `input_text` (`None`: no input, i.e. undefined) with
/// the `$variables` of the JSON object `bindings`, exactly as `tessera map` does. Returns the
/// result as one line of compact JSON, or `None` when it is undefined.
pub fn evaluate_cli(
    expr: &str,
    input_text: Option<&str>,
    bindings: Option<&str>,
) -> Result<Option<String>, CliError> {
    evaluate_from(expr, input_text, "the input", bindings)
}

/// [`evaluate_cli`], naming the input's `origin` in errors.
fn evaluate_from(
    expr: &str,
    input_text: Option<&str>,
    origin: &str,
    bindings: Option<&str>,
) -> Result<Option<String>, CliError> {
    // Arguments first, the expression next, the input last: the cheapest mistakes to spot are
    // reported without waiting for a large document to parse.
    let vars = parse_bindings(bindings)?;
    let compiled = default_engine().compile(expr)?;
    let input = input_text
        .map(|text| {
            serde_json::from_str::<Value>(text).map_err(|err| {
                let (line, column, message) = location(&err);
                CliError::InvalidInput {
                    origin: origin.to_owned(),
                    line,
                    column,
                    message,
                }
            })
        })
        .transpose()?;
    let result = compiled.evaluate(input.as_ref(), &vars)?;
    // A serde_json::Value always serializes; `to_string` fails only for non-string keys.
    Ok(result.map(|value| value.to_string()))
}

fn parse_bindings(bindings: Option<&str>) -> Result<Vars, CliError> {
    let Some(text) = bindings else {
        return Ok(Vars::none());
    };
    let value: Value = serde_json::from_str(text).map_err(|err| {
        let (line, column, message) = location(&err);
        CliError::InvalidBindings {
            line,
            column,
            message,
        }
    })?;
    match value {
        Value::Object(map) => Ok(Vars::from_map(map)),
        other => Err(CliError::BindingsNotObject {
            found: crate::mapping::json_kind(&other),
        }),
    }
}

/// serde_json's line, column, and message without the " at line L column C" it appends.
fn location(err: &serde_json::Error) -> (usize, usize, String) {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    (line, column, message)
}
