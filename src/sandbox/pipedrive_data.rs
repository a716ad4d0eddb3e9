//! The Pipedrive sandbox's records (API v2 shapes): a deterministic seed of persons and
//! organizations, identical on every start and after `/_control/reset`, and the rendering
//! of a record exactly as `/api/v2/persons` and `/api/v2/organizations` return it.
//!
//! Custom fields live under `custom_fields`, keyed by 40-hex-character hashes, with
//! every defined key present (`null` when unset) as v2 does. The company has one person
//! custom field (customer tier, text) and two organization custom fields (employee count,
//! numeric; industry, text).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const PERSON_COUNT: u64 = 260;
pub(crate) const FIRST_PERSON_ID: u64 = 1;
pub(crate) const ORG_COUNT: u64 = 261;
/// Organizations live in their own id range so that a person id used as an organization
/// id (or the reverse) is a 404 rather than a silent wrong answer.
pub(crate) const FIRST_ORG_ID: u64 = 1001;

/// Person custom field "Customer tier" (text).
pub(crate) const PERSON_TIER_KEY: &str = "5f2a9c3e8b1d4f6a7c0e2b4d6f8a1c3e5b7d9f02";
/// Organization custom field "Number of employees" (numeric).
pub(crate) const ORG_EMPLOYEES_KEY: &str = "c1e8a3b5d7f9024680ace13579bdf02468ace135";
/// Organization custom field "Industry" (text).
pub(crate) const ORG_INDUSTRY_KEY: &str = "9b0d2f4a6c8e1a3c5e7f9b1d3f5a7c9e0b2d4f61";

/// Users of the sandbox company (`owner_id` values).
pub(crate) const OWNER_IDS: [u64; 3] = [13_294_001, 13_294_002, 13_294_003];

/// The `address` subfields of an organization, in v2's order.
pub(crate) const ADDRESS_PARTS: [&str; 9] = [
    "value",
    "country",
    "admin_area_level_1",
    "admin_area_level_2",
    "locality",
    "sublocality",
    "route",
    "street_number",
    "postal_code",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    Persons,
    Organizations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CustomKind {
    Text,
    Number,
}

impl Entity {
    pub(crate) const ALL: [Entity; 2] = [Entity::Persons, Entity::Organizations];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Entity::Persons => "persons",
            Entity::Organizations => "organizations",
        }
    }

    /// As Pipedrive names the entity in messages ("Person not found").
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Entity::Persons => "Person",
            Entity::Organizations => "Organization",
        }
    }

    pub(crate) fn custom_fields(self) -> &'static [(&'static str, CustomKind)] {
        match self {
            Entity::Persons => &[(PERSON_TIER_KEY, CustomKind::Text)],
            Entity::Organizations => &[
                (ORG_EMPLOYEES_KEY, CustomKind::Number),
                (ORG_INDUSTRY_KEY, CustomKind::Text),
            ],
        }
    }

    pub(crate) fn custom_kind(self, key: &str) -> Option<CustomKind> {
        self.custom_fields()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, kind)| *kind)
    }
}

/// One email or phone entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Channel {
    pub value: String,
    pub primary: bool,
    pub label: String,
}

impl Channel {
    fn render(&self) -> Value {
        json!({ "value": self.value, "primary": self.primary, "label": self.label })
    }
}

/// A person or an organization; the fields that belong to the other entity stay empty.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    /// Persons only.
    pub org_id: Option<u64>,
    pub emails: Vec<Channel>,
    pub phones: Vec<Channel>,
    /// Organizations only: every `ADDRESS_PARTS` key, `null` where unknown.
    pub address: Option<Map<String, Value>>,
    pub add_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub visible_to: u64,
    pub label_ids: Vec<u64>,
    /// Set custom fields only; rendering adds the unset ones as `null`.
    pub custom: BTreeMap<String, Value>,
    pub deleted: bool,
}

/// v2 timestamps: RFC 3339, whole seconds, `Z`.
pub(crate) fn v2_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Pipedrive derives first and last name from `name`: the first word, then the rest.
pub(crate) fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let trimmed = name.trim();
    match trimmed.split_once(char::is_whitespace) {
        Some((first, rest)) => (
            Some(first.to_owned()),
            Some(rest.trim().to_owned()).filter(|r| !r.is_empty()),
        ),
        None => (Some(trimmed.to_owned()).filter(|f| !f.is_empty()), None),
    }
}

impl Record {
    /// The record as v2 returns it. `custom_keys` limits `custom_fields` to the given keys
    /// (the `custom_fields` query parameter); `None` renders every defined key.
    pub(crate) fn render(&self, entity: Entity, custom_keys: Option<&[String]>) -> Value {
        let mut custom = Map::new();
        for (key, _) in entity.custom_fields() {
            if custom_keys.is_some_and(|wanted| !wanted.iter().any(|w| w == key)) {
                continue;
            }
            let value = self.custom.get(*key).cloned().unwrap_or(Value::Null);
            custom.insert((*key).to_owned(), value);
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("name".into(), json!(self.name));
        match entity {
            Entity::Persons => {
                let (first, last) = split_name(&self.name);
                out.insert("first_name".into(), json!(first));
                out.insert("last_name".into(), json!(last));
                out.insert("owner_id".into(), json!(self.owner_id));
                out.insert("org_id".into(), json!(self.org_id));
                out.insert("add_time".into(), json!(v2_time(self.add_time)));
                out.insert("update_time".into(), json!(v2_time(self.update_time)));
                out.insert(
                    "emails".into(),
                    Value::Array(self.emails.iter().map(Channel::render).collect()),
                );
                out.insert(
                    "phones".into(),
                    Value::Array(self.phones.iter().map(Channel::render).collect()),
                );
                out.insert("is_deleted".into(), json!(self.deleted));
                out.insert("visible_to".into(), json!(self.visible_to));
                out.insert("label_ids".into(), json!(self.label_ids));
                out.insert("picture_id".into(), Value::Null);
            }
            Entity::Organizations => {
                out.insert("owner_id".into(), json!(self.owner_id));
                out.insert("add_time".into(), json!(v2_time(self.add_time)));
                out.insert("update_time".into(), json!(v2_time(self.update_time)));
                out.insert("is_deleted".into(), json!(self.deleted));
                out.insert("visible_to".into(), json!(self.visible_to));
                out.insert(
                    "address".into(),
                    self.address.clone().map_or(Value::Null, Value::Object),
                );
                out.insert("label_ids".into(), json!(self.label_ids));
            }
        }
        out.insert("custom_fields".into(), Value::Object(custom));
        Value::Object(out)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    persons: BTreeMap<u64, Record>,
    organizations: BTreeMap<u64, Record>,
    next_person_id: u64,
    next_org_id: u64,
}

impl Store {
    pub(crate) fn table(&self, entity: Entity) -> &BTreeMap<u64, Record> {
        match entity {
            Entity::Persons => &self.persons,
            Entity::Organizations => &self.organizations,
        }
    }

    pub(crate) fn table_mut(&mut self, entity: Entity) -> &mut BTreeMap<u64, Record> {
        match entity {
            Entity::Persons => &mut self.persons,
            Entity::Organizations => &mut self.organizations,
        }
    }

    /// Live (not deleted) record by id.
    pub(crate) fn live(&self, entity: Entity, id: u64) -> Option<&Record> {
        self.table(entity).get(&id).filter(|r| !r.deleted)
    }

    /// Ids are never reused, even after a delete.
    pub(crate) fn allocate_id(&mut self, entity: Entity) -> u64 {
        let next = match entity {
            Entity::Persons => &mut self.next_person_id,
            Entity::Organizations => &mut self.next_org_id,
        };
        let id = *next;
        *next = next.saturating_add(1);
        id
    }

    pub(crate) fn seed() -> Store {
        let organizations: BTreeMap<u64, Record> =
            (0..ORG_COUNT).map(seed_org).map(|r| (r.id, r)).collect();
        let persons = (0..PERSON_COUNT)
            .map(|i| seed_person(i, &organizations))
            .map(|r| (r.id, r))
            .collect();
        Store {
            persons,
            organizations,
            next_person_id: FIRST_PERSON_ID + PERSON_COUNT,
            next_org_id: FIRST_ORG_ID + ORG_COUNT,
        }
    }
}

// 20 and 13 are coprime, so (j % 20, j % 13) never repeats below 260: every generated
// organization name is unique.
#[rustfmt::skip]
const ORG_PREFIXES: [&str; 20] = [
    "Northwind", "Bluebird", "Silverline", "Redwood", "Evergreen", "Ironbridge", "Lakeside",
    "Brightwave", "Stonegate", "Copperfield", "Highland", "Seaside", "Goldcrest", "Riverbend",
    "Clearwater", "Oakridge", "Sunpeak", "Windmill", "Foxglove", "Harbor",
];

#[rustfmt::skip]
const ORG_SUFFIXES: [&str; 13] = [
    "Analytics", "Logistics", "Foods", "Robotics", "Health", "Capital", "Media", "Energy",
    "Software", "Textiles", "Consulting", "Labs", "Outfitters",
];

const INDUSTRIES: [&str; 10] = [
    "Software",
    "Logistics",
    "Food & Beverage",
    "Manufacturing",
    "Healthcare",
    "Financial Services",
    "Media",
    "Energy",
    "Retail",
    "Consulting",
];

/// (street, number, city, region, postal code, country).
#[rustfmt::skip]
const PLACES: [(&str, &str, &str, &str, &str, &str); 12] = [
    ("Market Street", "101", "San Francisco", "California", "94103", "United States"),
    ("Baker Street", "221", "London", "England", "NW1 6XE", "United Kingdom"),
    ("Viru", "5", "Tallinn", "Harju maakond", "10140", "Estonia"),
    ("Rua Augusta", "88", "Lisboa", "Lisboa", "1100-053", "Portugal"),
    ("Friedrichstraße", "43", "Berlin", "Berlin", "10117", "Germany"),
    ("Rue de Rivoli", "12", "Paris", "Île-de-France", "75004", "France"),
    ("Queen Street", "250", "Auckland", "Auckland", "1010", "New Zealand"),
    ("Yonge Street", "77", "Toronto", "Ontario", "M5E 1G4", "Canada"),
    ("Calle de Alcalá", "30", "Madrid", "Comunidad de Madrid", "28014", "Spain"),
    ("Nowy Świat", "6", "Warszawa", "Mazowieckie", "00-400", "Poland"),
    ("Orchard Road", "9", "Singapore", "Singapore", "238823", "Singapore"),
    ("Avenida Paulista", "1578", "São Paulo", "São Paulo", "01310-200", "Brazil"),
];

// 41 and 43 are coprime, so (i % 41, i % 43) never repeats below 1763.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 41] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Mia", "Lucas", "Amelia", "Elias",
    "Sofia", "Jonas", "Isla", "Hugo", "Freya", "Oscar", "Maya", "Leo", "Nora", "Felix",
    "Ingrid", "Tomas", "Alma", "Rasmus", "Elsa", "Kai", "Lena", "Mikk", "Kertu", "Priya",
    "Arjun", "Chloe", "Diego", "Yara", "Omar", "Hana", "Kenji", "Zara", "Ivo", "Greta", "Milan",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 43] = [
    "Tamm", "Saar", "Sepp", "Mägi", "Kask", "Rebane", "Ilves", "Kukk", "Lepp", "Koppel",
    "Jensen", "Nielsen", "Hansen", "Berg", "Lindqvist", "Novak", "Horvat", "Kowalczyk",
    "Silva", "Santos", "Costa", "Moreau", "Lefebvre", "Rossi", "Bianchi", "Schneider",
    "Fischer", "Weber", "Murphy", "Walsh", "Patel", "Sharma", "Okafor", "Mensah", "Tanaka",
    "Sato", "Kim", "Park", "Nguyen", "Garcia", "Lopez", "Haddad", "Cohen",
];

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn at(base: (i32, u32, u32, u32), offset: Duration) -> DateTime<Utc> {
    let (y, m, d, h) = base;
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
        + offset
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus.max(1)).unwrap_or(0)
}

fn pick<T: Copy>(list: &[T], i: u64) -> Option<T> {
    let len = u64::try_from(list.len()).ok()?;
    list.get(usize::try_from(i % len.max(1)).ok()?).copied()
}

/// Lower-case ASCII for email local parts and domains.
pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'å' | 'Å' | 'ã' => 'a',
                'é' | 'è' | 'ë' | 'ê' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ø' | 'ô' | 'Ö' => 'o',
                'ú' | 'ü' => 'u',
                'ñ' => 'n',
                'ç' => 'c',
                'ł' => 'l',
                'ś' => 's',
                c => c,
            };
            (folded.is_ascii_alphanumeric() || folded == '-').then(|| folded.to_ascii_lowercase())
        })
        .collect()
}

fn address(place: (&str, &str, &str, &str, &str, &str)) -> Map<String, Value> {
    let (street, number, city, region, postal, country) = place;
    let mut a = Map::new();
    for part in ADDRESS_PARTS {
        a.insert(part.to_owned(), Value::Null);
    }
    a.insert(
        "value".into(),
        json!(format!("{street} {number}, {postal} {city}, {country}")),
    );
    a.insert("country".into(), json!(country));
    a.insert("admin_area_level_1".into(), json!(region));
    a.insert("locality".into(), json!(city));
    a.insert("route".into(), json!(street));
    a.insert("street_number".into(), json!(number));
    a.insert("postal_code".into(), json!(postal));
    a
}

fn seed_org(j: u64) -> Record {
    let id = FIRST_ORG_ID + j;
    let generated = format!(
        "{} {}",
        pick(&ORG_PREFIXES, j).unwrap_or("Acme"),
        pick(&ORG_SUFFIXES, j).unwrap_or("Group")
    );
    // Hand-picked edge cases a mapping layer must survive.
    let name = match j {
        5 => "Société Générale de Café".to_owned(),
        9 => "O'Reilly & Daughters".to_owned(),
        17 => "Müller Maschinenbau GmbH".to_owned(),
        33 => "株式会社さくらテック".to_owned(),
        260 => "Northwind Analytics (EU)".to_owned(),
        _ => generated,
    };
    let created = at(
        (2022, 3, 1, 9),
        Duration::days(small(j, 400) * 2) + Duration::minutes(small(j * 37, 1440)),
    );
    let updated =
        created + Duration::days(20 + small(j * 11, 300)) + Duration::seconds(small(j * 7, 3600));
    let mut custom = BTreeMap::new();
    // Every tenth organization has no employee count, every seventh no industry.
    if j % 10 != 7 {
        let employees = pick(&[4u64, 12, 35, 80, 150, 420, 1200, 5000], j * 3).unwrap_or(10);
        custom.insert(ORG_EMPLOYEES_KEY.to_owned(), json!(employees));
    }
    if j % 7 != 2 {
        custom.insert(
            ORG_INDUSTRY_KEY.to_owned(),
            json!(pick(&INDUSTRIES, j * 3 + 1).unwrap_or("Software")),
        );
    }
    Record {
        id,
        name,
        owner_id: pick(&OWNER_IDS, j).unwrap_or(13_294_001),
        org_id: None,
        emails: Vec::new(),
        phones: Vec::new(),
        // Every eleventh organization has no address on file.
        address: (j % 11 != 4).then(|| address(pick(&PLACES, j * 5).unwrap_or(PLACES[0]))),
        add_time: created,
        update_time: updated,
        visible_to: 3,
        label_ids: if j.is_multiple_of(6) {
            vec![1]
        } else {
            Vec::new()
        },
        custom,
        deleted: false,
    }
}

fn org_domain(org: Option<&Record>) -> String {
    org.map_or_else(
        || "mail.example".to_owned(),
        |o| {
            let s = slug(&o.name.replace(' ', "-"));
            let s = s.trim_matches('-');
            if s.is_empty() {
                format!("org{}.example", o.id)
            } else {
                format!("{s}.example")
            }
        },
    )
}

fn seed_person(i: u64, orgs: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_PERSON_ID + i;
    let first = pick(&FIRST_NAMES, i).unwrap_or("Alex");
    let last = pick(&LAST_NAMES, i).unwrap_or("Doe");
    let org_id = (i % 9 != 4).then(|| FIRST_ORG_ID + (i * 7) % ORG_COUNT);
    let domain = org_domain(org_id.and_then(|o| orgs.get(&o)));
    let mut name = format!("{first} {last}");
    let mut local = Some(format!("{}.{}", slug(first), slug(last)));
    let mut extra_email: Option<Channel> = None;
    match id {
        13 => local = None, // no email at all
        42 => {
            name = "Siobhán O'Brien".into();
            local = Some("siobhan.obrien".into());
        }
        77 => {
            name = "Zoë Ångström-Müller".into();
            local = Some("zoe.angstrom-muller".into());
        }
        100 => {
            name = "佐藤 美咲".into();
            local = Some("misaki.sato".into());
        }
        150 => {
            // One word: Pipedrive keeps `last_name` empty.
            name = "Prince".into();
            local = Some("prince".into());
        }
        201 => {
            // The primary address is not the first one.
            name = "Ana Souza".into();
            local = Some("ana.souza".into());
            extra_email = Some(Channel {
                value: "ana.souza.home@mail.example".into(),
                primary: false,
                label: "home".into(),
            });
        }
        231 => {
            name = "Robert Smith, Jr.".into();
            local = Some("robert.smith.jr".into());
        }
        _ => {}
    }
    let mut emails = Vec::new();
    if let Some(extra) = extra_email {
        emails.push(extra);
    }
    if let Some(local) = local {
        emails.push(Channel {
            value: format!("{local}@{domain}"),
            primary: true,
            label: "work".into(),
        });
    }
    let phones = if i % 6 == 5 || id == 13 {
        Vec::new()
    } else {
        vec![Channel {
            value: format!("+372 5{:03} {:04}", (i * 37) % 1000, (i * 7919) % 10_000),
            primary: true,
            label: if i.is_multiple_of(2) {
                "mobile"
            } else {
                "work"
            }
            .into(),
        }]
    };
    let created = at(
        (2023, 1, 15, 8),
        Duration::days(small(i, 500)) + Duration::seconds(small(i * 4567, 86_400)),
    );
    let updated =
        created + Duration::days(1 + small(i * 13, 200)) + Duration::seconds(small(i * 61, 3600));
    let mut custom = BTreeMap::new();
    if i % 7 != 3 {
        custom.insert(
            PERSON_TIER_KEY.to_owned(),
            json!(pick(&TIERS, i).unwrap_or("bronze")),
        );
    }
    Record {
        id,
        name,
        owner_id: pick(&OWNER_IDS, i / 3).unwrap_or(13_294_001),
        org_id,
        emails,
        phones,
        address: None,
        add_time: created,
        update_time: updated,
        visible_to: 3,
        label_ids: Vec::new(),
        custom,
        deleted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_with_unique_names_and_emails() {
        let a = Store::seed();
        let b = Store::seed();
        for entity in Entity::ALL {
            let left: Vec<Value> = a
                .table(entity)
                .values()
                .map(|r| r.render(entity, None))
                .collect();
            let right: Vec<Value> = b
                .table(entity)
                .values()
                .map(|r| r.render(entity, None))
                .collect();
            assert_eq!(left, right);
            assert!(left.len() >= 260);
        }
        let names: HashSet<&str> = a
            .table(Entity::Organizations)
            .values()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names.len(), usize::try_from(ORG_COUNT).unwrap());
        let emails: Vec<String> = a
            .table(Entity::Persons)
            .values()
            .flat_map(|r| r.emails.iter().map(|e| e.value.to_lowercase()))
            .collect();
        let unique: HashSet<&String> = emails.iter().collect();
        assert_eq!(unique.len(), emails.len());
        for record in a.table(Entity::Persons).values() {
            assert!(record.add_time < record.update_time);
            assert!(record.emails.iter().filter(|e| e.primary).count() <= 1);
            if let Some(org) = record.org_id {
                assert!(a.live(Entity::Organizations, org).is_some());
            }
        }
    }

    #[test]
    fn custom_field_keys_are_40_hex_characters() {
        for entity in Entity::ALL {
            for (key, _) in entity.custom_fields() {
                assert_eq!(key.len(), 40, "{key}");
                assert!(
                    key.chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
        }
    }

    #[test]
    fn names_split_like_pipedrive() {
        assert_eq!(
            split_name("Ana Souza"),
            (Some("Ana".into()), Some("Souza".into()))
        );
        assert_eq!(
            split_name("Robert Smith, Jr."),
            (Some("Robert".into()), Some("Smith, Jr.".into()))
        );
        assert_eq!(split_name("Prince"), (Some("Prince".into()), None));
        assert_eq!(split_name("  "), (None, None));
    }
}
