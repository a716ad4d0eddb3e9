//! Raw provider JSON -> [`ProviderModel`], collecting every problem with its JSON pointer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use reqwest::header::HeaderName;
use url::Url;

use super::model::*;
use super::raw::*;
use crate::mapping::{Expr, MappingEngine};
use crate::problem::{Problem, Problems, pointer_segment};
use crate::schema::{ResourceDef, UnifiedModel};

/// Loads every `*.json` provider file of `dir` (except `*.schema.json`).
pub fn load_dir(
    dir: &Path,
    model: &UnifiedModel,
    engine: &dyn MappingEngine,
) -> Result<Providers, Problems> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.ends_with(".json") && !name.ends_with(".schema.json")
            })
            .collect(),
        Err(err) => {
            return Err(Problems(vec![Problem::new(
                dir,
                "",
                format!("cannot read the providers directory: {err}"),
            )]));
        }
    };
    files.sort();
    let mut problems = Vec::new();
    let mut providers = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                problems.push(Problem::new(&file, "", format!("cannot read: {err}")));
                continue;
            }
        };
        match load_file_text(&file, &text, model, engine) {
            Ok(p) => providers.push(p),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() {
        Ok(Providers::new(providers))
    } else {
        Err(Problems(problems))
    }
}

/// Parses and checks one provider file's text.
pub fn load_file_text(
    file: &Path,
    text: &str,
    model: &UnifiedModel,
    engine: &dyn MappingEngine,
) -> Result<ProviderModel, Vec<Problem>> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: RawProvider = match serde_path_to_error::deserialize(de) {
        Ok(raw) => raw,
        Err(err) => {
            let pointer = path_to_pointer(err.path());
            let inner = err.into_inner();
            let message = if inner.is_syntax() || inner.is_eof() {
                format!("invalid JSON: {inner}")
            } else {
                // serde appends " at line L column C"; the pointer already says where.
                let text = inner.to_string();
                match text.rfind(" at line ") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                }
            };
            return Err(vec![Problem::new(file, pointer, message)]);
        }
    };
    Checker {
        file,
        problems: Vec::new(),
        engine,
        model,
    }
    .provider(raw)
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", pointer_segment(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

struct Checker<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
    engine: &'a dyn MappingEngine,
    model: &'a UnifiedModel,
}

impl Checker<'_> {
    fn problem(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.file, pointer, message));
    }

    fn provider(mut self, raw: RawProvider) -> Result<ProviderModel, Vec<Problem>> {
        let stem = self
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if raw.name != stem {
            self.problem(
                "/name",
                format!(
                    "the provider name `{}` must equal the file name `{stem}`",
                    raw.name
                ),
            );
        }
        let base_url = match Url::parse(&raw.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            Ok(_) => {
                self.problem("/baseUrl", "must be an absolute http(s) URL");
                None
            }
            Err(e) => {
                self.problem("/baseUrl", format!("not a URL: {e}"));
                None
            }
        };
        let allowed_hosts = raw
            .allowed_hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                if bare.is_empty() || bare.contains(['/', ':', '*']) {
                    self.problem(
                        format!("/allowedHosts/{i}"),
                        format!("`{h}` is not a host name or `*.domain` pattern"),
                    );
                    None
                } else {
                    Some(HostPattern(h.to_ascii_lowercase()))
                }
            })
            .collect();
        let auth = self.auth(raw.auth);
        let pagination = self.pagination(raw.pagination);
        let rate_limit = self.rate_limit(raw.rate_limit);
        let errors = ErrorRules {
            message_pointer: self.pointer("/errors/messagePath", raw.errors.message_path),
            category_pointer: self.pointer("/errors/categoryPath", raw.errors.category_path),
        };
        let mut resources = IndexMap::new();
        if raw.resources.is_empty() {
            self.problem("/resources", "a provider needs at least one resource");
        }
        for (name, res) in raw.resources {
            let at = format!("/resources/{}", pointer_segment(&name));
            let Some(def) = self.model.resource(&name) else {
                let known: Vec<&str> = self
                    .model
                    .resources
                    .iter()
                    .map(|r| r.resource.as_str())
                    .collect();
                self.problem(
                    at,
                    format!(
                        "`{name}` is not a resource of the unified schema (known: {})",
                        known.join(", ")
                    ),
                );
                continue;
            };
            if let Some(r) = self.resource(&at, def, res) {
                resources.insert(name, r);
            }
        }
        match (base_url, auth, pagination) {
            (Some(base_url), Some(auth), Some(pagination)) if self.problems.is_empty() => {
                Ok(ProviderModel {
                    name: raw.name,
                    display_name: raw.display_name,
                    file: self.file.to_path_buf(),
                    base_url,
                    allowed_hosts,
                    auth,
                    pagination,
                    rate_limit,
                    errors,
                    resources,
                })
            }
            _ => Err(self.problems),
        }
    }

    fn auth(&mut self, raw: RawAuth) -> Option<Auth> {
        Some(match raw {
            RawAuth::Bearer => Auth::Bearer,
            RawAuth::ApiKeyHeader { header, prefix } => Auth::ApiKeyHeader {
                header: self.header("/auth/header", &header)?,
                prefix,
            },
            RawAuth::ApiKeyQuery { param } => {
                if param.is_empty() {
                    self.problem("/auth/param", "must not be empty");
                    return None;
                }
                Auth::ApiKeyQuery { param }
            }
        })
    }

    fn pagination(&mut self, raw: RawPagination) -> Option<Pagination> {
        Some(match raw {
            RawPagination::None => Pagination::None,
            RawPagination::Cursor {
                cursor_path,
                cursor_param,
                limit_param,
                max_page_size,
            } => {
                let cursor_pointer = self.pointer("/pagination/cursorPath", Some(cursor_path))?;
                if max_page_size == 0 {
                    self.problem("/pagination/maxPageSize", "must be at least 1");
                    return None;
                }
                for (at, v) in [
                    ("/pagination/cursorParam", &cursor_param),
                    ("/pagination/limitParam", &limit_param),
                ] {
                    if v.is_empty() {
                        self.problem(at, "must not be empty");
                        return None;
                    }
                }
                Pagination::Cursor(CursorPagination {
                    cursor_pointer,
                    cursor_param,
                    limit_param,
                    max_page_size: max_page_size as usize,
                })
            }
        })
    }

    fn rate_limit(&mut self, raw: RawRateLimit) -> RateLimitRules {
        RateLimitRules {
            limit_header: raw
                .limit_header
                .and_then(|h| self.header("/rateLimit/limitHeader", &h)),
            remaining_header: raw
                .remaining_header
                .and_then(|h| self.header("/rateLimit/remainingHeader", &h)),
            window_header: raw
                .window_header
                .and_then(|h| self.header("/rateLimit/windowHeader", &h)),
            window_unit: match raw.window_unit {
                RawTimeUnit::Seconds => Duration::from_secs(1),
                RawTimeUnit::Milliseconds => Duration::from_millis(1),
            },
            throttle_statuses: if raw.throttle_statuses.is_empty() {
                vec![429]
            } else {
                raw.throttle_statuses
            },
        }
    }

    fn header(&mut self, at: &str, name: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.problem(at, format!("`{name}` is not a valid HTTP header name"));
                None
            }
        }
    }

    /// Checks a JSON pointer (empty means the whole document).
    fn pointer(&mut self, at: &str, value: Option<String>) -> Option<String> {
        let value = value?;
        if value.is_empty() || value.starts_with('/') {
            Some(value)
        } else {
            self.problem(
                at,
                format!(
                    "`{value}` is not a JSON pointer (it must start with `/`, e.g. `/{value}`)"
                ),
            );
            None
        }
    }

    fn method(&mut self, at: &str, text: &str) -> Option<reqwest::Method> {
        match text {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
                reqwest::Method::from_bytes(text.as_bytes()).ok()
            }
            _ => {
                self.problem(
                    at,
                    format!("`{text}` is not one of GET, POST, PUT, PATCH, DELETE"),
                );
                None
            }
        }
    }

    fn path(&mut self, at: &str, text: &str, vars: &[&str]) -> Option<PathTemplate> {
        match PathTemplate::parse(text) {
            Ok(t) => {
                let mut ok = true;
                for v in t.vars() {
                    if !vars.contains(&v) {
                        self.problem(
                            at,
                            format!(
                                "unknown placeholder `{{{v}}}` (allowed here: {})",
                                if vars.is_empty() {
                                    "none".to_string()
                                } else {
                                    vars.join(", ")
                                }
                            ),
                        );
                        ok = false;
                    }
                }
                for v in vars {
                    if !t.vars().any(|x| x == *v) {
                        self.problem(at, format!("the path must contain `{{{v}}}`"));
                        ok = false;
                    }
                }
                ok.then_some(t)
            }
            Err(message) => {
                self.problem(at, message);
                None
            }
        }
    }

    fn resource(&mut self, at: &str, def: &ResourceDef, raw: RawResource) -> Option<ResourceModel> {
        let before = self.problems.len();
        let id_pointer = self.pointer(&format!("{at}/idPath"), Some(raw.id_path));
        let mapping = self.mapping(&format!("{at}/fields"), def, &raw.fields);
        let list = raw.operations.list.and_then(|op| {
            let at = format!("{at}/operations/list");
            Some(ListOperation {
                method: self.method(&format!("{at}/method"), &op.method)?,
                path: self.path(&format!("{at}/path"), &op.path, &[])?,
                query: op.query.into_iter().collect(),
                records_pointer: self
                    .pointer(&format!("{at}/recordsPath"), Some(op.records_path))?,
            })
        });
        let get = raw.operations.get.and_then(|op| {
            let at = format!("{at}/operations/get");
            Some(GetOperation {
                method: self.method(&format!("{at}/method"), &op.method)?,
                path: self.path(&format!("{at}/path"), &op.path, &["id"])?,
                query: op.query.into_iter().collect(),
                record_pointer: self.pointer(&format!("{at}/recordPath"), Some(op.record_path))?,
            })
        });
        if self.problems.len() > before {
            return None;
        }
        Some(ResourceModel {
            name: def.resource.clone(),
            id_pointer: id_pointer?,
            mapping: mapping?,
            list,
            get,
        })
    }

    fn mapping(
        &mut self,
        at: &str,
        def: &ResourceDef,
        fields: &IndexMap<String, String>,
    ) -> Option<ResponseMapping> {
        let keys = def.mapping_keys();
        let mut compiled = Vec::new();
        let mut ok = true;
        for (path, source) in fields {
            let here = format!("{at}/{}", pointer_segment(path));
            let top = path.split('.').next().unwrap_or_default();
            let nested_ok = top == "customFields" || !path.contains('.');
            if !keys.iter().any(|k| k == top) || !nested_ok || path.split('.').any(str::is_empty) {
                self.problem(here, format!("`{path}` is not an output field of `{}` (allowed: {}, or customFields.<name>)", def.type_name, keys.join(", ")));
                ok = false;
                continue;
            }
            match self.engine.compile(source) {
                Ok(expr) => compiled.push(crate::config::MappedField {
                    path: path.clone(),
                    expr,
                }),
                Err(e) => {
                    self.problem(here, format!("invalid JSONata: {e}"));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let text = match compose(&compiled) {
            Ok(text) => text,
            Err(message) => {
                self.problem(at, message);
                return None;
            }
        };
        match self.engine.compile(&text) {
            Ok(composed) => Some(ResponseMapping {
                fields: compiled,
                composed,
            }),
            Err(e) => {
                self.problem(
                    at,
                    format!("the fields do not compose into one expression: {e}"),
                );
                None
            }
        }
    }
}

/// Composes per-field expressions into one object constructor, nesting dotted paths:
/// `{"firstName": (properties.firstname), "customFields": {"tier": (properties.tier)}}`.
/// Each part compiled on its own first, so the parentheses cannot be escaped by a part.
pub fn compose(fields: &[MappedField]) -> Result<String, String> {
    enum Node<'a> {
        Leaf(&'a Expr),
        Branch(IndexMap<&'a str, Node<'a>>),
    }
    let mut root: IndexMap<&str, Node> = IndexMap::new();
    for f in fields {
        let parts: Vec<&str> = f.path.split('.').collect();
        let mut level = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if last {
                if level.insert(part, Node::Leaf(&f.expr)).is_some() {
                    return Err(format!(
                        "`{}` is mapped twice (or also as a parent of another field)",
                        f.path
                    ));
                }
            } else {
                let entry = level
                    .entry(part)
                    .or_insert_with(|| Node::Branch(IndexMap::new()));
                match entry {
                    Node::Branch(children) => level = children,
                    Node::Leaf(_) => {
                        return Err(format!(
                            "`{}` is nested under a field that is mapped whole",
                            f.path
                        ));
                    }
                }
            }
        }
    }
    fn write(level: &IndexMap<&str, Node>, out: &mut String) {
        out.push('{');
        for (i, (key, node)) in level.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&serde_json::Value::String(key.to_string()).to_string());
            out.push_str(": ");
            match node {
                Node::Leaf(expr) => {
                    out.push('(');
                    out.push_str(expr.source());
                    out.push_str("\n)");
                }
                Node::Branch(children) => write(children, out),
            }
        }
        out.push('}');
    }
    let mut out = String::new();
    write(&root, &mut out);
    Ok(out)
}
