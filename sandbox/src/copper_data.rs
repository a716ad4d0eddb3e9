//! The sandbox Copper account: people, companies and opportunities, seeded
//! deterministically in the shapes of vendors.md §10 (unix-second timestamps, custom fields
//! as `{custom_field_definition_id, value}` arrays).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

/// The key owner: `X-PW-UserEmail` must name them.
pub(crate) const OWNER_EMAIL: &str = "kadri.lepik@sandbox-copper.example";
pub(crate) const OWNER_ID: i64 = 813_921;
/// People custom field "Tier" (text).
pub(crate) const TIER_FIELD: i64 = 100_764;
/// Company custom field "Industry" (text).
pub(crate) const INDUSTRY_FIELD: i64 = 100_765;
pub(crate) const SEEDED: i64 = 260;
pub(crate) const PIPELINE_ID: i64 = 213_214;
/// Pipeline stages (id, name, win probability).
pub(crate) const STAGES: [(i64, &str, i64); 4] = [
    (987_790, "Qualified", 10),
    (987_791, "Proposal", 40),
    (987_792, "Negotiation", 70),
    (987_793, "Signed", 100),
];
pub(crate) const STATUSES: [&str; 4] = ["Open", "Won", "Lost", "Abandoned"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Entity {
    People,
    Companies,
    Opportunities,
}

impl Entity {
    pub(crate) const ALL: [Entity; 3] = [Entity::People, Entity::Companies, Entity::Opportunities];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Entity::People => "people",
            Entity::Companies => "companies",
            Entity::Opportunities => "opportunities",
        }
    }

    fn first_id(self) -> i64 {
        match self {
            Entity::People => 78_757_050,
            Entity::Companies => 2_031,
            Entity::Opportunities => 4_417_000,
        }
    }

    pub(crate) fn id_of(self, index: i64) -> i64 {
        self.first_id() + index * 3
    }
}

pub(crate) struct Store {
    pub people: Vec<Map<String, Value>>,
    pub companies: Vec<Map<String, Value>>,
    pub opportunities: Vec<Map<String, Value>>,
    pub next: i64,
}

impl Store {
    pub(crate) fn table(&self, e: Entity) -> &Vec<Map<String, Value>> {
        match e {
            Entity::People => &self.people,
            Entity::Companies => &self.companies,
            Entity::Opportunities => &self.opportunities,
        }
    }

    pub(crate) fn table_mut(&mut self, e: Entity) -> &mut Vec<Map<String, Value>> {
        match e {
            Entity::People => &mut self.people,
            Entity::Companies => &mut self.companies,
            Entity::Opportunities => &mut self.opportunities,
        }
    }

    pub(crate) fn find(&self, e: Entity, id: i64) -> Option<&Map<String, Value>> {
        self.table(e)
            .iter()
            .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
    }

    pub(crate) fn seed() -> Store {
        let mut s = Store {
            people: Vec::new(),
            companies: Vec::new(),
            opportunities: Vec::new(),
            next: 0,
        };
        for i in 0..SEEDED {
            s.companies.push(seed_company(i));
        }
        for i in 0..SEEDED {
            let p = seed_person(&s, i);
            s.people.push(p);
        }
        for i in 0..SEEDED {
            let o = seed_opportunity(&s, i);
            s.opportunities.push(o);
        }
        s.next = 90_000_000;
        s
    }
}

const FIRST: [&str; 17] = [
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
    "Siobhán",
    "Tim",
    "Bjarne",
];
const LAST: [&str; 11] = [
    "Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
    "Thompson", "Allen", "Knuth",
];
const CO_A: [&str; 11] = [
    "Acme", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Helix", "Indigo", "Jade",
    "Krypton",
];
const CO_B: [&str; 7] = [
    "Corp",
    "Partners",
    "Supply",
    "Studio",
    "Group",
    "Labs",
    "Logistics",
];
const INDUSTRIES: [&str; 4] = ["Software", "Construction", "Retail", "Healthcare"];
const TITLES: [&str; 5] = ["CTO", "Engineer", "Founder", "Buyer", "Head of Sales"];

fn pick<T: Copy>(list: &[T], i: i64, fallback: T) -> T {
    usize::try_from(i)
        .ok()
        .and_then(|i| list.get(i % list.len()))
        .copied()
        .unwrap_or(fallback)
}

pub(crate) fn company_name(i: i64) -> String {
    format!("{} {}", pick(&CO_A, i, "Acme"), pick(&CO_B, i, "Corp"))
}

fn domain(i: i64) -> String {
    format!(
        "{}.example",
        company_name(i).to_lowercase().replace(' ', "-")
    )
}

fn seconds(base_days: i64, i: i64, offset_hours: i64) -> i64 {
    let base: DateTime<Utc> = Utc
        .with_ymd_and_hms(2024, 3, 2, 9, 31, 12)
        .single()
        .unwrap_or_default();
    base.timestamp() + base_days * 86_400 + i * 3_600 * 6 + offset_hours * 3_600
}

fn custom(id: i64, value: Option<&str>) -> Value {
    json!({"custom_field_definition_id": id, "value": value})
}

fn seed_company(i: i64) -> Map<String, Value> {
    let created = seconds(0, i, 0);
    let m = json!({
        "id": Entity::Companies.id_of(i),
        "name": company_name(i),
        "address": if i % 4 == 3 { Value::Null } else { json!({
            "street": format!("{} Main St", 10 + i),
            "city": pick(&["Boston", "Denver", "Portland"], i, "Boston"),
            "state": pick(&["MA", "CO", "OR"], i, "MA"),
            "postal_code": pick(&["02108", "80202", "97201"], i, "02108"),
            "country": "US",
        }) },
        "assignee_id": if i % 3 == 0 { Value::Null } else { json!(OWNER_ID) },
        "contact_type_id": 451_490,
        "details": if i % 3 == 2 { Value::Null } else { json!(format!("{} builds things.", company_name(i))) },
        "email_domain": domain(i),
        "phone_numbers": if i % 2 == 0 { json!([{"number": format!("303555{:04}", 1000 + i), "category": "work"}]) } else { json!([]) },
        "socials": [],
        "tags": if i % 5 == 0 { json!(["partner"]) } else { json!([]) },
        "websites": if i % 6 == 5 { json!([]) } else { json!([{"url": format!("https://{}", domain(i)), "category": "work"}]) },
        "custom_fields": [custom(INDUSTRY_FIELD, (i % 5 != 4).then(|| pick(&INDUSTRIES, i, "Software")))],
        "interaction_count": i % 7,
        "date_created": created,
        "date_modified": created + (i % 40 + 1) * 86_400,
    });
    m.as_object().cloned().unwrap_or_default()
}

fn seed_person(s: &Store, i: i64) -> Map<String, Value> {
    let first = pick(&FIRST, i, "Ada");
    let last = pick(&LAST, i, "Lovelace");
    let company = (i % 5 != 4).then(|| Entity::Companies.id_of(i));
    let company_name = company
        .and_then(|c| s.find(Entity::Companies, c))
        .and_then(|c| c.get("name").cloned())
        .unwrap_or(Value::Null);
    let created = seconds(0, i, 2);
    let n = i + 1;
    let mut emails = Vec::new();
    if i % 7 != 6 {
        emails.push(json!({"email": format!("{}.{}{n}@{}", first.to_lowercase(), last.to_lowercase(), domain(i)), "category": "work"}));
    }
    if i % 3 == 1 {
        emails.push(json!({"email": format!("{}{n}@home.example", first.to_lowercase()), "category": "personal"}));
    }
    let m = json!({
        "id": Entity::People.id_of(i),
        "name": format!("{first} {last}"),
        "prefix": null,
        "first_name": first,
        "middle_name": null,
        "last_name": last,
        "suffix": null,
        "address": if i % 4 == 0 { json!({"street": format!("{n} Elm St"), "city": "Boston", "state": "MA", "postal_code": "02108", "country": "US"}) } else { Value::Null },
        "assignee_id": if i % 2 == 0 { json!(OWNER_ID) } else { Value::Null },
        "company_id": company,
        "company_name": company_name,
        "contact_type_id": 451_491,
        "details": null,
        "emails": emails,
        "phone_numbers": if i % 2 == 0 { json!([{"number": format!("617555{:04}", 1000 + i), "category": pick(&["work", "mobile"], i / 2, "work")}]) } else { json!([]) },
        "socials": [],
        "tags": if i % 6 == 0 { json!(["vip"]) } else { json!([]) },
        "title": pick(&TITLES, i, "Engineer"),
        "websites": [],
        "custom_fields": [custom(TIER_FIELD, pick(&[Some("Gold"), Some("Silver"), Some("Bronze"), None], i, None))],
        "date_created": created,
        "date_modified": created + (i % 30 + 1) * 86_400,
        "date_last_contacted": if i % 3 == 0 { json!(created + 5 * 86_400) } else { Value::Null },
        "interaction_count": i % 4,
    });
    m.as_object().cloned().unwrap_or_default()
}

fn seed_opportunity(s: &Store, i: i64) -> Map<String, Value> {
    let (stage, _, probability) = pick(&STAGES, i, STAGES[0]);
    let status = pick(&STATUSES, i, "Open");
    let company = Entity::Companies.id_of(i);
    let contact = (i % 5 != 3).then(|| Entity::People.id_of(i));
    let created = seconds(0, i, 4);
    let close = Utc
        .timestamp_opt(created + 40 * 86_400, 0)
        .single()
        .unwrap_or_default();
    let value = if i == 1 {
        json!(1_234_567.89)
    } else if i % 8 == 7 {
        Value::Null
    } else {
        json!((i % 30 + 1) * 1_500)
    };
    let m = json!({
        "id": Entity::Opportunities.id_of(i),
        "name": format!("{} — {}", pick(&["New logo", "Upsell", "Renewal"], i, "Upsell"), company_name(i)),
        "assignee_id": OWNER_ID,
        "close_date": if i % 6 == 5 { Value::Null } else { json!(close.format("%-m/%-d/%Y").to_string()) },
        "company_id": company,
        "company_name": s.find(Entity::Companies, company).and_then(|c| c.get("name").cloned()),
        "customer_source_id": null,
        "details": if i % 2 == 0 { json!("Found at a trade fair.") } else { Value::Null },
        "loss_reason_id": if status == "Lost" { json!(4_511) } else { Value::Null },
        "pipeline_id": PIPELINE_ID,
        "pipeline_stage_id": stage,
        "primary_contact_id": contact,
        "priority": pick(&["None", "Low", "Medium", "High"], i, "None"),
        "status": status,
        "tags": [],
        "interaction_count": i % 3,
        "monetary_unit": if value.is_null() { Value::Null } else { json!(pick(&["USD", "USD", "EUR"], i, "USD")) },
        "monetary_value": value,
        "converted_unit": null,
        "converted_value": null,
        "win_probability": probability,
        "date_stage_changed": created + 86_400,
        "date_last_contacted": null,
        "leads_converted_from": [],
        "date_lead_created": null,
        "date_created": created,
        "date_modified": created + (i % 20 + 1) * 86_400,
        "custom_fields": [],
    });
    m.as_object().cloned().unwrap_or_default()
}
