//! The Google People sandbox's contacts (`people/me/connections`): a deterministic seed
//! and the rendering of a `Person` for a `personFields` mask.
//!
//! Every person field is an array of items, each with `metadata.source` (the contact
//! source, `{"type":"CONTACT","id":"<hex>"}`) and `metadata.primary` on the first item,
//! as Google does. The contact's numeric id shows twice: in decimal in `resourceName`
//! (`people/c6001522742588091522`) and in hex as the source id (`5349b1230f642c82`).
//!
//! Items are stored as the writable keys a client may set; output-only keys
//! (`displayName`, `formattedType`, `canonicalForm`, ...) are derived when rendering.
//!
//! Every write takes the next position of a change log (`Person::changed`, and a
//! [`Tombstone`] for each deletion), which is what sync tokens point into: a listing of
//! changes is everything whose position lies between the token's and the log's end when
//! the listing began.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::control::iso_millis;

pub(crate) const CONNECTION_COUNT: u64 = 260;

/// Every path `personFields` accepts.
pub(crate) const PERSON_FIELDS: [&str; 29] = [
    "addresses",
    "ageRanges",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "coverPhotos",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "metadata",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "photos",
    "relations",
    "sipAddresses",
    "skills",
    "urls",
    "userDefined",
];

/// Paths `updatePersonFields` accepts.
pub(crate) const UPDATABLE_FIELDS: [&str; 24] = [
    "addresses",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
    "userDefined",
];

/// The fields the sandbox stores, with the keys a client may write and the output-only
/// keys it may send back (ignored), in render order.
pub(crate) const STORED_FIELDS: [(&str, &[&str], &[&str]); 7] = [
    (
        "addresses",
        &[
            "type",
            "poBox",
            "streetAddress",
            "extendedAddress",
            "city",
            "region",
            "postalCode",
            "country",
            "countryCode",
        ],
        &["formattedValue", "formattedType"],
    ),
    ("biographies", &["value", "contentType"], &[]),
    (
        "emailAddresses",
        &["value", "type", "displayName"],
        &["formattedType"],
    ),
    (
        "names",
        &[
            "givenName",
            "familyName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
            "unstructuredName",
        ],
        &["displayName", "displayNameLastFirst"],
    ),
    (
        "organizations",
        &[
            "name",
            "title",
            "department",
            "type",
            "jobDescription",
            "symbol",
            "location",
        ],
        &["formattedType"],
    ),
    (
        "phoneNumbers",
        &["value", "type"],
        &["canonicalForm", "formattedType"],
    ),
    ("userDefined", &["key", "value"], &[]),
];

/// Fields with at most one item per contact source.
pub(crate) const SINGLE_ITEM_FIELDS: [&str; 2] = ["names", "biographies"];

pub(crate) fn stored_field(
    name: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    STORED_FIELDS
        .iter()
        .find(|(f, _, _)| *f == name)
        .map(|(_, writable, output)| (*writable, *output))
}

#[derive(Clone, Debug)]
pub(crate) struct Person {
    /// The contact id: decimal in `resourceName`, hex as the source id.
    pub id: u64,
    pub version: u64,
    pub update_time: DateTime<Utc>,
    /// Stored fields (see `STORED_FIELDS`) → items of writable keys.
    pub fields: BTreeMap<String, Vec<Map<String, Value>>>,
    /// The position of the person's last write in the change log (0: seeded).
    pub changed: u64,
}

/// A deleted contact, kept for listings of changes.
#[derive(Clone, Debug)]
pub(crate) struct Tombstone {
    pub id: u64,
    /// The position of the deletion in the change log.
    pub changed: u64,
}

impl Tombstone {
    /// A deleted person as a listing of changes returns it: its name, an etag and metadata
    /// saying it is deleted, whatever `personFields` asked for.
    pub(crate) fn render(&self) -> Value {
        let mut etag = vec![
            0x12, 0x07, 0x01, 0x02, 0x3d, 0x09, 0x3e, 0x37, 0x2e, 0x1a, 0x0c,
        ];
        etag.extend_from_slice(&mix(self.id ^ self.changed).to_be_bytes());
        json!({
            "resourceName": resource_name(self.id),
            "etag": format!("%{}", STANDARD.encode(etag)),
            "metadata": {
                "sources": [{ "type": "CONTACT", "id": format!("{:x}", self.id) }],
                "objectType": "PERSON",
                "deleted": true,
            },
        })
    }
}

pub(crate) fn resource_name(id: u64) -> String {
    format!("people/c{id}")
}

/// SplitMix64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A 19-digit contact id for the `seq`-th contact ever created.
pub(crate) fn contact_id(seq: u64) -> u64 {
    const LOW: u64 = 1_000_000_000_000_000_000;
    LOW + mix(seq.wrapping_add(0x5eed)) % (i64::MAX.unsigned_abs() - LOW)
}

fn capitalized(kind: &str) -> String {
    let mut chars = kind.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Google's `formattedType`: the standard types translated, custom ones verbatim.
fn formatted_type(kind: &str) -> String {
    match kind {
        "home" | "work" | "other" | "mobile" | "main" | "school" | "pager" => capitalized(kind),
        "homeFax" => "Home Fax".into(),
        "workFax" => "Work Fax".into(),
        "otherFax" => "Other Fax".into(),
        "workMobile" => "Work Mobile".into(),
        "workPager" => "Work Pager".into(),
        "googleVoice" => "Google Voice".into(),
        other => other.to_owned(),
    }
}

fn text<'a>(item: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Adds the output-only keys Google derives from what was stored.
fn derive(field: &str, item: &Map<String, Value>) -> Map<String, Value> {
    let mut out = item.clone();
    match field {
        "names" => {
            let given = text(item, "givenName");
            let middle = text(item, "middleName");
            let family = text(item, "familyName");
            let display: Vec<&str> = [given, middle, family].into_iter().flatten().collect();
            let display = if display.is_empty() {
                text(item, "unstructuredName").map(str::to_owned)
            } else {
                Some(display.join(" "))
            };
            if let Some(display) = display {
                let first_last: Vec<&str> = [given, middle].into_iter().flatten().collect();
                let last_first = match (family, first_last.is_empty()) {
                    (Some(f), false) => format!("{f}, {}", first_last.join(" ")),
                    (Some(f), true) => f.to_owned(),
                    (None, _) => display.clone(),
                };
                out.insert("displayName".into(), json!(display));
                out.insert("displayNameLastFirst".into(), json!(last_first));
                out.entry("unstructuredName")
                    .or_insert_with(|| json!(display));
            }
        }
        "phoneNumbers" => {
            if let Some(value) = text(item, "value")
                && value.starts_with('+')
            {
                let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                if digits.len() >= 7 {
                    out.insert("canonicalForm".into(), json!(format!("+{digits}")));
                }
            }
        }
        "addresses" => {
            let street = text(item, "streetAddress");
            let line2: Vec<&str> = [
                text(item, "city"),
                text(item, "region"),
                text(item, "postalCode"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let lines: Vec<String> = [
                street.map(str::to_owned),
                (!line2.is_empty()).then(|| line2.join(" ")),
                text(item, "country").map(str::to_owned),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !lines.is_empty() {
                out.insert("formattedValue".into(), json!(lines.join("\n")));
            }
        }
        _ => {}
    }
    if let Some(kind) = text(item, "type") {
        out.insert("formattedType".into(), json!(formatted_type(kind)));
    }
    out
}

impl Person {
    pub(crate) fn resource_name(&self) -> String {
        resource_name(self.id)
    }

    pub(crate) fn source_id(&self) -> String {
        format!("{:x}", self.id)
    }

    pub(crate) fn etag(&self) -> String {
        let mut bytes = vec![
            0x12, 0x07, 0x01, 0x02, 0x3d, 0x09, 0x3e, 0x37, 0x2e, 0x1a, 0x0c,
        ];
        bytes.extend_from_slice(&mix(self.id ^ self.version.rotate_left(32)).to_be_bytes());
        bytes.extend_from_slice(&mix(self.version).to_be_bytes()[..4]);
        format!("%{}", STANDARD.encode(bytes))
    }

    pub(crate) fn source_etag(&self) -> String {
        format!(
            "#{}",
            STANDARD.encode(mix(self.id.wrapping_add(self.version)).to_be_bytes())
        )
    }

    fn source(&self) -> Value {
        json!({ "type": "CONTACT", "id": self.source_id() })
    }

    fn item_metadata(&self, field: &str, index: usize) -> Value {
        if index == 0 && field != "userDefined" {
            json!({ "primary": true, "source": self.source() })
        } else {
            json!({ "source": self.source() })
        }
    }

    /// The lower-cased primary given / family name, for the name sort orders.
    pub(crate) fn name_key(&self, key: &str) -> Option<String> {
        self.fields
            .get("names")
            .and_then(|n| n.first())
            .and_then(|n| text(n, key))
            .map(str::to_lowercase)
    }

    /// The person as the API returns it for `fields` (already validated paths):
    /// `resourceName`, `etag`, then each requested field that has a value.
    pub(crate) fn render(&self, fields: &[&str]) -> Value {
        let mut out = Map::new();
        out.insert("resourceName".into(), json!(self.resource_name()));
        out.insert("etag".into(), json!(self.etag()));
        if fields.contains(&"metadata") {
            out.insert(
                "metadata".into(),
                json!({
                    "sources": [{
                        "type": "CONTACT",
                        "id": self.source_id(),
                        "etag": self.source_etag(),
                        "updateTime": iso_millis(self.update_time),
                    }],
                    "objectType": "PERSON",
                }),
            );
        }
        for (field, _, _) in STORED_FIELDS {
            if !fields.contains(&field) {
                continue;
            }
            let Some(items) = self.fields.get(field).filter(|i| !i.is_empty()) else {
                continue;
            };
            let rendered: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let mut out = Map::new();
                    out.insert("metadata".into(), self.item_metadata(field, i));
                    out.extend(derive(field, item));
                    Value::Object(out)
                })
                .collect();
            out.insert(field.to_owned(), Value::Array(rendered));
        }
        if fields.contains(&"memberships") {
            out.insert(
                "memberships".into(),
                json!([{
                    "metadata": { "source": self.source() },
                    "contactGroupMembership": {
                        "contactGroupId": "myContacts",
                        "contactGroupResourceName": "contactGroups/myContacts",
                    }
                }]),
            );
        }
        Value::Object(out)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub people: BTreeMap<u64, Person>,
    pub tombstones: Vec<Tombstone>,
    next_seq: u64,
    /// The last position taken in the change log.
    last_change: u64,
}

impl Store {
    /// Takes the next position of the change log, for a write about to be made.
    pub(crate) fn next_change(&mut self) -> u64 {
        self.last_change = self.last_change.saturating_add(1);
        self.last_change
    }

    pub(crate) fn last_change(&self) -> u64 {
        self.last_change
    }

    /// Deletes a person, leaving its tombstone in the change log.
    pub(crate) fn delete(&mut self, id: u64) -> Option<Person> {
        let person = self.people.remove(&id)?;
        let changed = self.next_change();
        self.tombstones.push(Tombstone { id, changed });
        Some(person)
    }

    pub(crate) fn allocate_id(&mut self) -> u64 {
        loop {
            let id = contact_id(self.next_seq);
            self.next_seq = self.next_seq.wrapping_add(1);
            if !self.people.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn seed() -> Store {
        let people = (0..CONNECTION_COUNT)
            .map(seed_person)
            .map(|p| (p.id, p))
            .collect();
        Store {
            people,
            tombstones: Vec::new(),
            next_seq: CONNECTION_COUNT,
            last_change: 0,
        }
    }
}

// 43 and 47 are coprime, so (i % 43, i % 47) never repeats below 2021.
#[rustfmt::skip]
const GIVEN: [&str; 43] = [
    "Ada", "Amara", "Ben", "Carmen", "Chidi", "Dmitri", "Elena", "Farah", "Gustav", "Hina",
    "Ines", "Jamal", "Keiko", "Lars", "Leila", "Mateus", "Nadia", "Oskar", "Paloma", "Quentin",
    "Rania", "Sven", "Tala", "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zofia", "Aiko", "Bruno",
    "Chiara", "Dario", "Esme", "Femi", "Greta", "Hugo", "Ilse", "Jonah", "Kofi", "Lucia",
    "Mads", "Noor",
];

#[rustfmt::skip]
const FAMILY: [&str; 47] = [
    "Lovelace", "Adeyemi", "Becker", "Castillo", "Dubois", "Eriksen", "Ferreira", "Gallagher",
    "Hashimoto", "Ivanova", "Jansen", "Kaur", "Lindholm", "Moreno", "Nakamura", "Okonkwo",
    "Petrov", "Quinn", "Rahman", "Schmidt", "Takahashi", "Ueda", "Varga", "Whitfield", "Xu",
    "Yilmaz", "Zhang", "Abiodun", "Bianchi", "Costa", "Dimitrov", "Esposito", "Fontaine",
    "Greco", "Halvorsen", "Iqbal", "Jovanovic", "Kowalski", "Laurent", "Mensah", "Novak",
    "Oliveira", "Popescu", "Richter", "Sorensen", "Tran", "Vasquez",
];

/// (company, domain, city, region, country, country code).
#[rustfmt::skip]
const COMPANIES: [(&str, &str, &str, &str, &str, &str); 10] = [
    ("Acme", "acme.example", "Mountain View", "CA", "United States", "US"),
    ("Initech", "initech.example", "Austin", "TX", "United States", "US"),
    ("Umbrella", "umbrella.example", "London", "", "United Kingdom", "GB"),
    ("Globex", "globex.example", "Zürich", "ZH", "Switzerland", "CH"),
    ("Soylent", "soylent.example", "Lagos", "", "Nigeria", "NG"),
    ("Hooli", "hooli.example", "Dublin", "", "Ireland", "IE"),
    ("Vehement Capital", "vehement.example", "Toronto", "ON", "Canada", "CA"),
    ("Massive Dynamic", "massive.example", "Tokyo", "", "Japan", "JP"),
    ("Tyrell", "tyrell.example", "São Paulo", "SP", "Brazil", "BR"),
    ("Wonka", "wonka.example", "Kraków", "", "Poland", "PL"),
];

const TITLES: [&str; 8] = [
    "CTO",
    "Engineer",
    "Head of Sales",
    "Designer",
    "Product Manager",
    "Recruiter",
    "Analyst",
    "COO",
];

const DEPARTMENTS: [&str; 5] = ["Engineering", "Sales", "Design", "Product", "Finance"];

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn pick<T: Copy>(list: &[T], i: u64) -> Option<T> {
    let len = u64::try_from(list.len()).ok()?.max(1);
    list.get(usize::try_from(i % len).ok()?).copied()
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus.max(1)).unwrap_or(0)
}

fn item(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn seed_person(i: u64) -> Person {
    let mut given = pick(&GIVEN, i).unwrap_or("Alex").to_owned();
    let mut family = pick(&FAMILY, i).unwrap_or("Doe").to_owned();
    let (company, domain, city, region, country, code) =
        pick(&COMPANIES, i * 3 + 2).unwrap_or(COMPANIES[0]);
    let mut local = format!("{}.{}", ascii_slug(&given), ascii_slug(&family));
    let mut fields: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    let mut has_name = true;
    let mut has_email = true;
    // Hand-picked edge cases a mapping layer must survive.
    match i {
        14 => has_email = false,
        43 => {
            given = "Siobhán".into();
            family = "O'Brien".into();
            local = "siobhan.obrien".into();
        }
        88 => {
            given = "美咲".into();
            family = "佐藤".into();
            local = "misaki.sato".into();
        }
        150 => has_name = false, // only an email address
        _ => {}
    }
    if has_name {
        fields.insert(
            "names".into(),
            vec![item(&[("givenName", &given), ("familyName", &family)])],
        );
    }
    if has_email {
        let mut emails = vec![item(&[
            ("value", &format!("{local}@{domain}")),
            ("type", "work"),
        ])];
        if i % 8 == 3 || i == 150 {
            emails.push(item(&[
                ("value", &format!("{local}.home@mail.example")),
                ("type", "home"),
            ]));
        }
        fields.insert("emailAddresses".into(), emails);
    }
    if i % 5 != 4 {
        fields.insert(
            "phoneNumbers".into(),
            vec![item(&[
                ("value", &format!("+1 650-555-{:04}", (i * 7919) % 10_000)),
                (
                    "type",
                    if i.is_multiple_of(2) {
                        "mobile"
                    } else {
                        "work"
                    },
                ),
            ])],
        );
    }
    if i % 9 != 7 {
        fields.insert(
            "organizations".into(),
            vec![item(&[
                ("name", company),
                ("title", pick(&TITLES, i).unwrap_or("")),
                (
                    "department",
                    if i.is_multiple_of(3) {
                        pick(&DEPARTMENTS, i).unwrap_or("")
                    } else {
                        ""
                    },
                ),
            ])],
        );
    }
    let mut addresses = Vec::new();
    if i % 6 == 1 {
        addresses.push(item(&[
            ("type", "work"),
            ("streetAddress", &format!("{} Amphitheatre Pkwy", 1000 + i)),
            ("city", city),
            ("region", region),
            ("postalCode", &format!("{:05}", 94_000 + i)),
            ("country", country),
            ("countryCode", code),
        ]));
    }
    if i.is_multiple_of(5) {
        addresses.push(item(&[
            ("type", "home"),
            ("streetAddress", &format!("{} Elm Street", 1 + i % 97)),
            ("city", city),
            ("region", region),
            ("postalCode", &format!("{:05}", 10_000 + i * 37)),
            ("country", country),
            ("countryCode", code),
        ]));
    }
    match i {
        // A custom label (Google keeps it verbatim as `formattedType`) and no street.
        37 => addresses.push(item(&[
            ("type", "Holiday home"),
            ("city", "Lisbon"),
            ("country", "Portugal"),
            ("countryCode", "PT"),
        ])),
        // An address entered with a country code only, no type.
        52 => addresses.push(item(&[
            ("streetAddress", "3 Harbour Road"),
            ("city", "Cork"),
            ("countryCode", "IE"),
        ])),
        _ => {}
    }
    if !addresses.is_empty() {
        fields.insert("addresses".into(), addresses);
    }
    if i % 7 != 3 {
        fields.insert(
            "userDefined".into(),
            vec![item(&[
                ("key", "customer_tier"),
                ("value", pick(&TIERS, i).unwrap_or("bronze")),
            ])],
        );
    }
    if i == 20 {
        fields.insert(
            "biographies".into(),
            vec![item(&[
                ("value", "Met at I/O.\nLikes hiking."),
                ("contentType", "TEXT_PLAIN"),
            ])],
        );
    }
    let update_time = Utc
        .with_ymd_and_hms(2023, 6, 1, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
        + Duration::days(small(i * 37, 330))
        + Duration::milliseconds(small(i * 7_654_321, 86_400_000));
    Person {
        id: contact_id(i),
        version: 0,
        update_time,
        fields,
        changed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_and_ids_are_19_digits() {
        let a = Store::seed();
        let b = Store::seed();
        let left: Vec<Value> = a
            .people
            .values()
            .map(|p| p.render(&PERSON_FIELDS))
            .collect();
        let right: Vec<Value> = b
            .people
            .values()
            .map(|p| p.render(&PERSON_FIELDS))
            .collect();
        assert_eq!(left, right);
        assert_eq!(a.people.len(), usize::try_from(CONNECTION_COUNT).unwrap());
        for person in a.people.values() {
            assert_eq!(person.id.to_string().len(), 19);
            assert_eq!(
                u64::from_str_radix(&person.source_id(), 16).unwrap(),
                person.id
            );
        }
        let etags: HashSet<String> = a.people.values().map(Person::etag).collect();
        assert_eq!(etags.len(), a.people.len());
    }

    #[test]
    fn rendering_follows_the_mask_and_derives_output_fields() {
        let store = Store::seed();
        let person = store.people.get(&contact_id(43)).unwrap();
        let names_only = person.render(&["names"]);
        let keys: Vec<&String> = names_only.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["resourceName", "etag", "names"]);
        let name = &names_only["names"][0];
        assert_eq!(name["displayName"], "Siobhán O'Brien");
        assert_eq!(name["displayNameLastFirst"], "O'Brien, Siobhán");
        assert_eq!(name["metadata"]["primary"], true);
        assert_eq!(name["metadata"]["source"]["type"], "CONTACT");
        let all = person.render(&PERSON_FIELDS);
        assert_eq!(
            all["phoneNumbers"][0]["canonicalForm"]
                .as_str()
                .unwrap()
                .len(),
            12
        );
        assert_eq!(all["userDefined"][0]["metadata"].get("primary"), None);
        assert_eq!(all["metadata"]["objectType"], "PERSON");
        assert_eq!(formatted_type("homeFax"), "Home Fax");
        assert_eq!(formatted_type("custom label"), "custom label");
    }
}
