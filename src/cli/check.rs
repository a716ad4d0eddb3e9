//! `tessera check`: validates the SDL and every provider file, and evaluates each response
//! mapping on the provider's sample records (`providers/samples/`). One line per problem:
//! `file: /pointer: message`.

use std::path::PathBuf;

use crate::app::{StartError, load_configuration};
use crate::mapping::Vars;
use serde_json::Value;

use crate::problem::{Problem, pointer_segment};
use crate::schema::misfits;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    #[arg(long, default_value = "providers")]
    pub providers: PathBuf,
    #[arg(long, default_value = "schema")]
    pub schema: PathBuf,
}

/// Every problem found; empty means the configuration is good.
pub fn problems(args: &CheckArgs) -> Vec<Problem> {
    let (model, providers) = match load_configuration(&args.schema, &args.providers) {
        Ok(loaded) => loaded,
        Err(StartError::Schema(p) | StartError::Providers(p)) => return p.0,
        Err(other) => return vec![Problem::new(&args.providers, "", other.to_string())],
    };
    let mut found = Vec::new();
    for provider in providers.iter() {
        for (name, resource) in &provider.resources {
            let Some(samples) = providers.samples(&provider.name, name) else {
                continue;
            };
            let Some(def) = model.resource(name) else {
                continue;
            };
            let at = |field: &str| {
                format!(
                    "/resources/{}/fields/{}",
                    pointer_segment(name),
                    pointer_segment(field)
                )
            };
            for (i, sample) in samples.iter().enumerate() {
                let record = format!(
                    "sample record {i} ({}/{}/{name}.json)",
                    crate::config::SAMPLES_DIR,
                    provider.name
                );
                let mapped = match resource
                    .mapping
                    .composed
                    .evaluate(Some(sample), &Vars::none())
                {
                    Ok(Some(Value::Object(map))) => map,
                    Ok(_) => {
                        found.push(Problem::new(
                            &provider.file,
                            format!("/resources/{}/fields", pointer_segment(name)),
                            format!("{record} maps to no object"),
                        ));
                        continue;
                    }
                    Err(e) => {
                        found.push(Problem::new(
                            &provider.file,
                            format!("/resources/{}/fields", pointer_segment(name)),
                            format!("mapping fails on {record}: {e}"),
                        ));
                        continue;
                    }
                };
                for m in misfits(def, &mapped, &model) {
                    found.push(Problem::new(
                        &provider.file,
                        at(&m.key),
                        format!("on {record} the value does not fit `{}`: {}", m.ty, m.why),
                    ));
                }
            }
        }
    }
    found
}

pub fn run(args: &CheckArgs) -> std::process::ExitCode {
    let found = problems(args);
    if found.is_empty() {
        println!("ok: schema and providers are valid");
        return std::process::ExitCode::SUCCESS;
    }
    for p in &found {
        println!("{p}");
    }
    std::process::ExitCode::FAILURE
}
