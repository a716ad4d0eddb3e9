//! The sandbox Close organisation: leads (companies, with their contacts embedded),
//! contacts and opportunities, seeded deterministically, in the shapes of vendors.md §9.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const ORGANIZATION_ID: &str = "orga_bwwWG475zqWiQGur0thQshwVXo8rIYecQHDWFanqhen";
pub(crate) const USER_ID: &str = "user_04EJPREurd0b3KDozVFqXSRbt2uBjw3QfeYa7ZaGTwI";
pub(crate) const USER_NAME: &str = "Kadri Lepik";
/// The contact custom field "Tier" (a text field).
pub(crate) const TIER_FIELD: &str = "custom.cf_v6S011I6MqcbVvB2FA5Nk8dr5MkL8sWuCiG8cUleO9c";
/// The lead custom field "Industry" (a choices field).
pub(crate) const INDUSTRY_FIELD: &str = "custom.cf_Jm2lSxhmE8dYaHtVHR4Gg4m3bVV3SkyNmdXo1AqKfO7";
pub(crate) const SEEDED: usize = 260;

/// Lead statuses (id, label).
pub(crate) const LEAD_STATUSES: [(&str, &str); 4] = [
    (
        "stat_1ZdiZqcSIkoGVnNOyxiEY58eTGQmFNG3LPlEVQ4V7Nk",
        "Potential",
    ),
    (
        "stat_2yvz6N8U8TsSYU4xoAzMnhcbN8VeNbwGB6S5sxSmq5t",
        "Qualified",
    ),
    (
        "stat_3Pk6hKq5T1pWl0OGrvOnNCn7Wdd4SV0r3XyY2E6k5bq",
        "Customer",
    ),
    (
        "stat_4mF0uGbO1VVDbVt5LxHwPbU0Ui5gZnFq7ZtC2OZzRj4",
        "Bad Fit",
    ),
];

/// Opportunity statuses (id, label, status_type).
pub(crate) const OPPORTUNITY_STATUSES: [(&str, &str, &str); 3] = [
    (
        "stat_6KpNJTcXbpG8Ss3Mtf9mNQ6cmJCuO7pSkPpYzR4Bv0n",
        "Active",
        "active",
    ),
    (
        "stat_7Lq0KUdYcqH9Tt4Nug0nOR7dnKDvP8qTlQqZaS5Cw1o",
        "Won",
        "won",
    ),
    (
        "stat_8Mr1LVeZdrI0Uu5Ovh1oPS8eoLEwQ9rUmRrAbT6Dx2p",
        "Lost",
        "lost",
    ),
];
pub(crate) const PIPELINE_ID: &str = "pipe_3JDm8ZfPCGUzP1ZbFfNnYqFWDkmrdgCKsqHm7pnLbdu";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Contact,
    Lead,
    Opportunity,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::Contact, Kind::Lead, Kind::Opportunity];

    /// The object type as paths and events name it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Contact => "contact",
            Kind::Lead => "lead",
            Kind::Opportunity => "opportunity",
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Contact => "cont_",
            Kind::Lead => "lead_",
            Kind::Opportunity => "oppo_",
        }
    }

    /// As 404 messages name the model.
    pub(crate) fn model(self) -> &'static str {
        match self {
            Kind::Contact => "Contact",
            Kind::Lead => "Lead",
            Kind::Opportunity => "Opportunity",
        }
    }
}

/// Close's timestamps: microseconds and an explicit offset.
pub(crate) fn close_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A Close-shaped id (`cont_` and 43 base62 characters), stable per (kind, serial).
pub(crate) fn close_id(kind: Kind, serial: u64) -> String {
    let mut x = serial.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (kind as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
        | 1;
    let mut out = String::from(kind.prefix());
    for _ in 0..43 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = usize::try_from(x % 62).unwrap_or(0);
        out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
    }
    out
}

pub(crate) struct Store {
    pub contacts: Vec<Map<String, Value>>,
    pub leads: Vec<Map<String, Value>>,
    pub opportunities: Vec<Map<String, Value>>,
    pub next_serial: u64,
}

impl Store {
    pub(crate) fn table(&self, kind: Kind) -> &Vec<Map<String, Value>> {
        match kind {
            Kind::Contact => &self.contacts,
            Kind::Lead => &self.leads,
            Kind::Opportunity => &self.opportunities,
        }
    }

    pub(crate) fn table_mut(&mut self, kind: Kind) -> &mut Vec<Map<String, Value>> {
        match kind {
            Kind::Contact => &mut self.contacts,
            Kind::Lead => &mut self.leads,
            Kind::Opportunity => &mut self.opportunities,
        }
    }

    pub(crate) fn find(&self, kind: Kind, id: &str) -> Option<&Map<String, Value>> {
        self.table(kind)
            .iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
    }

    /// A record as the API returns it: leads embed their contacts and opportunities.
    pub(crate) fn render(&self, kind: Kind, record: &Map<String, Value>) -> Value {
        let mut out = record.clone();
        if kind == Kind::Lead {
            let id = record.get("id").cloned().unwrap_or(Value::Null);
            let of_lead = |t: &Vec<Map<String, Value>>| -> Vec<Value> {
                t.iter()
                    .filter(|r| r.get("lead_id") == Some(&id))
                    .map(|r| Value::Object(r.clone()))
                    .collect()
            };
            out.insert("contacts".into(), Value::Array(of_lead(&self.contacts)));
            out.insert(
                "opportunities".into(),
                Value::Array(of_lead(&self.opportunities)),
            );
        }
        Value::Object(out)
    }

    pub(crate) fn seed() -> Store {
        let mut store = Store {
            contacts: Vec::new(),
            leads: Vec::new(),
            opportunities: Vec::new(),
            next_serial: SEEDED as u64 + 1,
        };
        for i in 0..SEEDED {
            store.leads.push(seed_lead(i));
        }
        for i in 0..SEEDED {
            store.contacts.push(seed_contact(i));
        }
        for i in 0..SEEDED {
            let o = seed_opportunity(&store, i);
            store.opportunities.push(o);
        }
        store
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
const LEAD_A: [&str; 11] = [
    "Bluebird", "Harbour", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchard",
    "Pinnacle", "Quarry", "Redwood",
];
const LEAD_B: [&str; 13] = [
    "Analytics",
    "Bakery",
    "Cycles",
    "Dental",
    "Energy",
    "Freight",
    "Games",
    "Hotels",
    "Insurance",
    "Joinery",
    "Kitchens",
    "Labs",
    "Media",
];
const INDUSTRIES: [&str; 4] = ["Software", "Logistics", "Retail", "Healthcare"];
const TITLES: [&str; 5] = ["CTO", "Office Manager", "Founder", "Buyer", "VP Sales"];

fn lead_name(i: usize) -> String {
    let a = LEAD_A.get(i % LEAD_A.len()).copied().unwrap_or("Acme");
    let b = LEAD_B.get(i % LEAD_B.len()).copied().unwrap_or("Corp");
    format!("{a} {b}")
}

fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "")
}

fn seed_time(kind: Kind, i: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 8, 8, 30, 0)
        .single()
        .unwrap_or_default();
    let offset = match kind {
        Kind::Lead => 0,
        Kind::Contact => 2,
        Kind::Opportunity => 4,
    };
    base + Duration::hours(i as i64 * 5 + offset) + Duration::microseconds(331_000 + i as i64)
}

fn stamps(kind: Kind, i: usize) -> (String, String) {
    let created = seed_time(kind, i);
    let updated = created + Duration::days((i % 90) as i64 + 1);
    (close_time(created), close_time(updated))
}

fn seed_lead(i: usize) -> Map<String, Value> {
    let name = lead_name(i);
    let (created, updated) = stamps(Kind::Lead, i);
    let (status_id, status_label) = LEAD_STATUSES
        .get(i % LEAD_STATUSES.len())
        .copied()
        .unwrap_or(LEAD_STATUSES[0]);
    let id = close_id(Kind::Lead, i as u64 + 1);
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("organization_id".into(), json!(ORGANIZATION_ID));
    m.insert("display_name".into(), json!(name));
    m.insert("name".into(), json!(name));
    m.insert("status_id".into(), json!(status_id));
    m.insert("status_label".into(), json!(status_label));
    m.insert(
        "description".into(),
        if i % 3 == 2 {
            Value::Null
        } else {
            json!(format!(
                "{name}, a {} business.",
                lead_industry(i).to_lowercase()
            ))
        },
    );
    m.insert(
        "url".into(),
        if i % 7 == 6 {
            Value::Null
        } else {
            json!(format!("https://www.{}.example", slug(&name)))
        },
    );
    let pick = |list: [&'static str; 3]| list.get(i % 3).copied().unwrap_or_default();
    let addresses = if i % 4 == 3 {
        json!([])
    } else {
        json!([{
            "label": "business",
            "address_1": format!("{} Market Street", 100 + i),
            "address_2": null,
            "city": pick(["San Francisco", "Austin", "Toronto"]),
            "state": pick(["CA", "TX", "ON"]),
            "zipcode": pick(["94103", "73301", "M5H 2N2"]),
            "country": pick(["US", "US", "CA"]),
        }])
    };
    m.insert("addresses".into(), addresses);
    if i % 5 != 4 {
        m.insert(INDUSTRY_FIELD.into(), json!(lead_industry(i)));
    }
    m.insert(
        "html_url".into(),
        json!(format!("https://app.close.com/lead/{id}/")),
    );
    m.insert("date_created".into(), json!(created));
    m.insert("date_updated".into(), json!(updated));
    m.insert("created_by".into(), json!(USER_ID));
    m.insert("updated_by".into(), json!(USER_ID));
    m
}

fn lead_industry(i: usize) -> &'static str {
    INDUSTRIES
        .get(i % INDUSTRIES.len())
        .copied()
        .unwrap_or("Software")
}

fn seed_contact(i: usize) -> Map<String, Value> {
    let first = FIRST.get(i % FIRST.len()).copied().unwrap_or("Ada");
    let last = LAST.get(i % LAST.len()).copied().unwrap_or("Lovelace");
    let n = i + 1;
    // Every ninth contact has a one-word name.
    let name = if i % 9 == 8 {
        first.to_owned()
    } else {
        format!("{first} {last}")
    };
    let lead = i % SEEDED;
    let domain = format!("{}.example", slug(&lead_name(lead)));
    let (created, updated) = stamps(Kind::Contact, i);
    let mut emails = Vec::new();
    if i % 6 != 5 {
        let email = format!(
            "{}.{}{n}@{domain}",
            first.to_lowercase(),
            last.to_lowercase()
        );
        emails.push(json!({"type": "office", "email": email, "email_lower": email.to_lowercase()}));
    }
    if i % 4 == 1 {
        let email = format!("{}{n}@home.example", first.to_lowercase());
        emails.push(json!({"type": "home", "email": email, "email_lower": email}));
    }
    let mut phones = Vec::new();
    if i.is_multiple_of(2) {
        let digits = format!("+1650333{:04}", 4000 + i);
        let formatted = format!("+1 650-333-{:04}", 4000 + i);
        phones.push(json!({"type": if i.is_multiple_of(4) { "office" } else { "mobile" }, "phone": digits, "phone_formatted": formatted, "country": "US"}));
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(close_id(Kind::Contact, n as u64)));
    m.insert(
        "lead_id".into(),
        json!(close_id(Kind::Lead, lead as u64 + 1)),
    );
    m.insert("organization_id".into(), json!(ORGANIZATION_ID));
    m.insert("name".into(), json!(name));
    m.insert("display_name".into(), json!(name));
    m.insert(
        "title".into(),
        json!(TITLES.get(i % TITLES.len()).copied().unwrap_or("")),
    );
    m.insert("emails".into(), Value::Array(emails));
    m.insert("phones".into(), Value::Array(phones));
    m.insert("urls".into(), json!([]));
    if let Some(tier) = ["Gold", "Silver", "Bronze"].get(i % 4) {
        m.insert(TIER_FIELD.into(), json!(tier));
    }
    m.insert("date_created".into(), json!(created));
    m.insert("date_updated".into(), json!(updated));
    m.insert("created_by".into(), json!(USER_ID));
    m.insert(
        "updated_by".into(),
        if i.is_multiple_of(3) {
            Value::Null
        } else {
            json!(USER_ID)
        },
    );
    m
}

/// `value_formatted` as Close writes it, e.g. `$1,234.50`.
pub(crate) fn formatted(cents: i64, currency: &str) -> String {
    let symbol = match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => "",
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (k, c) in whole.chars().enumerate() {
        if k > 0 && (whole.len() - k).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let frac = cents % 100;
    if frac == 0 {
        format!("{symbol}{grouped}")
    } else {
        format!("{symbol}{grouped}.{frac:02}")
    }
}

/// Fills the fields Close derives from the others (labels, names, formatted value).
pub(crate) fn derive_opportunity(store: &Store, m: &mut Map<String, Value>) {
    let status = m.get("status_id").and_then(Value::as_str).and_then(|id| {
        OPPORTUNITY_STATUSES
            .iter()
            .find(|(sid, _, _)| *sid == id)
            .copied()
    });
    if let Some((_, label, kind)) = status {
        m.insert("status_label".into(), json!(label));
        m.insert("status_type".into(), json!(kind));
    }
    let lead_name = m
        .get("lead_id")
        .and_then(Value::as_str)
        .and_then(|id| store.find(Kind::Lead, id))
        .and_then(|l| l.get("display_name").cloned())
        .unwrap_or(Value::Null);
    m.insert("lead_name".into(), lead_name);
    let contact_name = m
        .get("contact_id")
        .and_then(Value::as_str)
        .and_then(|id| store.find(Kind::Contact, id))
        .and_then(|c| c.get("name").cloned())
        .unwrap_or(Value::Null);
    m.insert("contact_name".into(), contact_name);
    let currency = m
        .get("value_currency")
        .and_then(Value::as_str)
        .unwrap_or("USD")
        .to_owned();
    match m.get("value").and_then(Value::as_i64) {
        Some(cents) => {
            let confidence = m.get("confidence").and_then(Value::as_i64).unwrap_or(0);
            let annual = match m.get("value_period").and_then(Value::as_str) {
                Some("monthly") => cents * 12,
                _ => cents,
            };
            m.insert("value_formatted".into(), json!(formatted(cents, &currency)));
            m.insert("annualized_value".into(), json!(annual));
            m.insert("expected_value".into(), json!(cents * confidence / 100));
        }
        None => {
            m.insert("value_formatted".into(), Value::Null);
            m.insert("annualized_value".into(), Value::Null);
            m.insert("expected_value".into(), Value::Null);
        }
    }
}

fn seed_opportunity(store: &Store, i: usize) -> Map<String, Value> {
    let (created, updated) = stamps(Kind::Opportunity, i);
    let (status_id, _, kind) = OPPORTUNITY_STATUSES
        .get(i % OPPORTUNITY_STATUSES.len())
        .copied()
        .unwrap_or(OPPORTUNITY_STATUSES[0]);
    let mut m = Map::new();
    m.insert(
        "id".into(),
        json!(close_id(Kind::Opportunity, i as u64 + 1)),
    );
    m.insert("organization_id".into(), json!(ORGANIZATION_ID));
    m.insert(
        "lead_id".into(),
        json!(close_id(Kind::Lead, (i % SEEDED) as u64 + 1)),
    );
    m.insert(
        "contact_id".into(),
        if i % 5 == 4 {
            Value::Null
        } else {
            json!(close_id(Kind::Contact, i as u64 + 1))
        },
    );
    m.insert("user_id".into(), json!(USER_ID));
    m.insert("user_name".into(), json!(USER_NAME));
    m.insert("status_id".into(), json!(status_id));
    m.insert("pipeline_id".into(), json!(PIPELINE_ID));
    m.insert("pipeline_name".into(), json!("Sales"));
    m.insert(
        "note".into(),
        json!(format!(
            "{} — {}",
            ["Annual plan", "Pilot", "Expansion", "Renewal"]
                .get(i % 4)
                .copied()
                .unwrap_or("Pilot"),
            lead_name(i)
        )),
    );
    m.insert(
        "confidence".into(),
        json!(match kind {
            "won" => 100,
            "lost" => 0,
            _ => (i % 9) as i64 * 10 + 10,
        }),
    );
    let (value, currency) = if i == 1 {
        (json!(123_456_789), "USD")
    } else if i % 8 == 7 {
        (Value::Null, "USD")
    } else {
        (
            json!((i as i64 % 30 + 1) * 50_000 + 50),
            if i.is_multiple_of(3) { "EUR" } else { "USD" },
        )
    };
    m.insert("value".into(), value);
    m.insert("value_currency".into(), json!(currency));
    m.insert(
        "value_period".into(),
        json!(if i % 4 == 2 { "monthly" } else { "one_time" }),
    );
    let date = seed_time(Kind::Opportunity, i) + Duration::days(45);
    m.insert(
        "date_won".into(),
        if i % 6 == 5 {
            Value::Null
        } else {
            json!(date.format("%Y-%m-%d").to_string())
        },
    );
    m.insert("date_created".into(), json!(created));
    m.insert("date_updated".into(), json!(updated));
    m.insert("created_by".into(), json!(USER_ID));
    m.insert("updated_by".into(), json!(USER_ID));
    derive_opportunity(store, &mut m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_close_shaped_and_leads_embed_their_contacts() {
        let store = Store::seed();
        let id = close_id(Kind::Contact, 1);
        assert!(id.starts_with("cont_") && id.len() == 48, "{id}");
        assert_ne!(close_id(Kind::Contact, 2), id);
        let lead = store.render(Kind::Lead, &store.leads[0]);
        assert_eq!(lead["contacts"][0]["lead_id"], lead["id"]);
        assert_eq!(store.opportunities[1]["value_formatted"], "$1,234,567.89");
        assert_eq!(formatted(500_000, "EUR"), "€5,000");
    }
}
