//! The sandbox Attio workspace: its three standard objects (people, companies, deals),
//! their attributes and typed values, and the seeded records.
//!
//! Attio stores every attribute value as an array of typed value objects, each with
//! `active_from`, `active_until`, `created_by_actor` and `attribute_type` (vendors.md §8);
//! writes may give plain values, which are turned into those objects here.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const WORKSPACE_ID: &str = "14beef7a-99f7-4534-a87e-70b564330a4c";
pub(crate) const WORKSPACE_SLUG: &str = "tessera-sandbox";
/// The workspace member who created the seeded records.
pub(crate) const MEMBER_ID: &str = "50cf242c-7fa3-4cad-87d0-75b1af71c57b";
/// The API token the demo account uses, as `created_by_actor` of what it writes.
pub(crate) const TOKEN_ACTOR_ID: &str = "8d1b6f44-1c2e-4f6b-9d55-0c9a4f0e7b21";
pub(crate) const SEEDED: usize = 260;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Object {
    People,
    Companies,
    Deals,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    PersonalName,
    Email,
    Phone,
    Domain,
    Select,
    Status,
    Currency,
    Reference(Object),
    Location,
}

/// One attribute: its slug, type and whether it holds several values.
pub(crate) struct Attribute {
    pub slug: &'static str,
    pub kind: Kind,
    pub multi: bool,
}

const fn attr(slug: &'static str, kind: Kind, multi: bool) -> Attribute {
    Attribute { slug, kind, multi }
}

const PEOPLE: &[Attribute] = &[
    attr("name", Kind::PersonalName, false),
    attr("email_addresses", Kind::Email, true),
    attr("phone_numbers", Kind::Phone, true),
    attr("job_title", Kind::Text, false),
    attr("description", Kind::Text, false),
    attr("company", Kind::Reference(Object::Companies), false),
    attr("primary_location", Kind::Location, false),
    // A custom attribute of this workspace (a select).
    attr("customer_tier", Kind::Select, false),
];

const COMPANIES: &[Attribute] = &[
    attr("name", Kind::Text, false),
    attr("domains", Kind::Domain, true),
    attr("description", Kind::Text, false),
    attr("categories", Kind::Select, true),
    attr("primary_location", Kind::Location, false),
    attr("team", Kind::Reference(Object::People), true),
];

const DEALS: &[Attribute] = &[
    attr("name", Kind::Text, false),
    attr("stage", Kind::Status, false),
    attr("value", Kind::Currency, false),
    attr(
        "associated_company",
        Kind::Reference(Object::Companies),
        false,
    ),
    attr("associated_people", Kind::Reference(Object::People), true),
];

/// Select options per attribute slug (title, option id).
const OPTIONS: &[(&str, &str, &str)] = &[
    (
        "customer_tier",
        "Gold",
        "2f8a3c1e-5b7d-4e9f-8a1c-3e5b7d9f0a21",
    ),
    (
        "customer_tier",
        "Silver",
        "7c0e2b4d-6f8a-4c3e-9b1d-4f6a7c0e2b43",
    ),
    (
        "customer_tier",
        "Bronze",
        "9b1d3f5a-7c9e-4b2d-8f6a-1c3e5b7d9f65",
    ),
    ("categories", "SaaS", "0b2d4f61-c1e8-4a3b-9d7f-9024680ace13"),
    (
        "categories",
        "Logistics",
        "1c3e5b7d-9f02-4a4c-8e6f-8a1c3e5b7d97",
    ),
    (
        "categories",
        "Manufacturing",
        "3e5b7d9f-0a21-4c6e-9a8b-1d3f5a7c9eb9",
    ),
    (
        "categories",
        "Retail",
        "5a7c9e0b-2d4f-4e8a-8c0e-2b4d6f8a1cdb",
    ),
    ("categories", "B2B", "6f8a1c3e-5b7d-4a0c-9e2f-4a6c8e1a3cfd"),
];

/// Deal stages (the `stage` status attribute), in pipeline order.
pub(crate) const STAGES: &[(&str, &str)] = &[
    ("Lead", "4b6d8f0a-2c4e-4a6b-8d0f-2a4c6e8b0d11"),
    ("In Progress", "5c7e9a1b-3d5f-4b7c-9e1a-3b5d7f9c1e22"),
    ("Won 🎉", "6d8f0b2c-4e6a-4c8d-8f2b-4c6e8a0d2f33"),
    ("Lost", "7e9a1c3d-5f7b-4d9e-9a3c-5d7f9b1e3a44"),
];

impl Object {
    pub(crate) const ALL: [Object; 3] = [Object::People, Object::Companies, Object::Deals];

    pub(crate) fn slug(self) -> &'static str {
        match self {
            Object::People => "people",
            Object::Companies => "companies",
            Object::Deals => "deals",
        }
    }

    /// The object's id in this workspace (object ids differ per workspace).
    pub(crate) fn object_id(self) -> &'static str {
        match self {
            Object::People => "97052eb9-e65e-443f-a297-f2d9a4a7f795",
            Object::Companies => "b5e1c2d3-4f60-4a71-8b92-c3d4e5f60718",
            Object::Deals => "d7f3e4a5-6b80-4c93-9da4-e5f6a7b8c920",
        }
    }

    /// The singular used in `web_url`s.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Object::People => "person",
            Object::Companies => "company",
            Object::Deals => "deal",
        }
    }

    /// Objects are addressed by slug or by id.
    pub(crate) fn parse(raw: &str) -> Option<Object> {
        Object::ALL
            .into_iter()
            .find(|o| o.slug() == raw || o.object_id() == raw)
    }

    pub(crate) fn attributes(self) -> &'static [Attribute] {
        match self {
            Object::People => PEOPLE,
            Object::Companies => COMPANIES,
            Object::Deals => DEALS,
        }
    }

    pub(crate) fn attribute(self, slug: &str) -> Option<&'static Attribute> {
        self.attributes().iter().find(|a| a.slug == slug)
    }
}

/// Attio's timestamps: nanosecond precision, `Z`.
pub(crate) fn attio_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub record_id: String,
    pub created_at: DateTime<Utc>,
    /// Attribute slug -> typed value objects (only attributes that have values).
    pub values: BTreeMap<String, Vec<Value>>,
}

impl Record {
    pub(crate) fn render(&self, object: Object) -> Value {
        let mut values = Map::new();
        for a in object.attributes() {
            let v = self.values.get(a.slug).cloned().unwrap_or_default();
            values.insert(a.slug.to_owned(), Value::Array(v));
        }
        json!({
            "id": {
                "workspace_id": WORKSPACE_ID,
                "object_id": object.object_id(),
                "record_id": self.record_id,
            },
            "created_at": attio_time(self.created_at),
            "web_url": format!(
                "https://app.attio.com/{WORKSPACE_SLUG}/{}/{}",
                object.singular(),
                self.record_id
            ),
            "values": values,
        })
    }
}

/// Who wrote a value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Actor {
    Member,
    ApiToken,
}

impl Actor {
    fn to_json(self) -> Value {
        match self {
            Actor::Member => json!({"type": "workspace-member", "id": MEMBER_ID}),
            Actor::ApiToken => json!({"type": "api-token", "id": TOKEN_ACTOR_ID}),
        }
    }
}

fn text_of<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    match input {
        Value::String(s) => Some(s.as_str()),
        Value::Object(m) => m.get(key).and_then(Value::as_str),
        _ => None,
    }
}

fn option_for(slug: &str, title: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .find(|(s, t, _)| *s == slug && t.eq_ignore_ascii_case(title))
        .map(|(_, _, id)| *id)
}

fn option_title(slug: &str, id: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .find(|(s, _, o)| *s == slug && *o == id)
        .map(|(_, t, _)| *t)
}

/// Turns one written value (plain or object) into Attio's typed value object; `Err` with
/// the message of Attio's `validation_type` error.
pub(crate) fn typed(
    object: Object,
    a: &Attribute,
    input: &Value,
    at: DateTime<Utc>,
    actor: Actor,
) -> Result<Value, String> {
    let bad = || {
        format!(
            "Invalid value was passed to attribute with slug \"{}\".",
            a.slug
        )
    };
    let mut v = match a.kind {
        Kind::Text => match input {
            Value::String(s) => json!({"value": s}),
            Value::Object(m) => match m.get("value") {
                Some(Value::String(s)) => json!({"value": s}),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        },
        Kind::PersonalName => {
            let (first, last) = match input {
                Value::String(s) => match s.split_once(", ") {
                    // Attio's string form is "Last, First".
                    Some((last, first)) => (first.to_owned(), last.to_owned()),
                    None => (s.clone(), String::new()),
                },
                Value::Object(m) => (
                    m.get("first_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    m.get("last_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                ),
                _ => return Err(bad()),
            };
            let full = match input.get("full_name").and_then(Value::as_str) {
                Some(f) => f.to_owned(),
                None => [first.as_str(), last.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            json!({"first_name": first, "last_name": last, "full_name": full})
        }
        Kind::Email => {
            let email = text_of(input, "email_address")
                .map(str::trim)
                .filter(|e| e.contains('@'))
                .ok_or_else(bad)?;
            let (local, domain) = email.split_once('@').ok_or_else(bad)?;
            let root = root_domain(domain);
            json!({
                "original_email_address": email,
                "email_address": email.to_lowercase(),
                "email_domain": domain.to_lowercase(),
                "email_root_domain": root,
                "email_local_specifier": local.to_lowercase(),
            })
        }
        Kind::Phone => {
            let number = text_of(input, "original_phone_number")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(bad)?;
            let country = input
                .get("country_code")
                .and_then(Value::as_str)
                .unwrap_or("US");
            let digits: String = number
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            json!({
                "original_phone_number": number,
                "country_code": country,
                "phone_number": digits,
            })
        }
        Kind::Domain => {
            let domain = text_of(input, "domain")
                .map(|d| d.trim().to_lowercase())
                .filter(|d| d.contains('.'))
                .ok_or_else(bad)?;
            json!({"domain": domain, "root_domain": root_domain(&domain)})
        }
        Kind::Select => {
            let title = text_of(input, "title").ok_or_else(bad)?;
            let id = option_for(a.slug, title)
                .or_else(|| option_title(a.slug, title).and_then(|t| option_for(a.slug, t)))
                .ok_or_else(|| format!("Cannot find select option with title \"{title}\"."))?;
            let title = option_title(a.slug, id).unwrap_or(title);
            json!({
                "option": {
                    "id": {
                        "workspace_id": WORKSPACE_ID,
                        "object_id": object.object_id(),
                        "attribute_id": attribute_id(object, a.slug),
                        "option_id": id,
                    },
                    "title": title,
                    "is_archived": false,
                }
            })
        }
        Kind::Status => {
            let title = text_of(input, "title").ok_or_else(bad)?;
            let (title, id) = STAGES
                .iter()
                .find(|(t, id)| t.eq_ignore_ascii_case(title) || *id == title)
                .ok_or_else(|| format!("Cannot find status with title \"{title}\"."))?;
            json!({
                "status": {
                    "id": {
                        "workspace_id": WORKSPACE_ID,
                        "object_id": object.object_id(),
                        "attribute_id": attribute_id(object, a.slug),
                        "status_id": id,
                    },
                    "title": title,
                    "is_archived": false,
                    "target_time_in_status": null,
                    "celebration_enabled": title.starts_with("Won"),
                }
            })
        }
        Kind::Currency => {
            let amount = match input {
                Value::Number(_) => input.clone(),
                Value::Object(m) => match m.get("currency_value") {
                    Some(n @ Value::Number(_)) => n.clone(),
                    _ => return Err(bad()),
                },
                _ => return Err(bad()),
            };
            let code = input
                .get("currency_code")
                .and_then(Value::as_str)
                .unwrap_or("USD");
            json!({"currency_value": amount, "currency_code": code})
        }
        Kind::Reference(target) => {
            let id = text_of(input, "target_record_id").ok_or_else(bad)?;
            if let Some(given) = input.get("target_object").and_then(Value::as_str)
                && Object::parse(given) != Some(target)
            {
                return Err(bad());
            }
            json!({"target_object": target.slug(), "target_record_id": id})
        }
        Kind::Location => {
            let Value::Object(m) = input else {
                return Err(bad());
            };
            let field = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
            json!({
                "line_1": field("line_1"),
                "line_2": field("line_2"),
                "line_3": null,
                "line_4": null,
                "locality": field("locality"),
                "region": field("region"),
                "postcode": field("postcode"),
                "country_code": field("country_code"),
                "latitude": null,
                "longitude": null,
            })
        }
    };
    if let Value::Object(m) = &mut v {
        let mut out = Map::new();
        out.insert("active_from".into(), json!(attio_time(at)));
        out.insert("active_until".into(), Value::Null);
        out.insert("created_by_actor".into(), actor.to_json());
        out.append(m);
        out.insert("attribute_type".into(), json!(kind_name(a.kind)));
        return Ok(Value::Object(out));
    }
    Err(bad())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::PersonalName => "personal-name",
        Kind::Email => "email-address",
        Kind::Phone => "phone-number",
        Kind::Domain => "domain",
        Kind::Select => "select",
        Kind::Status => "status",
        Kind::Currency => "currency",
        Kind::Reference(_) => "record-reference",
        Kind::Location => "location",
    }
}

/// A stable attribute id per (object, slug).
fn attribute_id(object: Object, slug: &str) -> String {
    let n = slug.bytes().fold(object as u64 + 7, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    format!("a77e0000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
}

fn root_domain(domain: &str) -> String {
    let parts: Vec<&str> = domain.split('.').collect();
    let n = parts.len();
    if n <= 2 {
        return domain.to_lowercase();
    }
    parts[n.saturating_sub(2)..].join(".").to_lowercase()
}

/// A uuid-shaped record id, stable per (object, serial).
pub(crate) fn record_id(object: Object, serial: u64) -> String {
    let tag = match object {
        Object::People => "bf07",
        Object::Companies => "c0a1",
        Object::Deals => "dea1",
    };
    format!(
        "{tag}{serial:04x}-6035-429d-b874-{:012x}",
        serial * 7919 + 1
    )
}

pub(crate) struct Store {
    /// Per object, in creation order (the default listing order).
    pub records: BTreeMap<Object, Vec<Record>>,
    pub next_serial: u64,
}

const FIRST: [&str; 20] = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "John",
    "Sophie",
    "Tim",
    "Adele",
    "Bjarne",
    "Mary",
];
const LAST: [&str; 13] = [
    "Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
    "Thompson", "Allen", "Dijkstra", "Perlman", "Knuth",
];
const COMPANY_A: [&str; 13] = [
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Wingtip",
    "Litware",
    "Proseware",
    "Adatum",
    "Lucerne",
    "Margie",
    "Trey",
    "Coho",
    "Woodgrove",
];
const COMPANY_B: [&str; 20] = [
    "Analytics",
    "Traders",
    "Logistics",
    "Toys",
    "Systems",
    "Works",
    "Labs",
    "Foods",
    "Publishing",
    "Travel",
    "Research",
    "Winery",
    "Bank",
    "Studios",
    "Freight",
    "Robotics",
    "Outfitters",
    "Energy",
    "Health",
    "Media",
];
const CITIES: [(&str, &str, &str, &str); 4] = [
    ("Boston", "MA", "02108", "US"),
    ("London", "England", "EC1A 1BB", "GB"),
    ("Berlin", "Berlin", "10115", "DE"),
    ("Tallinn", "Harju", "10111", "EE"),
];
const TITLES: [&str; 5] = ["CTO", "Head of Sales", "Engineer", "CFO", "Buyer"];
const PRODUCTS: [&str; 4] = ["Annual licence", "Pilot", "Expansion", "Renewal"];

fn company_name(i: usize) -> String {
    let a = COMPANY_A
        .get(i % COMPANY_A.len())
        .copied()
        .unwrap_or("Acme");
    let b = COMPANY_B
        .get(i % COMPANY_B.len())
        .copied()
        .unwrap_or("Corp");
    format!("{a} {b}")
}

fn company_domain(i: usize) -> String {
    format!(
        "{}.example",
        company_name(i).to_lowercase().replace(' ', "-")
    )
}

fn seed_time(object: Object, i: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2023, 1, 2, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let offset = match object {
        Object::Companies => 0,
        Object::People => 30,
        Object::Deals => 60,
    };
    base + Duration::hours(i as i64 * 7 + offset) + Duration::nanoseconds(61_281_000 + i as i64)
}

impl Store {
    pub(crate) fn seed() -> Store {
        let mut records = BTreeMap::new();
        for object in Object::ALL {
            let list: Vec<Record> = (0..SEEDED).map(|i| seed_record(object, i)).collect();
            records.insert(object, list);
        }
        Store {
            records,
            next_serial: SEEDED as u64 + 1,
        }
    }

    pub(crate) fn list(&self, object: Object) -> &[Record] {
        self.records.get(&object).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn find(&self, object: Object, id: &str) -> Option<&Record> {
        self.list(object).iter().find(|r| r.record_id == id)
    }

    pub(crate) fn find_mut(&mut self, object: Object, id: &str) -> Option<&mut Record> {
        self.records
            .get_mut(&object)?
            .iter_mut()
            .find(|r| r.record_id == id)
    }
}

/// Builds the value map of a seeded record from plain values, as a client would write it.
fn seed_record(object: Object, i: usize) -> Record {
    let at = seed_time(object, i);
    let n = i + 1;
    let mut plain: Vec<(&str, Value)> = Vec::new();
    let city = CITIES.get(i % CITIES.len()).copied();
    let location = |street: String| {
        city.map(|(locality, region, postcode, country)| {
            json!({"line_1": street, "locality": locality, "region": region, "postcode": postcode, "country_code": country})
        })
    };
    match object {
        Object::People => {
            let first = FIRST.get(i % FIRST.len()).copied().unwrap_or("Ada");
            let last = LAST.get(i % LAST.len()).copied().unwrap_or("Lovelace");
            plain.push((
                "name",
                json!({"first_name": first, "last_name": last, "full_name": format!("{first} {last}")}),
            ));
            // Every seventh person has no email; every third has a second one.
            if i % 7 != 6 {
                plain.push((
                    "email_addresses",
                    json!(format!(
                        "{}.{}{n}@{}",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        company_domain(i)
                    )),
                ));
            }
            if i % 3 == 1 {
                plain.push((
                    "email_addresses",
                    json!(format!("{}{n}@personal.example", first.to_lowercase())),
                ));
            }
            if i.is_multiple_of(2) {
                plain.push((
                    "phone_numbers",
                    json!({"original_phone_number": format!("+1 617 555 {:04}", 1000 + i), "country_code": "US"}),
                ));
            }
            plain.push((
                "job_title",
                json!(TITLES.get(i % TITLES.len()).copied().unwrap_or("Engineer")),
            ));
            if i % 5 != 4 {
                plain.push(("company", json!(record_id(Object::Companies, i as u64 + 1))));
            }
            if i.is_multiple_of(4)
                && let Some(l) = location(format!("{n} Main St"))
            {
                plain.push(("primary_location", l));
            }
            let tier = ["Gold", "Silver", "Bronze"].get(i % 4).copied();
            if let Some(tier) = tier {
                plain.push(("customer_tier", json!(tier)));
            }
        }
        Object::Companies => {
            plain.push(("name", json!(company_name(i))));
            plain.push(("domains", json!(company_domain(i))));
            if i.is_multiple_of(6) {
                plain.push((
                    "domains",
                    json!(format!(
                        "{}.example.com",
                        company_name(i).to_lowercase().replace(' ', "")
                    )),
                ));
            }
            if i % 3 != 2 {
                plain.push((
                    "description",
                    json!(format!(
                        "{} serves customers in {}.",
                        company_name(i),
                        city.map_or("", |c| c.0)
                    )),
                ));
            }
            let categories = ["SaaS", "Logistics", "Manufacturing", "Retail"];
            if i % 5 != 3 {
                plain.push((
                    "categories",
                    json!(
                        categories
                            .get(i % categories.len())
                            .copied()
                            .unwrap_or("B2B")
                    ),
                ));
                plain.push(("categories", json!("B2B")));
            }
            if let Some(l) = location(format!("{} Harbour Road", 10 + i)) {
                plain.push(("primary_location", l));
            }
        }
        Object::Deals => {
            let product = PRODUCTS.get(i % PRODUCTS.len()).copied().unwrap_or("Pilot");
            plain.push(("name", json!(format!("{product} — {}", company_name(i)))));
            let stage = STAGES.get(i % STAGES.len()).map_or("Lead", |s| s.0);
            plain.push(("stage", json!(stage)));
            if i % 6 != 5 {
                // Cents and millions: a value that must keep every digit.
                let amount = if i == 1 {
                    json!(1_234_567.89)
                } else {
                    json!((i as u64 % 40 + 1) * 2500)
                };
                let code = if i.is_multiple_of(3) { "EUR" } else { "USD" };
                plain.push((
                    "value",
                    json!({"currency_value": amount, "currency_code": code}),
                ));
            }
            plain.push((
                "associated_company",
                json!(record_id(Object::Companies, i as u64 + 1)),
            ));
            plain.push((
                "associated_people",
                json!(record_id(Object::People, i as u64 + 1)),
            ));
            if i.is_multiple_of(4) {
                plain.push((
                    "associated_people",
                    json!(record_id(Object::People, ((i + 1) % SEEDED) as u64 + 1)),
                ));
            }
        }
    }
    let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (slug, input) in plain {
        let Some(a) = object.attribute(slug) else {
            continue;
        };
        if let Ok(v) = typed(object, a, &input, at, Actor::Member) {
            values.entry(slug.to_owned()).or_default().push(v);
        }
    }
    Record {
        record_id: record_id(object, n as u64),
        created_at: at,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_values_are_typed_arrays_with_their_history_fields() {
        let store = Store::seed();
        let ada = &store.list(Object::People)[0];
        let name = &ada.values["name"][0];
        assert_eq!(name["full_name"], "Ada Lovelace");
        assert_eq!(name["attribute_type"], "personal-name");
        assert!(name["active_until"].is_null());
        assert_eq!(name["created_by_actor"]["type"], "workspace-member");
        assert_eq!(
            ada.values["customer_tier"][0]["option"]["title"], "Gold",
            "a select holds its option"
        );
        let deal = &store.list(Object::Deals)[1];
        assert_eq!(
            deal.values["value"][0]["currency_value"],
            json!(1_234_567.89)
        );
        assert_eq!(store.list(Object::Companies).len(), SEEDED);
    }

    #[test]
    fn plain_writes_become_typed_values_and_bad_ones_are_refused() {
        let at = Utc::now();
        let email = Object::People.attribute("email_addresses").unwrap();
        let v = typed(
            Object::People,
            email,
            &json!("Ada@Example.com"),
            at,
            Actor::ApiToken,
        )
        .unwrap();
        assert_eq!(v["email_address"], "ada@example.com");
        assert_eq!(v["original_email_address"], "Ada@Example.com");
        assert_eq!(v["email_domain"], "example.com");
        assert!(typed(Object::People, email, &json!(42), at, Actor::ApiToken).is_err());
        let tier = Object::People.attribute("customer_tier").unwrap();
        assert!(
            typed(
                Object::People,
                tier,
                &json!("Platinum"),
                at,
                Actor::ApiToken
            )
            .is_err()
        );
    }
}
