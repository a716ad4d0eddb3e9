//! Shape baselines for a vendor's list responses, to catch silent schema drift.
//!
//! A vendor can rename a field, wrap its records in a new object, switch its
//! timestamps from ISO 8601 to Unix milliseconds or change its pagination
//! tokens without any version bump. Nothing fails loudly: the gateway just
//! starts returning nulls. So for each (provider, resource) the gateway learns
//! a [`Baseline`] from the shape of real pages ([`PageShape`]) and, for a
//! sample of later pages, asks [`Baseline::compare`] for the ways the page
//! departs from it. A non-empty answer becomes a SCHEMA_DRIFT event carrying
//! [`describe`]'s summary and [`redact`]ed payloads.
//!
//! Nothing here keeps content: a shape holds paths made of object keys (with
//! keys that look like ids, emails or values collapsed to `*`), counts, JSON
//! kinds and format names. Every walk over vendor input is bounded in depth
//! and breadth, so absurd payloads cost at most linear time and never recurse
//! deeply.
//!
//! The rules are deliberately conservative: a false SCHEMA_DRIFT pages a
//! person, while a missed one is usually caught by the next sampled page.
//! Optional fields whose presence wanders, nulls, empty arrays, last pages
//! without a paging object and polymorphic fields with too few samples are
//! all tolerated.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most distinct paths a page or a baseline tracks. A typical record has
/// 30-100 paths; the cap only bites on vendors that key objects by names we
/// cannot recognise as ids, and keeps the stored baseline small.
pub const MAX_PATHS: usize = 512;
/// Deepest path within a record (the record itself is depth 0). Deeper
/// values are still counted at depth 8 as whatever kind they are, but not
/// descended into: drift that deep is rare and not worth unbounded work.
pub const MAX_RECORD_DEPTH: usize = 8;
/// Most envelope keys (top level plus the objects along the records
/// pointer) a page or baseline tracks.
pub const MAX_ENVELOPE_KEYS: usize = 64;
/// A baseline judges nothing until it has seen this many records...
pub const MATURE_RECORDS: u64 = 20;
/// ...over at least this many pages, so one odd page can't define "normal".
pub const MATURE_PAGES: u64 = 2;
/// Depth beyond which [`redact`] writes "…".
pub const REDACT_MAX_DEPTH: usize = 16;

/// Array elements (inside a record) examined per array. Vendor arrays are
/// homogeneous, so a prefix tells their shape; this keeps a 100k-element
/// array from dominating the cost or the kind counts.
const ARRAY_SAMPLE: usize = 32;
/// Keys longer than this are values, not names.
const MAX_KEY_LEN: usize = 64;
/// Strings longer than this are not classified (they are "string"): formats
/// we detect are short, and it bounds the work per string.
const MAX_FORMAT_LEN: usize = 4096;
/// Elements kept per array by [`redact`].
const REDACT_MAX_ARRAY: usize = 3;
/// Keys kept per object by [`redact`].
const REDACT_MAX_KEYS: usize = 64;
/// Total nodes [`redact`] emits, so depth 16 times breadth 64 can't explode.
const REDACT_MAX_NODES: usize = 2_000;

/// Baseline share a kind or format needs to count as "the" kind or format.
const BASELINE_DOMINANCE: f64 = 0.9;
/// Page share a different kind or format needs before we call it a move.
/// Below 1.0 so a page that is mostly converted still counts; well above 0.5
/// so a field that is sometimes odd in the baseline doesn't trip it.
const PAGE_DOMINANCE: f64 = 0.8;
/// Baseline samples of a field needed before its kind or format is judged.
const MIN_BASELINE_SAMPLES: u64 = 20;
/// Page samples of a field needed before its kind or format is judged.
const MIN_PAGE_SAMPLES: u64 = 3;
/// Baseline presence (relative to the parent object) from which a field
/// missing from a whole page counts as vanished.
const VANISH_PRESENCE: f64 = 0.9;
/// Page presence (relative to the parent object) from which a field the
/// baseline never saw counts as appeared.
const APPEAR_PRESENCE: f64 = 0.5;
/// Parent objects the baseline must have seen to judge presence.
const MIN_BASELINE_PARENTS: u64 = 20;
/// Parent objects the page must have to judge presence.
const MIN_PAGE_PARENTS: u64 = 5;
/// Share of baseline pages an envelope key needs before its absence counts.
const ENVELOPE_PRESENCE: f64 = 0.9;
/// Pages with a cursor the baseline needs before cursor form is judged.
const MIN_CURSOR_PAGES: u64 = 2;
/// When the baseline has seen this many records every count is halved, so it
/// follows the vendor's recent behaviour and rarely-seen paths age out.
const HALVE_AT_RECORDS: u64 = 20_000;
/// Most changes one comparison reports; a total overhaul needs no more.
const MAX_CHANGES: usize = 100;
/// Most changes [`describe`] spells out before "and N more".
const DESCRIBE_MAX: usize = 10;
/// Envelope nodes searched when looking for where the records went.
const RELOCATE_MAX_NODES: usize = 256;
/// Envelope depth searched when looking for where the records went.
const RELOCATE_MAX_DEPTH: usize = 4;

/// Lenient base64 decoders: vendors pad or don't, and use either alphabet.
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

// ---------------------------------------------------------------------------
// Kinds and formats

/// JSON kind of a value. `integer` covers whole numbers, including floats
/// with no fraction (`5.0`), because vendors print both for the same field.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// `None` for null: null is "present but null", never a kind of its own,
    /// so fields that go null legitimately don't look like type changes.
    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(Kind::Boolean),
            Value::Number(n) => Some(if number_is_whole(n) {
                Kind::Integer
            } else {
                Kind::Number
            }),
            Value::String(_) => Some(Kind::String),
            Value::Array(_) => Some(Kind::Array),
            Value::Object(_) => Some(Kind::Object),
        }
    }

    /// JSON has one number type, so integer and number are one family for
    /// drift: a price field holding 100 and 99.5 is not drifting.
    fn family(self) -> Kind {
        match self {
            Kind::Number => Kind::Integer,
            other => other,
        }
    }
}

/// Format of a scalar: a refinement of its kind that catches drift the kind
/// can't (an ISO date string becoming a numeric-string timestamp).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
enum Format {
    DateTime,
    Date,
    /// A date in some other notation: "01/05/2024", "Jan 5, 2024", RFC 2822.
    DateText,
    UnixSeconds,
    UnixMillis,
    NumericString,
    Url,
    Email,
    Base64Json,
    /// Any other string.
    #[serde(rename = "string")]
    Text,
    Integer,
    Number,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::DateText => "date-text",
            Format::UnixSeconds => "unix-seconds",
            Format::UnixMillis => "unix-millis",
            Format::NumericString => "numeric-string",
            Format::Url => "url",
            Format::Email => "email",
            Format::Base64Json => "base64-json",
            Format::Text => "string",
            Format::Integer => "integer",
            Format::Number => "number",
        }
    }

    /// `None` for values with no format (null, booleans, containers) and for
    /// empty strings, which vendors use as "unset" in any field and would
    /// otherwise dilute a date field's dominant format.
    fn of(value: &Value) -> Option<Format> {
        match value {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(classify_string(s)),
            Value::Number(n) => Some(classify_number(n)),
            _ => None,
        }
    }

    fn is_temporal(self) -> bool {
        matches!(
            self,
            Format::DateTime
                | Format::Date
                | Format::DateText
                | Format::UnixSeconds
                | Format::UnixMillis
        )
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Format::Integer
                | Format::Number
                | Format::NumericString
                | Format::UnixSeconds
                | Format::UnixMillis
        )
    }

    /// Whether a move from `self` to `to` is drift worth reporting. Dates and
    /// encoded blobs are what break consumers; url/email/plain moves are
    /// usually user-entered data. Numbers drifting in and out of the Unix
    /// ranges are ids growing, not a format change (a real number/string move
    /// shows as KindChanged), except seconds <-> millis.
    fn move_is_drift(self, to: Format) -> bool {
        if self == to {
            return false;
        }
        if self.is_numeric() && to.is_numeric() {
            return matches!(
                (self, to),
                (Format::UnixSeconds, Format::UnixMillis)
                    | (Format::UnixMillis, Format::UnixSeconds)
            );
        }
        self.is_temporal()
            || to.is_temporal()
            || self == Format::Base64Json
            || to == Format::Base64Json
    }
}

fn number_is_whole(n: &serde_json::Number) -> bool {
    if n.is_i64() || n.is_u64() {
        return true;
    }
    // 2^53: beyond it every float is whole and "integer" means nothing.
    n.as_f64()
        .is_some_and(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
}

/// Unix-time ranges: [1e9, 1e10) seconds and [1e12, 1e13) milliseconds both
/// span 2001-09-09 .. 2286, so real timestamps land there and small counts
/// or amounts don't.
fn unix_format(x: f64) -> Option<Format> {
    if (1e9..1e10).contains(&x) {
        Some(Format::UnixSeconds)
    } else if (1e12..1e13).contains(&x) {
        Some(Format::UnixMillis)
    } else {
        None
    }
}

fn classify_number(n: &serde_json::Number) -> Format {
    let whole = number_is_whole(n);
    let x = n
        .as_u64()
        .map(|u| u as f64)
        .or_else(|| n.as_f64())
        .unwrap_or(0.0);
    match unix_format(x) {
        Some(f) => f,
        None if whole => Format::Integer,
        None => Format::Number,
    }
}

fn classify_string(s: &str) -> Format {
    if s.len() > MAX_FORMAT_LEN {
        return Format::Text;
    }
    let b = s.as_bytes();
    if is_date(b) {
        return Format::Date;
    }
    if is_date_time(b) {
        return Format::DateTime;
    }
    if let Some(f) = numeric_string(b) {
        return f;
    }
    if is_date_text(s) {
        return Format::DateText;
    }
    if is_url(b) {
        return Format::Url;
    }
    if is_email(s) {
        return Format::Email;
    }
    if is_base64_json(s) {
        return Format::Base64Json;
    }
    Format::Text
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

/// `YYYY-MM-DD` at the start of `b`; returns the rest.
fn date_prefix(b: &[u8]) -> Option<&[u8]> {
    match b {
        [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2, rest @ ..]
            if [y1, y2, y3, y4].iter().all(|c| c.is_ascii_digit()) =>
        {
            let month = two_digits(*m1, *m2)?;
            let day = two_digits(*d1, *d2)?;
            ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(rest)
        }
        _ => None,
    }
}

fn is_date(b: &[u8]) -> bool {
    date_prefix(b).is_some_and(<[u8]>::is_empty)
}

/// RFC 3339 / ISO 8601 with a time: date, `T` (or a space), `HH:MM`, then
/// seconds, fraction and offset in any of the usual spellings.
fn is_date_time(b: &[u8]) -> bool {
    let Some(rest) = date_prefix(b) else {
        return false;
    };
    let [sep, h1, h2, b':', n1, n2, tail @ ..] = rest else {
        return false;
    };
    if !matches!(sep, b'T' | b't' | b' ') {
        return false;
    }
    let (Some(hour), Some(minute)) = (two_digits(*h1, *h2), two_digits(*n1, *n2)) else {
        return false;
    };
    let tail = [b" UTC".as_slice(), b" GMT", b"UTC"]
        .iter()
        .find_map(|suffix| tail.strip_suffix(*suffix))
        .unwrap_or(tail);
    hour <= 24
        && minute <= 59
        && tail.len() <= 24
        && tail.iter().all(|c| {
            c.is_ascii_digit() || matches!(c, b':' | b'.' | b',' | b'+' | b'-' | b'Z' | b'z')
        })
}

/// Digits (maybe signed, maybe one decimal point). Pure digit strings in the
/// Unix ranges are timestamps; the rest are numeric strings (ids, amounts).
fn numeric_string(b: &[u8]) -> Option<Format> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    let mut dots = 0usize;
    for c in digits {
        match c {
            b'0'..=b'9' => {}
            b'.' => dots = dots.saturating_add(1),
            _ => return None,
        }
    }
    if dots > 1 || digits.first() == Some(&b'.') || digits.last() == Some(&b'.') {
        return None;
    }
    if dots == 0 && digits.len() == b.len() {
        // Unsigned whole: maybe a timestamp. Length 10 or 13 only, so ids
        // with leading zeros aren't read as times.
        let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if let Some(f) = unix_format(value as f64).filter(|_| matches!(digits.len(), 10 | 13)) {
            return Some(f);
        }
    }
    Some(Format::NumericString)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAY_WORDS: [&str; 14] = [
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const TIME_WORDS: [&str; 6] = ["am", "pm", "utc", "gmt", "at", "sept"];

/// Dates in other notations. Strict on purpose: every word must be a month,
/// weekday or time word, so names and sentences never match.
fn is_date_text(s: &str) -> bool {
    if s.len() > 40 {
        return false;
    }
    numeric_date_text(s.as_bytes()) || worded_date_text(s)
}

/// `MM/DD/YYYY`, `DD.MM.YYYY`, `YYYY/MM/DD`, `D-M-YY`, maybe followed by a time.
fn numeric_date_text(b: &[u8]) -> bool {
    let mut groups = [0usize; 3];
    let mut seps = [0u8; 2];
    let mut group = 0usize;
    let mut end = b.len();
    for (i, c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            match groups.get_mut(group) {
                Some(len) => *len = len.saturating_add(1),
                None => return false,
            }
        } else if matches!(c, b'/' | b'.' | b'-') && group < 2 {
            if let Some(sep) = seps.get_mut(group) {
                *sep = *c;
            }
            group = group.saturating_add(1);
        } else {
            end = i;
            break;
        }
    }
    let [sep1, sep2] = seps;
    if group != 2 || sep1 != sep2 {
        return false;
    }
    let shape_ok = match groups {
        [1 | 2, 1 | 2, 4] => true,
        [1 | 2, 1 | 2, 2] => sep1 != b'.',
        [4, 1 | 2, 1 | 2] => sep1 != b'-',
        _ => false,
    };
    let rest = b.get(end..).unwrap_or_default();
    shape_ok
        && (rest.is_empty()
            || (matches!(rest.first(), Some(b' ' | b'T'))
                && rest.len() <= 32
                && is_time_tail(rest)))
}

fn is_time_tail(rest: &[u8]) -> bool {
    rest.iter().all(|c| {
        c.is_ascii_digit()
            || matches!(
                c,
                b' ' | b':' | b'.' | b'+' | b'-' | b'T' | b'Z' | b'A' | b'P' | b'M'
            )
    })
}

fn worded_date_text(s: &str) -> bool {
    let mut month = false;
    let mut year = false;
    for word in s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if word.bytes().all(|c| c.is_ascii_digit()) {
            if word.len() > 4 {
                return false;
            }
            year |= word.len() == 4 && (word.starts_with("19") || word.starts_with("20"));
            continue;
        }
        // Allow "5th", "10:00pm"-style glue by stripping leading digits.
        let letters = word.trim_start_matches(|c: char| c.is_ascii_digit());
        if !letters.bytes().all(|c| c.is_ascii_alphabetic()) {
            return false;
        }
        let lower = letters.to_ascii_lowercase();
        let is_month = MONTHS.contains(&lower.as_str()) || MONTH_NAMES.contains(&lower.as_str());
        let is_other = DAY_WORDS.contains(&lower.as_str())
            || TIME_WORDS.contains(&lower.as_str())
            || matches!(lower.as_str(), "st" | "nd" | "rd" | "th" | "t" | "z");
        if !is_month && !is_other {
            return false;
        }
        month |= is_month;
    }
    month && year
}

fn is_url(b: &[u8]) -> bool {
    let lower_starts = |prefix: &[u8]| {
        b.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    (lower_starts(b"https://") || lower_starts(b"http://"))
        && b.len() > 8
        && !b.iter().any(u8::is_ascii_whitespace)
}

fn is_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        _ => false,
    }
}

/// Whether `s` is base64 (either alphabet, padded or not) of a JSON object
/// or array, the usual shape of "stateless" cursors.
fn is_base64_json(s: &str) -> bool {
    let b = s.as_bytes();
    // Base64 of `{` starts with `e`, of `[` with `W`; checking first skips
    // decoding every ordinary word. JSON with leading whitespace is missed,
    // which vendors don't produce.
    if s.len() < 4 || s.len() > MAX_FORMAT_LEN || !matches!(b.first(), Some(b'e' | b'W')) {
        return false;
    }
    let url_safe = b.iter().any(|c| matches!(c, b'-' | b'_'));
    let decoded = if url_safe {
        B64_URL_SAFE.decode(b)
    } else {
        B64_STANDARD.decode(b)
    };
    decoded.is_ok_and(|bytes| is_json_container(&bytes))
}

fn is_json_container(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

// ---------------------------------------------------------------------------
// Keys and paths

/// Whether an object key is a value (an id, a date, an email, a blob) rather
/// than a field name. Such keys are collapsed to `*`, so a vendor keying a
/// map by record id yields one path instead of one per record, and no
/// personal data rides along in a path.
fn key_is_value(key: &str) -> bool {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('@') {
        return true;
    }
    if key.chars().any(char::is_control) {
        return true;
    }
    let digits = key.bytes().filter(u8::is_ascii_digit).count();
    if digits == key.len() || digits >= 6 {
        return true;
    }
    // UUIDs and hex ids (object ids, hashes): long, all hex, with digits.
    let hex = key.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
    hex && key.len() >= 16 && digits > 0
}

/// A key as it appears in a path: value-like keys collapse to `*`, and the
/// path syntax characters `.`, `[`, `]` become `_` so a path's parent can be
/// found by its last `.`.
fn path_key(key: &str) -> Cow<'_, str> {
    if key_is_value(key) {
        Cow::Borrowed("*")
    } else if key.contains(['.', '[', ']']) {
        Cow::Owned(key.replace(['.', '[', ']'], "_"))
    } else {
        Cow::Borrowed(key)
    }
}

/// The path of the object holding `path`'s key (`""` is the record), or for
/// an array element path (`x[]`) the array. `None` for the record itself.
fn parent_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if let Some(array) = path.strip_suffix("[]") {
        return Some(array);
    }
    match path.rfind('.') {
        Some(i) => path.get(..i),
        None => Some(""),
    }
}

/// Paths that stand for "some member of a collection" have no presence of
/// their own: array elements (`x[]`) and value-keyed map entries (`x.*`). An
/// array or map going empty, or filling up, is content, not drift.
fn is_element(path: &str) -> bool {
    path.ends_with("[]") || path.ends_with(".*") || path == "*"
}

// ---------------------------------------------------------------------------
// Per-path statistics

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counts for one path. `records`/`non_null`/`objects` count records (each
/// at most once); `kinds`/`formats` count occurrences (array elements each
/// count).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct FieldStats {
    /// Records in which the path occurs at all, null included.
    #[serde(skip_serializing_if = "is_zero")]
    records: u64,
    /// Records in which it occurs with a non-null value.
    #[serde(skip_serializing_if = "is_zero")]
    non_null: u64,
    /// Records in which it occurs as an object: the denominator for its
    /// children's presence, so a field inside an optional object isn't
    /// judged optional just because its parent is.
    #[serde(skip_serializing_if = "is_zero")]
    objects: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    kinds: BTreeMap<Kind, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    formats: BTreeMap<Format, u64>,
}

impl FieldStats {
    fn merge(&mut self, other: &FieldStats) {
        self.records = self.records.saturating_add(other.records);
        self.non_null = self.non_null.saturating_add(other.non_null);
        self.objects = self.objects.saturating_add(other.objects);
        for (kind, n) in &other.kinds {
            let slot = self.kinds.entry(*kind).or_insert(0);
            *slot = slot.saturating_add(*n);
        }
        for (format, n) in &other.formats {
            let slot = self.formats.entry(*format).or_insert(0);
            *slot = slot.saturating_add(*n);
        }
    }

    fn halve(&mut self) {
        self.records /= 2;
        self.non_null /= 2;
        self.objects /= 2;
        for n in self.kinds.values_mut() {
            *n /= 2;
        }
        self.kinds.retain(|_, n| *n > 0);
        for n in self.formats.values_mut() {
            *n /= 2;
        }
        self.formats.retain(|_, n| *n > 0);
    }

    /// Dominant kind family: (family, name to report, share, samples).
    fn dominant_kind(&self) -> Option<(Kind, &'static str, f64, u64)> {
        let mut families: BTreeMap<Kind, u64> = BTreeMap::new();
        for (kind, n) in &self.kinds {
            let slot = families.entry(kind.family()).or_insert(0);
            *slot = slot.saturating_add(*n);
        }
        let total = families.values().fold(0u64, |a, n| a.saturating_add(*n));
        let (family, n) = dominant(&families)?;
        let name = match family {
            Kind::Boolean => "boolean",
            Kind::Integer | Kind::Number => {
                let ints = self.kinds.get(&Kind::Integer).copied().unwrap_or(0);
                let floats = self.kinds.get(&Kind::Number).copied().unwrap_or(0);
                if floats > ints { "number" } else { "integer" }
            }
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        };
        Some((family, name, ratio(n, total), total))
    }

    fn dominant_format(&self) -> Option<(Format, f64, u64)> {
        let total = self
            .formats
            .values()
            .fold(0u64, |a, n| a.saturating_add(*n));
        let (format, n) = dominant(&self.formats)?;
        Some((format, ratio(n, total), total))
    }
}

fn dominant<K: Copy>(counts: &BTreeMap<K, u64>) -> Option<(K, u64)> {
    let mut best: Option<(K, u64)> = None;
    for (k, n) in counts {
        if best.is_none_or(|(_, b)| *n > b) {
            best = Some((*k, *n));
        }
    }
    best
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn bump(n: &mut u64) {
    *n = n.saturating_add(1);
}

// ---------------------------------------------------------------------------
// Cursors

/// Form of a pagination token.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
enum CursorForm {
    Integer,
    Url,
    Json,
    Base64Json,
    Opaque,
}

impl CursorForm {
    fn name(self) -> &'static str {
        match self {
            CursorForm::Integer => "integer",
            CursorForm::Url => "url",
            CursorForm::Json => "json",
            CursorForm::Base64Json => "base64-json",
            CursorForm::Opaque => "opaque",
        }
    }

    /// `None` for an absent or blank token (there is no next page).
    fn of(cursor: &str) -> Option<CursorForm> {
        let c = cursor.trim();
        if c.is_empty() {
            return None;
        }
        let b = c.as_bytes();
        Some(if b.len() <= 20 && b.iter().all(u8::is_ascii_digit) {
            CursorForm::Integer
        } else if is_url(b) || c.starts_with('/') || c.starts_with('?') {
            CursorForm::Url
        } else if c.len() <= MAX_FORMAT_LEN && is_json_container(b) {
            CursorForm::Json
        } else if is_base64_json(c) {
            CursorForm::Base64Json
        } else {
            CursorForm::Opaque
        })
    }
}

// ---------------------------------------------------------------------------
// Page shapes

/// The shape of one list response: what its envelope, records and cursor
/// look like, without content.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PageShape {
    /// Records in the array at the records pointer.
    records: u64,
    /// Whether the records pointer resolved to an array.
    records_found: bool,
    /// When it didn't: where an array now is (a JSON pointer, value-like
    /// keys as `*`), if one is within reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    records_now_at: Option<String>,
    /// Envelope keys (top level, then `a.key` for the objects along the
    /// records pointer) and whether each held a non-null value.
    envelope: BTreeMap<String, bool>,
    /// More envelope keys existed than [`MAX_ENVELOPE_KEYS`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    envelope_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<CursorForm>,
    /// Per-path statistics; `""` is the record itself.
    fields: BTreeMap<String, FieldStats>,
    /// More paths existed than [`MAX_PATHS`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paths_truncated: bool,
}

impl PageShape {
    /// `body`: the whole decoded response; `records_pointer`: JSON pointer of
    /// the records array (e.g. "/results", "" for a top-level array);
    /// `cursor`: the pagination token the gateway extracted for the next
    /// page, if any.
    ///
    /// Linear in the size of the page (arrays inside records are sampled),
    /// recursion bounded by [`MAX_RECORD_DEPTH`].
    pub fn of(body: &Value, records_pointer: &str, cursor: Option<&str>) -> PageShape {
        let mut shape = PageShape {
            cursor: cursor.and_then(CursorForm::of),
            ..PageShape::default()
        };
        let target = shape.walk_envelope(body, records_pointer);
        match target {
            Some(Value::Array(records)) => {
                shape.records_found = true;
                shape.records = u64::try_from(records.len()).unwrap_or(u64::MAX);
                let mut walker = Walker::default();
                for record in records {
                    walker.record = walker.record.saturating_add(1);
                    walker.walk(record, 0);
                }
                shape.paths_truncated = walker.truncated;
                shape.fields = walker
                    .slots
                    .into_iter()
                    .map(|(path, slot)| (path, slot.stats))
                    .collect();
            }
            _ => shape.records_now_at = find_records(body),
        }
        shape
    }

    /// How many records the page had (0 when the records weren't where the
    /// pointer says).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether the records pointer resolved to an array.
    pub fn records_found(&self) -> bool {
        self.records_found
    }

    /// Follows the records pointer from the body, noting the keys of every
    /// object on the way (the envelope). Returns the value at the pointer.
    fn walk_envelope<'a>(&mut self, body: &'a Value, pointer: &str) -> Option<&'a Value> {
        if pointer.is_empty() {
            return Some(body);
        }
        let segments = pointer.strip_prefix('/')?;
        let mut current = body;
        let mut prefix = String::new();
        for raw in segments.split('/') {
            let segment = raw.replace("~1", "/").replace("~0", "~");
            if let Value::Object(map) = current {
                self.note_envelope(map, &prefix);
            }
            current = match current {
                Value::Object(map) => map.get(&segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(&path_key(&segment));
        }
        Some(current)
    }

    fn note_envelope(&mut self, map: &Map<String, Value>, prefix: &str) {
        for (key, value) in map {
            let key = path_key(key);
            let label = if prefix.is_empty() {
                key.into_owned()
            } else {
                format!("{prefix}.{key}")
            };
            let non_null = !value.is_null();
            if let Some(seen) = self.envelope.get_mut(&label) {
                *seen |= non_null;
            } else if self.envelope.len() < MAX_ENVELOPE_KEYS {
                self.envelope.insert(label, non_null);
            } else {
                self.envelope_truncated = true;
                return;
            }
        }
    }
}

/// Looks for where the records went when the pointer no longer finds them:
/// breadth-first through envelope objects (not into arrays), preferring an
/// array of objects, then any array. Bounded in nodes and depth.
fn find_records(body: &Value) -> Option<String> {
    if body.is_array() {
        return Some(String::new());
    }
    let mut queue: std::collections::VecDeque<(&Value, String, usize)> =
        std::collections::VecDeque::new();
    queue.push_back((body, String::new(), 0));
    let mut visited = 0usize;
    let mut any_array: Option<String> = None;
    while let Some((value, pointer, depth)) = queue.pop_front() {
        let Value::Object(map) = value else {
            continue;
        };
        for (key, child) in map {
            visited = visited.saturating_add(1);
            if visited > RELOCATE_MAX_NODES {
                return any_array;
            }
            let segment = path_key(key).replace('~', "~0").replace('/', "~1");
            let child_pointer = format!("{pointer}/{segment}");
            match child {
                Value::Array(items) if items.first().is_some_and(Value::is_object) => {
                    return Some(child_pointer);
                }
                Value::Array(_) if any_array.is_none() => any_array = Some(child_pointer),
                Value::Object(_) if depth.saturating_add(1) < RELOCATE_MAX_DEPTH => {
                    queue.push_back((child, child_pointer, depth.saturating_add(1)));
                }
                _ => {}
            }
        }
    }
    any_array
}

/// Per-path accumulator while walking a page.
#[derive(Default)]
struct Slot {
    stats: FieldStats,
    // Index of the last record counted in each per-record counter, so a path
    // occurring many times in one record (array elements, `*` keys) counts
    // that record once.
    seen: u64,
    seen_non_null: u64,
    seen_object: u64,
}

#[derive(Default)]
struct Walker {
    slots: HashMap<String, Slot>,
    /// The current path, extended and truncated in place so walking costs no
    /// allocation per node except for new paths.
    path: String,
    /// 1-based index of the record being walked.
    record: u64,
    truncated: bool,
}

impl Walker {
    fn walk(&mut self, value: &Value, depth: usize) {
        self.note(value);
        if depth >= MAX_RECORD_DEPTH {
            return;
        }
        let depth = depth.saturating_add(1);
        let len = self.path.len();
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if !self.path.is_empty() {
                        self.path.push('.');
                    }
                    self.path.push_str(&path_key(key));
                    self.walk(child, depth);
                    self.path.truncate(len);
                }
            }
            Value::Array(items) => {
                self.path.push_str("[]");
                for child in items.iter().take(ARRAY_SAMPLE) {
                    self.walk(child, depth);
                }
                self.path.truncate(len);
            }
            _ => {}
        }
    }

    fn note(&mut self, value: &Value) {
        let record = self.record;
        if !self.slots.contains_key(self.path.as_str()) {
            if self.slots.len() >= MAX_PATHS {
                self.truncated = true;
                return;
            }
            self.slots.insert(self.path.clone(), Slot::default());
        }
        let Some(slot) = self.slots.get_mut(self.path.as_str()) else {
            return;
        };
        if slot.seen != record {
            slot.seen = record;
            bump(&mut slot.stats.records);
        }
        let Some(kind) = Kind::of(value) else {
            return;
        };
        if slot.seen_non_null != record {
            slot.seen_non_null = record;
            bump(&mut slot.stats.non_null);
        }
        if kind == Kind::Object && slot.seen_object != record {
            slot.seen_object = record;
            bump(&mut slot.stats.objects);
        }
        bump(slot.stats.kinds.entry(kind).or_insert(0));
        if let Some(format) = Format::of(value) {
            bump(slot.stats.formats.entry(format).or_insert(0));
        }
    }
}

// ---------------------------------------------------------------------------
// Baselines

/// What the gateway has learned about a resource's responses.
///
/// Bounded: at most [`MAX_PATHS`] paths and [`MAX_ENVELOPE_KEYS`] envelope
/// keys; counts saturate and are halved once they reach 20,000 records.
/// About 3-4 KB of JSON for a typical 30-field record.
#[derive(Default, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Baseline {
    pages: u64,
    records: u64,
    /// Pages whose records were at the pointer.
    records_found: u64,
    fields: BTreeMap<String, FieldStats>,
    /// A path was ever dropped for the cap, so "never seen" can't be trusted
    /// and FieldAppeared is off. Sticky: an operator resets the baseline.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paths_full: bool,
    /// Envelope key -> pages in which it occurred (null included).
    envelope: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    envelope_full: bool,
    /// Cursor form -> pages whose cursor had it.
    cursors: BTreeMap<CursorForm, u64>,
}

impl Baseline {
    /// Folds a page that matched (or that starts the baseline) into it.
    pub fn learn(&mut self, page: &PageShape) {
        bump(&mut self.pages);
        self.records = self.records.saturating_add(page.records);
        if page.records_found {
            bump(&mut self.records_found);
        }
        for (path, stats) in &page.fields {
            if let Some(known) = self.fields.get_mut(path) {
                known.merge(stats);
            } else if self.fields.len() < MAX_PATHS {
                self.fields.insert(path.clone(), stats.clone());
            } else {
                self.paths_full = true;
            }
        }
        self.paths_full |= page.paths_truncated;
        for key in page.envelope.keys() {
            if let Some(pages) = self.envelope.get_mut(key) {
                bump(pages);
            } else if self.envelope.len() < MAX_ENVELOPE_KEYS {
                self.envelope.insert(key.clone(), 1);
            } else {
                self.envelope_full = true;
            }
        }
        self.envelope_full |= page.envelope_truncated;
        if let Some(form) = page.cursor {
            bump(self.cursors.entry(form).or_insert(0));
        }
        // A loop, as one huge page can be worth several halvings; each halves
        // `records`, so it ends within 64 rounds.
        while self.records >= HALVE_AT_RECORDS {
            self.halve();
        }
    }

    /// Whether enough was seen to judge: at least [`MATURE_RECORDS`] records
    /// over at least [`MATURE_PAGES`] pages. [`Baseline::compare`] reports
    /// nothing before that.
    pub fn is_mature(&self) -> bool {
        self.records >= MATURE_RECORDS && self.pages >= MATURE_PAGES
    }

    /// Pages learned (after halving, roughly the recent half).
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Records learned (after halving, roughly the recent half).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The ways `page` departs from the baseline; empty when it does not, when
    /// the baseline is not mature, or when the page is too small to judge (an
    /// empty page says nothing about fields, though its envelope and cursor
    /// are still judged).
    pub fn compare(&self, page: &PageShape) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.is_mature() {
            return changes;
        }
        if let Some(change) = self.wrapper_change(page) {
            changes.push(change);
        }
        if let Some(change) = self.cursor_change(page) {
            changes.push(change);
        }
        self.field_changes(page, &mut changes);
        changes.truncate(MAX_CHANGES);
        changes
    }

    fn wrapper_change(&self, page: &PageShape) -> Option<Change> {
        // No records at the pointer and no array anywhere in reach: an empty
        // page of a vendor that omits the key, or an error body (the gateway
        // judges those by status). Neither says anything about the shape.
        if !page.records_found && page.records_now_at.is_none() {
            return None;
        }
        let records_now_at = if self.records_found > 0 && !page.records_found {
            page.records_now_at.clone()
        } else {
            None
        };
        // A page without a next cursor is the last page, and vendors commonly
        // drop their paging object there; removals are judged only on pages
        // that have a cursor, or when the records moved anyway.
        let judge_removals =
            !page.envelope_truncated && (page.cursor.is_some() || records_now_at.is_some());
        // A new key holding null is tolerated: vendors emit optional meta
        // keys as null.
        let added: Vec<String> = if self.envelope_full {
            Vec::new()
        } else {
            page.envelope
                .iter()
                .filter(|(key, non_null)| **non_null && !self.envelope.contains_key(*key))
                .map(|(key, _)| key.clone())
                .collect()
        };
        let removed: Vec<String> = if judge_removals {
            self.envelope
                .iter()
                .filter(|(key, pages)| {
                    ratio(**pages, self.pages) >= ENVELOPE_PRESENCE
                        && !page.envelope.contains_key(*key)
                })
                .map(|(key, _)| key.clone())
                .collect()
        } else {
            Vec::new()
        };
        if added.is_empty() && removed.is_empty() && records_now_at.is_none() {
            return None;
        }
        Some(Change::WrapperChanged {
            added,
            removed,
            records_now_at,
        })
    }

    fn cursor_change(&self, page: &PageShape) -> Option<Change> {
        let to = page.cursor?;
        let with_cursor = self
            .cursors
            .values()
            .fold(0u64, |a, n| a.saturating_add(*n));
        if with_cursor < MIN_CURSOR_PAGES || self.cursors.len() != 1 {
            return None;
        }
        let (from, _) = dominant(&self.cursors)?;
        (from != to).then(|| Change::CursorChanged {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        })
    }

    fn field_changes(&self, page: &PageShape, changes: &mut Vec<Change>) {
        let objects = |fields: &BTreeMap<String, FieldStats>, path: &str| {
            fields.get(path).map_or(0, |s| s.objects)
        };
        for (path, known) in &self.fields {
            if changes.len() >= MAX_CHANGES {
                return;
            }
            let seen = page.fields.get(path);
            // Vanished: judged against the parent object, on both sides, so
            // a whole object going missing reports once (at the object) and
            // a field inside an optional object isn't judged by the records
            // lacking that object. Skipped when the page dropped paths for
            // the cap (absence would be ours, not the vendor's).
            if let Some(parent) = parent_of(path).filter(|_| !is_element(path)) {
                let known_parents = objects(&self.fields, parent);
                let page_parents = objects(&page.fields, parent);
                let presence = ratio(known.records, known_parents).min(1.0);
                if !page.paths_truncated
                    && known_parents >= MIN_BASELINE_PARENTS
                    && presence >= VANISH_PRESENCE
                    && page_parents >= MIN_PAGE_PARENTS
                    && seen.is_none_or(|s| s.records == 0)
                {
                    changes.push(Change::FieldVanished {
                        path: path.clone(),
                        baseline_presence: presence,
                    });
                    continue;
                }
            }
            let Some(seen) = seen else {
                continue;
            };
            // A format move is the more specific finding (date-time string
            // -> unix-millis integer is also string -> integer); report it
            // alone.
            if let Some(change) = format_change(path, known, seen) {
                changes.push(change);
            } else if let Some(change) = kind_change(path, known, seen) {
                changes.push(change);
            }
        }
        if self.paths_full {
            return;
        }
        for (path, seen) in &page.fields {
            if changes.len() >= MAX_CHANGES {
                return;
            }
            if self.fields.contains_key(path) || is_element(path) {
                continue;
            }
            // Only the topmost new path: the parent must be known, so a new
            // object with ten fields reports once.
            let Some(parent) = parent_of(path) else {
                continue;
            };
            let page_parents = objects(&page.fields, parent);
            if objects(&self.fields, parent) >= MIN_BASELINE_PARENTS
                && page_parents >= MIN_PAGE_PARENTS
                && ratio(seen.non_null, page_parents) >= APPEAR_PRESENCE
            {
                changes.push(Change::FieldAppeared { path: path.clone() });
            }
        }
    }

    fn halve(&mut self) {
        self.pages = halve_pages(self.pages);
        self.records = self.records.div_ceil(2);
        self.records_found = halve_pages(self.records_found);
        for stats in self.fields.values_mut() {
            stats.halve();
        }
        // Paths seen once, long ago, age out and free room under the cap.
        self.fields.retain(|_, s| s.records > 0);
        for pages in self.envelope.values_mut() {
            *pages = halve_pages(*pages);
        }
        for pages in self.cursors.values_mut() {
            *pages = halve_pages(*pages);
        }
    }
}

/// Halves a page count, rounding up and never below [`MATURE_PAGES`] (when
/// it was there), so a baseline fed a few huge pages stays mature. Monotone
/// and the same for equal inputs, so a key seen in every page still is.
fn halve_pages(pages: u64) -> u64 {
    pages.div_ceil(2).max(pages.min(MATURE_PAGES))
}

fn kind_change(path: &str, known: &FieldStats, seen: &FieldStats) -> Option<Change> {
    let (from, from_name, known_share, known_n) = known.dominant_kind()?;
    let (to, to_name, seen_share, seen_n) = seen.dominant_kind()?;
    (from != to
        && known_n >= MIN_BASELINE_SAMPLES
        && known_share >= BASELINE_DOMINANCE
        && seen_n >= MIN_PAGE_SAMPLES
        && seen_share >= PAGE_DOMINANCE)
        .then(|| Change::KindChanged {
            path: path.to_owned(),
            from: from_name.to_owned(),
            to: to_name.to_owned(),
        })
}

fn format_change(path: &str, known: &FieldStats, seen: &FieldStats) -> Option<Change> {
    let (from, known_share, known_n) = known.dominant_format()?;
    let (to, seen_share, seen_n) = seen.dominant_format()?;
    (from.move_is_drift(to)
        && known_n >= MIN_BASELINE_SAMPLES
        && known_share >= BASELINE_DOMINANCE
        && seen_n >= MIN_PAGE_SAMPLES
        && seen_share >= PAGE_DOMINANCE)
        .then(|| Change::FormatChanged {
            path: path.to_owned(),
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        })
}

// ---------------------------------------------------------------------------
// Changes

/// One way a page departs from its baseline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(
    tag = "change",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Change {
    /// A field present in (nearly) every record of the baseline is absent
    /// from every record of this page (a rename shows as FieldVanished +
    /// FieldAppeared). Presence is relative to the parent object.
    FieldVanished {
        path: String,
        baseline_presence: f64,
    },
    /// A field present in most records of this page that the baseline never
    /// saw.
    FieldAppeared { path: String },
    /// A field's JSON type moved (string -> number, object -> string, ...).
    KindChanged {
        path: String,
        from: String,
        to: String,
    },
    /// A field's format moved: ISO 8601 dates/date-times -> Unix timestamps
    /// (numbers or numeric strings, seconds or milliseconds), or the
    /// reverse, or another date format.
    FormatChanged {
        path: String,
        from: String,
        to: String,
    },
    /// The envelope around the records changed: keys added/removed at the
    /// top level (and along the records pointer), or the records are no
    /// longer where they were (then `records_now_at` says where an array is).
    WrapperChanged {
        added: Vec<String>,
        removed: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        records_now_at: Option<String>,
    },
    /// The pagination token's form moved: e.g. an opaque string / integer
    /// offset / URL -> a base64-encoded JSON blob.
    CursorChanged { from: String, to: String },
}

fn show_path(path: &str) -> &str {
    if path.is_empty() { "(record)" } else { path }
}

fn describe_one(change: &Change) -> String {
    match change {
        Change::FieldVanished {
            path,
            baseline_presence,
        } => format!(
            "`{}` vanished (was in {:.0}% of records)",
            show_path(path),
            baseline_presence * 100.0
        ),
        Change::FieldAppeared { path } => format!("`{}` appeared", show_path(path)),
        Change::KindChanged { path, from, to } | Change::FormatChanged { path, from, to } => {
            format!("`{}` changed from {from} to {to}", show_path(path))
        }
        Change::WrapperChanged {
            added,
            removed,
            records_now_at,
        } => {
            let mut parts = Vec::new();
            let quote = |keys: &[String]| {
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !added.is_empty() {
                parts.push(format!("added {}", quote(added)));
            }
            if !removed.is_empty() {
                parts.push(format!("removed {}", quote(removed)));
            }
            if let Some(at) = records_now_at {
                parts.push(format!("records now at `{at}`"));
            }
            format!("envelope changed ({})", parts.join("; "))
        }
        Change::CursorChanged { from, to } => {
            format!("pagination cursor changed from {from} to {to}")
        }
    }
}

/// Human-readable one-line summary of a list of changes, e.g. "`properties.email`
/// vanished (was in 100% of records); `createdAt` changed from date-time to
/// unix-millis". At most ten changes are spelled out.
pub fn describe(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no shape changes".to_owned();
    }
    let mut parts: Vec<String> = changes
        .iter()
        .take(DESCRIBE_MAX)
        .map(describe_one)
        .collect();
    if changes.len() > DESCRIBE_MAX {
        parts.push(format!("and {} more", changes.len() - DESCRIBE_MAX));
    }
    // Changes may come back from storage; keep the summary on one line
    // whatever they hold.
    parts
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------
// Redaction

/// A value with every leaf replaced by its type name ("string", "integer",
/// "number", "boolean", "null", "date-time", "date", "date-text",
/// "unix-seconds", "unix-millis", "numeric-string", "url", "email",
/// "base64-json"), object keys kept (except value-like keys, which become
/// `*`: they can be ids or emails), arrays cut to 3 elements plus a note of
/// how many there were, objects cut to 64 keys plus a note. Never returns any
/// original string or number content. Depth capped at [`REDACT_MAX_DEPTH`]
/// and output at 2,000 nodes; what lies beyond becomes "…".
pub fn redact(value: &Value) -> Value {
    let mut budget = REDACT_MAX_NODES;
    redact_at(value, 0, &mut budget)
}

fn redact_at(value: &Value, depth: usize, budget: &mut usize) -> Value {
    if *budget == 0 || depth >= REDACT_MAX_DEPTH {
        return Value::String("…".to_owned());
    }
    *budget = budget.saturating_sub(1);
    let depth = depth.saturating_add(1);
    let name = |s: &str| Value::String(s.to_owned());
    match value {
        Value::Null => name("null"),
        Value::Bool(_) => name("boolean"),
        Value::Number(_) | Value::String(_) => {
            name(Format::of(value).map_or("string", Format::name))
        }
        Value::Array(items) => {
            let mut out: Vec<Value> = Vec::new();
            for item in items.iter().take(REDACT_MAX_ARRAY) {
                // Stop at an exhausted budget rather than emit a "…" per
                // element: containers would otherwise multiply the output.
                if *budget == 0 {
                    break;
                }
                out.push(redact_at(item, depth, budget));
            }
            if items.len() > out.len() {
                out.push(Value::String(format!("… {} items in all", items.len())));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                if out.len() >= REDACT_MAX_KEYS || *budget == 0 {
                    break;
                }
                let key = if key_is_value(key) { "*" } else { key.as_str() };
                // Several value-like keys collapse into one `*`.
                if !out.contains_key(key) {
                    out.insert(key.to_owned(), redact_at(child, depth, budget));
                }
            }
            let dropped = map.len().saturating_sub(out.len());
            if dropped > 0 {
                out.insert(
                    "…".to_owned(),
                    Value::String(format!("{dropped} more keys")),
                );
            }
            Value::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // ---- realistic CRM-like pages -------------------------------------

    /// How a page's optional fields are filled; deterministic by record index
    /// so tests don't depend on a random draw.
    #[derive(Clone, Copy)]
    struct Mix {
        phone: fn(u64) -> bool,
        company: fn(u64) -> bool,
        jobtitle: fn(u64) -> bool,
        second_email: fn(u64) -> bool,
        null_lastname: fn(u64) -> bool,
    }

    const USUAL: Mix = Mix {
        phone: |i| i % 2 == 0,
        company: |i| i % 5 < 2,
        jobtitle: |i| i % 10 == 3,
        second_email: |i| i % 3 == 0,
        null_lastname: |_| false,
    };

    fn iso(i: u64) -> String {
        format!(
            "2024-{:02}-{:02}T{:02}:{:02}:00.000Z",
            i % 12 + 1,
            i % 28 + 1,
            i % 24,
            i % 60
        )
    }

    fn contact(i: u64, mix: Mix) -> Value {
        let mut props = json!({
            "email": format!("user{i}@example.com"),
            "firstname": "Ann",
            "lastname": if (mix.null_lastname)(i) { Value::Null } else { json!("Lee") },
            "createdate": iso(i),
            "lastmodifieddate": iso(i + 7),
            "lifecyclestage": "lead",
            "object_id": (1000 + i).to_string(),
        });
        if let Some(p) = props.as_object_mut() {
            if (mix.phone)(i) {
                p.insert("phone".into(), json!(format!("+1 555 01{:02}", i % 100)));
            }
            if (mix.company)(i) {
                p.insert("company".into(), json!("Acme Corp"));
            }
            if (mix.jobtitle)(i) {
                p.insert("jobtitle".into(), json!("Engineer"));
            }
        }
        let mut emails = vec![json!({"value": format!("user{i}@example.com"), "primary": true})];
        if (mix.second_email)(i) {
            emails.push(json!({"value": format!("alt{i}@example.org"), "primary": false}));
        }
        json!({
            "id": (1000 + i).to_string(),
            "properties": props,
            "createdAt": iso(i),
            "updatedAt": iso(i + 3),
            "archived": false,
            "emails": emails,
        })
    }

    fn records(from: u64, n: u64, mix: Mix) -> Vec<Value> {
        (from..from + n).map(|i| contact(i, mix)).collect()
    }

    fn body(records: Vec<Value>, cursor: Option<&str>) -> Value {
        match cursor {
            Some(c) => json!({
                "results": records,
                "paging": {"next": {"after": c, "link": "https://api.example.com/contacts?after=x"}},
            }),
            None => json!({ "results": records }),
        }
    }

    const CURSORS: [&str; 3] = ["AoJ8a9f2kLqZ", "Bx7Pq2mN4vTy", "Cz1Rw8sK3uHe"];

    fn learned() -> Baseline {
        let mut baseline = Baseline::default();
        for (page, cursor) in CURSORS.iter().enumerate() {
            let from = page as u64 * 10;
            let b = body(records(from, 10, USUAL), Some(cursor));
            baseline.learn(&PageShape::of(&b, "/results", Some(cursor)));
        }
        baseline
    }

    fn compare(baseline: &Baseline, b: &Value, cursor: Option<&str>) -> Vec<Change> {
        baseline.compare(&PageShape::of(b, "/results", cursor))
    }

    /// Renames a key inside every record's `properties`.
    fn rename_property(records: &mut [Value], from: &str, to: &str) {
        for r in records {
            // No let-chains: the gateway may build on an older edition.
            let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(v) = p.remove(from) {
                p.insert(to.to_owned(), v);
            }
        }
    }

    // ---- the healthy path ---------------------------------------------

    #[test]
    fn baseline_matures_after_enough_records_and_pages() {
        let mut baseline = Baseline::default();
        assert!(!baseline.is_mature());
        let b = body(records(0, 30, USUAL), Some("AoJ8a9f2kLqZ"));
        baseline.learn(&PageShape::of(&b, "/results", Some("AoJ8a9f2kLqZ")));
        assert!(!baseline.is_mature(), "one page is not enough");
        // An immature baseline judges nothing, however different the page.
        let odd = json!({"data": [1, 2, 3]});
        assert!(
            baseline
                .compare(&PageShape::of(&odd, "/results", None))
                .is_empty()
        );
        baseline.learn(&PageShape::of(&b, "/results", Some("AoJ8a9f2kLqZ")));
        assert!(baseline.is_mature());
        assert_eq!(baseline.pages(), 2);
        assert_eq!(baseline.records(), 60);
    }

    #[test]
    fn same_kind_of_page_has_no_changes() {
        let baseline = learned();
        assert!(baseline.is_mature());
        let b = body(records(30, 10, USUAL), Some("Dq4Tm6nB2xWc"));
        let changes = compare(&baseline, &b, Some("Dq4Tm6nB2xWc"));
        assert!(changes.is_empty(), "{}", describe(&changes));
    }

    #[test]
    fn optional_field_noise_has_no_changes() {
        let baseline = learned();
        // Optional fields at rates unlike the baseline's, nulls where there
        // were strings, every record with two emails, a short last page
        // without a cursor or paging object.
        let noisy = Mix {
            phone: |i| i % 5 != 0,
            company: |i| i % 10 == 1,
            jobtitle: |i| i % 2 == 0,
            second_email: |_| true,
            null_lastname: |i| i % 2 == 1,
        };
        for (from, n) in [(40, 7), (50, 10), (60, 5)] {
            let b = body(records(from, n, noisy), None);
            let changes = compare(&baseline, &b, None);
            assert!(changes.is_empty(), "{}", describe(&changes));
        }
        // All-null values for a field are not a kind change either.
        let mut recs = records(70, 10, USUAL);
        for r in &mut recs {
            if let Some(o) = r.as_object_mut() {
                o.insert("createdAt".into(), Value::Null);
            }
        }
        let changes = compare(&baseline, &body(recs, Some("Ek9Lp3")), Some("Ek9Lp3"));
        assert!(changes.is_empty(), "{}", describe(&changes));
    }

    #[test]
    fn empty_page_has_no_changes() {
        let baseline = learned();
        let b = body(Vec::new(), None);
        let page = PageShape::of(&b, "/results", None);
        assert_eq!(page.records(), 0);
        assert!(page.records_found());
        assert!(baseline.compare(&page).is_empty());
        // Some vendors drop the records key entirely when there are none.
        let bare = json!({"total": 0});
        assert!(compare(&baseline, &bare, None).is_empty());
    }

    #[test]
    fn small_page_is_not_judged_on_presence() {
        let baseline = learned();
        let mut recs = records(30, 3, USUAL);
        rename_property(&mut recs, "email", "emailAddress");
        assert!(compare(&baseline, &body(recs, Some("x1")), Some("x1")).is_empty());
    }

    // ---- drift ----------------------------------------------------------

    #[test]
    fn renamed_field_is_vanished_plus_appeared() {
        let baseline = learned();
        let mut recs = records(30, 10, USUAL);
        rename_property(&mut recs, "email", "emailAddress");
        let changes = compare(&baseline, &body(recs, Some("Dq4Tm6")), Some("Dq4Tm6"));
        assert_eq!(
            changes,
            vec![
                Change::FieldVanished {
                    path: "properties.email".into(),
                    baseline_presence: 1.0
                },
                Change::FieldAppeared {
                    path: "properties.emailAddress".into()
                },
            ]
        );
        assert_eq!(
            describe(&changes),
            "`properties.email` vanished (was in 100% of records); \
             `properties.emailAddress` appeared"
        );
    }

    #[test]
    fn records_moved_into_new_wrapper() {
        let baseline = learned();
        let b = json!({
            "data": {"results": records(30, 10, USUAL)},
            "paging": {"next": {"after": "Dq4Tm6"}},
        });
        let page = PageShape::of(&b, "/results", Some("Dq4Tm6"));
        assert!(!page.records_found());
        assert_eq!(page.records(), 0);
        assert_eq!(
            baseline.compare(&page),
            vec![Change::WrapperChanged {
                added: vec!["data".into()],
                removed: vec!["results".into()],
                records_now_at: Some("/data/results".into()),
            }]
        );
    }

    #[test]
    fn top_level_array_becoming_wrapped() {
        let mut baseline = Baseline::default();
        for from in [0, 10, 20] {
            let b = Value::Array(records(from, 10, USUAL));
            baseline.learn(&PageShape::of(&b, "", None));
        }
        let same = Value::Array(records(30, 10, USUAL));
        assert!(baseline.compare(&PageShape::of(&same, "", None)).is_empty());
        let wrapped = json!({"data": records(30, 10, USUAL), "meta": {"count": 10}});
        let changes = baseline.compare(&PageShape::of(&wrapped, "", None));
        assert_eq!(
            changes,
            vec![Change::WrapperChanged {
                added: vec![],
                removed: vec![],
                records_now_at: Some("/data".into()),
            }]
        );
    }

    #[test]
    fn envelope_keys_added_but_null_are_tolerated() {
        let baseline = learned();
        let mut b = body(records(30, 10, USUAL), Some("Dq4Tm6"));
        if let Some(o) = b.as_object_mut() {
            o.insert("warnings".into(), Value::Null);
        }
        assert!(compare(&baseline, &b, Some("Dq4Tm6")).is_empty());
        if let Some(o) = b.as_object_mut() {
            o.insert("deprecation".into(), json!({"sunset": "2025-01-01"}));
        }
        assert_eq!(
            compare(&baseline, &b, Some("Dq4Tm6")),
            vec![Change::WrapperChanged {
                added: vec!["deprecation".into()],
                removed: vec![],
                records_now_at: None,
            }]
        );
    }

    #[test]
    fn string_became_number() {
        let baseline = learned();
        let mut recs = records(30, 10, USUAL);
        for (i, r) in recs.iter_mut().enumerate() {
            if let Some(o) = r.as_object_mut() {
                o.insert("id".into(), json!(1030 + i));
            }
        }
        let changes = compare(&baseline, &body(recs, Some("Dq4Tm6")), Some("Dq4Tm6"));
        assert_eq!(
            changes,
            vec![Change::KindChanged {
                path: "id".into(),
                from: "string".into(),
                to: "integer".into()
            }]
        );
    }

    #[test]
    fn object_became_string_reports_once() {
        let baseline = learned();
        let mut recs = records(30, 10, USUAL);
        for r in &mut recs {
            if let Some(o) = r.as_object_mut() {
                o.insert("properties".into(), json!("see /v4/properties"));
            }
        }
        let changes = compare(&baseline, &body(recs, Some("Dq4Tm6")), Some("Dq4Tm6"));
        // Its children are not reported as vanished: their parent is gone.
        assert_eq!(
            changes,
            vec![Change::KindChanged {
                path: "properties".into(),
                from: "object".into(),
                to: "string".into()
            }]
        );
    }

    #[test]
    fn iso_dates_became_unix_millis() {
        let baseline = learned();
        let mut recs = records(30, 10, USUAL);
        for (i, r) in recs.iter_mut().enumerate() {
            if let Some(o) = r.as_object_mut() {
                o.insert(
                    "createdAt".into(),
                    json!(1_704_448_800_000u64 + i as u64 * 1000),
                );
            }
        }
        let changes = compare(&baseline, &body(recs, Some("Dq4Tm6")), Some("Dq4Tm6"));
        assert_eq!(
            changes,
            vec![Change::FormatChanged {
                path: "createdAt".into(),
                from: "date-time".into(),
                to: "unix-millis".into()
            }]
        );
        assert_eq!(
            describe(&changes),
            "`createdAt` changed from date-time to unix-millis"
        );
        // Numeric strings of seconds count too.
        let mut recs = records(30, 10, USUAL);
        for r in &mut recs {
            if let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("createdate".into(), json!("1704448800"));
            }
        }
        let changes = compare(&baseline, &body(recs, Some("Dq4Tm6")), Some("Dq4Tm6"));
        assert_eq!(
            changes,
            vec![Change::FormatChanged {
                path: "properties.createdate".into(),
                from: "date-time".into(),
                to: "unix-seconds".into()
            }]
        );
    }

    #[test]
    fn cursor_became_base64_json() {
        let baseline = learned();
        let token = base64::engine::general_purpose::STANDARD.encode(br#"{"offset":100}"#);
        assert_eq!(token, "eyJvZmZzZXQiOjEwMH0=");
        let b = body(records(30, 10, USUAL), Some(&token));
        assert_eq!(
            compare(&baseline, &b, Some(&token)),
            vec![Change::CursorChanged {
                from: "opaque".into(),
                to: "base64-json".into()
            }]
        );
        // Unpadded url-safe spelling is recognised as well.
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"after":"??>>","limit":100}"#);
        assert_eq!(CursorForm::of(&url_safe), Some(CursorForm::Base64Json));
    }

    // ---- classification -------------------------------------------------

    #[test]
    fn string_formats() {
        let cases = [
            ("2024-01-05", "date"),
            ("2024-01-05T10:00:00Z", "date-time"),
            ("2024-01-05T10:00:00.123+02:00", "date-time"),
            ("2024-01-05 10:00:00", "date-time"),
            ("2024-13-05", "string"),
            ("01/05/2024", "date-text"),
            ("05.01.2024 10:00", "date-text"),
            ("Jan 5, 2024", "date-text"),
            ("Tue, 05 Jan 2024 10:00:00 GMT", "date-text"),
            ("1704448800", "unix-seconds"),
            ("1704448800000", "unix-millis"),
            ("0001234567", "numeric-string"),
            ("12.50", "numeric-string"),
            ("10.0.22", "string"),
            ("https://example.com/a", "url"),
            ("ann@example.com", "email"),
            ("eyJvZmZzZXQiOjEwMH0", "base64-json"),
            ("eyJub3QganNvbg", "string"),
            ("Ann Lee", "string"),
            ("May Lee", "string"),
            ("lead", "string"),
        ];
        for (s, want) in cases {
            assert_eq!(classify_string(s).name(), want, "{s}");
        }
        let n = |v: Value| Format::of(&v).map(Format::name);
        assert_eq!(n(json!(1_704_448_800)), Some("unix-seconds"));
        assert_eq!(n(json!(1_704_448_800_000u64)), Some("unix-millis"));
        assert_eq!(n(json!(1_704_448_800.5)), Some("unix-seconds"));
        assert_eq!(n(json!(42)), Some("integer"));
        assert_eq!(n(json!(4.5)), Some("number"));
        assert_eq!(n(json!("")), None);
        assert_eq!(Kind::of(&json!(5.0)), Some(Kind::Integer));
        assert_eq!(Kind::of(&Value::Null), None);
    }

    #[test]
    fn cursor_forms() {
        let form = |s: &str| CursorForm::of(s).map(CursorForm::name);
        assert_eq!(form(""), None);
        assert_eq!(form("  "), None);
        assert_eq!(form("100"), Some("integer"));
        assert_eq!(
            form("https://api.example.com/v1/contacts?page=2"),
            Some("url")
        );
        assert_eq!(form("/v1/contacts?page=2"), Some("url"));
        assert_eq!(form(r#"{"offset":100}"#), Some("json"));
        assert_eq!(form("eyJvZmZzZXQiOjEwMH0="), Some("base64-json"));
        assert_eq!(form("AoJ8a9f2kLqZ"), Some("opaque"));
        assert_eq!(form("e30"), Some("opaque"), "too short to be judged");
    }

    #[test]
    fn value_like_keys_collapse() {
        for key in [
            "12345",
            "550e8400-e29b-41d4-a716-446655440000",
            "5f1b2c3d4e5f6a7b8c9d0e1f",
            "ann@example.com",
            "2024-01-05",
            "",
            "line\nbreak",
        ] {
            assert_eq!(path_key(key), "*", "{key:?}");
        }
        assert_eq!(path_key(&"k".repeat(65)), "*");
        for key in [
            "email",
            "object_id",
            "custom_field_12",
            "First Name",
            "deadbeef",
        ] {
            assert_eq!(path_key(key), key);
        }
        assert_eq!(path_key("address.city"), "address_city");
        // A map keyed by record id yields one path, not one per record.
        let b = json!({"results": [
            {"associations": {"901": {"type": "deal"}, "902": {"type": "deal"}}},
            {"associations": {"903": {"type": "deal"}}},
        ]});
        let page = PageShape::of(&b, "/results", None);
        let paths: Vec<&str> = page.fields.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            ["", "associations", "associations.*", "associations.*.type"]
        );
        assert_eq!(
            page.fields.get("associations.*").map(|s| s.records),
            Some(2)
        );
    }

    #[test]
    fn id_keyed_maps_filling_up_are_not_drift() {
        let with = |assoc: fn(u64) -> Value, from: u64| -> Value {
            let recs: Vec<Value> = (from..from + 10)
                .map(|i| json!({"id": i.to_string(), "associations": assoc(i)}))
                .collect();
            body(recs, Some("AoJ8a9f2kLqZ"))
        };
        let mut baseline = Baseline::default();
        for from in [0, 10, 20] {
            let b = with(|_| json!({}), from);
            baseline.learn(&PageShape::of(&b, "/results", Some("AoJ8a9f2kLqZ")));
        }
        let filled = with(|i| json!({ (9000 + i).to_string(): {"type": "deal"} }), 30);
        let changes = compare(&baseline, &filled, Some("AoJ8a9f2kLqZ"));
        assert!(changes.is_empty(), "{}", describe(&changes));
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of(""), None);
        assert_eq!(parent_of("id"), Some(""));
        assert_eq!(parent_of("properties.email"), Some("properties"));
        assert_eq!(parent_of("emails[]"), Some("emails"));
        assert_eq!(parent_of("emails[].value"), Some("emails[]"));
    }

    // ---- redaction ------------------------------------------------------

    #[test]
    fn redact_keeps_no_content() {
        let record = json!({
            "id": 987_654_321,
            "email": "ann.lee@example.com",
            "name": {"first": "Annabel", "last": "Leeward"},
            "phone": "+1 555 0142",
            "score": 73.25,
            "createdAt": "2024-01-05T10:00:00Z",
            "tags": ["vip-customer", "newsletter-optin", "q3-webinar", "emea-region", "beta"],
            "ann.lee@example.com": {"visits": 31_337},
            "site": "https://annabel.example.net/about",
            "note": null,
            "active": true,
        });
        let redacted = redact(&record);
        let text = serde_json::to_string(&redacted).unwrap_or_default();
        for original in [
            "987654321",
            "ann.lee",
            "example.com",
            "Annabel",
            "Leeward",
            "555",
            "0142",
            "73.25",
            "2024",
            "vip-customer",
            "beta",
            "31337",
            "annabel",
        ] {
            assert!(!text.contains(original), "{original} leaked: {text}");
        }
        assert_eq!(redacted.get("email"), Some(&json!("email")));
        assert_eq!(redacted.get("createdAt"), Some(&json!("date-time")));
        assert_eq!(redacted.get("score"), Some(&json!("number")));
        assert_eq!(redacted.get("note"), Some(&json!("null")));
        assert_eq!(redacted.get("active"), Some(&json!("boolean")));
        assert_eq!(redacted.get("site"), Some(&json!("url")));
        assert_eq!(redacted.pointer("/name/first"), Some(&json!("string")));
        assert_eq!(redacted.pointer("/*/visits"), Some(&json!("integer")));
        assert_eq!(
            redacted.get("tags"),
            Some(&json!(["string", "string", "string", "… 5 items in all"]))
        );
    }

    // ---- absurd inputs --------------------------------------------------

    /// Drops a deep value without recursing (the default drop would).
    fn dismantle(mut value: Value) {
        let mut stack = vec![];
        loop {
            match &mut value {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => {
                    let taken = std::mem::take(map);
                    stack.extend(taken.into_iter().map(|(_, v)| v));
                }
                _ => {}
            }
            match stack.pop() {
                Some(next) => value = next,
                None => return,
            }
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut deep = json!("bottom-secret");
        for i in 0..10_000 {
            // Built by hand: `json!` would serialize `deep` recursively.
            deep = if i % 2 == 0 {
                let mut map = Map::new();
                map.insert("child".to_owned(), deep);
                Value::Object(map)
            } else {
                Value::Array(vec![deep])
            };
        }
        let mut envelope = Map::new();
        envelope.insert("results".to_owned(), Value::Array(vec![deep]));
        let b = Value::Object(envelope);
        let page = PageShape::of(&b, "/results", None);
        assert_eq!(page.records(), 1);
        let depth = page
            .fields
            .keys()
            .map(|p| p.matches('.').count() + p.matches("[]").count())
            .max()
            .unwrap_or(0);
        assert!(depth <= MAX_RECORD_DEPTH, "depth {depth}");
        let redacted = redact(&b);
        let text = serde_json::to_string(&redacted).unwrap_or_default();
        assert!(text.contains('…') && !text.contains("bottom-secret"));
        assert!(text.len() < 1_000, "{}", text.len());
        let body_without_deep = find_records(&b);
        assert_eq!(body_without_deep.as_deref(), Some("/results"));
        dismantle(b);
    }

    #[test]
    fn huge_arrays_are_bounded() {
        let many: Vec<Value> = (0..100_000)
            .map(|i| json!({"id": i, "tags": ["a", "b"]}))
            .collect();
        let b = json!({ "results": many });
        let page = PageShape::of(&b, "/results", Some("AoJ8a9f2kLqZ"));
        assert_eq!(page.records(), 100_000);
        let mut baseline = Baseline::default();
        baseline.learn(&page);
        baseline.learn(&page);
        // Halving kept the counts near the recent window.
        assert!(baseline.records() < HALVE_AT_RECORDS * 2);
        assert!(baseline.is_mature());
        let redacted = redact(&b);
        let text = serde_json::to_string(&redacted).unwrap_or_default();
        assert!(text.contains("… 100000 items in all"));
        assert!(text.len() < 500);
        // A huge array inside one record is sampled, not walked whole.
        let inner = json!({"results": [{"ids": (0..100_000).collect::<Vec<u32>>()}]});
        let page = PageShape::of(&inner, "/results", None);
        assert_eq!(
            page.fields
                .get("ids[]")
                .and_then(|s| s.kinds.get(&Kind::Integer)),
            Some(&(ARRAY_SAMPLE as u64))
        );
    }

    #[test]
    fn long_keys_and_wide_objects_are_bounded() {
        let long = "k".repeat(10_000);
        let mut wide = Map::new();
        for i in 0..10_000 {
            wide.insert(format!("field_{i}"), json!(i));
        }
        wide.insert(long.clone(), json!({ long.clone(): "secret" }));
        let recs: Vec<Value> = (0..30).map(|_| Value::Object(wide.clone())).collect();
        let b = json!({ "results": recs, long.clone(): 1 });
        let page = PageShape::of(&b, "/results", None);
        assert!(page.fields.len() <= MAX_PATHS);
        assert!(page.paths_truncated);
        let mut baseline = Baseline::default();
        baseline.learn(&page);
        baseline.learn(&page);
        let stored = serde_json::to_string(&baseline).unwrap_or_default();
        assert!(!stored.contains(&long));
        assert!(stored.len() < 128 * 1024, "{}", stored.len());
        // A truncated baseline reports no "appeared" fields it can't vouch for.
        assert!(
            baseline
                .compare(&page)
                .iter()
                .all(|c| !matches!(c, Change::FieldAppeared { .. }))
        );
        let redacted = serde_json::to_string(&redact(&b)).unwrap_or_default();
        assert!(!redacted.contains(&long) && !redacted.contains("secret"));
        assert!(redacted.len() < 64 * 1024, "{}", redacted.len());
    }

    #[test]
    fn weird_pointers_and_bodies_do_not_panic() {
        let b = json!({"a": [{"b": []}], "~/": {"x": 1}});
        for pointer in [
            "", "/", "a", "/a/0/b", "/a/9", "/a/x", "/~0~1/x", "/\u{0}", "//",
        ] {
            let page = PageShape::of(&b, pointer, Some("\u{0}\u{fffd}"));
            let _ = page.records();
        }
        for body in [json!(null), json!(3), json!("text"), json!([]), json!({})] {
            let page = PageShape::of(&body, "/results", None);
            assert_eq!(page.records(), 0);
            let _ = learned().compare(&page);
        }
    }

    #[test]
    fn counters_saturate() {
        let mut baseline = learned();
        baseline.records = u64::MAX - 1;
        baseline.pages = u64::MAX;
        for stats in baseline.fields.values_mut() {
            stats.records = u64::MAX;
            stats.kinds.values_mut().for_each(|n| *n = u64::MAX);
        }
        let page = PageShape::of(
            &body(records(0, 10, USUAL), Some("x")),
            "/results",
            Some("x"),
        );
        baseline.learn(&page);
        // Halving ran (the records count crossed the threshold) and nothing
        // wrapped around.
        assert!(baseline.records() < HALVE_AT_RECORDS);
        assert!(baseline.pages() >= MATURE_PAGES);
        assert!(baseline.is_mature());
        let _ = baseline.compare(&page);
    }

    // ---- storage --------------------------------------------------------

    #[test]
    fn baseline_round_trips_and_stays_small() {
        let baseline = learned();
        let stored = serde_json::to_string(&baseline).unwrap_or_default();
        let back: Baseline = serde_json::from_str(&stored).unwrap_or_default();
        assert_eq!(back, baseline);
        assert!(stored.len() < 6 * 1024, "{} bytes: {stored}", stored.len());
        // No content rides along in the baseline either.
        for original in [
            "user1@example.com",
            "Ann",
            "Lee",
            "Acme",
            "AoJ8a9f2kLqZ",
            "2024-",
        ] {
            assert!(!stored.contains(original), "{original} in {stored}");
        }
        // An older or partial stored baseline still loads.
        let partial: Baseline = serde_json::from_str(r#"{"pages": 3}"#).unwrap_or_default();
        assert_eq!(partial.pages(), 3);
        let page = PageShape::of(&body(records(0, 10, USUAL), None), "/results", None);
        let page_json = serde_json::to_string(&page).unwrap_or_default();
        let page_back: PageShape = serde_json::from_str(&page_json).unwrap_or_default();
        assert_eq!(page_back, page);
        let change = Change::FieldVanished {
            path: "properties.email".into(),
            baseline_presence: 1.0,
        };
        assert_eq!(
            serde_json::to_value(&change).unwrap_or_default(),
            json!({"change": "fieldVanished", "path": "properties.email", "baselinePresence": 1.0})
        );
    }

    #[test]
    fn describe_is_one_bounded_line() {
        assert_eq!(describe(&[]), "no shape changes");
        let many: Vec<Change> = (0..25)
            .map(|i| Change::FieldAppeared {
                path: format!("f{i}\nx"),
            })
            .collect();
        let text = describe(&many);
        assert!(!text.contains('\n'));
        assert!(text.ends_with("and 15 more"));
        let wrapper = Change::WrapperChanged {
            added: vec!["data".into()],
            removed: vec!["results".into()],
            records_now_at: Some("/data/results".into()),
        };
        assert_eq!(
            describe(&[wrapper]),
            "envelope changed (added `data`; removed `results`; records now at `/data/results`)"
        );
    }
}
