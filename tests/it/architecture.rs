//! The module arrows of ARCHITECTURE.md and the "providers are data" rule, checked on the
//! source text so a violation fails CI instead of waiting for a review.

use std::path::{Path, PathBuf};

use crate::common::repo_path;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of `module`'s files that contain any of `forbidden`.
fn offending(module: &str, forbidden: &[&str]) -> Vec<String> {
    let dir = repo_path("src").join(module);
    let mut hits = Vec::new();
    for file in rust_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if forbidden.iter().any(|f| code.contains(f)) {
                hits.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn module_arrows_go_one_way() {
    let rules: &[(&str, &[&str])] = &[
        (
            "engine",
            &[
                "async_graphql",
                "crate::graphql",
                "crate::http",
                "crate::store",
                "crate::sandbox",
                "axum",
            ],
        ),
        (
            "mapping",
            &[
                "crate::config",
                "crate::engine",
                "crate::graphql",
                "crate::http",
                "crate::store",
                "reqwest",
                "tokio::net",
            ],
        ),
        (
            "config",
            &[
                "crate::engine",
                "crate::graphql",
                "crate::http",
                "crate::store",
                "reqwest::Client",
                "tokio::net",
            ],
        ),
        (
            "monitor",
            &[
                "crate::graphql",
                "crate::http",
                "crate::overrides",
                "async_graphql",
            ],
        ),
        (
            "overrides",
            &[
                "crate::engine",
                "crate::graphql",
                "crate::http",
                "crate::credentials",
                "async_graphql",
                "reqwest",
            ],
        ),
        (
            "schema",
            &[
                "crate::config",
                "crate::engine",
                "crate::graphql",
                "crate::http",
                "crate::store",
            ],
        ),
        (
            "store",
            &[
                "crate::engine",
                "crate::graphql",
                "crate::http",
                "crate::config",
                "async_graphql",
                "reqwest",
            ],
        ),
        (
            "sandbox",
            &[
                "crate::engine",
                "crate::config",
                "crate::mapping",
                "crate::graphql",
                "crate::http",
                "crate::store",
                "crate::credentials",
            ],
        ),
        (
            "graphql",
            &["reqwest::Request", "reqwest::Client", "crate::http"],
        ),
        (
            "credentials",
            &["crate::graphql", "crate::http", "crate::engine"],
        ),
    ];
    let mut all = Vec::new();
    for (module, forbidden) in rules {
        all.extend(offending(module, forbidden));
    }
    assert!(all.is_empty(), "forbidden imports:\n{}", all.join("\n"));
}

#[test]
fn no_vendor_name_in_engine_code() {
    let vendors = [
        "hubspot",
        "salesforce",
        "pipedrive",
        "zoho",
        "microsoft",
        "google",
    ];
    let mut hits = Vec::new();
    for file in rust_files(&repo_path("src")) {
        if file.starts_with(repo_path("src/sandbox")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        for v in vendors {
            if text.contains(v) {
                hits.push(format!("{} names {v}", file.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "vendor names outside src/sandbox:\n{}",
        hits.join("\n")
    );
}
