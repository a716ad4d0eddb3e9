//! The module arrows of ARCHITECTURE.md and the "providers are data" rule, checked on the
//! code itself so a violation fails CI instead of waiting for a review.
//!
//! Every file under `src/` is parsed with `syn`; every path that names one of our modules
//! (`use crate::engine::X`, `use super::super::store`, `crate::graphql::Y` in an
//! expression or a type, nested `use crate::{engine::X, store}` trees) is resolved to the
//! top-level module it reaches, and checked against the arrows below. External crates are
//! checked the same way (the engine never names `async_graphql`, only the demo and sandbox
//! commands name `tessera_sandbox`). A violation names the file, the line and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::common::repo_path;

/// Modules anyone may use: small types with no arrows of their own worth drawing.
const LEAVES: &[&str] = &["error", "problem", "secret"];

/// Who may import whom, for each top-level module under `src/` (leaves left out). A module
/// missing here may import nothing of ours but the leaves.
const ARROWS: &[(&str, &[&str])] = &[
    (
        "http",
        &[
            "access",
            "graphql",
            "services",
            "engine",
            "monitor",
            "credentials",
            "store",
        ],
    ),
    (
        "graphql",
        &[
            "engine",
            "access",
            "overrides",
            "store",
            "services",
            "schema",
            "config",
            "mapping",
            "monitor",
            "credentials",
        ],
    ),
    (
        "access",
        &[
            "services",
            "engine",
            "store",
            "credentials",
            "overrides",
            "config",
        ],
    ),
    (
        "services",
        &[
            "config",
            "credentials",
            "engine",
            "monitor",
            "overrides",
            "schema",
            "store",
        ],
    ),
    ("monitor", &["engine", "store", "config"]),
    ("overrides", &["config", "mapping", "schema", "store"]),
    ("engine", &["config", "mapping", "credentials", "store"]),
    ("credentials", &["config", "mapping", "store"]),
    ("config", &["mapping", "schema"]),
    ("schema", &[]),
    ("mapping", &[]),
    ("store", &[]),
    // The composition root and the commands wire everything together.
    (
        "app",
        &[
            "access",
            "config",
            "credentials",
            "engine",
            "graphql",
            "http",
            "mapping",
            "monitor",
            "overrides",
            "schema",
            "services",
            "store",
        ],
    ),
    (
        "cli",
        &[
            "access",
            "app",
            "config",
            "credentials",
            "engine",
            "graphql",
            "http",
            "mapping",
            "monitor",
            "overrides",
            "schema",
            "services",
            "store",
        ],
    ),
];

/// The only names `http` takes from `graphql`: the schema it serves and what a request
/// leaves behind for the HTTP answer (rate-limit figures, warnings, error paths).
const HTTP_FROM_GRAPHQL: &[&str] = &["RequestState", "PATH_EXTENSION", "build_schema_with"];

/// External crates a module must not name, for the reason given.
const FOREIGN: &[(&str, &[&str], &str)] = &[
    (
        "engine",
        &["async_graphql", "axum"],
        "the engine knows neither GraphQL nor the HTTP server",
    ),
    (
        "mapping",
        &["reqwest", "tokio", "sea_orm"],
        "mapping does no I/O",
    ),
    (
        "config",
        &["tokio", "sea_orm", "async_graphql"],
        "provider files are loaded without I/O beyond reading them",
    ),
    (
        "store",
        &["async_graphql", "reqwest", "axum"],
        "the store knows nothing of callers or vendors",
    ),
    (
        "access",
        &["async_graphql", "axum"],
        "access rules are shared by every entry point",
    ),
    (
        "overrides",
        &["async_graphql", "reqwest"],
        "overrides are data merged onto provider files",
    ),
    (
        "credentials",
        &["async_graphql", "axum"],
        "tokens are refreshed below every entry point",
    ),
    ("graphql", &["axum"], "resolvers never speak HTTP"),
];

/// The product files that may run the vendor imitations.
const SANDBOX_USERS: &[&str] = &["src/cli/demo.rs", "src/cli/sandbox.rs", "src/main.rs"];

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
    out.sort();
    out
}

/// `src/engine/pagination/cursor.rs` -> `["engine", "pagination", "cursor"]`;
/// a `mod.rs` is its folder's module; `lib.rs` and `main.rs` are the crate root.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// One path that leaves the file: which of our top-level modules it reaches (or which
/// external crate it names), the name it takes there, and its line.
#[derive(Debug)]
struct Reach {
    target: Target,
    /// The first segment after the module (`RequestState` in `crate::graphql::RequestState`).
    name: Option<String>,
    line: usize,
}

#[derive(Debug, PartialEq)]
enum Target {
    Ours(String),
    Foreign(String),
}

struct Reader<'a> {
    /// The module the code being read is in (inline `mod x { }` included).
    here: Vec<String>,
    /// The crate's top-level modules, to tell `engine::X` after `use crate::*` apart from a crate.
    ours: &'a BTreeSet<String>,
    found: Vec<Reach>,
}

impl Reader<'_> {
    /// Resolves a path's leading segments to an absolute module path, when it starts at
    /// `crate`, `super` or `self`; an external crate when it starts with a crate name.
    fn resolve(&mut self, segments: &[String], line: usize, leading_colon: bool) {
        let Some(first) = segments.first() else {
            return;
        };
        let mut at: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => self.here.clone(),
            _ => {
                if (leading_colon || !self.ours.contains(first)) && is_external_crate(first) {
                    self.found.push(Reach {
                        target: Target::Foreign(first.clone()),
                        name: segments.get(1).cloned(),
                        line,
                    });
                }
                return;
            }
        };
        let mut rest = &segments[1..];
        if first == "super" {
            at.pop();
        }
        while rest.first().is_some_and(|s| s == "super") {
            at.pop();
            rest = &rest[1..];
        }
        at.extend(rest.iter().cloned());
        if let Some(top) = at.first()
            && self.ours.contains(top)
        {
            self.found.push(Reach {
                target: Target::Ours(top.clone()),
                name: at.get(1).cloned(),
                line,
            });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, colon: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, colon);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.resolve(&prefix.clone(), n.ident.span().start().line, colon);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.resolve(&prefix.clone(), r.ident.span().start().line, colon);
                prefix.pop();
            }
            syn::UseTree::Glob(g) => {
                let line = g.star_token.span.start().line;
                self.resolve(&prefix.clone(), line, colon);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, colon);
                }
            }
        }
    }
}

/// Crates this package depends on that the rules name (std and friends are never checked).
fn is_external_crate(name: &str) -> bool {
    FOREIGN
        .iter()
        .flat_map(|(_, crates, _)| crates.iter())
        .any(|c| *c == name)
        || name == "tessera_sandbox"
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree, item.leading_colon.is_some());
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        // A single segment is a local name, never a module reach.
        if segments.len() > 1 {
            let line = path
                .segments
                .first()
                .map(|s| s.ident.span().start().line)
                .unwrap_or(0);
            self.resolve(&segments, line, path.leading_colon.is_some());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.here.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.here.pop();
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // Paths inside macro calls (`format!`, `json!`, `tracing::warn!`) are tokens, not
        // syntax; read the ones that look like `crate::x::y` or `name::y`.
        let tokens: Vec<proc_macro2::TokenTree> = flatten(mac.tokens.clone());
        let mut i = 0;
        while i < tokens.len() {
            if let proc_macro2::TokenTree::Ident(first) = &tokens[i] {
                let mut segments = vec![first.to_string()];
                let mut j = i + 1;
                let colon = |t: Option<&proc_macro2::TokenTree>| matches!(t, Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':');
                while colon(tokens.get(j)) && colon(tokens.get(j + 1)) {
                    let Some(proc_macro2::TokenTree::Ident(next)) = tokens.get(j + 2) else {
                        break;
                    };
                    segments.push(next.to_string());
                    j += 3;
                }
                if segments.len() > 1 {
                    self.resolve(&segments, first.span().start().line, false);
                }
                i = j;
            } else {
                i += 1;
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

fn flatten(stream: proc_macro2::TokenStream) -> Vec<proc_macro2::TokenTree> {
    let mut out = Vec::new();
    for tt in stream {
        match tt {
            proc_macro2::TokenTree::Group(g) => out.extend(flatten(g.stream())),
            other => out.push(other),
        }
    }
    out
}

/// Every reach of every file of the product crate, by file (relative to the repository).
fn reaches() -> BTreeMap<String, Vec<Reach>> {
    let src = repo_path("src");
    let ours: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.trim_end_matches(".rs").to_string();
            (!matches!(name.as_str(), "lib" | "main")).then_some(name)
        })
        .collect();
    let mut all = BTreeMap::new();
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).unwrap();
        let ast = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{}: cannot parse: {e}", file.display()));
        let mut reader = Reader {
            here: module_path(&src, &file),
            ours: &ours,
            found: Vec::new(),
        };
        reader.visit_file(&ast);
        let rel = file
            .strip_prefix(repo_path(""))
            .unwrap()
            .display()
            .to_string();
        all.insert(rel, reader.found);
    }
    all
}

/// The rule a reach breaks, if any.
fn broken_rule(file: &str, reach: &Reach) -> Option<String> {
    let module = file
        .strip_prefix("src/")
        .and_then(|r| r.split('/').next())
        .map(|m| m.trim_end_matches(".rs"))
        .unwrap_or_default();
    match &reach.target {
        Target::Foreign(krate) if krate == "tessera_sandbox" => (!SANDBOX_USERS.contains(&file))
            .then(|| {
                format!(
                    "only {} may name tessera_sandbox (the server path never links it)",
                    SANDBOX_USERS.join(", ")
                )
            }),
        Target::Foreign(krate) => FOREIGN
            .iter()
            .find(|(m, crates, _)| *m == module && crates.contains(&krate.as_str()))
            .map(|(m, _, why)| format!("`{m}` must not use `{krate}`: {why}")),
        Target::Ours(target) => {
            if target == module || LEAVES.contains(&target.as_str()) || module.is_empty() {
                return None;
            }
            if matches!(module, "lib" | "main") {
                return None;
            }
            let allowed = ARROWS
                .iter()
                .find(|(m, _)| *m == module)
                .map(|(_, a)| *a)
                .unwrap_or(&[]);
            if !allowed.contains(&target.as_str()) {
                return Some(format!(
                    "`{module}` may use only {} (and {}); not `{target}`",
                    if allowed.is_empty() {
                        "nothing of ours".to_string()
                    } else {
                        allowed.join(", ")
                    },
                    LEAVES.join(", ")
                ));
            }
            if module == "http"
                && target == "graphql"
                && !reach
                    .name
                    .as_deref()
                    .is_some_and(|n| HTTP_FROM_GRAPHQL.contains(&n))
            {
                return Some(format!(
                    "`http` takes from `graphql` only {} (callers, accounts and services come from `access` and `services`)",
                    HTTP_FROM_GRAPHQL.join(", ")
                ));
            }
            None
        }
    }
}

#[test]
fn module_arrows_go_one_way() {
    let mut broken = Vec::new();
    for (file, found) in reaches() {
        for reach in &found {
            if let Some(rule) = broken_rule(&file, reach) {
                broken.push(format!("{file}:{}: {rule}", reach.line));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the arrows:\n{}",
        broken.join("\n")
    );
}

/// The rules must be able to fail: each wrong import below is caught with its line.
#[test]
fn the_arrow_rules_catch_what_a_substring_match_missed() {
    let cases: &[(&str, &str, &str)] = &[
        // A nested tree: the old substring check looked for `crate::engine`.
        (
            "src/store/x.rs",
            "use crate::{engine::Engine, error::ErrorCode};",
            "`store` may use only nothing of ours",
        ),
        (
            "src/engine/pagination/x.rs",
            "fn f() { let _ = super::super::super::graphql::Thing; }",
            "not `graphql`",
        ),
        (
            "src/http/x.rs",
            "use crate::graphql::context::Services;",
            "`http` takes from `graphql` only",
        ),
        ("src/http/x.rs", "use crate::graphql::RequestState;", ""),
        (
            "src/app.rs",
            "use tessera_sandbox::Sandbox;",
            "may name tessera_sandbox",
        ),
        ("src/cli/demo.rs", "use tessera_sandbox::Sandbox;", ""),
        (
            "src/engine/x.rs",
            "fn f() -> ::async_graphql::Value { todo!() }",
            "`engine` must not use `async_graphql`",
        ),
        (
            "src/mapping/x.rs",
            "fn f() { tracing::info!(\"{}\", crate::store::X); }",
            "not `store`",
        ),
        (
            "src/graphql/x.rs",
            "mod inner { use super::super::super::http::AppState; }",
            "not `http`",
        ),
    ];
    let src = repo_path("src");
    let ours: BTreeSet<String> = [
        "access",
        "app",
        "cli",
        "config",
        "credentials",
        "engine",
        "error",
        "graphql",
        "http",
        "mapping",
        "monitor",
        "overrides",
        "schema",
        "services",
        "store",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (file, code, expected) in cases {
        let ast = syn::parse_file(code).unwrap();
        let mut reader = Reader {
            here: module_path(&src, &src.join(file.strip_prefix("src/").unwrap())),
            ours: &ours,
            found: Vec::new(),
        };
        reader.visit_file(&ast);
        let rules: Vec<String> = reader
            .found
            .iter()
            .filter_map(|r| broken_rule(file, r).map(|rule| format!("{}: {rule}", r.line)))
            .collect();
        if expected.is_empty() {
            assert!(
                rules.is_empty(),
                "{file}: `{code}` is allowed, got {rules:?}"
            );
        } else {
            assert!(
                rules
                    .iter()
                    .any(|r| r.starts_with("1: ") && r.contains(expected)),
                "{file}: `{code}` should break `{expected}`, got {rules:?}"
            );
        }
    }
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
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        for v in vendors {
            if text.contains(v) {
                hits.push(format!("{} names {v}", file.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "vendor names in the product crate (they belong in providers/ or sandbox/):\n{}",
        hits.join("\n")
    );
}

/// The product's server path builds without the vendor imitations: `cargo tree` of the
/// package with no default features has no `tessera-sandbox` among its normal dependencies.
#[test]
fn a_production_build_does_not_link_the_sandbox() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "tessera",
            "--no-default-features",
            "--offline",
            "--prefix",
            "none",
        ])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("sea-orm"),
        "the tree lists dependencies:\n{text}"
    );
    assert!(!text.contains("tessera-sandbox"), "{text}");
}
