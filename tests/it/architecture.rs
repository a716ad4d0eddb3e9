//! The module arrows of ARCHITECTURE.md and the "providers are data" rule, checked on the
//! code itself so a violation fails CI instead of waiting for a review.
//!
//! Every file under `src/` is read as Rust tokens (comments, strings, chars and lifetimes
//! skipped, so a path in a comment or a literal is not an import); every path that names one of our modules
//! (`use crate::engine::X`, `use super::super::store`, `crate::graphql::Y` in an
//! expression or a type, nested `use crate::{engine::X, store}` trees) is resolved to the
//! top-level module it reaches, and checked against the arrows below. External crates are
//! checked the same way (the engine never names `async_graphql`, only the demo and sandbox
//! commands name `tessera_sandbox`). A violation names the file, the line and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo_path;

/// Modules anyone may use: small types with no arrows of their own worth drawing.
const LEAVES: &[&str] = &[
    "bounds",
    "error",
    "ids",
    "problem",
    "secret",
    "shape",
    "signing",
    "upstreams",
];

/// Who may import whom, for each top-level module under `src/` (leaves left out). A module
/// missing here may import nothing of ours but the leaves.
const ARROWS: &[(&str, &[&str])] = &[
    (
        "http",
        &[
            "webhooks",
            "jobs",
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
            "health",
            "webhooks",
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
            "jobs",
            "config",
            "credentials",
            "engine",
            "monitor",
            "overrides",
            "schema",
            "store",
        ],
    ),
    (
        "health",
        &["access", "services", "engine", "config", "store", "jobs"],
    ),
    (
        "webhooks",
        &[
            "access",
            "services",
            "engine",
            "config",
            "mapping",
            "store",
            "credentials",
            "jobs",
        ],
    ),
    ("monitor", &["engine", "store", "config"]),
    ("overrides", &["config", "mapping", "schema", "store"]),
    ("engine", &["config", "mapping", "credentials", "store"]),
    ("credentials", &["config", "mapping", "store"]),
    ("config", &["mapping", "schema"]),
    ("schema", &[]),
    ("jobs", &[]),
    ("mapping", &[]),
    ("store", &[]),
    // The composition root and the commands wire everything together.
    (
        "app",
        &[
            "health",
            "webhooks",
            "jobs",
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
            "health",
            "webhooks",
            "jobs",
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

/// The only names `http` takes from `graphql`: the schema it serves, the planned path in
/// front of it, and what a request leaves behind for the HTTP answer (rate-limit figures,
/// warnings, error paths).
const HTTP_FROM_GRAPHQL: &[&str] = &[
    "RequestState",
    "PATH_EXTENSION",
    "build_schema_with",
    "Planner",
    "Lookup",
];

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
    (
        "health",
        &["async_graphql", "axum"],
        "health judges the evidence; the entry points render it",
    ),
    (
        "shape",
        &["tokio", "sea_orm", "reqwest"],
        "a response's shape is computed without I/O",
    ),
];

/// The product files that may run the vendor imitations.
const SANDBOX_USERS: &[&str] = &[
    "src/cli/demo.rs",
    "src/cli/sandbox.rs",
    "src/cli/simulate.rs",
    "src/main.rs",
];

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

    /// Every reach in a file's tokens: `use` trees, paths anywhere else (expressions,
    /// types, macro arguments), with inline `mod x { }` blocks entered and left.
    fn read(&mut self, toks: &[Token]) {
        let mut depth = 0usize;
        // The brace depth at which each inline module opened.
        let mut mods: Vec<usize> = Vec::new();
        let mut pending_mod: Option<String> = None;
        let mut i = 0;
        while i < toks.len() {
            match &toks[i].tok {
                Tok::Ident(w) if w == "mod" => {
                    if let (Some(Tok::Ident(name)), Some(Tok::Open('{'))) = (
                        toks.get(i + 1).map(|t| &t.tok),
                        toks.get(i + 2).map(|t| &t.tok),
                    ) {
                        pending_mod = Some(name.clone());
                    }
                    i += 1;
                }
                Tok::Open('{') => {
                    depth += 1;
                    if let Some(name) = pending_mod.take() {
                        self.here.push(name);
                        mods.push(depth);
                    }
                    i += 1;
                }
                Tok::Close('}') => {
                    if mods.last() == Some(&depth) {
                        mods.pop();
                        self.here.pop();
                    }
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                Tok::Ident(w) if w == "use" => {
                    let colon = toks.get(i + 1).is_some_and(|t| t.tok == Tok::PathSep);
                    let start = if colon { i + 2 } else { i + 1 };
                    i = self.use_tree(toks, start, &mut Vec::new(), colon);
                }
                Tok::Ident(_) | Tok::PathSep => i = self.path(toks, i),
                _ => i += 1,
            }
        }
    }

    /// One use tree from `i` (`a::b::{c, d::*, e as f}`); returns where it ends.
    fn use_tree(
        &mut self,
        toks: &[Token],
        mut i: usize,
        prefix: &mut Vec<String>,
        colon: bool,
    ) -> usize {
        let pushed = prefix.len();
        loop {
            match toks.get(i).map(|t| &t.tok) {
                Some(Tok::Ident(name)) => {
                    let line = toks[i].line;
                    prefix.push(name.clone());
                    i += 1;
                    if toks.get(i).is_some_and(|t| t.tok == Tok::PathSep) {
                        i += 1;
                        continue;
                    }
                    self.resolve(&prefix.clone(), line, colon);
                    if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Ident(a)) if a == "as") {
                        i += 2;
                    }
                    break;
                }
                Some(Tok::Star) => {
                    self.resolve(&prefix.clone(), toks[i].line, colon);
                    i += 1;
                    break;
                }
                Some(Tok::Open('{')) => {
                    i += 1;
                    loop {
                        i = self.use_tree(toks, i, prefix, colon);
                        match toks.get(i).map(|t| &t.tok) {
                            Some(Tok::Comma) => i += 1,
                            Some(Tok::Close('}')) => {
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                        if toks.get(i).is_some_and(|t| t.tok == Tok::Close('}')) {
                            i += 1;
                            break;
                        }
                    }
                    break;
                }
                _ => break,
            }
        }
        prefix.truncate(pushed);
        i
    }

    /// A path outside `use` (`crate::x::y`, `::krate::z`, `super::super::w`).
    fn path(&mut self, toks: &[Token], mut i: usize) -> usize {
        let colon = toks[i].tok == Tok::PathSep;
        if colon {
            i += 1;
        }
        let mut segments = Vec::new();
        let mut line = toks.get(i).map(|t| t.line).unwrap_or(0);
        while let Some(Tok::Ident(name)) = toks.get(i).map(|t| &t.tok) {
            if segments.is_empty() {
                line = toks[i].line;
            }
            segments.push(name.clone());
            i += 1;
            if toks.get(i).is_some_and(|t| t.tok == Tok::PathSep) {
                i += 1;
            } else {
                break;
            }
        }
        // A single segment is a local name, never a module reach.
        if segments.len() > 1 {
            self.resolve(&segments, line, colon);
        }
        i.max(1)
    }
}

/// The tokens the rules read; everything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open(char),
    Close(char),
    Comma,
    Star,
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source as the tokens the rules need, each with its line. Comments, string literals
/// (escaped, raw, byte), char literals and lifetimes are skipped, so a path in a doc comment
/// or a string is not an import.
fn tokens(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    // Skips a quoted literal starting at the quote `i`; returns the index after it.
    let skip_string = |mut k: usize, line: &mut usize| {
        k += 1;
        while k < c.len() && c[k] != '"' {
            if c[k] == '\\' {
                k += 1;
            }
            if c.get(k) == Some(&'\n') {
                *line += 1;
            }
            k += 1;
        }
        k + 1
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut nest = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    nest += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(i, &mut line);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label: skip its name.
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            match (word.as_str(), at(i)) {
                // Raw strings r"..", r#".."#, br"..": skip to the matching quote and hashes.
                ("r" | "br", '"' | '#') if at(i) == '"' || at(i + 1) == '"' || at(i + 1) == '#' => {
                    let mut hashes = 0;
                    while at(i) == '#' {
                        hashes += 1;
                        i += 1;
                    }
                    if at(i) != '"' {
                        // `r#ident`: a raw identifier.
                        let s = i;
                        while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                            i += 1;
                        }
                        out.push(Token {
                            tok: Tok::Ident(c[s..i].iter().collect()),
                            line,
                        });
                        continue;
                    }
                    i += 1;
                    loop {
                        if i >= c.len() {
                            break;
                        }
                        if c[i] == '\n' {
                            line += 1;
                        }
                        if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                            i += 1 + hashes;
                            break;
                        }
                        i += 1;
                    }
                }
                ("b", '"') => i = skip_string(i, &mut line),
                ("b", '\'') => {
                    i += 1;
                    if at(i + 1) == '\\' {
                        i += 1;
                    }
                    while i + 1 < c.len() && c[i + 1] != '\'' {
                        i += 1;
                    }
                    i += 2;
                }
                _ => out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                }),
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other,
                line,
            });
        } else {
            let tok = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' | '(' | '[' => Tok::Open(ch),
                '}' | ')' | ']' => Tok::Close(ch),
                ',' => Tok::Comma,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            out.push(Token { tok, line });
            i += 1;
        }
    }
    out
}

/// Crates this package depends on that the rules name (std and friends are never checked).
fn is_external_crate(name: &str) -> bool {
    FOREIGN
        .iter()
        .flat_map(|(_, crates, _)| crates.iter())
        .any(|c| *c == name)
        || name == "tessera_sandbox"
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
        let mut reader = Reader {
            here: module_path(&src, &file),
            ours: &ours,
            found: Vec::new(),
        };
        reader.read(&tokens(&text));
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
        // Comments, strings, raw strings and chars are not imports.
        (
            "src/store/x.rs",
            "// use crate::engine::X;\n/* crate::graphql::Y */ const S: &str = \"crate::engine::Y\"; const R: &str = r#\"crate::http::Z\"#; const C: char = '\"';",
            "",
        ),
        (
            "src/store/x.rs",
            "fn f<'a>(x: &'a str) -> &'a str { x } use crate::engine::Late;",
            "`store` may use only nothing of ours",
        ),
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
        let mut reader = Reader {
            here: module_path(&src, &src.join(file.strip_prefix("src/").unwrap())),
            ours: &ours,
            found: Vec::new(),
        };
        reader.read(&tokens(code));
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
        "attio",
        "copper",
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
