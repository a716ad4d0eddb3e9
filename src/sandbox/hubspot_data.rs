//! The HubSpot sandbox's records: a deterministic seed (no randomness, identical on every
//! start and after `/_control/reset`) and the property schema that decides what a read
//! returns and what a write may set.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::control::iso_millis;

pub(crate) const CONTACT_COUNT: u64 = 260;
pub(crate) const FIRST_CONTACT_ID: u64 = 1001;
pub(crate) const COMPANY_COUNT: u64 = 260;
pub(crate) const FIRST_COMPANY_ID: u64 = 5001;
/// The first companies come from the hand-written [`COMPANIES`] table; contacts are spread
/// over these only, so growing the company list left every seeded contact unchanged.
const NAMED_COMPANY_COUNT: u64 = 45;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectType {
    Contacts,
    Companies,
}

const CONTACT_PROPERTIES: &[&str] = &[
    "address",
    "associatedcompanyid",
    "city",
    "company",
    "country",
    "createdate",
    "customer_tier",
    "email",
    "firstname",
    "hs_object_id",
    "hubspot_owner_id",
    "jobtitle",
    "lastmodifieddate",
    "lastname",
    "lifecyclestage",
    "mobilephone",
    "phone",
    "state",
    "website",
    "zip",
];

const COMPANY_PROPERTIES: &[&str] = &[
    "address",
    "annualrevenue",
    "city",
    "country",
    "createdate",
    "description",
    "domain",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hubspot_owner_id",
    "industry",
    "lifecyclestage",
    "name",
    "numberofemployees",
    "phone",
    "state",
    "website",
    "zip",
];

impl ObjectType {
    pub(crate) const ALL: [ObjectType; 2] = [ObjectType::Contacts, ObjectType::Companies];

    pub(crate) fn from_path(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.path() == segment)
    }

    pub(crate) fn path(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
        }
    }

    /// Name of the id path parameter in HubSpot's own spec, so route templates in
    /// `/_control/stats` read like the vendor docs.
    pub(crate) fn id_param(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contactId",
            ObjectType::Companies => "companyId",
        }
    }

    /// As HubSpot spells the type inside batch error messages.
    pub(crate) fn upper_singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "CONTACT",
            ObjectType::Companies => "COMPANY",
        }
    }

    pub(crate) fn modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            ObjectType::Companies => "hs_lastmodifieddate",
        }
    }

    pub(crate) fn known_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => CONTACT_PROPERTIES,
            ObjectType::Companies => COMPANY_PROPERTIES,
        }
    }

    pub(crate) fn is_known(self, property: &str) -> bool {
        self.known_properties().contains(&property)
    }

    pub(crate) fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectType::Companies => &[
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
            ],
        }
    }

    /// Returned whatever `properties=` asks for.
    pub(crate) fn always_properties(self) -> [&'static str; 3] {
        ["createdate", "hs_object_id", self.modified_property()]
    }

    pub(crate) fn read_only_properties(self) -> [&'static str; 2] {
        ["hs_object_id", self.modified_property()]
    }

    /// The association type label HubSpot v3 reports from this object to `other`.
    pub(crate) fn association_label(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contact_to_company",
            ObjectType::Companies => "company_to_contact",
        }
    }

    pub(crate) fn other(self) -> ObjectType {
        match self {
            ObjectType::Contacts => ObjectType::Companies,
            ObjectType::Companies => ObjectType::Contacts,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: u64,
    /// Absent key = the property has no value (HubSpot reports it as `null` when asked).
    pub properties: BTreeMap<String, String>,
    pub archived_at: Option<String>,
}

/// Which properties a read renders.
pub(crate) enum Selection<'a> {
    /// No `properties` parameter: the object type's default set.
    Default,
    /// Explicit names: known ones plus the always-returned ones; unknown names dropped.
    Only(&'a [String]),
    /// Every property that has a value (write responses).
    Present,
    /// Every property in the schema, `null` where unset (sample records).
    Schema,
}

impl Record {
    pub(crate) fn render(&self, ty: ObjectType, selection: &Selection<'_>) -> Value {
        let names: Vec<&str> = match selection {
            Selection::Default => ty.default_properties().to_vec(),
            Selection::Only(requested) => {
                let mut names: Vec<&str> = requested
                    .iter()
                    .map(String::as_str)
                    .filter(|n| ty.is_known(n))
                    .chain(ty.always_properties())
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            }
            Selection::Present => self.properties.keys().map(String::as_str).collect(),
            Selection::Schema => ty.known_properties().to_vec(),
        };
        let mut properties = Map::new();
        for name in names {
            let value = self.properties.get(name).map_or(Value::Null, |v| json!(v));
            properties.insert(name.to_owned(), value);
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id.to_string()));
        out.insert("properties".into(), Value::Object(properties));
        out.insert("createdAt".into(), json!(self.property("createdate")));
        out.insert(
            "updatedAt".into(),
            json!(self.property(ty.modified_property())),
        );
        out.insert("archived".into(), json!(self.archived_at.is_some()));
        if let Some(at) = &self.archived_at {
            out.insert("archivedAt".into(), json!(at));
        }
        Value::Object(out)
    }

    pub(crate) fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    contacts: BTreeMap<u64, Record>,
    companies: BTreeMap<u64, Record>,
    next_contact_id: u64,
    next_company_id: u64,
}

impl Store {
    pub(crate) fn table(&self, ty: ObjectType) -> &BTreeMap<u64, Record> {
        match ty {
            ObjectType::Contacts => &self.contacts,
            ObjectType::Companies => &self.companies,
        }
    }

    pub(crate) fn table_mut(&mut self, ty: ObjectType) -> &mut BTreeMap<u64, Record> {
        match ty {
            ObjectType::Contacts => &mut self.contacts,
            ObjectType::Companies => &mut self.companies,
        }
    }

    /// Ids are never reused, even after an archive, as in HubSpot.
    pub(crate) fn allocate_id(&mut self, ty: ObjectType) -> u64 {
        let next = match ty {
            ObjectType::Contacts => &mut self.next_contact_id,
            ObjectType::Companies => &mut self.next_company_id,
        };
        let id = *next;
        *next += 1;
        id
    }

    /// Live (non-archived) record by id.
    pub(crate) fn live(&self, ty: ObjectType, id: u64) -> Option<&Record> {
        self.table(ty).get(&id).filter(|r| r.archived_at.is_none())
    }

    /// Ids of live records of the other type associated with `record`.
    pub(crate) fn associations(&self, ty: ObjectType, record: &Record) -> Vec<u64> {
        match ty {
            ObjectType::Contacts => record
                .property("associatedcompanyid")
                .and_then(|id| id.parse().ok())
                .filter(|id| self.live(ObjectType::Companies, *id).is_some())
                .into_iter()
                .collect(),
            ObjectType::Companies => {
                let me = record.id.to_string();
                self.contacts
                    .values()
                    .filter(|c| c.archived_at.is_none())
                    .filter(|c| c.property("associatedcompanyid") == Some(me.as_str()))
                    .map(|c| c.id)
                    .collect()
            }
        }
    }

    pub(crate) fn seed() -> Store {
        let companies: BTreeMap<u64, Record> = (0..COMPANY_COUNT)
            .map(seed_company)
            .map(|r| (r.id, r))
            .collect();
        let contacts = (0..CONTACT_COUNT)
            .map(|i| seed_contact(i, &companies))
            .map(|r| (r.id, r))
            .collect();
        Store {
            contacts,
            companies,
            next_contact_id: FIRST_CONTACT_ID + CONTACT_COUNT,
            next_company_id: FIRST_COMPANY_ID + COMPANY_COUNT,
        }
    }
}

/// (name, domain, industry, city, country). Fictional companies on reserved `.example`
/// domains, with some non-ASCII names to exercise encoding paths.
#[rustfmt::skip]
const COMPANIES: [(&str, &str, &str, &str, &str); NAMED_COMPANY_COUNT as usize] = [
    ("Acme Corporation", "acme.example", "MACHINERY", "Springfield", "United States"),
    ("Globex", "globex.example", "COMPUTER_SOFTWARE", "Cypress Creek", "United States"),
    ("Initech", "initech.example", "INFORMATION_TECHNOLOGY_AND_SERVICES", "Austin", "United States"),
    ("Umbrella Health", "umbrella-health.example", "HOSPITAL_HEALTH_CARE", "Raccoon City", "United States"),
    ("Hooli", "hooli.example", "INTERNET", "Palo Alto", "United States"),
    ("Stark Industries", "stark.example", "DEFENSE_SPACE", "New York", "United States"),
    ("Wayne Enterprises", "wayne.example", "FINANCIAL_SERVICES", "Gotham", "United States"),
    ("Wonka Confectionery", "wonka.example", "FOOD_BEVERAGES", "Manchester", "United Kingdom"),
    ("Tyrell Biotech", "tyrell.example", "BIOTECHNOLOGY", "Los Angeles", "United States"),
    ("Cyberdyne Systems", "cyberdyne.example", "COMPUTER_HARDWARE", "Sunnyvale", "United States"),
    ("Soylent Foods", "soylent.example", "FOOD_PRODUCTION", "Chicago", "United States"),
    ("Vandelay Industries", "vandelay.example", "IMPORT_AND_EXPORT", "New York", "United States"),
    ("Massive Dynamic", "massive-dynamic.example", "RESEARCH", "Boston", "United States"),
    ("Aperture Science", "aperture.example", "RESEARCH", "Cleveland", "United States"),
    ("Black Mesa Labs", "blackmesa.example", "RESEARCH", "Albuquerque", "United States"),
    ("Oscorp", "oscorp.example", "CHEMICALS", "New York", "United States"),
    ("Pied Piper", "piedpiper.example", "COMPUTER_SOFTWARE", "Palo Alto", "United States"),
    ("Dunder Mifflin", "dundermifflin.example", "PAPER_FOREST_PRODUCTS", "Scranton", "United States"),
    ("Sterling Cooper", "sterlingcooper.example", "MARKETING_AND_ADVERTISING", "New York", "United States"),
    ("Nakatomi Trading", "nakatomi.example", "IMPORT_AND_EXPORT", "Tokyo", "Japan"),
    ("Bluth Company", "", "REAL_ESTATE", "Newport Beach", "United States"),
    ("Prestige Worldwide", "prestige-worldwide.example", "", "Los Angeles", "United States"),
    ("Gringotts Bank", "gringotts.example", "BANKING", "London", "United Kingdom"),
    ("Ollivanders", "ollivanders.example", "RETAIL", "London", "United Kingdom"),
    ("Société Générale de Café", "cafe-sgc.example", "FOOD_BEVERAGES", "Lyon", "France"),
    ("O'Reilly & Daughters", "oreilly-daughters.example", "PUBLISHING", "Dublin", "Ireland"),
    ("Müller Maschinenbau GmbH", "mueller-mb.example", "MACHINERY", "Stuttgart", "Germany"),
    ("Ünal Teknoloji A.Ş.", "unal-tek.example", "COMPUTER_SOFTWARE", "Istanbul", "Turkey"),
    ("Nordlys Energi AS", "nordlys.example", "RENEWABLES_ENVIRONMENT", "Bergen", "Norway"),
    ("Kowalski Logistics", "kowalski.example", "LOGISTICS_AND_SUPPLY_CHAIN", "Gdańsk", "Poland"),
    ("Saffron Analytics", "saffron.example", "INFORMATION_TECHNOLOGY_AND_SERVICES", "Bengaluru", "India"),
    ("Jacaranda Health", "jacaranda.example", "HOSPITAL_HEALTH_CARE", "Nairobi", "Kenya"),
    ("Southern Cross Insurance", "southerncross.example", "INSURANCE", "Sydney", "Australia"),
    ("Maple Leaf Robotics", "mapleleaf.example", "AUTOMOTIVE", "Toronto", "Canada"),
    ("Andes Mining Co", "andes.example", "MINING_METALS", "Santiago", "Chile"),
    ("Río Verde Agro", "rioverde.example", "FARMING", "Córdoba", "Argentina"),
    ("Tiger Bay Telecom", "tigerbay.example", "TELECOMMUNICATIONS", "Cardiff", "United Kingdom"),
    ("Lotus Education", "lotus-edu.example", "EDUCATION_MANAGEMENT", "Singapore", "Singapore"),
    ("Helvetia Precision", "helvetia.example", "MEDICAL_DEVICES", "Zürich", "Switzerland"),
    ("Baltic Amber Trading", "balticamber.example", "WHOLESALE", "Riga", "Latvia"),
    ("Kiwi Cloud Ltd", "kiwicloud.example", "INTERNET", "Wellington", "New Zealand"),
    ("Sahara Solar", "saharasolar.example", "RENEWABLES_ENVIRONMENT", "Marrakesh", "Morocco"),
    ("Fjord Fisheries", "fjord.example", "FISHERY", "Tromsø", "Norway"),
    ("Atlas Construction", "atlas-build.example", "CONSTRUCTION", "Denver", "United States"),
    ("Quantum Quokka Labs", "quokka.example", "BIOTECHNOLOGY", "Perth", "Australia"),
];

// Companies past the named table: 17 and 13 are coprime, so (k % 17, k % 13) names the 215
// generated companies uniquely, and no word here appears in the named table.
#[rustfmt::skip]
const GENERATED_PREFIXES: [&str; 17] = [
    "Amberline", "Brightwater", "Copperfield", "Driftwood", "Emberly", "Foxglove", "Granite Peak",
    "Harborview", "Ironbark", "Juniper", "Kestrel", "Lumière", "Moonstone", "Nørrebro",
    "Orchard Lane", "Přístav", "Quillon",
];

#[rustfmt::skip]
const GENERATED_SUFFIXES: [(&str, &str); 13] = [
    ("Analytics", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
    ("Bakery", "FOOD_BEVERAGES"),
    ("Clinics", "HOSPITAL_HEALTH_CARE"),
    ("Dynamics", "COMPUTER_SOFTWARE"),
    ("Freight", "LOGISTICS_AND_SUPPLY_CHAIN"),
    ("Holdings", "FINANCIAL_SERVICES"),
    ("Labs", "RESEARCH"),
    ("Media", "MARKETING_AND_ADVERTISING"),
    ("Outfitters", "RETAIL"),
    ("Partners", "MANAGEMENT_CONSULTING"),
    ("Robotics", "AUTOMOTIVE"),
    ("Studios", "ENTERTAINMENT"),
    ("Works", "CONSTRUCTION"),
];

#[rustfmt::skip]
const GENERATED_PLACES: [(&str, &str); 11] = [
    ("Portland", "United States"), ("Leeds", "United Kingdom"), ("Lille", "France"),
    ("Aarhus", "Denmark"), ("Brno", "Czechia"), ("Kraków", "Poland"), ("Osaka", "Japan"),
    ("São Paulo", "Brazil"), ("Montréal", "Canada"), ("Auckland", "New Zealand"),
    ("Cape Town", "South Africa"),
];

/// Name, domain, industry, city and country of a company past the named table. Some have
/// no domain or no industry, like a few named ones.
fn generated_company(j: u64) -> (String, String, &'static str, &'static str, &'static str) {
    let k = j.saturating_sub(NAMED_COMPANY_COUNT);
    let index = |modulus: u64| usize::try_from(k % modulus).unwrap_or(0);
    let prefix = GENERATED_PREFIXES[index(17)];
    let (suffix, industry) = GENERATED_SUFFIXES[index(13)];
    let (city, country) = GENERATED_PLACES[index(11)];
    let name = format!("{prefix} {suffix}");
    let domain = if k % 23 == 5 {
        String::new()
    } else {
        let words: Vec<String> = name.split(' ').map(slug).collect();
        format!("{}.example", words.join("-"))
    };
    let industry = if k % 29 == 7 { "" } else { industry };
    (name, domain, industry, city, country)
}

// 52 and 53 are coprime, so (i % 52, i % 53) never repeats for the 260 seeded contacts:
// every generated name, and so every generated email, is unique.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 52] = [
    "Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia",
    "Tim", "Frances", "Donald", "Hedy", "John", "Sophie", "Guido", "Anita", "Bjarne", "Shafi",
    "Edsger", "Adele", "Niklaus", "Lynn", "Vint", "Joan", "Claude", "Mary", "Brian", "Evelyn",
    "Leslie", "Jean", "Fernando", "Carol", "Rob", "Susan", "Yukihiro", "Cynthia", "Larry", "Elizabeth",
    "James", "Annie", "Robert", "Kathleen", "Andrew", "Ruth", "Douglas", "Betty", "Marvin", "Judith",
    "Ivan", "Martha",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 53] = [
    "Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
    "Thompson", "Perlman", "Berners-Lee", "Allen", "Knuth", "Lamarr", "McCarthy", "Wilson",
    "van Rossum", "Borg", "Stroustrup", "Goldwasser", "Dijkstra", "Goldberg", "Wirth", "Conway",
    "Cerf", "Clarke", "Shannon", "Keller", "Kernighan", "Boyd", "Lamport", "Bartik",
    "Corbató", "Shaw", "Pike", "Kare", "Matsumoto", "Dwork", "Page", "Feinler",
    "Gosling", "Easley", "Tarjan", "Booth", "Tanenbaum", "Leach", "Engelbart", "Holberton",
    "Minsky", "Estrin", "Sutherland", "Cray", "Nguyen",
];

const JOB_TITLES: [&str; 12] = [
    "CTO",
    "VP Engineering",
    "Account Executive",
    "Marketing Manager",
    "Head of Sales",
    "Software Engineer",
    "Customer Success Manager",
    "Operations Director",
    "Product Manager",
    "CFO",
    "Data Analyst",
    "Office Manager",
];

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn at(base: (i32, u32, u32, u32), offset: Duration) -> DateTime<Utc> {
    let (y, m, d, h) = base;
    let start = Utc
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH);
    start + offset
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus).unwrap_or(0)
}

fn seed_company(j: u64) -> Record {
    let (name, domain, industry, city, country) =
        match COMPANIES.get(usize::try_from(j).unwrap_or(usize::MAX)) {
            Some(&(name, domain, industry, city, country)) => {
                (name.to_owned(), domain.to_owned(), industry, city, country)
            }
            None => generated_company(j),
        };
    let id = FIRST_COMPANY_ID + j;
    // Named companies were created every 6 days; later ones every 3 days after them, so
    // every timestamp stays in the past.
    let days = if j < NAMED_COMPANY_COUNT {
        small(j, 1000) * 6
    } else {
        small(NAMED_COMPANY_COUNT, 1000) * 6 + small(j - NAMED_COMPANY_COUNT, 1000) * 3
    };
    let created = at(
        (2022, 1, 10, 9),
        Duration::days(days)
            + Duration::minutes(small(j, 1000) * 133)
            + Duration::milliseconds(small(j * 71, 1000)),
    );
    let modified = created
        + Duration::days(30 + small(j * 11, 400))
        + Duration::minutes(small(j * 17, 600))
        + Duration::milliseconds(small(j * 29, 1000));
    let employees =
        [5u64, 12, 48, 120, 250, 800, 1500, 5000, 12000][usize::try_from(j * 4 % 9).unwrap_or(0)];
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        if !v.is_empty() {
            p.insert(k.to_owned(), v);
        }
    };
    set("name", name);
    set("domain", domain);
    set("industry", industry.to_owned());
    if j % 10 != 9 {
        set("numberofemployees", employees.to_string());
        set(
            "annualrevenue",
            (employees * (80_000 + j * 1_000)).to_string(),
        );
    }
    set(
        "phone",
        format!("+1 555-{:03}-{:04}", 200 + j, (j * 379) % 10_000),
    );
    set("city", city.to_owned());
    set("country", country.to_owned());
    set("createdate", iso_millis(created));
    set("hs_lastmodifieddate", iso_millis(modified));
    set("hs_object_id", id.to_string());
    Record {
        id,
        properties: p,
        archived_at: None,
    }
}

/// Lower-case ASCII for email local parts: folds the accents used in the seed names and
/// drops anything else that is not alphanumeric or a hyphen.
fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'Å' | 'å' | 'Á' => 'a',
                'é' | 'è' | 'ë' | 'É' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ø' | 'Ö' => 'o',
                'ú' | 'ü' | 'Ü' => 'u',
                'ñ' => 'n',
                c => c,
            };
            (folded.is_ascii_alphanumeric() || folded == '-').then(|| folded.to_ascii_lowercase())
        })
        .collect()
}

fn seed_contact(i: u64, companies: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_CONTACT_ID + i;
    let mut first = Some(FIRST_NAMES[usize::try_from(i % 52).unwrap_or(0)].to_owned());
    let mut last = Some(LAST_NAMES[usize::try_from(i % 53).unwrap_or(0)].to_owned());
    let company_id = (i % 9 != 4).then(|| FIRST_COMPANY_ID + (i * 17) % NAMED_COMPANY_COUNT);
    let domain = company_id
        .and_then(|c| companies.get(&c))
        .and_then(|c| c.property("domain"))
        .unwrap_or("mail.example")
        .to_owned();
    let mut local: Option<String> = None;
    // Hand-picked edge cases a mapping layer must survive.
    match id {
        1013 => local = Some(String::new()), // no email at all
        1042 => {
            first = Some("Siobhán".into());
            last = Some("O'Brien".into());
            local = Some("siobhan.obrien".into());
        }
        1078 => {
            first = Some("Zoë".into());
            last = Some("Ångström-Müller".into());
            local = Some("zoe.angstrom-muller".into());
        }
        1100 => {
            first = Some("美咲".into());
            last = Some("佐藤".into());
            local = Some("misaki.sato".into());
        }
        1150 => {
            // Only an email: HubSpot allows contacts without a name.
            first = None;
            last = None;
        }
        1201 => {
            first = Some("Ana".into());
            last = Some("Souza".into());
            local = Some("Ana.Souza+crm".into());
        }
        1231 => {
            first = Some("Robert".into());
            last = Some("Smith, Jr.".into());
            local = Some("robert.smith.jr".into());
        }
        _ => {}
    }
    let email = match local {
        Some(l) if l.is_empty() => None,
        Some(l) => Some(format!("{l}@{domain}")),
        None => Some(format!(
            "{}.{}@{domain}",
            slug(FIRST_NAMES[usize::try_from(i % 52).unwrap_or(0)]),
            slug(LAST_NAMES[usize::try_from(i % 53).unwrap_or(0)]),
        )),
    };
    let created = at(
        (2023, 2, 1, 8),
        Duration::days(small(i, 1000))
            + Duration::seconds(small(i, 1000) * (3 * 3600 + 17 * 60 + 11))
            + Duration::milliseconds(small(i * 37, 1000)),
    );
    let modified = created
        + Duration::days(1 + small(i * 13, 120))
        + Duration::minutes(small(i * 7, 60))
        + Duration::milliseconds(small(i * 53, 1000));

    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_owned(), v);
        }
    };
    set("firstname", first);
    set("lastname", last);
    set("email", email);
    set(
        "phone",
        (i % 6 != 5).then(|| format!("+1 617-555-{:04}", (i * 7919) % 10_000)),
    );
    set(
        "jobtitle",
        (i % 11 != 6).then(|| JOB_TITLES[usize::try_from(i % 12).unwrap_or(0)].to_owned()),
    );
    set("associatedcompanyid", company_id.map(|c| c.to_string()));
    set(
        "customer_tier",
        (i % 7 != 3).then(|| TIERS[usize::try_from(i % 3).unwrap_or(0)].to_owned()),
    );
    set("createdate", Some(iso_millis(created)));
    set("lastmodifieddate", Some(iso_millis(modified)));
    set("hs_object_id", Some(id.to_string()));
    Record {
        id,
        properties: p,
        archived_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_and_emails_are_unique() {
        let a = Store::seed();
        let b = Store::seed();
        for ty in ObjectType::ALL {
            let left: Vec<Value> = a
                .table(ty)
                .values()
                .map(|r| r.render(ty, &Selection::Schema))
                .collect();
            let right: Vec<Value> = b
                .table(ty)
                .values()
                .map(|r| r.render(ty, &Selection::Schema))
                .collect();
            assert_eq!(left, right);
        }
        let emails: Vec<&str> = a
            .table(ObjectType::Contacts)
            .values()
            .filter_map(|r| r.property("email"))
            .collect();
        let unique: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        assert_eq!(emails.len(), unique.len());
        assert_eq!(emails.len(), usize::try_from(CONTACT_COUNT - 1).unwrap());
    }

    #[test]
    fn companies_are_unique_and_every_association_resolves() {
        let store = Store::seed();
        let companies = store.table(ObjectType::Companies);
        assert_eq!(companies.len(), usize::try_from(COMPANY_COUNT).unwrap());
        let names: HashSet<&str> = companies
            .values()
            .filter_map(|c| c.property("name"))
            .collect();
        assert_eq!(names.len(), companies.len());
        let domains: Vec<&str> = companies
            .values()
            .filter_map(|c| c.property("domain"))
            .collect();
        let unique: HashSet<&&str> = domains.iter().collect();
        assert_eq!(unique.len(), domains.len());
        assert!(
            domains.len() < companies.len(),
            "some companies have no domain"
        );
        for contact in store.table(ObjectType::Contacts).values() {
            if let Some(id) = contact.property("associatedcompanyid") {
                let id: u64 = id.parse().unwrap();
                assert!(store.live(ObjectType::Companies, id).is_some(), "{id}");
            }
        }
        // The original 45 are untouched by the extension.
        assert_eq!(companies[&5001].property("name"), Some("Acme Corporation"));
        assert_eq!(
            companies[&5045].property("name"),
            Some("Quantum Quokka Labs")
        );
        assert_eq!(
            companies[&5046].property("name"),
            Some("Amberline Analytics")
        );
    }

    #[test]
    fn every_seeded_property_is_in_the_schema() {
        let store = Store::seed();
        for ty in ObjectType::ALL {
            for record in store.table(ty).values() {
                for name in record.properties.keys() {
                    assert!(ty.is_known(name), "{name} missing from the {ty:?} schema");
                }
                assert!(record.property("createdate") < record.property(ty.modified_property()));
            }
        }
    }
}
