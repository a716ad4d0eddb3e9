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
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    match super::samples::load_samples(dir, &providers) {
        Ok(samples) => Ok(Providers::with_samples(providers, samples)),
        Err(found) => Err(Problems(found)),
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
    // The same text as a plain document, kept for overrides to merge into.
    let source = serde_json::from_str(text)
        .map_err(|e| vec![Problem::new(file, "", format!("invalid JSON: {e}"))])?;
    Checker {
        file,
        problems: Vec::new(),
        engine,
        model,
    }
    .provider(raw)
    .map(|mut p| {
        p.source = std::sync::Arc::new(source);
        p
    })
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

pub(super) struct Checker<'a> {
    file: &'a Path,
    pub(super) problems: Vec<Problem>,
    engine: &'a dyn MappingEngine,
    model: &'a UnifiedModel,
}

impl Checker<'_> {
    pub(super) fn problem(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
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
        let settings: Vec<SettingDef> = raw
            .settings
            .into_iter()
            .map(|(name, s)| SettingDef {
                name,
                default: s.default,
            })
            .collect();
        let base_url = self.base_url(&raw.base_url, &settings);
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
        let auth = self.auth(raw.auth, &settings);
        let oauth = match raw.oauth {
            Some(o) => self.oauth(o, &settings),
            None => None,
        };
        let pagination = self.pagination("/pagination", raw.pagination);
        let rate_limit = self.rate_limit(raw.rate_limit);
        let errors = self.errors(raw.errors);
        let webhooks = raw.webhooks.and_then(|w| self.webhooks(w));
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
            if let Some(r) = self.resource(&at, def, res, pagination.as_ref()) {
                resources.insert(name, r);
            }
        }
        let probe_resource = match raw.probe {
            Some(p) => {
                if resources
                    .get(&p.resource)
                    .is_none_or(|r: &ResourceModel| r.list.is_none())
                {
                    self.problem(
                        "/probe/resource",
                        format!(
                            "`{}` is not a resource of this provider with a `list` operation",
                            p.resource
                        ),
                    );
                }
                Some(p.resource)
            }
            None => resources
                .iter()
                .find(|(_, r)| r.list.is_some())
                .map(|(name, _)| name.clone()),
        };
        match (base_url, auth, pagination) {
            (Some(base_url), Some(auth), Some(pagination)) if self.problems.is_empty() => {
                Ok(ProviderModel {
                    name: raw.name,
                    display_name: raw.display_name,
                    file: self.file.to_path_buf(),
                    settings,
                    base_url,
                    allowed_hosts,
                    auth,
                    oauth,
                    pagination,
                    rate_limit,
                    errors,
                    webhooks,
                    probe_resource,
                    resources,
                    source: Default::default(),
                    tenant_mappings: false,
                })
            }
            _ => Err(self.problems),
        }
    }

    fn base_url(&mut self, text: &str, settings: &[SettingDef]) -> Option<Template> {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(m) => {
                self.problem("/baseUrl", m);
                return None;
            }
        };
        for var in template.vars() {
            if !settings.iter().any(|s| s.name == var) {
                self.problem(
                    "/baseUrl",
                    format!("`{{{var}}}` is not a declared setting (declare it under `settings`)"),
                );
                return None;
            }
        }
        // With every setting at its default (or a placeholder origin), the result must be a URL.
        let sample = template
            .render(|name| {
                settings
                    .iter()
                    .find(|s| s.name == name)
                    .and_then(|s| s.default.clone())
                    .or(Some("https://example.com".into()))
            })
            .unwrap_or_default();
        match Url::parse(&sample) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Some(template)
            }
            Ok(_) => {
                self.problem("/baseUrl", "must be an absolute http(s) URL");
                None
            }
            Err(e) => {
                self.problem("/baseUrl", format!("not a URL: {e}"));
                None
            }
        }
    }

    fn auth(&mut self, raw: RawAuth, settings: &[SettingDef]) -> Option<Auth> {
        Some(match raw {
            RawAuth::Bearer => Auth::Bearer,
            RawAuth::Basic => Auth::Basic,
            RawAuth::ApiKeyHeader { header, prefix } => Auth::ApiKeyHeader {
                header: self.header("/auth/header", &header)?,
                prefix,
            },
            RawAuth::ApiKeyQuery { param } => Auth::ApiKeyQuery {
                param: self.nonempty("/auth/param", param)?,
            },
            RawAuth::Headers { headers } => {
                let mut out = Vec::new();
                for (name, value) in headers {
                    let at = format!("/auth/headers/{}", pointer_segment(&name));
                    let header = self.header(&at, &name)?;
                    let template = self.template(&at, &value, |v| {
                        v == "token" || settings.iter().any(|s| s.name == v)
                    })?;
                    out.push((header, template));
                }
                if out.is_empty() {
                    self.problem("/auth/headers", "give at least one header");
                    return None;
                }
                Auth::Headers(out)
            }
        })
    }

    fn oauth(&mut self, raw: RawOAuth, settings: &[SettingDef]) -> Option<OAuthConfig> {
        let known = |v: &str| settings.iter().any(|s| s.name == v);
        let authorize_url = self.template("/oauth/authorizeUrl", &raw.authorize_url, known)?;
        let token_url = self.template("/oauth/tokenUrl", &raw.token_url, known)?;
        let mut token_settings = Vec::new();
        for (name, pointer) in raw.token_settings {
            let at = format!("/oauth/tokenSettings/{}", pointer_segment(&name));
            token_settings.push((name, self.pointer(&at, Some(pointer))?));
        }
        let invalid_grant = self.expr(
            "/oauth/invalidGrant",
            raw.invalid_grant
                .as_deref()
                .unwrap_or("body.error = 'invalid_grant'"),
        )?;
        let revoke = match raw.revoke {
            Some(r) => Some(self.revocation(r, &known)?),
            None => None,
        };
        Some(OAuthConfig {
            revoke,
            authorize_url,
            token_url,
            basic_client_auth: raw.client_auth == RawClientAuth::Basic,
            pkce: raw.pkce,
            scopes: raw.scopes,
            authorize_params: raw.authorize_params.into_iter().collect(),
            default_lifetime: raw.default_lifetime_seconds.map(Duration::from_secs),
            refresh_buffer: Duration::from_secs(raw.refresh_buffer_seconds),
            token_settings,
            invalid_grant,
        })
    }

    fn revocation(&mut self, raw: RawRevoke, known: &impl Fn(&str) -> bool) -> Option<Revocation> {
        let url = self.template("/oauth/revoke/url", &raw.url, known)?;
        let method = match raw.method.to_ascii_uppercase().as_str() {
            "POST" => reqwest::Method::POST,
            "DELETE" => reqwest::Method::DELETE,
            "GET" => reqwest::Method::GET,
            other => {
                self.problem(
                    "/oauth/revoke/method",
                    format!("`{other}` is not POST, DELETE or GET"),
                );
                return None;
            }
        };
        let token_in = match raw.token_in {
            RawTokenIn::Form => TokenIn::Form,
            RawTokenIn::Query => TokenIn::Query,
            RawTokenIn::Path => TokenIn::Path,
        };
        if token_in == TokenIn::Form && method == reqwest::Method::GET {
            self.problem(
                "/oauth/revoke/tokenIn",
                "a GET has no form body: send the token in the `query` or the `path`",
            );
            return None;
        }
        let param = self.nonempty("/oauth/revoke/param", raw.param)?;
        let ok = match raw.ok {
            Some(text) => Some(self.expr("/oauth/revoke/ok", &text)?),
            None => None,
        };
        let already_revoked = match raw.already_revoked {
            Some(text) => Some(self.expr("/oauth/revoke/alreadyRevoked", &text)?),
            None => None,
        };
        Some(Revocation {
            url,
            method,
            token: match raw.token {
                RawRevokeToken::Refresh => RevokeToken::Refresh,
                RawRevokeToken::Access => RevokeToken::Access,
            },
            token_in,
            param,
            params: raw.params.into_iter().collect(),
            client_auth: match raw.client_auth {
                RawRevokeClientAuth::None => RevokeClientAuth::None,
                RawRevokeClientAuth::Body => RevokeClientAuth::Body,
                RawRevokeClientAuth::Basic => RevokeClientAuth::Basic,
            },
            ok,
            already_revoked,
        })
    }

    fn template(&mut self, at: &str, text: &str, known: impl Fn(&str) -> bool) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => {
                if let Some(v) = t.vars().find(|v| !known(v)) {
                    self.problem(at, format!("unknown placeholder `{{{v}}}`"));
                    return None;
                }
                Some(t)
            }
            Err(m) => {
                self.problem(at, m);
                None
            }
        }
    }

    fn nonempty(&mut self, at: &str, value: String) -> Option<String> {
        if value.is_empty() {
            self.problem(at, "must not be empty");
            None
        } else {
            Some(value)
        }
    }

    fn page_size(&mut self, at: &str, value: u32) -> Option<usize> {
        if value == 0 {
            self.problem(at, "must be at least 1");
            None
        } else {
            Some(value as usize)
        }
    }

    fn optional_pointer(&mut self, at: &str, value: Option<String>) -> Result<Option<String>, ()> {
        match value {
            Some(p) => self.pointer(at, Some(p)).map(Some).ok_or(()),
            None => Ok(None),
        }
    }

    fn pagination(&mut self, at: &str, raw: RawPagination) -> Option<Pagination> {
        let placement = |p: RawPlacement| match p {
            RawPlacement::Query => Placement::Query,
            RawPlacement::JsonBody => Placement::JsonBody,
        };
        Some(match raw {
            RawPagination::None => Pagination::None,
            RawPagination::Cursor {
                cursor_path,
                cursor_param,
                limit_param,
                max_page_size,
                placement: p,
            } => Pagination::Cursor(CursorPagination {
                cursor_pointer: self.pointer(&format!("{at}/cursorPath"), Some(cursor_path))?,
                cursor_param: self.nonempty(&format!("{at}/cursorParam"), cursor_param)?,
                limit_param: self.nonempty(&format!("{at}/limitParam"), limit_param)?,
                max_page_size: self.page_size(&format!("{at}/maxPageSize"), max_page_size)?,
                placement: placement(p),
            }),
            RawPagination::PageToken {
                token_path,
                token_param,
                limit_param,
                max_page_size,
                placement: p,
            } => Pagination::PageToken(CursorPagination {
                cursor_pointer: self.pointer(&format!("{at}/tokenPath"), Some(token_path))?,
                cursor_param: self.nonempty(&format!("{at}/tokenParam"), token_param)?,
                limit_param: self.nonempty(&format!("{at}/limitParam"), limit_param)?,
                max_page_size: self.page_size(&format!("{at}/maxPageSize"), max_page_size)?,
                placement: placement(p),
            }),
            RawPagination::NextUrl {
                next_url_path,
                limit_param,
                max_page_size,
                min_page_size,
            } => {
                let max_page_size = self.page_size(&format!("{at}/maxPageSize"), max_page_size)?;
                let min_page_size = match min_page_size {
                    Some(min) if min as usize > max_page_size || min == 0 => {
                        self.problem(
                            format!("{at}/minPageSize"),
                            "must be between 1 and maxPageSize",
                        );
                        return None;
                    }
                    Some(min) => min as usize,
                    None => 1,
                };
                Pagination::NextUrl(NextUrlPagination {
                    next_url_pointer: self
                        .pointer(&format!("{at}/nextUrlPath"), Some(next_url_path))?,
                    limit_param,
                    max_page_size,
                    min_page_size,
                })
            }
            RawPagination::Offset {
                offset_param,
                limit_param,
                max_page_size,
                has_more_path,
                placement: p,
            } => Pagination::Offset(OffsetPagination {
                offset_param: self.nonempty(&format!("{at}/offsetParam"), offset_param)?,
                limit_param: self.nonempty(&format!("{at}/limitParam"), limit_param)?,
                max_page_size: self.page_size(&format!("{at}/maxPageSize"), max_page_size)?,
                has_more_pointer: self
                    .optional_pointer(&format!("{at}/hasMorePath"), has_more_path)
                    .ok()?,
                placement: placement(p),
            }),
            RawPagination::PageNumber {
                page_param,
                size_param,
                max_page_size,
                first_page,
                more_path,
                next_token_path,
                token_param,
                placement: p,
            } => {
                let next_token = match (next_token_path, token_param) {
                    (Some(path), Some(param)) => Some((
                        self.pointer(&format!("{at}/nextTokenPath"), Some(path))?,
                        self.nonempty(&format!("{at}/tokenParam"), param)?,
                    )),
                    (None, None) => None,
                    _ => {
                        self.problem(at, "`nextTokenPath` and `tokenParam` go together");
                        return None;
                    }
                };
                Pagination::PageNumber(PageNumberPagination {
                    page_param: self.nonempty(&format!("{at}/pageParam"), page_param)?,
                    size_param: self.nonempty(&format!("{at}/sizeParam"), size_param)?,
                    max_page_size: self.page_size(&format!("{at}/maxPageSize"), max_page_size)?,
                    first_page,
                    more_pointer: self
                        .optional_pointer(&format!("{at}/morePath"), more_path)
                        .ok()?,
                    next_token,
                    placement: placement(p),
                })
            }
            RawPagination::LinkHeader {
                limit_param,
                max_page_size,
            } => Pagination::LinkHeader(LinkHeaderPagination {
                limit_param: self.nonempty(&format!("{at}/limitParam"), limit_param)?,
                max_page_size: self.page_size(&format!("{at}/maxPageSize"), max_page_size)?,
            }),
        })
    }

    fn rate_limit(&mut self, raw: RawRateLimit) -> RateLimitRules {
        let mut windows = Vec::new();
        for (i, w) in raw.windows.into_iter().enumerate() {
            let at = format!("/rateLimit/windows/{i}");
            if w.name.trim().is_empty() {
                self.problem(format!("{at}/name"), "must not be empty");
            }
            let mut figure = |name: &str, src: Option<String>| {
                src.and_then(|s| self.expr(&format!("{at}/{name}"), &s))
            };
            let reads_body = [&w.limit, &w.remaining, &w.reset, &w.window]
                .into_iter()
                .flatten()
                .any(|src| src.contains("body"));
            windows.push(RateWindow {
                reads_body,
                limit: figure("limit", w.limit),
                remaining: figure("remaining", w.remaining),
                reset: figure("reset", w.reset),
                window: figure("window", w.window),
                name: w.name,
            });
        }
        RateLimitRules {
            windows,
            throttle_statuses: if raw.throttle_statuses.is_empty() {
                vec![429]
            } else {
                raw.throttle_statuses
            },
        }
    }

    fn errors(&mut self, raw: RawErrors) -> ErrorRules {
        let mut rules = Vec::new();
        for (i, rule) in raw.rules.into_iter().enumerate() {
            if let Some(when) = self.expr(&format!("/errors/rules/{i}/when"), &rule.when) {
                rules.push(ErrorRule {
                    when,
                    class: match rule.class {
                        RawErrorClass::RateLimited => ErrorClass::RateLimited,
                        RawErrorClass::Unauthorized => ErrorClass::Unauthorized,
                        RawErrorClass::Forbidden => ErrorClass::Forbidden,
                        RawErrorClass::NotFound => ErrorClass::NotFound,
                        RawErrorClass::Unavailable => ErrorClass::Unavailable,
                        RawErrorClass::Error => ErrorClass::Error,
                    },
                    on_success: rule.on_success,
                });
            }
        }
        ErrorRules {
            message_pointer: self.pointer("/errors/messagePath", raw.message_path),
            category_pointer: self.pointer("/errors/categoryPath", raw.category_path),
            rules,
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
    pub(super) fn pointer(&mut self, at: &str, value: Option<String>) -> Option<String> {
        let value = value?;
        if value.is_empty() || value.starts_with('/') {
            Some(value)
        } else {
            self.problem(
                at,
                format!(
                    "`{value}` is not a JSON pointer (it must start with `/`, e.g. `/{}`)",
                    value.replace('.', "/")
                ),
            );
            None
        }
    }

    pub(super) fn method(&mut self, at: &str, text: &str) -> Option<reqwest::Method> {
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

    pub(super) fn path(&mut self, at: &str, text: &str, vars: &[&str]) -> Option<PathTemplate> {
        match PathTemplate::parse(text) {
            Ok(t) => {
                let mut ok = true;
                for v in t.vars() {
                    if !vars.contains(&v) {
                        let allowed = if vars.is_empty() {
                            "none".to_string()
                        } else {
                            vars.join(", ")
                        };
                        self.problem(
                            at,
                            format!("unknown placeholder `{{{v}}}` (allowed here: {allowed})"),
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

    pub(super) fn expr(&mut self, at: &str, source: &str) -> Option<Expr> {
        match self.engine.compile(source) {
            Ok(e) => Some(e),
            Err(e) => {
                self.problem(at, format!("invalid JSONata: {e}"));
                None
            }
        }
    }

    /// `pagination` is the provider's, when it is valid.
    fn resource(
        &mut self,
        at: &str,
        def: &ResourceDef,
        raw: RawResource,
        pagination: Option<&Pagination>,
    ) -> Option<ResourceModel> {
        let before = self.problems.len();
        let id = match &raw.id_expr {
            Some(e) => self.expr(&format!("{at}/idExpr"), e).map(IdSource::Expr),
            None => self
                .pointer(&format!("{at}/idPath"), Some(raw.id_path.clone()))
                .map(IdSource::Pointer),
        };
        let mapping = self.mapping(at, def, &raw);
        let ops = raw.operations;
        let declares_list = ops.list.is_some();
        let list = ops
            .list
            .and_then(|op| self.list(&format!("{at}/operations/list"), op, &def.resource));
        let search = ops
            .search
            .and_then(|op| self.list(&format!("{at}/operations/search"), op, &def.resource));
        let get = ops.get.and_then(|op| {
            let at = format!("{at}/operations/get");
            Some(GetOperation {
                method: self.method(&format!("{at}/method"), &op.method)?,
                path: self.path(&format!("{at}/path"), &op.path, &["id"])?,
                query: op.query.into_iter().collect(),
                record_pointer: self.pointer(&format!("{at}/recordPath"), Some(op.record_path))?,
            })
        });
        let batch_get = ops
            .batch_get
            .and_then(|op| self.batch_get(&format!("{at}/operations/batchGet"), op));
        let create = ops
            .create
            .and_then(|op| self.write(&format!("{at}/operations/create"), op, &[]));
        let update = ops
            .update
            .and_then(|op| self.write(&format!("{at}/operations/update"), op, &["id"]));
        let delete = ops.delete.and_then(|op| {
            let at = format!("{at}/operations/delete");
            Some(DeleteOperation {
                method: self.method(&format!("{at}/method"), &op.method)?,
                path: self.path(&format!("{at}/path"), &op.path, &["id"])?,
                query: op.query.into_iter().collect(),
            })
        });
        let changes = match raw.changes {
            Some(c) => {
                let paging = list
                    .as_ref()
                    .and_then(|l| l.pagination.as_ref())
                    .or(pagination);
                self.changes(at, c, declares_list, paging)
            }
            None => None,
        };
        if self.problems.len() > before {
            return None;
        }
        Some(ResourceModel {
            name: def.resource.clone(),
            id: id?,
            mapping: mapping?,
            list,
            search,
            get,
            batch_get,
            create,
            update,
            delete,
            changes,
        })
    }

    fn list(&mut self, at: &str, op: RawListOperation, resource: &str) -> Option<ListOperation> {
        let declared: Vec<String> = self
            .model
            .filter_of(resource)
            .map(|f| f.fields.iter().map(|x| x.name.clone()).collect())
            .unwrap_or_default();
        for (i, name) in op.filters.iter().enumerate() {
            if !declared.contains(name) {
                let known = if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                };
                self.problem(format!("{at}/filters/{i}"), format!("`{name}` is not a filter the SDL declares for `{resource}` (declared: {known})"));
                return None;
            }
        }
        let mut filter_query = Vec::new();
        for (param, source) in &op.filter_query {
            filter_query.push((
                param.clone(),
                self.expr(
                    &format!("{at}/filterQuery/{}", pointer_segment(param)),
                    source,
                )?,
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in &op.headers {
            let here = format!("{at}/headers/{}", pointer_segment(name));
            headers.push((
                self.header(&here, name)?,
                self.template(&here, value, |v| v == "pageSize")?,
            ));
        }
        let filter_body = match &op.filter_body {
            Some(e) => Some(self.expr(&format!("{at}/filterBody"), e)?),
            None => None,
        };
        let pagination = match op.pagination {
            Some(p) => Some(self.pagination(&format!("{at}/pagination"), p)?),
            None => None,
        };
        if op.body.as_ref().is_some_and(|b| !b.is_object()) {
            self.problem(format!("{at}/body"), "must be a JSON object");
            return None;
        }
        Some(ListOperation {
            method: self.method(&format!("{at}/method"), &op.method)?,
            path: self.path(&format!("{at}/path"), &op.path, &[])?,
            query: op.query.into_iter().collect(),
            headers,
            body: op.body,
            records_pointer: self.pointer(&format!("{at}/recordsPath"), Some(op.records_path))?,
            filters: op.filters,
            filter_query,
            filter_body,
            pagination,
        })
    }

    fn batch_get(&mut self, at: &str, op: RawBatchGetOperation) -> Option<BatchGetOperation> {
        let mut query = Vec::new();
        for (k, v) in &op.query {
            query.push((
                k.clone(),
                self.expr(&format!("{at}/query/{}", pointer_segment(k)), v)?,
            ));
        }
        let body = match &op.body {
            Some(b) => Some(self.expr(&format!("{at}/body"), b)?),
            None => None,
        };
        Some(BatchGetOperation {
            method: self.method(&format!("{at}/method"), &op.method)?,
            path: self.path(&format!("{at}/path"), &op.path, &[])?,
            query,
            body,
            records_pointer: self.pointer(&format!("{at}/recordsPath"), Some(op.records_path))?,
            item_pointer: self.pointer(&format!("{at}/itemPath"), Some(op.item_path))?,
            max_ids: self.page_size(&format!("{at}/maxIds"), op.max_ids)?,
        })
    }

    fn write(&mut self, at: &str, op: RawWriteOperation, vars: &[&str]) -> Option<WriteOperation> {
        let record_pointer = self
            .optional_pointer(&format!("{at}/recordPath"), op.record_path)
            .ok()?;
        let id_pointer = self
            .optional_pointer(&format!("{at}/idPath"), op.id_path)
            .ok()?;
        if vars.is_empty() && record_pointer.is_none() && id_pointer.is_none() {
            self.problem(
                at,
                "a create needs `recordPath` or `idPath` to find the new record",
            );
            return None;
        }
        Some(WriteOperation {
            method: self.method(&format!("{at}/method"), &op.method)?,
            path: self.path(&format!("{at}/path"), &op.path, vars)?,
            query: op.query.into_iter().collect(),
            body: self.expr(&format!("{at}/body"), &op.body)?,
            record_pointer,
            id_pointer,
            read_before: op.read_before,
        })
    }

    fn mapping(
        &mut self,
        at: &str,
        def: &ResourceDef,
        raw: &RawResource,
    ) -> Option<ResponseMapping> {
        let keys = def.mapping_keys();
        let mut compiled = Vec::new();
        let mut ok = true;
        let whole = match &raw.response_mapping {
            Some(source) => match self.engine.compile(source) {
                Ok(expr) => Some(expr),
                Err(e) => {
                    self.problem(
                        format!("{at}/responseMapping"),
                        format!("invalid JSONata: {e}"),
                    );
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if raw.fields.is_empty() && raw.response_mapping.is_none() {
            self.problem(
                format!("{at}/fields"),
                "a resource needs `fields` or a `responseMapping`",
            );
            return None;
        }
        for (i, name) in raw.omit_fields.iter().enumerate() {
            if raw.response_mapping.is_none() {
                self.problem(
                    format!("{at}/omitFields/{i}"),
                    "`omitFields` only applies to a `responseMapping`",
                );
                ok = false;
            } else if name.is_empty() {
                self.problem(format!("{at}/omitFields/{i}"), "must not be empty");
                ok = false;
            }
        }
        let at_fields = format!("{at}/fields");
        let at = at_fields.as_str();
        for (path, source) in &raw.fields {
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
        let text = match compose_over(whole.as_ref(), &raw.omit_fields, &compiled) {
            Ok(text) => text,
            Err(message) => {
                self.problem(at, message);
                return None;
            }
        };
        match self.engine.compile(&text) {
            Ok(composed) => Some(ResponseMapping {
                fields: compiled,
                whole,
                omit: raw.omit_fields.clone(),
                composed,
                custom_field_types: raw
                    .custom_field_types
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
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

/// Composes a whole-object expression (if any) with per-field expressions merged over it:
/// top-level keys replace the whole result's, `customFields` merge key by key, and `omit`
/// keys are dropped from the whole result first.
pub fn compose_over(
    whole: Option<&Expr>,
    omit: &[String],
    fields: &[MappedField],
) -> Result<String, String> {
    let fields_text = compose(fields)?;
    let Some(whole) = whole else {
        return Ok(fields_text);
    };
    let omit = serde_json::Value::from(omit.to_vec()).to_string();
    Ok(format!(
        "(\n  $tesseraWhole := $sift(({}\n  ), function($v, $k) {{ $not($k in {omit}) }});\n  $tesseraFields := {fields_text};\n  $merge([$tesseraWhole, $tesseraFields, $exists($tesseraFields.customFields) ? {{\"customFields\": $merge([$tesseraWhole.customFields, $tesseraFields.customFields])}} : {{}}])\n)",
        whole.source()
    ))
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
