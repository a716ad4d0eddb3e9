//! Provider files (`tessera::config::load_file_text`): the JSON a provider author, or an
//! override merged into it, hands the loader. The input is the file's text.
//!
//! Checks, besides "no panic" (every JSONata expression in the file is compiled, every
//! template parsed, every URL and host checked):
//! - a refused file names at least one problem;
//! - a file that loads loads again from its own document re-serialized (what overrides
//!   merge into), so loading depends on the JSON, not on how it was written.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tessera::mapping::MappingEngine;
use tessera::schema::UnifiedModel;

struct Fixture {
    model: UnifiedModel,
    engine: Arc<dyn MappingEngine>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
        Fixture {
            model: tessera::schema::load_dir(&dir)
                .unwrap_or_else(|e| panic!("the unified model does not load: {e:?}")),
            engine: tessera::mapping::default_engine(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    // The loader wants the file named after the provider: name it so, when it has a name,
    // so a valid document can get past that check.
    let name = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .unwrap_or_else(|| "fuzz".to_string());
    let file = PathBuf::from(format!("{name}.json"));
    match tessera::config::load_file_text(&file, text, &f.model, f.engine.as_ref()) {
        Err(problems) => assert!(!problems.is_empty(), "refused without a problem"),
        Ok(provider) => {
            let again = serde_json::to_string(&*provider.source).unwrap_or_default();
            if let Err(problems) =
                tessera::config::load_file_text(&file, &again, &f.model, f.engine.as_ref())
            {
                panic!("loads as written but not re-serialized: {problems:?}\n{again}");
            }
        }
    }
});
