//! The Microsoft Graph sandbox's Outlook contacts (`/me/contacts`, v1.0 `contact` entity):
//! a deterministic seed, the property catalogue in the order Graph serialises it, and
//! the rendering of one contact (every property present, `null`/`[]`/`{}` when unset, as
//! Graph does).
//!
//! Ids imitate Exchange REST ids: URL-safe base64 (with `=` padding) of a fixed mailbox
//! and folder header followed by per-item bytes, so they start `AAMkAG` like real ones
//! and can contain `-`, `_` and `=`. A string that does not decode to that structure is
//! "malformed" (400), a well-formed one that is not in the mailbox "not found" (404).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const CONTACT_COUNT: u64 = 260;
/// The signed-in user `/me` stands for.
pub(crate) const USER_PRINCIPAL: &str = "megan.bowen@tessera-sandbox.onmicrosoft.com";
const MAILBOX_GUID: &[u8; 36] = b"b64efe3d-b46d-48c7-9c54-b971ccf3e547";
const FOLDER_GUID: [u8; 16] = [
    0xd2, 0x5d, 0xcd, 0x50, 0xf2, 0xe0, 0x24, 0x41, 0xb5, 0xf4, 0x1a, 0x9e, 0x87, 0x0d, 0xdc, 0x4b,
];
const ITEM_BYTES: usize = 24;
const ID_LEN: usize = 4 + 36 + 7 + 16 + 2 + ITEM_BYTES + 3;

/// How a property is typed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Server-managed: ignored in write bodies.
    ReadOnly,
    /// `Edm.String`, nullable.
    Text,
    /// `Edm.DateTimeOffset`, nullable.
    Date,
    /// `Collection(Edm.String)`.
    TextList,
    /// `Collection(microsoft.graph.emailAddress)`.
    Emails,
    /// `microsoft.graph.physicalAddress`.
    Address,
}

/// Every contact property in Graph's serialisation order (after `@odata.etag`).
pub(crate) const PROPERTIES: &[(&str, Kind)] = &[
    ("id", Kind::ReadOnly),
    ("createdDateTime", Kind::ReadOnly),
    ("lastModifiedDateTime", Kind::ReadOnly),
    ("changeKey", Kind::ReadOnly),
    ("categories", Kind::TextList),
    ("parentFolderId", Kind::ReadOnly),
    ("birthday", Kind::Date),
    ("fileAs", Kind::Text),
    ("displayName", Kind::Text),
    ("givenName", Kind::Text),
    ("initials", Kind::Text),
    ("middleName", Kind::Text),
    ("nickName", Kind::Text),
    ("surname", Kind::Text),
    ("title", Kind::Text),
    ("yomiGivenName", Kind::Text),
    ("yomiSurname", Kind::Text),
    ("yomiCompanyName", Kind::Text),
    ("generation", Kind::Text),
    ("imAddresses", Kind::TextList),
    ("jobTitle", Kind::Text),
    ("companyName", Kind::Text),
    ("department", Kind::Text),
    ("officeLocation", Kind::Text),
    ("profession", Kind::Text),
    ("businessHomePage", Kind::Text),
    ("assistantName", Kind::Text),
    ("manager", Kind::Text),
    ("homePhones", Kind::TextList),
    ("mobilePhone", Kind::Text),
    ("businessPhones", Kind::TextList),
    ("spouseName", Kind::Text),
    ("personalNotes", Kind::Text),
    ("children", Kind::TextList),
    ("emailAddresses", Kind::Emails),
    // Added to v1.0 on 2026-03-17; the sandbox derives them from `emailAddresses`.
    ("primaryEmailAddress", Kind::ReadOnly),
    ("secondaryEmailAddress", Kind::ReadOnly),
    ("tertiaryEmailAddress", Kind::ReadOnly),
    ("homeAddress", Kind::Address),
    ("businessAddress", Kind::Address),
    ("otherAddress", Kind::Address),
];

pub(crate) const ADDRESS_FIELDS: [&str; 5] =
    ["street", "city", "state", "countryOrRegion", "postalCode"];

pub(crate) fn kind_of(property: &str) -> Option<Kind> {
    PROPERTIES
        .iter()
        .find(|(name, _)| *name == property)
        .map(|(_, kind)| *kind)
}

/// The canonical spelling of a property name (`$select` is case-insensitive).
pub(crate) fn canonical(property: &str) -> Option<&'static str> {
    PROPERTIES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(property))
        .map(|(name, _)| *name)
}

#[derive(Clone, Debug)]
pub(crate) struct Contact {
    pub seq: u64,
    pub id: String,
    /// Bumped on every update; feeds `changeKey` and the etag.
    pub version: u64,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Writable properties that have a value (strings, string arrays, email arrays,
    /// address objects). Everything else renders as its empty form.
    pub props: Map<String, Value>,
}

/// Graph timestamps: whole seconds with `Z`.
pub(crate) fn graph_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// SplitMix64: a tiny deterministic mixer for ids and change keys.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn header_bytes() -> Vec<u8> {
    let mut bytes = vec![0x00, 0x03, 0x24, 0x00];
    bytes.extend_from_slice(MAILBOX_GUID);
    bytes.extend_from_slice(&[0x00, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&FOLDER_GUID);
    bytes
}

/// The REST id of the `seq`-th contact ever created in the mailbox.
pub(crate) fn contact_id(seq: u64) -> String {
    let mut bytes = header_bytes();
    bytes.extend_from_slice(&[0x07, 0x00]);
    for k in 0..3u64 {
        bytes.extend_from_slice(&mix(seq.wrapping_mul(3).wrapping_add(k)).to_be_bytes());
    }
    bytes.extend_from_slice(&[0x00, 0x00, 0x00]);
    URL_SAFE.encode(bytes)
}

/// Whether `id` has the structure of a contact id in this mailbox.
pub(crate) fn is_well_formed(id: &str) -> bool {
    let Ok(bytes) = URL_SAFE.decode(id.as_bytes()) else {
        return false;
    };
    bytes.len() == ID_LEN && bytes.starts_with(&header_bytes())
}

pub(crate) fn parent_folder_id() -> String {
    let mut bytes = header_bytes();
    bytes.extend_from_slice(&[0x01, 0x00, 0x0e, 0x00, 0x00]);
    URL_SAFE.encode(bytes)
}

impl Contact {
    pub(crate) fn change_key(&self) -> String {
        let mut bytes = vec![0x10, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(&FOLDER_GUID[..8]);
        bytes.extend_from_slice(&mix(self.seq ^ (self.version << 40)).to_be_bytes());
        STANDARD.encode(bytes)
    }

    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.change_key())
    }

    fn email(&self, index: usize) -> Value {
        self.props
            .get("emailAddresses")
            .and_then(|e| e.get(index))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// One property's wire value.
    pub(crate) fn value(&self, property: &str) -> Value {
        match property {
            "id" => json!(self.id),
            "createdDateTime" => json!(graph_time(self.created)),
            "lastModifiedDateTime" => json!(graph_time(self.modified)),
            "changeKey" => json!(self.change_key()),
            "parentFolderId" => json!(parent_folder_id()),
            "primaryEmailAddress" => self.email(0),
            "secondaryEmailAddress" => self.email(1),
            "tertiaryEmailAddress" => self.email(2),
            _ => match (self.props.get(property), kind_of(property)) {
                (Some(v), _) => v.clone(),
                (None, Some(Kind::TextList | Kind::Emails)) => json!([]),
                (None, Some(Kind::Address)) => json!({}),
                (None, _) => Value::Null,
            },
        }
    }

    /// The contact as Graph returns it: `@odata.etag`, then every property (or only
    /// `id` plus `selected`, in catalogue order).
    pub(crate) fn render(&self, selected: Option<&[&str]>) -> Value {
        let mut out = Map::new();
        out.insert("@odata.etag".into(), json!(self.etag()));
        for (name, _) in PROPERTIES {
            let wanted = *name == "id" || selected.is_none_or(|s| s.contains(name));
            if wanted {
                out.insert((*name).to_owned(), self.value(name));
            }
        }
        Value::Object(out)
    }
}

/// Contacts in mailbox order (creation order), which is the order `/me/contacts` pages.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub contacts: Vec<Contact>,
    next_seq: u64,
}

impl Store {
    pub(crate) fn find(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    pub(crate) fn find_mut(&mut self, id: &str) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.id == id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.contacts.len();
        self.contacts.retain(|c| c.id != id);
        self.contacts.len() != before
    }

    pub(crate) fn allocate_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    pub(crate) fn seed() -> Store {
        Store {
            contacts: (0..CONTACT_COUNT).map(seed_contact).collect(),
            next_seq: CONTACT_COUNT,
        }
    }
}

/// `givenName middleName surname`, blanks skipped: what Outlook shows when no display
/// name is set.
pub(crate) fn composed_name(props: &Map<String, Value>) -> Option<String> {
    let parts: Vec<&str> = ["givenName", "middleName", "surname"]
        .iter()
        .filter_map(|k| props.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

// 37 and 41 are coprime, so (i % 37, i % 41) never repeats below 1517.
#[rustfmt::skip]
const GIVEN_NAMES: [&str; 37] = [
    "Megan", "Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni",
    "Lee", "Lidia", "Lynne", "Miriam", "Nestor", "Patti", "Pradeep", "Allan", "Christie",
    "Debra", "Irvin", "Ben", "Cameron", "Dana", "Emily", "Garth", "Jessica", "Kari", "Lynn",
    "Marco", "Nikki", "Omar", "Pat", "Raul", "Sara", "Tanja", "Vince", "Zrinka",
];

#[rustfmt::skip]
const SURNAMES: [&str; 41] = [
    "Bowen", "Vance", "Wilber", "Siciliani", "Archie", "Mueller", "Langer", "Lauer", "Sherman",
    "Gu", "Holloway", "Robbins", "Graham", "Wilke", "Fernandez", "Gupta", "Deyoung", "Cline",
    "Berg", "Sayers", "Andrews", "White", "Birkby", "Braun", "Fort", "Livingston", "Njenga",
    "Robinson", "Zibit", "Wolfe", "Khan", "Kaiser", "Razo", "Davis", "Plamenac", "Carroll",
    "Milas", "Sokolova", "Tanaka", "Okoro", "Lindgren",
];

/// (company, email domain, department, city, state, country).
#[rustfmt::skip]
const COMPANIES: [(&str, &str, &str, &str, &str, &str); 12] = [
    ("Contoso", "contoso.example", "Sales", "Redmond", "WA", "United States"),
    ("Fabrikam", "fabrikam.example", "Engineering", "Seattle", "WA", "United States"),
    ("Northwind Traders", "northwind.example", "Purchasing", "London", "", "United Kingdom"),
    ("Adventure Works", "adventure-works.example", "Marketing", "Bothell", "WA", "United States"),
    ("Tailspin Toys", "tailspin.example", "Operations", "Toronto", "ON", "Canada"),
    ("Wide World Importers", "wideworld.example", "Logistics", "Rotterdam", "", "Netherlands"),
    ("Woodgrove Bank", "woodgrove.example", "Finance", "New York", "NY", "United States"),
    ("Litware", "litware.example", "Research", "München", "Bayern", "Germany"),
    ("Proseware", "proseware.example", "Support", "Dublin", "", "Ireland"),
    ("Lamna Healthcare", "lamna.example", "Clinical", "Sydney", "NSW", "Australia"),
    ("Trey Research", "treyresearch.example", "Research", "Bengaluru", "KA", "India"),
    ("Coho Winery", "cohowinery.example", "Hospitality", "Mendoza", "", "Argentina"),
];

const JOB_TITLES: [&str; 9] = [
    "Account Manager",
    "Software Engineer",
    "Director",
    "Buyer",
    "Marketing Lead",
    "Operations Analyst",
    "CFO",
    "Research Scientist",
    "Support Engineer",
];

fn pick<T: Copy>(list: &[T], i: u64) -> Option<T> {
    let len = u64::try_from(list.len()).ok()?.max(1);
    list.get(usize::try_from(i % len).ok()?).copied()
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus.max(1)).unwrap_or(0)
}

fn seed_contact(i: u64) -> Contact {
    let given = pick(&GIVEN_NAMES, i).unwrap_or("Alex");
    let surname = pick(&SURNAMES, i).unwrap_or("Doe");
    let company = pick(&COMPANIES, i * 5 + 1).unwrap_or(COMPANIES[0]);
    let (company_name, domain, department, city, state, country) = company;
    let mut p = Map::new();
    let mut given = Some(given.to_owned());
    let mut surname = Some(surname.to_owned());
    let mut display: Option<String> = None;
    let mut emails = vec![json!({
        "name": format!("{} {}", given.as_deref().unwrap_or(""), surname.as_deref().unwrap_or("")),
        "address": format!(
            "{}.{}@{domain}",
            ascii_slug(given.as_deref().unwrap_or("")),
            ascii_slug(surname.as_deref().unwrap_or(""))
        ),
    })];
    let mut company_name = (i % 8 != 6).then(|| company_name.to_owned());
    // Hand-picked edge cases a mapping layer must survive.
    match i {
        12 => emails.clear(), // no email at all
        41 => {
            given = Some("Siobhán".into());
            surname = Some("O'Brien".into());
            emails = vec![
                // An apostrophe in the local part (valid in RFC 5322): a `$filter` string
                // literal must double it.
                json!({"name": "Siobhán O'Brien", "address": "siobhan.o'brien@contoso.example"}),
            ];
        }
        77 => {
            // Three addresses: primary, secondary and tertiary all set.
            emails.push(json!({"name": "Home", "address": "home77@mail.example"}));
            emails.push(json!({"name": "Other", "address": "other77@mail.example"}));
        }
        99 => {
            given = Some("美咲".into());
            surname = Some("佐藤".into());
            display = Some("佐藤 美咲".into());
            emails = vec![json!({"name": "佐藤 美咲", "address": "misaki.sato@litware.example"})];
        }
        149 => {
            // A company card: no person name at all.
            given = None;
            surname = None;
            display = Some("Coho Winery Front Desk".into());
            company_name = Some("Coho Winery".into());
            emails = vec![
                json!({"name": "Coho Winery Front Desk", "address": "frontdesk@cohowinery.example"}),
            ];
        }
        200 => {
            // An email entry without a display name of its own.
            emails = vec![json!({"name": null, "address": "no.name@fabrikam.example"})];
        }
        _ => {}
    }
    if let Some(g) = &given {
        p.insert("givenName".into(), json!(g));
    }
    if let Some(s) = &surname {
        p.insert("surname".into(), json!(s));
    }
    let display = display.or_else(|| composed_name(&p));
    if let Some(d) = &display {
        p.insert("displayName".into(), json!(d));
    }
    p.insert("fileAs".into(), json!(""));
    if !emails.is_empty() {
        p.insert("emailAddresses".into(), Value::Array(emails));
    }
    if let Some(c) = company_name {
        p.insert("companyName".into(), json!(c));
        p.insert("department".into(), json!(department));
    }
    if i % 10 != 3 {
        p.insert(
            "jobTitle".into(),
            json!(pick(&JOB_TITLES, i * 7).unwrap_or("Director")),
        );
    }
    if i % 6 != 5 {
        p.insert(
            "businessPhones".into(),
            json!([format!("+1 425 555 {:04}", (i * 7919) % 10_000)]),
        );
    }
    if i % 4 == 1 {
        p.insert(
            "mobilePhone".into(),
            json!(format!("+1 206 555 {:04}", (i * 104_729) % 10_000)),
        );
    }
    if i.is_multiple_of(5) {
        let mut address = Map::new();
        address.insert("street".into(), json!(format!("{} Main St", 100 + i)));
        address.insert("city".into(), json!(city));
        if !state.is_empty() {
            address.insert("state".into(), json!(state));
        }
        address.insert("countryOrRegion".into(), json!(country));
        address.insert("postalCode".into(), json!(format!("{:05}", 98_000 + i)));
        p.insert("businessAddress".into(), Value::Object(address));
    }
    if i.is_multiple_of(3) {
        let mut address = Map::new();
        // One home address with only a city and a country: partial addresses are common.
        let full = i != 45;
        if full {
            address.insert("street".into(), json!(format!("{} Maple Ave", 10 + i % 90)));
        }
        address.insert("city".into(), json!(city));
        if full && !state.is_empty() {
            address.insert("state".into(), json!(state));
        }
        address.insert("countryOrRegion".into(), json!(country));
        if full {
            address.insert("postalCode".into(), json!(format!("{:05}", 98_500 + i)));
        }
        p.insert("homeAddress".into(), Value::Object(address));
    }
    if i.is_multiple_of(11) {
        let mut address = Map::new();
        address.insert("street".into(), json!(format!("PO Box {}", 4000 + i)));
        address.insert("city".into(), json!(city));
        address.insert("countryOrRegion".into(), json!(country));
        p.insert("otherAddress".into(), Value::Object(address));
    }
    if i % 9 == 2 {
        p.insert("categories".into(), json!(["Customers"]));
    }
    if i == 30 {
        p.insert(
            "personalNotes".into(),
            json!("Met at Ignite.\nPrefers email over phone."),
        );
    }
    let created = Utc
        .with_ymd_and_hms(2023, 3, 2, 10, 11, 12)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
        + Duration::days(small(i, 400))
        + Duration::seconds(small(i * 3571, 86_400));
    let modified =
        created + Duration::days(1 + small(i * 17, 300)) + Duration::seconds(small(i * 13, 3600));
    Contact {
        seq: i,
        id: contact_id(i),
        version: 0,
        created,
        modified,
        props: p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_look_like_exchange_rest_ids_and_are_unique() {
        let store = Store::seed();
        let ids: HashSet<&str> = store.contacts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), store.contacts.len());
        for id in &ids {
            assert!(id.starts_with("AAMkAG"), "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(id.len() > 100, "{id}");
            assert!(is_well_formed(id));
        }
        assert!(ids.iter().any(|id| id.contains('-') || id.contains('_')));
        assert!(!is_well_formed("does-not-exist"));
        assert!(!is_well_formed(""));
        assert!(is_well_formed(&contact_id(999_999)));
    }

    #[test]
    fn seed_is_deterministic_and_renders_every_property() {
        let a: Vec<Value> = Store::seed()
            .contacts
            .iter()
            .map(|c| c.render(None))
            .collect();
        let b: Vec<Value> = Store::seed()
            .contacts
            .iter()
            .map(|c| c.render(None))
            .collect();
        assert_eq!(a, b);
        for contact in &a {
            let obj = contact.as_object().unwrap();
            assert_eq!(obj.len(), PROPERTIES.len() + 1);
            assert!(contact["createdDateTime"].as_str() < contact["lastModifiedDateTime"].as_str());
        }
        let store = Store::seed();
        for contact in &store.contacts {
            for key in contact.props.keys() {
                let kind = kind_of(key).unwrap();
                assert_ne!(kind, Kind::ReadOnly, "{key}");
            }
        }
    }
}
