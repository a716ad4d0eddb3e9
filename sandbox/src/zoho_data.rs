//! The Zoho CRM sandbox's records: a deterministic seed of Contacts, Accounts, Deals,
//! Leads, Tasks, Notes and users (identical on every start and after `/_control/reset`)
//! and the field schema, keyed by API name, that decides what a read returns, what a write
//! may set and what a search criteria may compare.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const CONTACT_COUNT: u64 = 260;
pub(crate) const ACCOUNT_COUNT: u64 = 260;
pub(crate) const DEAL_COUNT: u64 = 260;
pub(crate) const LEAD_COUNT: u64 = 260;
pub(crate) const TASK_COUNT: u64 = 260;
pub(crate) const NOTE_COUNT: u64 = 260;
/// Zoho ids are org-wide 19-digit numbers; seeded ones sit in one block per module.
const FIRST_USER_ID: u64 = 5_725_767_000_000_411_001;
const FIRST_CONTACT_ID: u64 = 5_725_767_000_000_412_001;
const FIRST_LEAD_ID: u64 = 5_725_767_000_000_430_007;
const FIRST_ACCOUNT_ID: u64 = 5_725_767_000_000_498_010;
const FIRST_DEAL_ID: u64 = 5_725_767_000_000_520_003;
const FIRST_TASK_ID: u64 = 5_725_767_000_000_540_011;
const FIRST_NOTE_ID: u64 = 5_725_767_000_000_560_013;
const ID_STEP: u64 = 5;
/// Records created through the API get ids above every seeded one.
const FIRST_NEW_ID: u64 = 5_725_767_000_000_600_001;
/// The user the sandbox's OAuth token belongs to (`Created_By`, `Modified_By`, and the
/// `Owner` of records created without one).
pub(crate) const SANDBOX_USER_NAME: &str = "Patricia Boyle";
pub(crate) const SANDBOX_USER_ID: &str = "5725767000000411001";
/// The org's time zone: Zoho renders datetimes in it (`+05:30`, India).
const ORG_OFFSET_SECONDS: i32 = 5 * 3600 + 30 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Module {
    Contacts,
    Accounts,
    Deals,
    Leads,
    Tasks,
    Notes,
}

/// The Deals `Stage` picklist with each value's default probability and forecast type,
/// as the org's stage-probability mapping holds them.
pub(crate) const STAGES: [(&str, i64, &str); 9] = [
    ("Qualification", 10, "Open"),
    ("Needs Analysis", 20, "Open"),
    ("Value Proposition", 40, "Open"),
    ("Identify Decision Makers", 60, "Open"),
    ("Proposal/Price Quote", 75, "Open"),
    ("Negotiation/Review", 90, "Open"),
    ("Closed Won", 100, "Closed Won"),
    ("Closed Lost", 0, "Closed Lost"),
    ("Closed-Lost to Competition", 0, "Closed Lost"),
];
const STAGE_NAMES: [&str; 9] = [
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Identify Decision Makers",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
    "Closed-Lost to Competition",
];
/// The org is multi-currency: these are its enabled currencies (home currency first).
const CURRENCIES: [&str; 4] = ["USD", "EUR", "INR", "GBP"];
pub(crate) const TASK_STATUSES: [&str; 5] = [
    "Not Started",
    "Deferred",
    "In Progress",
    "Completed",
    "Waiting for input",
];
pub(crate) const TASK_COMPLETED: &str = "Completed";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Text,
    Email,
    Phone,
    Website,
    /// A picklist Zoho accepts any value for (unused values are kept).
    Picklist,
    /// A picklist restricted to its values (`INVALID_DATA` otherwise).
    Choice(&'static [&'static str]),
    Integer,
    Currency,
    DateTime,
    /// `2024-05-01`.
    Date,
    /// `{"name","id"}` on read, `{"id"}` on write.
    Lookup(Module),
    /// A user: `{"name","id","email"}` on read, `{"id"}` on write.
    Owner,
    /// A lookup whose module is the record's `$se_module` (`What_Id`, `Parent_Id`).
    Related(&'static [Module]),
}

impl FieldType {
    /// As Zoho names it in `expected_data_type`.
    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            FieldType::Text
            | FieldType::Phone
            | FieldType::Website
            | FieldType::Picklist
            | FieldType::Choice(_) => "text",
            FieldType::Email => "email",
            FieldType::Integer => "integer",
            FieldType::Currency => "double",
            FieldType::DateTime => "datetime",
            FieldType::Date => "date",
            FieldType::Lookup(_) | FieldType::Owner | FieldType::Related(_) => "jsonobject",
        }
    }
}

#[derive(Debug)]
pub(crate) struct FieldDef {
    pub api_name: &'static str,
    pub ty: FieldType,
    pub writable: bool,
}

const fn field(api_name: &'static str, ty: FieldType, writable: bool) -> FieldDef {
    FieldDef {
        api_name,
        ty,
        writable,
    }
}

use FieldType as T;

static CONTACT_FIELDS: [FieldDef; 19] = [
    field("First_Name", T::Text, true),
    field("Last_Name", T::Text, true),
    field("Full_Name", T::Text, false),
    field("Email", T::Email, true),
    field("Phone", T::Phone, true),
    field("Title", T::Text, true),
    field("Account_Name", T::Lookup(Module::Accounts), true),
    field("Customer_Tier", T::Picklist, true),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
    field("Department", T::Text, true),
    field("Mailing_Street", T::Text, true),
    field("Mailing_City", T::Text, true),
    field("Mailing_State", T::Text, true),
    field("Mailing_Zip", T::Text, true),
    field("Mailing_Country", T::Text, true),
    field("Owner", T::Owner, true),
    field("Last_Activity_Time", T::DateTime, false),
    field("Lead_Source", T::Picklist, true),
];

static ACCOUNT_FIELDS: [FieldDef; 18] = [
    field("Account_Name", T::Text, true),
    field("Website", T::Website, true),
    field("Industry", T::Picklist, true),
    field("Employees", T::Integer, true),
    field("Annual_Revenue", T::Currency, true),
    field("Phone", T::Phone, true),
    field("Billing_City", T::Text, true),
    field("Billing_Country", T::Text, true),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
    field("Currency", T::Choice(&CURRENCIES), true),
    field("Description", T::Text, true),
    field("Billing_Street", T::Text, true),
    field("Billing_State", T::Text, true),
    field("Billing_Code", T::Text, true),
    field("Owner", T::Owner, true),
    field("Last_Activity_Time", T::DateTime, false),
    field("Account_Type", T::Picklist, true),
];

static DEAL_FIELDS: [FieldDef; 14] = [
    field("Deal_Name", T::Text, true),
    field("Description", T::Text, true),
    field("Amount", T::Currency, true),
    field("Currency", T::Choice(&CURRENCIES), true),
    field("Stage", T::Choice(&STAGE_NAMES), true),
    field("Probability", T::Integer, true),
    field("Closing_Date", T::Date, true),
    field("Account_Name", T::Lookup(Module::Accounts), true),
    field("Contact_Name", T::Lookup(Module::Contacts), true),
    field("Owner", T::Owner, true),
    field("Lead_Source", T::Picklist, true),
    field("Last_Activity_Time", T::DateTime, false),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
];

static LEAD_FIELDS: [FieldDef; 19] = [
    field("First_Name", T::Text, true),
    field("Last_Name", T::Text, true),
    field("Full_Name", T::Text, false),
    field("Designation", T::Text, true),
    field("Company", T::Text, true),
    field("Email", T::Email, true),
    field("Phone", T::Phone, true),
    field("Lead_Source", T::Picklist, true),
    field("Lead_Status", T::Picklist, true),
    field("Street", T::Text, true),
    field("City", T::Text, true),
    field("State", T::Text, true),
    field("Zip_Code", T::Text, true),
    field("Country", T::Text, true),
    field("Owner", T::Owner, true),
    field("Last_Activity_Time", T::DateTime, false),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
    field("Industry", T::Picklist, true),
];

static TASK_FIELDS: [FieldDef; 11] = [
    field("Subject", T::Text, true),
    field("Description", T::Text, true),
    field("Status", T::Choice(&TASK_STATUSES), true),
    field("Priority", T::Picklist, true),
    field("Due_Date", T::Date, true),
    field("Closed_Time", T::DateTime, false),
    field("Owner", T::Owner, true),
    field("Who_Id", T::Lookup(Module::Contacts), true),
    field(
        "What_Id",
        T::Related(&[Module::Accounts, Module::Deals, Module::Leads]),
        true,
    ),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
];

static NOTE_FIELDS: [FieldDef; 6] = [
    field("Note_Title", T::Text, true),
    field("Note_Content", T::Text, true),
    field(
        "Parent_Id",
        T::Related(&[
            Module::Contacts,
            Module::Accounts,
            Module::Deals,
            Module::Leads,
        ]),
        true,
    ),
    field("Owner", T::Owner, true),
    field("Created_Time", T::DateTime, false),
    field("Modified_Time", T::DateTime, false),
];

impl Module {
    pub(crate) const ALL: [Module; 6] = [
        Module::Contacts,
        Module::Accounts,
        Module::Deals,
        Module::Leads,
        Module::Tasks,
        Module::Notes,
    ];

    pub(crate) fn api_name(self) -> &'static str {
        match self {
            Module::Contacts => "Contacts",
            Module::Accounts => "Accounts",
            Module::Deals => "Deals",
            Module::Leads => "Leads",
            Module::Tasks => "Tasks",
            Module::Notes => "Notes",
        }
    }

    fn index(self) -> usize {
        match self {
            Module::Contacts => 0,
            Module::Accounts => 1,
            Module::Deals => 2,
            Module::Leads => 3,
            Module::Tasks => 4,
            Module::Notes => 5,
        }
    }

    /// Module API names as Zoho spells them in URLs.
    pub(crate) fn from_name(name: &str) -> Option<Module> {
        Self::ALL.into_iter().find(|m| m.api_name() == name)
    }

    pub(crate) fn fields(self) -> &'static [FieldDef] {
        match self {
            Module::Contacts => &CONTACT_FIELDS,
            Module::Accounts => &ACCOUNT_FIELDS,
            Module::Deals => &DEAL_FIELDS,
            Module::Leads => &LEAD_FIELDS,
            Module::Tasks => &TASK_FIELDS,
            Module::Notes => &NOTE_FIELDS,
        }
    }

    /// Field API names are matched exactly, as Zoho does.
    pub(crate) fn field(self, api_name: &str) -> Option<&'static FieldDef> {
        self.fields().iter().find(|f| f.api_name == api_name)
    }

    /// The fields a create must carry (Zoho's `MANDATORY_NOT_FOUND`), in the order checked.
    pub(crate) fn mandatory_fields(self) -> &'static [&'static str] {
        match self {
            Module::Contacts => &["Last_Name"],
            Module::Accounts => &["Account_Name"],
            Module::Deals => &["Deal_Name", "Stage"],
            Module::Leads => &["Last_Name", "Company"],
            Module::Tasks => &["Subject"],
            Module::Notes => &["Note_Content", "Parent_Id"],
        }
    }

    /// The field a lookup to this module shows as its `name`.
    pub(crate) fn name_field(self) -> &'static str {
        match self {
            Module::Contacts | Module::Leads => "Full_Name",
            Module::Accounts => "Account_Name",
            Module::Deals => "Deal_Name",
            Module::Tasks => "Subject",
            Module::Notes => "Note_Title",
        }
    }

    /// Whether records carry `$se_module` (the module of their `Related` field).
    pub(crate) fn has_se_module(self) -> bool {
        matches!(self, Module::Tasks | Module::Notes)
    }
}

/// `2024-05-01T13:30:00+05:30`: seconds precision, in the org's time zone.
pub(crate) fn zoho_datetime(t: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(ORG_OFFSET_SECONDS) {
        Some(offset) => t
            .with_timezone(&offset)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, false),
    }
}

/// The default probability of a stage (the org's stage-probability mapping).
pub(crate) fn stage_probability(stage: &str) -> Option<i64> {
    STAGES.iter().find(|s| s.0 == stage).map(|s| s.1)
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: u64,
    /// API name to JSON value; absent means null. A lookup (and `Owner`) holds the target
    /// id as a string; read-only stored fields (`Last_Activity_Time`, `Closed_Time`) hold
    /// their wire string. Full_Name and the timestamps are derived, never stored.
    pub values: BTreeMap<&'static str, Value>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// The module of the record's `What_Id` / `Parent_Id` (`$se_module`).
    pub se_module: Option<Module>,
    /// Leads only: converted (`$converted`), hidden from lists unless `converted=` says.
    pub converted: bool,
}

impl Record {
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    fn new(id: u64, created: DateTime<Utc>, modified: DateTime<Utc>) -> Record {
        Record {
            id,
            values: BTreeMap::new(),
            created,
            modified,
            se_module: None,
            converted: false,
        }
    }
}

/// A CRM user (`GET /users`): not a record module, read-only here.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: u64,
    pub first_name: Option<&'static str>,
    pub last_name: &'static str,
    pub email: &'static str,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub confirmed: bool,
    pub role: &'static str,
    pub profile: &'static str,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

impl User {
    pub(crate) fn full_name(&self) -> String {
        match self.first_name {
            Some(f) => format!("{f} {}", self.last_name),
            None => self.last_name.to_owned(),
        }
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.profile == "Administrator"
    }

    /// As `GET /users` renders one.
    pub(crate) fn render(&self) -> Value {
        let role_index = ["CEO", "Manager", "Sales Rep"]
            .iter()
            .position(|r| *r == self.role)
            .unwrap_or(0);
        let role_id = FIRST_USER_ID + 900 + u64::try_from(role_index).unwrap_or(0);
        let profile_id = FIRST_USER_ID + 950 + u64::from(self.is_admin());
        json!({
            "country": "IN",
            "role": { "name": self.role, "id": role_id.to_string() },
            "language": "en_US",
            "locale": "en_IN",
            "first_name": self.first_name,
            "last_name": self.last_name,
            "full_name": self.full_name(),
            "email": self.email,
            "profile": { "name": self.profile, "id": profile_id.to_string() },
            "status": self.status,
            "confirm": self.confirmed,
            "time_zone": "Asia/Kolkata",
            "created_by": { "name": SANDBOX_USER_NAME, "id": SANDBOX_USER_ID },
            "created_time": zoho_datetime(self.created),
            "Modified_Time": zoho_datetime(self.modified),
            "zuid": (self.id - FIRST_USER_ID + 60_012_345).to_string(),
            "id": self.id.to_string(),
        })
    }
}

/// Which way a list is ordered (`sort_by`, `sort_order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortBy {
    Id,
    CreatedTime,
    ModifiedTime,
}

impl SortBy {
    pub(crate) const ALL: [SortBy; 3] = [SortBy::Id, SortBy::CreatedTime, SortBy::ModifiedTime];

    pub(crate) fn wire(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::CreatedTime => "Created_Time",
            SortBy::ModifiedTime => "Modified_Time",
        }
    }

    pub(crate) fn from_wire(s: &str) -> Option<SortBy> {
        Self::ALL.into_iter().find(|x| x.wire() == s)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    tables: [BTreeMap<u64, Record>; 6],
    users: Vec<User>,
    next_id: u64,
}

impl Store {
    pub(crate) fn table(&self, module: Module) -> &BTreeMap<u64, Record> {
        &self.tables[module.index()]
    }

    pub(crate) fn table_mut(&mut self, module: Module) -> &mut BTreeMap<u64, Record> {
        &mut self.tables[module.index()]
    }

    pub(crate) fn users(&self) -> &[User] {
        &self.users
    }

    pub(crate) fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Ids are org-wide, never reused, and grow.
    pub(crate) fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn lookup_name(&self, target: Module, record: &Record) -> Value {
        match target.field(target.name_field()) {
            Some(f) => self.value(target, record, f),
            None => Value::Null,
        }
    }

    pub(crate) fn value(&self, module: Module, record: &Record, field: &FieldDef) -> Value {
        match (field.api_name, field.ty) {
            ("Created_Time", _) => json!(zoho_datetime(record.created)),
            ("Modified_Time", _) => json!(zoho_datetime(record.modified)),
            ("Full_Name", _) if matches!(module, Module::Contacts | Module::Leads) => {
                let parts: Vec<&str> = ["First_Name", "Last_Name"]
                    .iter()
                    .filter_map(|k| record.text(k))
                    .collect();
                if parts.is_empty() {
                    Value::Null
                } else {
                    json!(parts.join(" "))
                }
            }
            (name, FieldType::Owner) => {
                let user = record
                    .text(name)
                    .and_then(|id| id.parse::<u64>().ok())
                    .and_then(|id| self.user(id));
                match user {
                    Some(u) => {
                        json!({ "name": u.full_name(), "id": u.id.to_string(), "email": u.email })
                    }
                    None => Value::Null,
                }
            }
            (name, FieldType::Lookup(target)) => self.lookup(record.text(name), target),
            (name, FieldType::Related(_)) => match record.se_module {
                Some(target) => self.lookup(record.text(name), target),
                None => Value::Null,
            },
            (name, _) => record.values.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    /// `{"name","id"}` of a lookup's target; a lookup to a deleted record reads as empty.
    fn lookup(&self, id: Option<&str>, target: Module) -> Value {
        let target_record = id
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| self.table(target).get(&id));
        match target_record {
            Some(t) => json!({ "name": self.lookup_name(target, t), "id": t.id.to_string() }),
            None => Value::Null,
        }
    }

    /// The fields asked for, in the order asked, then `id` and the module's `$` meta keys.
    pub(crate) fn render(&self, module: Module, record: &Record, fields: &[&FieldDef]) -> Value {
        let mut out = Map::new();
        for field in fields {
            out.insert(field.api_name.into(), self.value(module, record, field));
        }
        out.insert("id".into(), json!(record.id.to_string()));
        if module.has_se_module() {
            out.insert(
                "$se_module".into(),
                record
                    .se_module
                    .map_or(Value::Null, |m| json!(m.api_name())),
            );
        }
        if module == Module::Leads {
            out.insert("$converted".into(), json!(record.converted));
        }
        Value::Object(out)
    }

    pub(crate) fn sorted(&self, module: Module, by: SortBy, descending: bool) -> Vec<&Record> {
        let mut rows: Vec<&Record> = self.table(module).values().collect();
        rows.sort_by(|a, b| {
            let ordering = match by {
                SortBy::Id => a.id.cmp(&b.id),
                SortBy::CreatedTime => a.created.cmp(&b.created).then(a.id.cmp(&b.id)),
                SortBy::ModifiedTime => a.modified.cmp(&b.modified).then(a.id.cmp(&b.id)),
            };
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
        rows
    }

    pub(crate) fn seed() -> Store {
        let users = seed_users();
        let accounts: BTreeMap<u64, Record> = (0..ACCOUNT_COUNT)
            .map(seed_account)
            .map(|r| (r.id, r))
            .collect();
        let contacts: BTreeMap<u64, Record> = (0..CONTACT_COUNT)
            .map(|i| seed_contact(i, &accounts))
            .map(|r| (r.id, r))
            .collect();
        let deals: BTreeMap<u64, Record> = (0..DEAL_COUNT)
            .map(|i| seed_deal(i, &contacts))
            .map(|r| (r.id, r))
            .collect();
        let leads: BTreeMap<u64, Record> =
            (0..LEAD_COUNT).map(seed_lead).map(|r| (r.id, r)).collect();
        let tasks: BTreeMap<u64, Record> = (0..TASK_COUNT)
            .map(|i| seed_task(i, &contacts, &deals))
            .map(|r| (r.id, r))
            .collect();
        let notes: BTreeMap<u64, Record> =
            (0..NOTE_COUNT).map(seed_note).map(|r| (r.id, r)).collect();
        Store {
            tables: [contacts, accounts, deals, leads, tasks, notes],
            users,
            next_id: FIRST_NEW_ID,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Seed

// 20 and 13 are coprime: the 260 account names are unique.
#[rustfmt::skip]
const ACCOUNT_PREFIXES: [&str; 20] = [
    "Zylker", "Crestview", "Marigold", "Anchorpoint", "Bluestem", "Coralbay", "Dunmore",
    "Elmstead", "Fernhill", "Goldcrest", "Hawthorne", "Islington", "Jadeport", "Kingsbridge",
    "Lotusfield", "Mysuru", "Nilgiri", "Ørsted Vale", "Père Lachaise", "Qutub",
];

#[rustfmt::skip]
const ACCOUNT_SUFFIXES: [(&str, &str); 13] = [
    ("Systems", "Technology"), ("Traders", "Retail"), ("Pharma", "Healthcare"),
    ("Textiles", "Manufacturing"), ("Capital", "Financial Services"), ("Realty", "Real Estate"),
    ("Networks", "Communications"), ("Advisory", "Consulting"), ("Foods", "Food & Beverage"),
    ("Learning", "Education"), ("Motors", "Automotive"), ("Power", "Energy"),
    ("Studios", "Media & Entertainment"),
];

#[rustfmt::skip]
const PLACES: [(&str, &str); 11] = [
    ("Chennai", "India"), ("Pune", "India"), ("Austin", "United States"),
    ("Pleasanton", "United States"), ("Amsterdam", "Netherlands"), ("Dubai", "United Arab Emirates"),
    ("Melbourne", "Australia"), ("Yokohama", "Japan"), ("Düsseldorf", "Germany"),
    ("Ciudad de México", "Mexico"), ("Nairobi", "Kenya"),
];

/// State and a postal code prefix for each of [`PLACES`].
#[rustfmt::skip]
const PLACE_DETAILS: [(&str, &str); 11] = [
    ("Tamil Nadu", "600"), ("Maharashtra", "411"), ("Texas", "787"), ("California", "945"),
    ("North Holland", "10"), ("Dubai", "00"), ("Victoria", "30"), ("Kanagawa", "220"),
    ("North Rhine-Westphalia", "402"), ("CDMX", "06"), ("Nairobi", "00"),
];

const STREETS: [&str; 7] = [
    "Estancia IT Park",
    "MG Road",
    "Congress Avenue",
    "Keizersgracht",
    "Collins Street",
    "Königsallee",
    "Sheikh Zayed Road",
];

// 19 and 23 are coprime: (i % 19, i % 23) never repeats for the 260 seeded contacts, so
// every generated name, and so every generated email, is unique.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 19] = [
    "Aarav", "Ishita", "Karthik", "Ananya", "Rohan", "Meera", "Vikram", "Lakshmi", "Arjun",
    "Sofia", "Lucas", "Emma", "Noah", "Zoë", "Liam", "Hana", "Omar", "Fatima", "Diego",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 23] = [
    "Iyer", "Sharma", "Reddy", "Nair", "Menon", "Kapoor", "Gupta", "Rao", "Pillai",
    "Müller", "García", "Johansson", "Smith", "Kim", "Nguyen", "Silva", "Cohen", "Brown",
    "Popescu", "Yilmaz", "Hughes", "Mbeki", "Lefèvre",
];

// 17 and 16 are coprime with each other (and 17 * 16 > 260): lead names are unique.
#[rustfmt::skip]
const LEAD_FIRST_NAMES: [&str; 17] = [
    "Kavya", "Nikhil", "Sneha", "Farhan", "Divya", "Tomás", "Ingrid", "Kenji", "Amara",
    "Pavel", "Chloé", "Yusuf", "Aditi", "Mateo", "Saanvi", "Björn", "Leila",
];

#[rustfmt::skip]
const LEAD_LAST_NAMES: [&str; 16] = [
    "Krishnan", "Banerjee", "Joshi", "Qureshi", "Fernandes", "Okafor", "Lindqvist", "Tanaka",
    "Novak", "Dubois", "Haddad", "Costa", "Mehta", "Ivanova", "O'Brien", "Schäfer",
];

const TITLES: [&str; 9] = [
    "Purchase Manager",
    "CTO",
    "Sales Executive",
    "Marketing Lead",
    "Founder",
    "Finance Head",
    "Support Engineer",
    "Operations Manager",
    "Consultant",
];

const DEPARTMENTS: [&str; 6] = [
    "Procurement",
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Operations",
];

const TIERS: [&str; 3] = ["Gold", "Silver", "Bronze"];

const LEAD_SOURCES: [&str; 7] = [
    "Advertisement",
    "Cold Call",
    "Employee Referral",
    "Online Store",
    "Partner",
    "Trade Show",
    "Web Download",
];

const LEAD_STATUSES: [&str; 7] = [
    "Not Contacted",
    "Attempted to Contact",
    "Contact in Future",
    "Contacted",
    "Pre-Qualified",
    "Not Qualified",
    "Junk Lead",
];

const PRODUCTS: [&str; 8] = [
    "Annual licence",
    "Implementation",
    "Support renewal",
    "Pilot",
    "Expansion seats",
    "Training package",
    "Data migration",
    "Premium add-on",
];

const TASK_SUBJECTS: [&str; 8] = [
    "Call back",
    "Send proposal",
    "Schedule demo",
    "Follow up on invoice",
    "Prepare contract",
    "Check onboarding",
    "Quarterly review",
    "Email pricing sheet",
];

const PRIORITIES: [&str; 5] = ["High", "Highest", "Low", "Lowest", "Normal"];

const NOTE_TITLES: [&str; 6] = [
    "Call summary",
    "Meeting notes",
    "Pricing discussion",
    "Requirements",
    "Feedback",
    "Next steps",
];

/// `(first, last, email, status, role, profile)`.
type SeedUser = (
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The org's users; disabled ones never own seeded records.
#[rustfmt::skip]
const USERS: [SeedUser; 12] = [
    (Some("Patricia"), "Boyle", "p.boyle@zylker.example", "active", "CEO", "Administrator"),
    (Some("Ravi"), "Shankar", "ravi.shankar@zylker.example", "active", "Manager", "Standard"),
    (Some("Anjali"), "Desai", "anjali.desai@zylker.example", "active", "Manager", "Standard"),
    (Some("Marcus"), "Webb", "marcus.webb@zylker.example", "active", "Sales Rep", "Standard"),
    (Some("Yuki"), "Sato", "yuki.sato@zylker.example", "active", "Sales Rep", "Standard"),
    (Some("Olusegun"), "Adeyemi", "olusegun.adeyemi@zylker.example", "active", "Sales Rep", "Standard"),
    (Some("Camille"), "Laurent", "camille.laurent@zylker.example", "active", "Sales Rep", "Standard"),
    (Some("Deepa"), "Venkatesh", "deepa.venkatesh@zylker.example", "active", "Sales Rep", "Standard"),
    (None, "Support Desk", "support.desk@zylker.example", "active", "Sales Rep", "Standard"),
    (Some("Henrik"), "Aalto", "henrik.aalto@zylker.example", "disabled", "Sales Rep", "Standard"),
    (Some("Grace"), "Mwangi", "grace.mwangi@zylker.example", "disabled", "Manager", "Standard"),
    (Some("Sergio"), "Ramos Díaz", "sergio.ramos@zylker.example", "active", "Sales Rep", "Standard"),
];

/// Seed indices of the users who own records (the active ones).
const OWNERS: [u64; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11];

fn at(base: (i32, u32, u32, u32), offset: Duration) -> DateTime<Utc> {
    let (y, m, d, h) = base;
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
        + offset
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus).unwrap_or(0)
}

fn pick<T: Copy>(list: &[T], i: u64) -> T {
    let len = u64::try_from(list.len()).unwrap_or(1).max(1);
    list[usize::try_from(i % len).unwrap_or(0)]
}

fn owner(i: u64) -> Value {
    json!((FIRST_USER_ID + pick(&OWNERS, i) * ID_STEP).to_string())
}

fn user_id(k: u64) -> u64 {
    FIRST_USER_ID + k * ID_STEP
}

pub(crate) fn contact_id(i: u64) -> u64 {
    FIRST_CONTACT_ID + i * ID_STEP
}

pub(crate) fn account_id(j: u64) -> u64 {
    FIRST_ACCOUNT_ID + j * ID_STEP
}

pub(crate) fn deal_id(i: u64) -> u64 {
    FIRST_DEAL_ID + i * ID_STEP
}

pub(crate) fn lead_id(i: u64) -> u64 {
    FIRST_LEAD_ID + i * ID_STEP
}

pub(crate) fn task_id(i: u64) -> u64 {
    FIRST_TASK_ID + i * ID_STEP
}

pub(crate) fn note_id(i: u64) -> u64 {
    FIRST_NOTE_ID + i * ID_STEP
}

fn date(t: DateTime<Utc>) -> Value {
    json!(t.format("%Y-%m-%d").to_string())
}

fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'Á' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ï' | 'Í' => 'i',
                'ó' | 'ö' | 'ø' | 'Ø' => 'o',
                'ú' | 'ü' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                c => c,
            };
            folded
                .is_ascii_alphanumeric()
                .then(|| folded.to_ascii_lowercase())
        })
        .collect()
}

fn seed_users() -> Vec<User> {
    USERS
        .iter()
        .enumerate()
        .map(|(k, (first, last, email, status, role, profile))| {
            let k = k as u64;
            let created = at(
                (2021, 11, 2, 5),
                Duration::days(small(k, 12) * 41) + Duration::minutes(small(k * 37, 600)),
            );
            User {
                id: user_id(k),
                first_name: *first,
                last_name: last,
                email,
                status,
                confirmed: k != 8,
                role,
                profile,
                created,
                modified: created + Duration::days(30 + small(k * 13, 300)),
            }
        })
        .collect()
}

fn seed_account(j: u64) -> Record {
    let prefix = pick(&ACCOUNT_PREFIXES, j);
    let (suffix, industry) = pick(&ACCOUNT_SUFFIXES, j);
    let place = usize::try_from((j * 5) % 11).unwrap_or(0);
    let (city, country) = PLACES[place];
    let (state, zip) = PLACE_DETAILS[place];
    let name = format!("{prefix} {suffix}");
    let created = at(
        (2022, 4, 1, 4),
        Duration::days(small(j, 1000) * 2)
            + Duration::minutes(small(j * 113, 1440))
            + Duration::seconds(small(j * 7, 60)),
    );
    let modified = created
        + Duration::days(10 + small(j * 11, 400))
        + Duration::minutes(small(j * 19, 600))
        + Duration::seconds(small(j * 31, 60));
    let employees = pick(&[8u64, 25, 70, 180, 650, 2_000, 7_500, 30_000], j * 3);

    let mut r = Record::new(account_id(j), created, modified);
    let v = &mut r.values;
    v.insert("Account_Name", json!(name));
    if j % 17 != 4 {
        let words: Vec<String> = name.split(' ').map(slug).collect();
        v.insert(
            "Website",
            json!(format!("https://{}.example", words.join("-"))),
        );
    }
    if j % 19 != 8 {
        v.insert("Industry", json!(industry));
    }
    if j % 10 != 7 {
        v.insert("Employees", json!(employees));
        v.insert("Annual_Revenue", json!(employees * (60_000 + j * 250)));
    }
    // Multi-currency org: every record of a module with currency fields has one.
    v.insert("Currency", json!(pick(&CURRENCIES, j / 3)));
    v.insert(
        "Phone",
        json!(format!(
            "+91 44 6{:03} {:04}",
            j % 1000,
            (j * 4_801) % 10_000
        )),
    );
    v.insert("Billing_City", json!(city));
    v.insert("Billing_Country", json!(country));
    if j % 9 != 5 {
        v.insert(
            "Billing_Street",
            json!(format!("{} {}", 10 + (j * 7) % 190, pick(&STREETS, j))),
        );
        v.insert("Billing_State", json!(state));
        v.insert(
            "Billing_Code",
            json!(format!("{zip}{:03}", (j * 13) % 1000)),
        );
    }
    if j % 6 != 5 {
        v.insert(
            "Description",
            json!(format!(
                "{name}: {} customer since {}.",
                industry.to_lowercase(),
                created.format("%Y")
            )),
        );
    }
    v.insert(
        "Account_Type",
        json!(pick(&["Customer", "Prospect", "Partner", "Reseller"], j)),
    );
    v.insert("Owner", owner(j * 3));
    if j % 4 != 2 {
        v.insert(
            "Last_Activity_Time",
            json!(zoho_datetime(modified - Duration::hours(small(j, 48) + 1))),
        );
    }
    r
}

/// Contacts spread over the first 150 accounts; some have none.
fn contact_account(i: u64) -> Option<u64> {
    (i % 8 != 5).then(|| account_id((i * 11) % 150))
}

fn seed_contact(i: u64, accounts: &BTreeMap<u64, Record>) -> Record {
    let mut first = Some(pick(&FIRST_NAMES, i).to_owned());
    let mut last = Some(pick(&LAST_NAMES, i).to_owned());
    let account = contact_account(i);
    let domain = account
        .and_then(|a| accounts.get(&a))
        .and_then(|a| a.text("Website"))
        .map_or("zmail.example", |w| w.trim_start_matches("https://"))
        .to_owned();
    let mut local: Option<String> = None;
    // Hand-picked edge cases a mapping layer must survive.
    match i {
        9 => local = Some(String::new()), // no email at all
        21 => {
            first = Some("Siddharth".into());
            last = Some("D'Souza".into());
            local = Some("siddharth.dsouza".into());
        }
        64 => {
            first = Some("Łukasz".into());
            last = Some("Wiśniewski".into());
            local = Some("lukasz.wisniewski".into());
        }
        101 => {
            first = Some("結衣".into());
            last = Some("山田".into());
            local = Some("yui.yamada".into());
        }
        150 => {
            // Zoho requires Last_Name but nothing else.
            first = None;
            local = Some("no.first.name".into());
        }
        202 => {
            first = Some("Priya".into());
            last = Some("Raman".into());
            local = Some("Priya.Raman+zoho".into());
        }
        _ => {}
    }
    let email = match local {
        Some(l) if l.is_empty() => None,
        Some(l) => Some(format!("{l}@{domain}")),
        None => Some(format!(
            "{}.{}@{domain}",
            slug(pick(&FIRST_NAMES, i)),
            slug(pick(&LAST_NAMES, i))
        )),
    };
    let created = at(
        (2023, 6, 1, 3),
        Duration::days(small(i, 1000))
            + Duration::seconds(small(i, 1000) * (4 * 3600 + 5 * 60 + 9)),
    );
    let modified = created
        + Duration::days(1 + small(i * 17, 150))
        + Duration::minutes(small(i * 11, 60))
        + Duration::seconds(small(i * 13, 60));

    let mut r = Record::new(contact_id(i), created, modified);
    let v = &mut r.values;
    if let Some(first) = first {
        v.insert("First_Name", json!(first));
    }
    if let Some(last) = last {
        v.insert("Last_Name", json!(last));
    }
    if let Some(email) = email {
        v.insert("Email", json!(email));
    }
    if i % 6 != 1 {
        v.insert(
            "Phone",
            json!(format!(
                "+91 98{:03} {:05}",
                i % 1000,
                (i * 7_919) % 100_000
            )),
        );
    }
    if i % 10 != 3 {
        v.insert("Title", json!(pick(&TITLES, i)));
    }
    if let Some(account) = account {
        v.insert("Account_Name", json!(account.to_string()));
    }
    if i % 7 != 2 {
        v.insert("Customer_Tier", json!(pick(&TIERS, i)));
    }
    if i % 5 != 2 {
        v.insert("Department", json!(pick(&DEPARTMENTS, i / 2)));
    }
    if i % 4 != 3 {
        let place = usize::try_from((i * 3) % 11).unwrap_or(0);
        let (city, country) = PLACES[place];
        let (state, zip) = PLACE_DETAILS[place];
        v.insert(
            "Mailing_Street",
            json!(format!("{} {}", 1 + (i * 17) % 240, pick(&STREETS, i / 3))),
        );
        v.insert("Mailing_City", json!(city));
        if i % 11 != 6 {
            v.insert("Mailing_State", json!(state));
            v.insert("Mailing_Zip", json!(format!("{zip}{:03}", (i * 29) % 1000)));
        }
        v.insert("Mailing_Country", json!(country));
    }
    v.insert("Owner", owner(i));
    if !i.is_multiple_of(3) {
        v.insert(
            "Last_Activity_Time",
            json!(zoho_datetime(
                modified - Duration::minutes(small(i * 7, 720) + 5)
            )),
        );
    }
    if i % 5 == 1 {
        v.insert("Lead_Source", json!(pick(&LEAD_SOURCES, i)));
    }
    r
}

fn seed_deal(i: u64, contacts: &BTreeMap<u64, Record>) -> Record {
    // The deal's contact, and the contact's account; deals without a contact name one
    // account directly (or none).
    let contact = (i % 10 != 7).then(|| contact_id((i * 3) % CONTACT_COUNT));
    let account = match contact {
        Some(c) => contacts
            .get(&c)
            .and_then(|c| c.text("Account_Name"))
            .and_then(|a| a.parse::<u64>().ok()),
        None => (i % 13 != 6).then(|| account_id((i * 7) % 150)),
    };
    let (stage, default_probability, _) = STAGES[usize::try_from((i * 5) % 9).unwrap_or(0)];
    let created = at(
        (2023, 9, 4, 6),
        Duration::days(small(i * 3, 700)) + Duration::minutes(small(i * 53, 1440)),
    );
    let modified = created
        + Duration::days(2 + small(i * 7, 240))
        + Duration::minutes(small(i * 17, 300))
        + Duration::seconds(small(i * 23, 60));

    let mut r = Record::new(deal_id(i), created, modified);
    let v = &mut r.values;
    let name = match i {
        5 => "Renewal (2025), phase 2 \\ EMEA".to_owned(),
        _ => format!("{} #{}", pick(&PRODUCTS, i), 1000 + i),
    };
    v.insert("Deal_Name", json!(name));
    if i % 4 != 1 {
        v.insert(
            "Description",
            json!(format!("{} for {} seats.", pick(&PRODUCTS, i), 5 + i % 40)),
        );
    }
    match i {
        0 => {
            v.insert("Amount", json!(7350.5));
        }
        1 => {
            v.insert("Amount", json!(1_234_567.89));
        }
        _ if i % 9 == 4 => {}
        _ => {
            let cents = (i * 37) % 100;
            let whole = 500 + (i * 7_919) % 90_000;
            v.insert("Amount", json!(whole as f64 + cents as f64 / 100.0));
        }
    }
    v.insert("Currency", json!(pick(&CURRENCIES, i)));
    v.insert("Stage", json!(stage));
    let probability = if i % 11 == 3 && default_probability > 0 && default_probability < 100 {
        33
    } else {
        default_probability
    };
    v.insert("Probability", json!(probability));
    if i % 15 != 14 {
        v.insert(
            "Closing_Date",
            date(created + Duration::days(30 + small(i * 11, 200))),
        );
    }
    if let Some(account) = account {
        v.insert("Account_Name", json!(account.to_string()));
    }
    if let Some(contact) = contact {
        v.insert("Contact_Name", json!(contact.to_string()));
    }
    v.insert("Owner", owner(i * 7 + 1));
    if i.is_multiple_of(3) {
        v.insert("Lead_Source", json!(pick(&LEAD_SOURCES, i)));
    }
    if i % 3 != 2 {
        v.insert(
            "Last_Activity_Time",
            json!(zoho_datetime(modified - Duration::hours(small(i, 30) + 2))),
        );
    }
    r
}

fn seed_lead(i: u64) -> Record {
    let first = pick(&LEAD_FIRST_NAMES, i);
    let last = pick(&LEAD_LAST_NAMES, i);
    let created = at(
        (2024, 1, 8, 2),
        Duration::days(small(i * 2, 500)) + Duration::minutes(small(i * 97, 1440)),
    );
    let modified = created
        + Duration::days(small(i * 5, 90))
        + Duration::minutes(1 + small(i * 41, 600))
        + Duration::seconds(small(i * 19, 60));
    let mut r = Record::new(lead_id(i), created, modified);
    r.converted = i % 10 == 4;
    let v = &mut r.values;
    if i % 23 != 11 {
        v.insert("First_Name", json!(first));
    }
    v.insert("Last_Name", json!(last));
    if i % 7 != 3 {
        v.insert("Designation", json!(pick(&TITLES, i * 2)));
    }
    let company = format!(
        "{} {}",
        pick(&ACCOUNT_PREFIXES, i * 3 + 1),
        pick(&["Labs", "Exports", "Logistics", "Clinics", "Works"], i)
    );
    v.insert("Company", json!(company));
    if i % 9 != 7 {
        v.insert(
            "Email",
            json!(format!(
                "{}.{}@{}.example",
                slug(first),
                slug(last),
                slug(&company)
            )),
        );
    }
    if i % 5 != 4 {
        v.insert(
            "Phone",
            json!(format!(
                "+91 80 4{:03} {:04}",
                i % 1000,
                (i * 6_007) % 10_000
            )),
        );
    }
    if i % 6 != 5 {
        v.insert("Lead_Source", json!(pick(&LEAD_SOURCES, i)));
    }
    v.insert("Lead_Status", json!(pick(&LEAD_STATUSES, i * 3)));
    if i % 4 != 1 {
        let place = usize::try_from((i * 7) % 11).unwrap_or(0);
        let (city, country) = PLACES[place];
        let (state, zip) = PLACE_DETAILS[place];
        v.insert(
            "Street",
            json!(format!("{} {}", 3 + (i * 11) % 300, pick(&STREETS, i))),
        );
        v.insert("City", json!(city));
        v.insert("State", json!(state));
        v.insert("Zip_Code", json!(format!("{zip}{:03}", (i * 31) % 1000)));
        v.insert("Country", json!(country));
    }
    v.insert("Owner", owner(i * 5 + 2));
    if i % 3 == 1 {
        v.insert(
            "Last_Activity_Time",
            json!(zoho_datetime(
                modified - Duration::minutes(30 + small(i, 200))
            )),
        );
    }
    if i.is_multiple_of(4) {
        v.insert("Industry", json!(pick(&ACCOUNT_SUFFIXES, i).1));
    }
    r
}

fn seed_task(i: u64, contacts: &BTreeMap<u64, Record>, deals: &BTreeMap<u64, Record>) -> Record {
    let created = at(
        (2024, 2, 12, 4),
        Duration::days(small(i * 3, 400)) + Duration::minutes(small(i * 61, 1440)),
    );
    let modified = created
        + Duration::days(small(i * 7, 60))
        + Duration::minutes(1 + small(i * 29, 900))
        + Duration::seconds(small(i * 11, 60));
    let mut r = Record::new(task_id(i), created, modified);
    // What the task is about: a deal (and its contact), an account (and one of its
    // contacts), a lead, or nothing.
    let (who, what): (Option<u64>, Option<(Module, u64)>) = match i % 3 {
        _ if i % 29 == 5 => (None, Some((Module::Leads, lead_id((i * 7) % LEAD_COUNT)))),
        0 => {
            let deal = deal_id((i * 13) % DEAL_COUNT);
            let contact = deals
                .get(&deal)
                .and_then(|d| d.text("Contact_Name"))
                .and_then(|c| c.parse::<u64>().ok());
            (contact, Some((Module::Deals, deal)))
        }
        1 => {
            let contact = contact_id((i * 11) % CONTACT_COUNT);
            let account = contacts
                .get(&contact)
                .and_then(|c| c.text("Account_Name"))
                .and_then(|a| a.parse::<u64>().ok());
            match account {
                Some(a) => (Some(contact), Some((Module::Accounts, a))),
                None => (Some(contact), None),
            }
        }
        _ => (
            (i % 5 != 3).then(|| contact_id((i * 17) % CONTACT_COUNT)),
            None,
        ),
    };
    let status = if i.is_multiple_of(4) {
        TASK_COMPLETED
    } else {
        pick(
            &[
                "Not Started",
                "In Progress",
                "Deferred",
                "Waiting for input",
                "Not Started",
            ],
            i,
        )
    };
    let v = &mut r.values;
    v.insert("Subject", json!(pick(&TASK_SUBJECTS, i)));
    if i % 3 != 1 {
        v.insert(
            "Description",
            json!(format!(
                "Task {}: {}.",
                i + 1,
                pick(&TASK_SUBJECTS, i + 3).to_lowercase()
            )),
        );
    }
    v.insert("Status", json!(status));
    v.insert("Priority", json!(pick(&PRIORITIES, i)));
    if i % 8 != 6 {
        v.insert("Due_Date", date(created + Duration::days(3 + small(i, 20))));
    }
    if status == TASK_COMPLETED {
        v.insert("Closed_Time", json!(zoho_datetime(modified)));
    }
    v.insert("Owner", owner(i * 3 + 2));
    if let Some(who) = who {
        v.insert("Who_Id", json!(who.to_string()));
    }
    if let Some((module, id)) = what {
        v.insert("What_Id", json!(id.to_string()));
        r.se_module = Some(module);
    }
    r
}

fn seed_note(i: u64) -> Record {
    let created = at(
        (2024, 3, 1, 7),
        Duration::days(small(i * 2, 365)) + Duration::minutes(small(i * 43, 1440)),
    );
    let modified =
        created + Duration::minutes(small(i * 7, 3000)) + Duration::seconds(1 + small(i * 13, 59));
    let mut r = Record::new(note_id(i), created, modified);
    let (module, parent) = match i % 3 {
        _ if i % 17 == 8 => (Module::Leads, lead_id((i * 5) % LEAD_COUNT)),
        0 => (Module::Contacts, contact_id((i * 7) % CONTACT_COUNT)),
        1 => (Module::Accounts, account_id((i * 11) % 150)),
        _ => (Module::Deals, deal_id((i * 13) % DEAL_COUNT)),
    };
    r.se_module = Some(module);
    let v = &mut r.values;
    if i % 5 != 2 {
        v.insert("Note_Title", json!(pick(&NOTE_TITLES, i)));
    }
    v.insert(
        "Note_Content",
        json!(match i {
            0 => "Called, left a voicemail. Will try again on Monday.".to_owned(),
            _ => format!(
                "{} #{}: discussed {} and agreed on next steps.",
                pick(&NOTE_TITLES, i),
                i + 1,
                pick(&PRODUCTS, i * 3).to_lowercase()
            ),
        }),
    );
    v.insert("Parent_Id", json!(parent.to_string()));
    v.insert("Owner", owner(i + 4));
    r
}

/// Seeded records that exercise the edge cases, by seed index.
pub(crate) fn sample_ids(module: Module) -> Vec<u64> {
    match module {
        Module::Contacts => [0u64, 1, 2, 3, 5, 9, 21, 64, 101, 150]
            .iter()
            .map(|i| contact_id(*i))
            .collect(),
        Module::Accounts => [0u64, 4, 5, 7, 8, 12]
            .iter()
            .map(|j| account_id(*j))
            .collect(),
        Module::Deals => [0u64, 1, 4, 5, 6, 7, 14, 19]
            .iter()
            .map(|i| deal_id(*i))
            .collect(),
        Module::Leads => [0u64, 1, 3, 4, 5, 7, 11]
            .iter()
            .map(|i| lead_id(*i))
            .collect(),
        Module::Tasks => [0u64, 1, 2, 3, 5, 6].iter().map(|i| task_id(*i)).collect(),
        Module::Notes => [0u64, 1, 2, 8].iter().map(|i| note_id(*i)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_and_well_formed() {
        let a = Store::seed();
        let b = Store::seed();
        for module in Module::ALL {
            let fields: Vec<&FieldDef> = module.fields().iter().collect();
            let left: Vec<Value> = a
                .table(module)
                .values()
                .map(|r| a.render(module, r, &fields))
                .collect();
            let right: Vec<Value> = b
                .table(module)
                .values()
                .map(|r| b.render(module, r, &fields))
                .collect();
            assert_eq!(left, right);
            assert!(left.len() >= 260);
            for record in a.table(module).values() {
                assert!(record.created < record.modified);
                assert_eq!(record.id.to_string().len(), 19);
                assert!(record.id < FIRST_NEW_ID);
                for key in record.values.keys() {
                    let field = module.field(key).unwrap();
                    assert!(
                        field.writable || ["Last_Activity_Time", "Closed_Time"].contains(key),
                        "{key}"
                    );
                }
                for mandatory in module.mandatory_fields() {
                    assert!(record.values.contains_key(mandatory), "{mandatory}");
                }
            }
            // Every link points at a seeded record.
            for rendered in &left {
                for field in module.fields() {
                    if matches!(
                        field.ty,
                        FieldType::Lookup(_) | FieldType::Owner | FieldType::Related(_)
                    ) && !rendered[field.api_name].is_null()
                    {
                        assert!(rendered[field.api_name]["name"].is_string(), "{rendered}");
                    }
                }
            }
        }
        let ids: HashSet<u64> = Module::ALL
            .iter()
            .flat_map(|m| a.table(*m).keys().copied())
            .chain(a.users().iter().map(|u| u.id))
            .collect();
        let total: usize = Module::ALL.iter().map(|m| a.table(*m).len()).sum();
        assert_eq!(ids.len(), total + a.users().len(), "ids are org-wide");
        let emails: Vec<String> = a
            .table(Module::Contacts)
            .values()
            .filter_map(|r| r.text("Email"))
            .map(str::to_lowercase)
            .collect();
        let unique: HashSet<&String> = emails.iter().collect();
        assert_eq!(unique.len(), emails.len());
        assert_eq!(emails.len(), usize::try_from(CONTACT_COUNT).unwrap() - 1);
        let names: HashSet<&str> = a
            .table(Module::Accounts)
            .values()
            .filter_map(|r| r.text("Account_Name"))
            .collect();
        assert_eq!(names.len(), usize::try_from(ACCOUNT_COUNT).unwrap());
        let contact = &a.table(Module::Contacts)[&FIRST_CONTACT_ID];
        let lookup = a.value(Module::Contacts, contact, &CONTACT_FIELDS[6]);
        assert_eq!(lookup["name"], "Zylker Systems");
        assert_eq!(lookup["id"], FIRST_ACCOUNT_ID.to_string());
        assert_eq!(zoho_datetime(contact.created), "2023-06-01T08:30:00+05:30");
        // A deal's account is its contact's account.
        for deal in a.table(Module::Deals).values() {
            if let Some(c) = deal.text("Contact_Name") {
                let contact = &a.table(Module::Contacts)[&c.parse::<u64>().unwrap()];
                assert_eq!(deal.text("Account_Name"), contact.text("Account_Name"));
            }
        }
        assert!(a.users().len() < 250 && a.users().len() >= 10);
    }
}
