//! The provider file as written: one JSON document per provider in `providers/`.
//! Field docs here become the descriptions editors show (through the generated JSON Schema,
//! `providers/provider.schema.json`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// A provider: everything Tessera needs to talk to one vendor's API, as data.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawProvider {
    /// Editors use it to find `provider.schema.json`; Tessera ignores it.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// The provider's id, used in `connectAccount(provider:)`. Must equal the file name.
    pub name: String,
    pub display_name: String,
    /// Values a linked account's `settings` may carry, usable as `{name}` in `baseUrl`
    /// (e.g. `instanceUrl`). `baseUrl` itself is always accepted and replaces the template.
    #[serde(default)]
    pub settings: IndexMap<String, RawSetting>,
    /// The API base URL, a template over `settings`, e.g. `{instanceUrl}/services/data/v62.0`
    /// or `https://api.example.com`.
    pub base_url: String,
    /// Hosts the resolved base URL may use. `*.example.com` matches any subdomain. A plain
    /// `baseUrl` (no template) allows its own host. Other hosts are refused unless the server
    /// runs with `--allow-private-upstreams`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How the linked account's credentials are put on each request.
    pub auth: RawAuth,
    /// The vendor's OAuth2 endpoints and token rules, for providers that use OAuth.
    #[serde(default)]
    pub oauth: Option<RawOAuth>,
    /// How list operations page through results.
    #[serde(default)]
    pub pagination: RawPagination,
    /// Which response headers carry the vendor's rate-limit figures.
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    /// How upstream errors are read and classified.
    #[serde(default)]
    pub errors: RawErrors,
    /// Inbound webhooks: verification, account routing, events.
    #[serde(default)]
    pub webhooks: Option<super::webhooks::RawWebhooks>,
    /// The health probe: a lightweight authenticated call made on a schedule for every
    /// linked account (a listing of one record of this resource). Default: the first
    /// resource that can be listed.
    #[serde(default)]
    pub probe: Option<RawProbe>,
    /// Unified resources (keys are `@resource` names of the SDL, e.g. `contacts`).
    pub resources: IndexMap<String, RawResource>,
}

/// Which call probes an account's health.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawProbe {
    /// A resource with a `list` operation; the probe lists one record of it.
    pub resource: String,
}

/// A linked-account setting the provider understands.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSetting {
    /// Used when the account does not give the setting; without a default it is required.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Where credentials go on the upstream request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum RawAuth {
    /// `Authorization: Bearer <accessToken or apiKey>`.
    Bearer,
    /// The token in one header, optionally after a scheme word
    /// (`Authorization: <prefix> <token>`).
    ApiKeyHeader {
        header: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// The token in a query parameter (`?api_token=...`).
    ApiKeyQuery { param: String },
    /// HTTP Basic with the token as the user name and an empty password.
    Basic,
    /// Several headers at once. Values are templates: `{token}` is the access token or API
    /// key, `{<setting>}` a linked-account setting.
    Headers { headers: IndexMap<String, String> },
}

/// OAuth2 as this vendor speaks it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawOAuth {
    /// The authorization endpoint, a template over settings (`settings.authorizeUrl`
    /// replaces it).
    pub authorize_url: String,
    /// The token endpoint, a template over settings (`settings.tokenUrl` replaces it).
    pub token_url: String,
    /// How the client authenticates at the token endpoint: `body` (client_id and
    /// client_secret form fields, default) or `basic` (HTTP Basic).
    #[serde(default)]
    pub client_auth: RawClientAuth,
    /// Send a PKCE challenge (S256) with the authorization request.
    #[serde(default)]
    pub pkce: bool,
    /// Scopes asked for when the OAuth app does not name its own.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra authorization-request parameters (e.g. `access_type=offline`).
    #[serde(default)]
    pub authorize_params: IndexMap<String, String>,
    /// Access-token lifetime to assume when the token response has no `expires_in`.
    #[serde(default)]
    pub default_lifetime_seconds: Option<u64>,
    /// Refresh this long before the access token expires (default 300).
    #[serde(default = "default_refresh_buffer")]
    pub refresh_buffer_seconds: u64,
    /// Token-response values kept as account settings: setting name -> JSON pointer
    /// (e.g. `"instanceUrl": "/instance_url"`).
    #[serde(default)]
    pub token_settings: IndexMap<String, String>,
    /// JSONata over `{status, body}` of a token response: true when the grant (refresh
    /// token or code) is dead for good. Default: `body.error = 'invalid_grant'`.
    #[serde(default)]
    pub invalid_grant: Option<String>,
    /// How the vendor revokes a grant, used when a linked account is deleted. Without it,
    /// deleting an account forgets its tokens but leaves the grant alive at the vendor.
    #[serde(default)]
    pub revoke: Option<RawRevoke>,
}

/// A vendor's token-revocation endpoint (RFC 7009 and its variants).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRevoke {
    /// The endpoint, a template over settings (`settings.revokeUrl` replaces it).
    pub url: String,
    /// `POST` (default), `DELETE` or `GET`.
    #[serde(default = "default_revoke_method")]
    pub method: String,
    /// Which token is sent: `refresh` (default: revoking it ends the whole grant at most
    /// vendors; the access token when the account has no refresh token) or `access`.
    #[serde(default)]
    pub token: RawRevokeToken,
    /// Where the token goes: `form` (default, field `param`), `query` (parameter `param`)
    /// or `path` (appended to the URL as its last path segment).
    #[serde(default)]
    pub token_in: RawTokenIn,
    /// The form field or query parameter that carries the token (default `token`).
    #[serde(default = "default_revoke_param")]
    pub param: String,
    /// Fixed parameters sent with it, where the token goes (`token_type_hint`).
    #[serde(default)]
    pub params: IndexMap<String, String>,
    /// How the OAuth app authenticates: `none` (default), `body` (client_id and
    /// client_secret form fields) or `basic` (HTTP Basic).
    #[serde(default)]
    pub client_auth: RawRevokeClientAuth,
    /// JSONata over `{status, body}`: true when the vendor revoked the token. Default: a
    /// 2xx status (vendors that answer errors with HTTP 200 need more).
    #[serde(default)]
    pub ok: Option<String>,
    /// JSONata over `{status, body}`: true when the vendor says the token was already
    /// dead (revoked elsewhere, expired), which is as good as revoked. Default: false.
    #[serde(default)]
    pub already_revoked: Option<String>,
}

fn default_revoke_method() -> String {
    "POST".into()
}

fn default_revoke_param() -> String {
    "token".into()
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawRevokeToken {
    #[default]
    Refresh,
    Access,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawTokenIn {
    #[default]
    Form,
    Query,
    Path,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawRevokeClientAuth {
    #[default]
    None,
    Body,
    Basic,
}

fn default_refresh_buffer() -> u64 {
    300
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawClientAuth {
    #[default]
    Body,
    Basic,
}

/// Where paging parameters go.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawPlacement {
    /// In the query string.
    #[default]
    Query,
    /// In the JSON request body (the list operation's `body` is the starting object).
    JsonBody,
}

/// The pagination strategy of list operations.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum RawPagination {
    /// One request returns everything.
    #[default]
    None,
    /// An opaque cursor read from the body and sent back as a parameter; no cursor (or
    /// null, or empty) in the body means the last page.
    Cursor {
        /// JSON pointer to the next cursor, e.g. `/paging/next/after`.
        cursor_path: String,
        /// Parameter that carries the cursor, e.g. `after`.
        cursor_param: String,
        /// Parameter that carries the page size, e.g. `limit`.
        limit_param: String,
        /// The largest page the vendor serves; larger `first` values are served by several
        /// upstream pages.
        max_page_size: u32,
        #[serde(default)]
        placement: RawPlacement,
    },
    /// A page token (`nextPageToken` -> `pageToken`); the same mechanics as `cursor`.
    PageToken {
        token_path: String,
        token_param: String,
        limit_param: String,
        max_page_size: u32,
        #[serde(default)]
        placement: RawPlacement,
    },
    /// The URL of the next page read from the body, relative or absolute; it must stay on
    /// the provider's host.
    NextUrl {
        /// JSON pointer to the next URL, e.g. `/nextRecordsUrl` or `/@odata.nextLink`.
        next_url_path: String,
        /// Parameter carrying the page size on the first request (`$top`); none when the
        /// size goes in a header (see the operation's `headers` and `{pageSize}`).
        #[serde(default)]
        limit_param: Option<String>,
        max_page_size: u32,
        /// The smallest page the vendor accepts (some take no page smaller than 200).
        #[serde(default)]
        min_page_size: Option<u32>,
    },
    /// An offset and a limit. The listing ends when `hasMorePath` is false, or, without
    /// one, on a page shorter than asked.
    Offset {
        offset_param: String,
        limit_param: String,
        max_page_size: u32,
        /// JSON pointer to a boolean "there is more" flag.
        #[serde(default)]
        has_more_path: Option<String>,
        #[serde(default)]
        placement: RawPlacement,
    },
    /// A page number and a page size. The listing ends when `morePath` is false, or,
    /// without one, on a short page. With `nextTokenPath` and `tokenParam`, a token the
    /// vendor returns replaces the page number for the following page (deep paging past a page-number limit).
    PageNumber {
        page_param: String,
        size_param: String,
        max_page_size: u32,
        /// The number of the first page (default 1).
        #[serde(default = "one")]
        first_page: u32,
        #[serde(default)]
        more_path: Option<String>,
        #[serde(default)]
        next_token_path: Option<String>,
        #[serde(default)]
        token_param: Option<String>,
        #[serde(default)]
        placement: RawPlacement,
    },
    /// RFC 8288 `Link: <url>; rel="next"` response header.
    LinkHeader {
        limit_param: String,
        max_page_size: u32,
    },
}

fn one() -> u32 {
    1
}

/// How the vendor reports its rate limits, normalised to the IETF `ratelimit-*` fields.
/// `Retry-After` (seconds or an HTTP date) is always read.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRateLimit {
    /// The vendor's windows (a burst window, a daily budget, ...). Each figure is JSONata
    /// over `{status, headers, body}` (header names lower-case) giving a number.
    #[serde(default)]
    pub windows: Vec<RawRateWindow>,
    /// HTTP statuses that mean "throttled" (default `[429]`). Body-based signals (a 403
    /// with a limit code) are declared in `errors.rules`.
    #[serde(default)]
    pub throttle_statuses: Vec<u16>,
}

/// One rate-limit window of a vendor, e.g. 110 requests per 10 s, or 250,000 per day.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRateWindow {
    /// A short name for logs and the account's budget, e.g. `burst` or `daily`.
    pub name: String,
    /// The budget of the window, e.g. `$number(headers.'x-ratelimit-limit')`.
    #[serde(default)]
    pub limit: Option<String>,
    /// Requests left in the window.
    #[serde(default)]
    pub remaining: Option<String>,
    /// Seconds until the window resets.
    #[serde(default)]
    pub reset: Option<String>,
    /// The window's length in seconds (for `ratelimit-policy`, and as the reset when the
    /// vendor does not say), e.g. `86400`.
    #[serde(default)]
    pub window: Option<String>,
}

/// How to read and classify upstream errors (bodies are summarised, never echoed whole).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawErrors {
    /// JSON pointer to a human message in error bodies, e.g. `/message`.
    #[serde(default)]
    pub message_path: Option<String>,
    /// JSON pointer to a machine category in error bodies, e.g. `/category`.
    #[serde(default)]
    pub category_path: Option<String>,
    /// Rules tried in order before the status-based defaults. Each `when` is JSONata over
    /// `{status, body, headers}` (header names lower-case).
    #[serde(default)]
    pub rules: Vec<RawErrorRule>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawErrorRule {
    /// A JSONata condition, e.g. `status = 403 and body[0].errorCode = 'REQUEST_LIMIT_EXCEEDED'`.
    pub when: String,
    /// What a match means.
    pub class: RawErrorClass,
    /// Also test successful (2xx) responses: vendors that report errors with HTTP 200.
    #[serde(default)]
    pub on_success: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawErrorClass {
    /// Throttled: passed to the caller as `RATE_LIMITED`.
    RateLimited,
    /// The credentials were rejected: `NEEDS_REAUTH`.
    Unauthorized,
    /// Access refused (scopes, permissions): `FORBIDDEN`.
    Forbidden,
    /// The record does not exist: `NOT_FOUND`.
    NotFound,
    /// The vendor is down or overloaded: `UPSTREAM_UNAVAILABLE`.
    Unavailable,
    /// Anything else that failed: `UPSTREAM_ERROR`.
    Error,
}

/// One unified resource served by this provider.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawResource {
    /// JSON pointer to the vendor's record id inside one record (default `/id`).
    #[serde(default = "default_id_path")]
    pub id_path: String,
    /// The record id as JSONata on one record, when a pointer is not enough (e.g.
    /// `$substringAfter(resourceName, 'people/')`). Replaces `idPath`.
    #[serde(default)]
    pub id_expr: Option<String>,
    /// Output field -> JSONata expression evaluated on one upstream record. Keys are SDL
    /// field names, `@link` id fields (`companyId`), `remoteCreatedAt`, `remoteUpdatedAt`,
    /// or `customFields.<name>`.
    #[serde(default)]
    pub fields: IndexMap<String, String>,
    /// One JSONata expression giving the whole output object, for a mapping that is easier
    /// to write at once; `fields` are then merged over its result (`customFields` key by key).
    #[serde(default)]
    pub response_mapping: Option<String>,
    /// Output keys dropped from `responseMapping`'s result (an override removing a field).
    #[serde(default)]
    pub omit_fields: Vec<String>,
    /// The type of each custom field (`customFields.<name>`): values are coerced to it, and a
    /// value that cannot be becomes null with a mapping warning, never a failed request.
    #[serde(default)]
    pub custom_field_types: IndexMap<String, RawCustomFieldType>,
    pub operations: RawOperations,
    /// How reconciliation learns what changed, for a vendor that tracks changes itself (a
    /// sync token). Without it, the resource is reconciled through its listing's
    /// `updatedSince` filter, when it has one.
    #[serde(default)]
    pub changes: Option<super::changes::RawChanges>,
}

/// The type a custom field's values are coerced to.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq)]
pub enum RawCustomFieldType {
    String,
    Int,
    Float,
    Boolean,
    DateTime,
    #[serde(rename = "JSON")]
    Json,
}

fn default_id_path() -> String {
    "/id".to_string()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawOperations {
    #[serde(default)]
    pub list: Option<RawListOperation>,
    /// The listing used instead of `list` when the caller sets a filter: vendors often
    /// search through another endpoint (a `POST .../search` beside the plain listing). Its `filters` say
    /// which filters it translates; `list.filters` are then unused.
    #[serde(default)]
    pub search: Option<RawListOperation>,
    #[serde(default)]
    pub get: Option<RawGetOperation>,
    #[serde(default)]
    pub batch_get: Option<RawBatchGetOperation>,
    #[serde(default)]
    pub create: Option<RawWriteOperation>,
    #[serde(default)]
    pub update: Option<RawWriteOperation>,
    #[serde(default)]
    pub delete: Option<RawDeleteOperation>,
}

/// Lists records, page by page, with the provider's pagination.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawListOperation {
    #[serde(default = "get_method")]
    pub method: String,
    /// Path under the base URL, e.g. `/crm/v3/objects/contacts`.
    pub path: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// Extra headers; `{pageSize}` is replaced by the upstream page size.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The JSON body to send (for POST listings); paging parameters with placement
    /// `json_body` are merged into it.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// JSON pointer to the array of records in the response body, e.g. `/results` (empty:
    /// the body itself is the array).
    pub records_path: String,
    /// The filters of the SDL's `<Type>Filter` this provider can translate; any other is
    /// refused with `BAD_USER_INPUT`.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Query parameters computed from the filters: JSONata over `$filter` (the filters the
    /// caller set). A value replaces the fixed parameter of the same name; undefined leaves
    /// it. E.g. a SOQL `q` with a `WHERE` clause.
    #[serde(default)]
    pub filter_query: IndexMap<String, String>,
    /// The JSON body computed from the filters: JSONata over `$filter` giving an object
    /// whose keys replace those of `body` (e.g. a search endpoint's filter groups).
    #[serde(default)]
    pub filter_body: Option<String>,
    /// Pagination of this operation when it differs from the provider's (a search
    /// endpoint that takes its cursor in the body, say).
    #[serde(default)]
    pub pagination: Option<RawPagination>,
}

/// Fetches one record by its remote id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawGetOperation {
    #[serde(default = "get_method")]
    pub method: String,
    /// Path with an `{id}` placeholder, e.g. `/crm/v3/objects/contacts/{id}`.
    pub path: String,
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// JSON pointer to the record in the response body (empty: the body is the record).
    #[serde(default)]
    pub record_path: String,
}

/// Fetches several records by id in one request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawBatchGetOperation {
    #[serde(default = "get_method")]
    pub method: String,
    pub path: String,
    /// Query parameters as JSONata over `$ids` (an array of remote ids): a string is one
    /// parameter, an array repeats it, undefined omits it. E.g. `"$join($ids, ',')"`.
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// The JSON body as JSONata over `$ids`, e.g. `{ 'inputs': $ids.{ 'id': $ } }`.
    #[serde(default)]
    pub body: Option<String>,
    /// JSON pointer to the array of results.
    pub records_path: String,
    /// JSON pointer, inside each result, to the record (e.g. `/person`); null results and
    /// results without a record are records that do not exist.
    #[serde(default)]
    pub item_path: String,
    /// The most ids one request may carry.
    pub max_ids: u32,
}

/// Creates or updates a record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWriteOperation {
    pub method: String,
    /// Path; updates use `{id}`.
    pub path: String,
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// The request body as JSONata over the unified input (`firstName`, `emails`, ...,
    /// `customFields`); `$id` is the remote id on updates.
    pub body: String,
    /// JSON pointer to the written record in the response, when the vendor returns it.
    #[serde(default)]
    pub record_path: Option<String>,
    /// JSON pointer to the new record's id when the vendor returns only the id (the record
    /// is then fetched with `get`).
    #[serde(default)]
    pub id_path: Option<String>,
    /// Read the record first and bind it (raw, as the vendor sent it) as `$current` in
    /// `body`: for vendors whose updates need the current version tag (an etag).
    #[serde(default)]
    pub read_before: bool,
}

/// Deletes a record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDeleteOperation {
    #[serde(default = "delete_method")]
    pub method: String,
    /// Path with `{id}`.
    pub path: String,
    #[serde(default)]
    pub query: IndexMap<String, String>,
}

fn get_method() -> String {
    "GET".to_string()
}

fn delete_method() -> String {
    "DELETE".to_string()
}
