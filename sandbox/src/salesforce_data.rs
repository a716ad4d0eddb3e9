//! The Salesforce sandbox's records and query language: a deterministic seed of Users,
//! Accounts, Contacts, Opportunities (with their contact roles), Leads, Tasks and classic
//! Notes (identical on every start and after `/_control/reset`), the field schema that
//! decides what a read returns and what a write may set, 18-character case-safe ids,
//! server-side query cursors, and the SOQL subset the query endpoint understands.
//!
//! The org has multi-currency enabled (corporate currency USD), so Account and Opportunity
//! carry `CurrencyIsoCode`. Compound `Name` (Contact, Lead, User), `IsClosed`/`IsWon`
//! (Opportunity, from the stage) and `IsClosed` (Task, from the status) are derived, as in
//! Salesforce; `LastActivityDate`, `IsConverted` and the `Converted*` fields are read-only.
//!
//! The SOQL subset, strict on purpose so a gateway bug is a 400 and not a silent success:
//! `SELECT item [, item]* FROM object [WHERE expr] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST]]
//! [LIMIT n]`. An item is a field, a parent field through a single-target lookup
//! (`Account.Name`), or a child sub-query over a child relationship
//! (`(SELECT ContactId FROM OpportunityContactRoles [WHERE ...] [ORDER BY ...] [LIMIT n])`,
//! answered as a nested `{totalSize, done, records}`, or null when there is no child row).
//! `expr` is conditions joined by AND or by OR (mixing them needs parentheses, as in SOQL),
//! `NOT` and parentheses; a condition is `f op literal` (`=`, `!=`, `<>`, `<`, `<=`, `>`,
//! `>=`), `f [NOT] IN (literal, ...)` or `f LIKE 'pattern'` (`%` and `_` wildcards, `\%` and
//! `\_` literal). Keywords and field names are case-insensitive (records come back with the
//! canonical names); text comparisons and LIKE are case-insensitive, as in SOQL. Long text
//! areas (`Description`, `Body`) cannot be filtered or sorted, as in Salesforce. String
//! literals take SOQL's escapes (`\'`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\%`, `\_`);
//! any other backslash sequence is `MALFORMED_QUERY`. Date fields take `YYYY-MM-DD`
//! literals, datetime fields ISO 8601 ones. Anything else (functions, OFFSET, GROUP BY,
//! date literals such as `TODAY`, semi-joins) is answered with `MALFORMED_QUERY`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const CONTACT_COUNT: u64 = 260;
pub(crate) const ACCOUNT_COUNT: u64 = 260;
pub(crate) const OPPORTUNITY_COUNT: u64 = 260;
pub(crate) const LEAD_COUNT: u64 = 260;
pub(crate) const TASK_COUNT: u64 = 260;
pub(crate) const NOTE_COUNT: u64 = 260;
pub(crate) const USER_COUNT: u64 = 24;
/// Salesforce keeps at most this many open query cursors per user and releases the oldest
/// when another one opens.
const CURSORS_PER_USER: usize = 10;
/// A query locator dies after this long without being used.
const CURSOR_IDLE: StdDuration = StdDuration::from_secs(15 * 60);
/// Id counters advance by this much per record so ids differ in more than the last digit.
const ID_STEP: u64 = 7_919;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SObject {
    Contact,
    Account,
    Opportunity,
    OpportunityContactRole,
    Lead,
    Task,
    Note,
    User,
    /// A custom object of the demo org: deal registrations partners file for a contact.
    DealRegistration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    Bool,
    Text,
    /// A long text area: readable, writable, never filtered or sorted on.
    LongText,
    Email,
    Phone,
    Url,
    Picklist,
    Int,
    Currency,
    Percent,
    Date,
    DateTime,
    /// A lookup id to one of `to` (several for polymorphic lookups such as `WhoId`);
    /// `relationship` is the name parent fields are reached through.
    Reference {
        to: &'static [SObject],
        relationship: &'static str,
    },
}

impl FieldType {
    fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::LongText
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
        )
    }
}

/// What a write may do with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    /// Set on create, fixed afterwards (a Note's `ParentId`, a role's `OpportunityId`).
    CreateOnly,
    ReadWrite,
}

#[derive(Debug)]
pub(crate) struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub access: Access,
}

impl FieldDef {
    pub(crate) fn writable(&self, creating: bool) -> bool {
        match self.access {
            Access::ReadOnly => false,
            Access::CreateOnly => creating,
            Access::ReadWrite => true,
        }
    }
}

const fn rw(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        name,
        ty,
        access: Access::ReadWrite,
    }
}

const fn ro(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        name,
        ty,
        access: Access::ReadOnly,
    }
}

const fn co(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        name,
        ty,
        access: Access::CreateOnly,
    }
}

const fn lookup(to: &'static [SObject], relationship: &'static str) -> FieldType {
    FieldType::Reference { to, relationship }
}

const TO_ACCOUNT: &[SObject] = &[SObject::Account];
const TO_CONTACT: &[SObject] = &[SObject::Contact];
const TO_OPPORTUNITY: &[SObject] = &[SObject::Opportunity];
const TO_USER: &[SObject] = &[SObject::User];
const TO_WHO: &[SObject] = &[SObject::Contact, SObject::Lead];
const TO_WHAT: &[SObject] = &[SObject::Account, SObject::Opportunity];
const TO_PARENT: &[SObject] = &[
    SObject::Account,
    SObject::Contact,
    SObject::Opportunity,
    SObject::Lead,
];

static CONTACT_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("AccountId", lookup(TO_ACCOUNT, "Account")),
    rw("LastName", FieldType::Text),
    rw("FirstName", FieldType::Text),
    ro("Name", FieldType::Text),
    rw("Title", FieldType::Text),
    rw("Department", FieldType::Text),
    rw("MailingStreet", FieldType::Text),
    rw("MailingCity", FieldType::Text),
    rw("MailingState", FieldType::Text),
    rw("MailingPostalCode", FieldType::Text),
    rw("MailingCountry", FieldType::Text),
    rw("Phone", FieldType::Phone),
    rw("Email", FieldType::Email),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    ro("LastActivityDate", FieldType::Date),
    rw("Customer_Tier__c", FieldType::Picklist),
    // An enterprise org's own fields: an industry picklist with custom values, and the
    // phone number the org actually uses (the seed's custom-field examples).
    rw("Industry__c", FieldType::Picklist),
    rw("Phone_Primary__c", FieldType::Phone),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static DEAL_REGISTRATION_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("Name", FieldType::Text),
    rw("Contact__c", lookup(TO_CONTACT, "Contact__r")),
    rw("Status__c", FieldType::Picklist),
    rw("Amount__c", FieldType::Currency),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static ACCOUNT_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("Name", FieldType::Text),
    rw("Website", FieldType::Url),
    rw("Industry", FieldType::Picklist),
    rw("NumberOfEmployees", FieldType::Int),
    rw("AnnualRevenue", FieldType::Currency),
    rw("CurrencyIsoCode", FieldType::Picklist),
    rw("Description", FieldType::LongText),
    rw("Phone", FieldType::Phone),
    rw("BillingStreet", FieldType::Text),
    rw("BillingCity", FieldType::Text),
    rw("BillingState", FieldType::Text),
    rw("BillingPostalCode", FieldType::Text),
    rw("BillingCountry", FieldType::Text),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    ro("LastActivityDate", FieldType::Date),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static OPPORTUNITY_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("AccountId", lookup(TO_ACCOUNT, "Account")),
    rw("Name", FieldType::Text),
    rw("Description", FieldType::LongText),
    rw("StageName", FieldType::Picklist),
    rw("Amount", FieldType::Currency),
    rw("Probability", FieldType::Percent),
    rw("CloseDate", FieldType::Date),
    ro("IsClosed", FieldType::Bool),
    ro("IsWon", FieldType::Bool),
    rw("CurrencyIsoCode", FieldType::Picklist),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    ro("LastActivityDate", FieldType::Date),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static CONTACT_ROLE_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    co("OpportunityId", lookup(TO_OPPORTUNITY, "Opportunity")),
    rw("ContactId", lookup(TO_CONTACT, "Contact")),
    rw("Role", FieldType::Picklist),
    rw("IsPrimary", FieldType::Bool),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static LEAD_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("LastName", FieldType::Text),
    rw("FirstName", FieldType::Text),
    ro("Name", FieldType::Text),
    rw("Title", FieldType::Text),
    rw("Company", FieldType::Text),
    rw("Street", FieldType::Text),
    rw("City", FieldType::Text),
    rw("State", FieldType::Text),
    rw("PostalCode", FieldType::Text),
    rw("Country", FieldType::Text),
    rw("Phone", FieldType::Phone),
    rw("Email", FieldType::Email),
    rw("LeadSource", FieldType::Picklist),
    rw("Status", FieldType::Picklist),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    ro("IsConverted", FieldType::Bool),
    ro("ConvertedDate", FieldType::Date),
    ro("ConvertedAccountId", lookup(TO_ACCOUNT, "ConvertedAccount")),
    ro("ConvertedContactId", lookup(TO_CONTACT, "ConvertedContact")),
    ro(
        "ConvertedOpportunityId",
        lookup(TO_OPPORTUNITY, "ConvertedOpportunity"),
    ),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static TASK_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    rw("WhoId", lookup(TO_WHO, "Who")),
    rw("WhatId", lookup(TO_WHAT, "What")),
    rw("Subject", FieldType::Text),
    rw("ActivityDate", FieldType::Date),
    rw("Status", FieldType::Picklist),
    rw("Priority", FieldType::Picklist),
    ro("IsClosed", FieldType::Bool),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    rw("Description", FieldType::LongText),
    ro("CompletedDateTime", FieldType::DateTime),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static NOTE_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("IsDeleted", FieldType::Bool),
    co("ParentId", lookup(TO_PARENT, "Parent")),
    rw("Title", FieldType::Text),
    rw("IsPrivate", FieldType::Bool),
    rw("Body", FieldType::LongText),
    rw("OwnerId", lookup(TO_USER, "Owner")),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

static USER_FIELDS: &[FieldDef] = &[
    ro("Id", FieldType::Id),
    ro("Username", FieldType::Text),
    rw("LastName", FieldType::Text),
    rw("FirstName", FieldType::Text),
    ro("Name", FieldType::Text),
    rw("Email", FieldType::Email),
    rw("IsActive", FieldType::Bool),
    ro("CreatedDate", FieldType::DateTime),
    ro("LastModifiedDate", FieldType::DateTime),
];

/// A child relationship a sub-query can go through: rows of `child` whose `field` holds the
/// parent's id.
#[derive(Debug)]
pub(crate) struct ChildRel {
    pub parent: SObject,
    pub name: &'static str,
    pub child: SObject,
    pub field: &'static str,
}

static CHILD_RELATIONSHIPS: [ChildRel; 6] = [
    ChildRel {
        parent: SObject::Contact,
        name: "Deal_Registrations__r",
        child: SObject::DealRegistration,
        field: "Contact__c",
    },
    ChildRel {
        parent: SObject::Opportunity,
        name: "OpportunityContactRoles",
        child: SObject::OpportunityContactRole,
        field: "OpportunityId",
    },
    ChildRel {
        parent: SObject::Contact,
        name: "OpportunityContactRoles",
        child: SObject::OpportunityContactRole,
        field: "ContactId",
    },
    ChildRel {
        parent: SObject::Account,
        name: "Contacts",
        child: SObject::Contact,
        field: "AccountId",
    },
    ChildRel {
        parent: SObject::Account,
        name: "Opportunities",
        child: SObject::Opportunity,
        field: "AccountId",
    },
    ChildRel {
        parent: SObject::Account,
        name: "Notes",
        child: SObject::Note,
        field: "ParentId",
    },
];

fn child_relationship(parent: SObject, name: &str) -> Option<&'static ChildRel> {
    CHILD_RELATIONSHIPS
        .iter()
        .find(|r| r.parent == parent && r.name.eq_ignore_ascii_case(name))
}

/// Deleting a record deletes the rows that hang off it, as Salesforce does: an Account its
/// Contacts and Opportunities, an Opportunity or a Contact its contact roles, any parent
/// its Notes and its Tasks.
const CASCADES: [(SObject, &str); 8] = [
    (SObject::DealRegistration, "Contact__c"),
    (SObject::Contact, "AccountId"),
    (SObject::Opportunity, "AccountId"),
    (SObject::OpportunityContactRole, "OpportunityId"),
    (SObject::OpportunityContactRole, "ContactId"),
    (SObject::Note, "ParentId"),
    (SObject::Task, "WhatId"),
    (SObject::Task, "WhoId"),
];

/// The standard opportunity stages: name, default probability (percent), closed, won.
pub(crate) const STAGES: [(&str, f64, bool, bool); 10] = [
    ("Prospecting", 10.0, false, false),
    ("Qualification", 10.0, false, false),
    ("Needs Analysis", 20.0, false, false),
    ("Value Proposition", 50.0, false, false),
    ("Id. Decision Makers", 60.0, false, false),
    ("Perception Analysis", 70.0, false, false),
    ("Proposal/Price Quote", 75.0, false, false),
    ("Negotiation/Review", 90.0, false, false),
    ("Closed Won", 100.0, true, true),
    ("Closed Lost", 0.0, true, false),
];

fn stage(name: &str) -> Option<(&'static str, f64, bool, bool)> {
    STAGES
        .iter()
        .copied()
        .find(|s| s.0.eq_ignore_ascii_case(name))
}

/// Task statuses; only `Completed` is a closed status in a default org.
pub(crate) const TASK_STATUSES: [&str; 5] = [
    "Not Started",
    "In Progress",
    "Completed",
    "Waiting on someone else",
    "Deferred",
];

impl SObject {
    pub(crate) const ALL: [SObject; 9] = [
        SObject::DealRegistration,
        SObject::Contact,
        SObject::Account,
        SObject::Opportunity,
        SObject::OpportunityContactRole,
        SObject::Lead,
        SObject::Task,
        SObject::Note,
        SObject::User,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            SObject::Contact => "Contact",
            SObject::Account => "Account",
            SObject::Opportunity => "Opportunity",
            SObject::OpportunityContactRole => "OpportunityContactRole",
            SObject::Lead => "Lead",
            SObject::Task => "Task",
            SObject::Note => "Note",
            SObject::User => "User",
            SObject::DealRegistration => "Deal_Registration__c",
        }
    }

    /// sObject names are case-insensitive in URLs and SOQL.
    pub(crate) fn from_name(name: &str) -> Option<SObject> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn key_prefix(self) -> &'static str {
        match self {
            SObject::Contact => "003",
            SObject::Account => "001",
            SObject::Opportunity => "006",
            SObject::OpportunityContactRole => "00K",
            SObject::Lead => "00Q",
            SObject::Task => "00T",
            SObject::Note => "002",
            SObject::User => "005",
            SObject::DealRegistration => "a0D",
        }
    }

    /// Where this type's id counter starts.
    fn id_base(self) -> u64 {
        match self {
            SObject::Contact => 1_100_000_000,
            SObject::Account => 2_200_000_000,
            SObject::Opportunity => 3_300_000_000,
            SObject::OpportunityContactRole => 4_400_000_000,
            SObject::Lead => 5_500_000_000,
            SObject::Task => 6_600_000_000,
            SObject::Note => 7_700_000_000,
            SObject::User => 8_800_000_000,
            SObject::DealRegistration => 9_900_000_000,
        }
    }

    pub(crate) fn fields(self) -> &'static [FieldDef] {
        match self {
            SObject::Contact => CONTACT_FIELDS,
            SObject::Account => ACCOUNT_FIELDS,
            SObject::Opportunity => OPPORTUNITY_FIELDS,
            SObject::OpportunityContactRole => CONTACT_ROLE_FIELDS,
            SObject::Lead => LEAD_FIELDS,
            SObject::Task => TASK_FIELDS,
            SObject::Note => NOTE_FIELDS,
            SObject::User => USER_FIELDS,
            SObject::DealRegistration => DEAL_REGISTRATION_FIELDS,
        }
    }

    pub(crate) fn field(self, name: &str) -> Option<&'static FieldDef> {
        self.fields()
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The fields a create must carry (after the defaults Salesforce fills in).
    pub(crate) fn required_fields(self) -> &'static [&'static str] {
        match self {
            SObject::Contact | SObject::User => &["LastName"],
            SObject::Account => &["Name"],
            SObject::Opportunity => &["Name", "StageName", "CloseDate"],
            SObject::OpportunityContactRole => &["OpportunityId", "ContactId"],
            SObject::Lead => &["LastName", "Company"],
            SObject::Task => &[],
            SObject::Note => &["ParentId", "Title"],
            SObject::DealRegistration => &["Name"],
        }
    }

    /// Whether the type has a recycle bin (`IsDeleted`); Users are deactivated, never
    /// deleted.
    pub(crate) fn deletable(self) -> bool {
        self != SObject::User
    }

    /// Whether rows can be created through the API; the org has no spare user licence.
    pub(crate) fn creatable(self) -> bool {
        self != SObject::User
    }
}

// ---------------------------------------------------------------------------------------
// Ids

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 3-character case-safe suffix: one character per 5-character chunk, whose bits say
/// which characters of the chunk are upper case.
fn case_suffix(id15: &[u8]) -> String {
    let mut out = String::with_capacity(3);
    for chunk in id15.chunks(5).take(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | (1 << i));
        out.push(char::from(SUFFIX_ALPHABET[bits & 31]));
    }
    out
}

/// Key prefix, a fixed pod part and a base-62 counter: 15 characters, then the suffix.
pub(crate) fn make_id(sobject: SObject, n: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[usize::try_from(rest % 62).unwrap_or(0)];
        rest /= 62;
    }
    let mut id15 = Vec::with_capacity(15);
    id15.extend_from_slice(sobject.key_prefix().as_bytes());
    id15.extend_from_slice(b"Sb0");
    id15.extend_from_slice(&digits);
    let suffix = case_suffix(&id15);
    format!("{}{suffix}", String::from_utf8_lossy(&id15))
}

/// The id of the `i`-th seeded record of a type.
pub(crate) fn seed_id(sobject: SObject, i: u64) -> String {
    make_id(sobject, sobject.id_base() + i * ID_STEP)
}

/// Accepts a 15-character (case-sensitive) or 18-character (case-safe) id and returns the
/// 18-character form; an 18-character id has its case repaired from the suffix, as
/// Salesforce does. None if it is not id-shaped.
pub(crate) fn normalize_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let bytes = raw.as_bytes();
    let mut id15: Vec<u8> = bytes.get(..15)?.to_vec();
    match bytes.len() {
        15 => {}
        18 => {
            for (chunk, &code) in bytes[15..].iter().enumerate() {
                let bits = SUFFIX_ALPHABET
                    .iter()
                    .position(|c| *c == code.to_ascii_uppercase())?;
                for i in 0..5 {
                    let c = &mut id15[chunk * 5 + i];
                    *c = if bits & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
            }
        }
        _ => return None,
    }
    let suffix = case_suffix(&id15);
    Some(format!("{}{suffix}", String::from_utf8(id15).ok()?))
}

/// Which sObject an id belongs to, by key prefix.
pub(crate) fn sobject_of(id: &str) -> Option<SObject> {
    SObject::ALL
        .into_iter()
        .find(|t| id.starts_with(t.key_prefix()))
}

// ---------------------------------------------------------------------------------------
// Records

/// `2024-05-01T08:00:00.000+0000`, Salesforce's REST datetime format.
pub(crate) fn sf_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn parse_sf_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").ok()
}

/// `2024-05-01`, Salesforce's date format.
pub(crate) fn sf_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_sf_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: String,
    /// Canonical field name to JSON value; absent means null. Id, IsDeleted and the derived
    /// fields (compound Name, IsClosed, IsWon) are computed, never stored.
    pub values: BTreeMap<&'static str, Value>,
    pub deleted: bool,
}

impl Record {
    pub(crate) fn value(&self, sobject: SObject, field: &FieldDef) -> Value {
        match (sobject, field.name) {
            (_, "Id") => json!(self.id),
            (_, "IsDeleted") => json!(self.deleted),
            (SObject::Contact | SObject::Lead | SObject::User, "Name") => {
                let parts: Vec<&str> = ["FirstName", "LastName"]
                    .iter()
                    .filter_map(|k| self.values.get(k).and_then(Value::as_str))
                    .collect();
                if parts.is_empty() {
                    Value::Null
                } else {
                    json!(parts.join(" "))
                }
            }
            (SObject::Opportunity, "IsClosed") => {
                json!(self.text("StageName").and_then(stage).is_some_and(|s| s.2))
            }
            (SObject::Opportunity, "IsWon") => {
                json!(self.text("StageName").and_then(stage).is_some_and(|s| s.3))
            }
            (SObject::Task, "IsClosed") => json!(self.task_closed()),
            (_, name) => self.values.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    pub(crate) fn task_closed(&self) -> bool {
        self.text("Status")
            .is_some_and(|s| s.eq_ignore_ascii_case("Completed"))
    }
}

/// A selected field: one of the queried object or of a parent reached through a
/// single-target lookup (`Account.Name` on Contact).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldRef {
    Direct(&'static FieldDef),
    Parent {
        via: &'static FieldDef,
        relationship: &'static str,
        target: SObject,
        field: &'static FieldDef,
    },
}

impl FieldRef {
    fn ty(&self) -> FieldType {
        match self {
            FieldRef::Direct(f) | FieldRef::Parent { field: f, .. } => f.ty,
        }
    }

    fn path(&self) -> String {
        match self {
            FieldRef::Direct(f) => f.name.to_owned(),
            FieldRef::Parent {
                relationship,
                field,
                ..
            } => format!("{relationship}.{}", field.name),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            FieldRef::Direct(f) | FieldRef::Parent { field: f, .. } => f.name,
        }
    }
}

/// A selected column: a field, or a child sub-query.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    Field(FieldRef),
    Children(ChildQuery),
}

impl Column {
    fn path(&self) -> String {
        match self {
            Column::Field(f) => f.path(),
            Column::Children(c) => c.rel.name.to_owned(),
        }
    }

    /// The direct field this column selects, if it is one.
    pub(crate) fn direct(&self) -> Option<&'static FieldDef> {
        match self {
            Column::Field(FieldRef::Direct(f)) => Some(f),
            _ => None,
        }
    }
}

/// `(SELECT ... FROM <child relationship> ...)` inside a select list.
#[derive(Clone, Debug)]
pub(crate) struct ChildQuery {
    rel: &'static ChildRel,
    columns: Vec<Column>,
    filter: Option<Cond>,
    order: Option<OrderBy>,
    limit: Option<usize>,
}

/// Server-side state behind a query locator: the result set, materialised when the query
/// ran (as Salesforce's cursor is).
#[derive(Debug)]
pub(crate) struct Cursor {
    pub owner: String,
    pub rows: Vec<Value>,
    pub batch_size: usize,
    last_used: Instant,
    opened: u64,
}

static EMPTY_TABLE: BTreeMap<String, Record> = BTreeMap::new();

#[derive(Debug)]
pub(crate) struct Store {
    tables: HashMap<SObject, BTreeMap<String, Record>>,
    next_ids: HashMap<SObject, u64>,
    cursors: HashMap<String, Cursor>,
    cursors_opened: u64,
}

impl Store {
    pub(crate) fn table(&self, sobject: SObject) -> &BTreeMap<String, Record> {
        self.tables.get(&sobject).unwrap_or(&EMPTY_TABLE)
    }

    pub(crate) fn table_mut(&mut self, sobject: SObject) -> &mut BTreeMap<String, Record> {
        self.tables.entry(sobject).or_default()
    }

    /// A record that exists and is not in the recycle bin.
    pub(crate) fn live(&self, sobject: SObject, id: &str) -> Option<&Record> {
        self.table(sobject).get(id).filter(|r| !r.deleted)
    }

    /// A live record of any type, by id prefix.
    #[cfg(test)]
    pub(crate) fn live_any(&self, id: &str) -> Option<&Record> {
        self.live(sobject_of(id)?, id)
    }

    /// Ids are never reused and always sort after every existing id of the type.
    pub(crate) fn allocate_id(&mut self, sobject: SObject) -> String {
        let counter = self.next_ids.entry(sobject).or_insert(sobject.id_base());
        let n = *counter;
        *counter += ID_STEP;
        make_id(sobject, n)
    }

    /// The user new records belong to when the request names no owner: the org's
    /// integration user, whose session the sandbox's tokens stand for.
    pub(crate) fn default_owner() -> String {
        seed_id(SObject::User, 0)
    }

    /// Soft-deletes a record and what hangs off it (see [`CASCADES`]). Returns false when
    /// the record was already deleted.
    pub(crate) fn delete(&mut self, sobject: SObject, id: &str) -> bool {
        let Some(record) = self.table_mut(sobject).get_mut(id) else {
            return false;
        };
        if record.deleted {
            return false;
        }
        record.deleted = true;
        for (child, field) in CASCADES {
            let doomed: Vec<String> = self
                .table(child)
                .values()
                .filter(|r| !r.deleted && r.text(field) == Some(id))
                .map(|r| r.id.clone())
                .collect();
            for child_id in doomed {
                self.delete(child, &child_id);
            }
        }
        true
    }

    pub(crate) fn value_of(&self, sobject: SObject, record: &Record, column: &FieldRef) -> Value {
        match column {
            FieldRef::Direct(f) => record.value(sobject, f),
            FieldRef::Parent {
                via, target, field, ..
            } => record
                .value(sobject, via)
                .as_str()
                .and_then(|id| self.live(*target, id))
                .map_or(Value::Null, |parent| parent.value(*target, field)),
        }
    }

    /// `attributes` first, then the columns in the order asked; parent columns are
    /// grouped in a nested object with its own `attributes` (null when there is no parent);
    /// a child sub-query is a nested query result (null when it has no row).
    pub(crate) fn render(
        &self,
        sobject: SObject,
        record: &Record,
        columns: &[Column],
        api_base: &str,
    ) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            attributes(sobject, &record.id, api_base),
        );
        for column in columns {
            match column {
                Column::Field(FieldRef::Direct(f)) => {
                    out.insert(f.name.into(), record.value(sobject, f));
                }
                Column::Field(FieldRef::Parent {
                    via,
                    relationship,
                    target,
                    field,
                }) => {
                    let parent = record
                        .value(sobject, via)
                        .as_str()
                        .and_then(|id| self.live(*target, id));
                    let Some(parent) = parent else {
                        out.insert((*relationship).into(), Value::Null);
                        continue;
                    };
                    let slot = out.entry(*relationship).or_insert_with(
                        || json!({ "attributes": attributes(*target, &parent.id, api_base) }),
                    );
                    if let Value::Object(nested) = slot {
                        nested.insert(field.name.into(), parent.value(*target, field));
                    }
                }
                Column::Children(child) => {
                    let rows = self.children(record, child);
                    let value = if rows.is_empty() {
                        Value::Null
                    } else {
                        let records: Vec<Value> = rows
                            .iter()
                            .map(|r| self.render(child.rel.child, r, &child.columns, api_base))
                            .collect();
                        json!({ "totalSize": records.len(), "done": true, "records": records })
                    };
                    out.insert(child.rel.name.into(), value);
                }
            }
        }
        Value::Object(out)
    }

    /// Every field of the schema, as a GET on the record without `fields=` returns it.
    pub(crate) fn all_columns(sobject: SObject) -> Vec<Column> {
        sobject
            .fields()
            .iter()
            .map(|f| Column::Field(FieldRef::Direct(f)))
            .collect()
    }

    fn holds(&self, sobject: SObject, record: &Record, cond: &Cond) -> bool {
        match cond {
            Cond::Leaf(f) => f.matches(&self.value_of(sobject, record, &f.column), f.column.ty()),
            Cond::All(items) => items.iter().all(|c| self.holds(sobject, record, c)),
            Cond::Any(items) => items.iter().any(|c| self.holds(sobject, record, c)),
            Cond::Not(inner) => !self.holds(sobject, record, inner),
        }
    }

    /// Filters, orders and limits rows of one type.
    fn select<'a>(
        &'a self,
        sobject: SObject,
        rows: impl Iterator<Item = &'a Record>,
        filter: Option<&Cond>,
        order: Option<&OrderBy>,
        limit: Option<usize>,
    ) -> Vec<&'a Record> {
        let mut rows: Vec<&Record> = rows
            .filter(|r| filter.is_none_or(|c| self.holds(sobject, r, c)))
            .collect();
        if let Some(order) = order {
            let ty = order.column.ty();
            rows.sort_by(|a, b| {
                let va = self.value_of(sobject, a, &order.column);
                let vb = self.value_of(sobject, b, &order.column);
                let ordering = match (va.is_null(), vb.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) if order.nulls_first => Ordering::Less,
                    (true, false) => Ordering::Greater,
                    (false, true) if order.nulls_first => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => {
                        let o = compare(&va, &vb, ty);
                        if order.descending { o.reverse() } else { o }
                    }
                };
                // Ties keep Id order, so paging is stable.
                ordering.then_with(|| a.id.cmp(&b.id))
            });
        }
        if let Some(limit) = limit {
            rows.truncate(limit);
        }
        rows
    }

    pub(crate) fn run(&self, query: &Query, include_deleted: bool) -> Vec<&Record> {
        self.select(
            query.sobject,
            self.table(query.sobject)
                .values()
                .filter(|r| include_deleted || !r.deleted),
            query.filter.as_ref(),
            query.order.as_ref(),
            query.limit,
        )
    }

    /// The live child rows of `parent` a sub-query selects.
    fn children(&self, parent: &Record, child: &ChildQuery) -> Vec<&Record> {
        let field = child.rel.field;
        self.select(
            child.rel.child,
            self.table(child.rel.child)
                .values()
                .filter(|r| !r.deleted && r.text(field) == Some(parent.id.as_str())),
            child.filter.as_ref(),
            child.order.as_ref(),
            child.limit,
        )
    }

    // -- cursors ------------------------------------------------------------------------

    /// Opens a cursor for `owner`, releasing that owner's oldest past the per-user cap,
    /// and returns its query id (`01g...`, 18 characters).
    pub(crate) fn open_cursor(
        &mut self,
        owner: &str,
        rows: Vec<Value>,
        batch_size: usize,
    ) -> String {
        self.expire_cursors();
        let mut mine: Vec<(u64, String)> = self
            .cursors
            .iter()
            .filter(|(_, c)| c.owner == owner)
            .map(|(id, c)| (c.opened, id.clone()))
            .collect();
        mine.sort();
        let excess = (mine.len() + 1).saturating_sub(CURSORS_PER_USER);
        for (_, id) in mine.into_iter().take(excess) {
            self.cursors.remove(&id);
        }
        self.cursors_opened += 1;
        let id = format!("01gSANDBOX{:08}", self.cursors_opened);
        self.cursors.insert(
            id.clone(),
            Cursor {
                owner: owner.to_owned(),
                rows,
                batch_size,
                last_used: Instant::now(),
                opened: self.cursors_opened,
            },
        );
        id
    }

    /// The cursor behind a query id, if it is still open for this owner; using it keeps
    /// it alive.
    pub(crate) fn cursor(&mut self, owner: &str, query_id: &str) -> Option<&Cursor> {
        self.expire_cursors();
        let cursor = self
            .cursors
            .get_mut(query_id)
            .filter(|c| c.owner == owner)?;
        cursor.last_used = Instant::now();
        Some(cursor)
    }

    fn expire_cursors(&mut self) {
        let now = Instant::now();
        self.cursors
            .retain(|_, c| now.duration_since(c.last_used) < CURSOR_IDLE);
    }

    pub(crate) fn seed() -> Store {
        let mut tables: HashMap<SObject, BTreeMap<String, Record>> = HashMap::new();
        let users: BTreeMap<String, Record> = (0..USER_COUNT).map(seed_user).map(keyed).collect();
        let owners: Vec<String> = users
            .values()
            .filter(|u| u.values.get("IsActive") == Some(&json!(true)))
            .map(|u| u.id.clone())
            .collect();
        let accounts: BTreeMap<String, Record> = (0..ACCOUNT_COUNT)
            .map(|j| seed_account(j, &owners))
            .map(keyed)
            .collect();
        let contacts: BTreeMap<String, Record> = (0..CONTACT_COUNT)
            .map(|i| seed_contact(i, &accounts, &owners))
            .map(keyed)
            .collect();
        let opportunities: BTreeMap<String, Record> = (0..OPPORTUNITY_COUNT)
            .map(|k| seed_opportunity(k, &accounts, &owners))
            .map(keyed)
            .collect();
        let roles = seed_contact_roles(&opportunities, &contacts);
        let role_count = u64::try_from(roles.len()).unwrap_or(0);
        let leads: BTreeMap<String, Record> = (0..LEAD_COUNT)
            .map(|l| seed_lead(l, &contacts, &opportunities, &owners))
            .map(keyed)
            .collect();
        let tasks: BTreeMap<String, Record> = (0..TASK_COUNT)
            .map(|t| seed_task(t, &contacts, &owners))
            .map(keyed)
            .collect();
        let notes: BTreeMap<String, Record> = (0..NOTE_COUNT)
            .map(|n| seed_note(n, &owners))
            .map(keyed)
            .collect();
        let registrations: BTreeMap<String, Record> = (0..DEAL_REGISTRATION_COUNT)
            .map(seed_deal_registration)
            .map(keyed)
            .collect();
        let mut next_ids = HashMap::new();
        for (sobject, count) in [
            (SObject::DealRegistration, DEAL_REGISTRATION_COUNT),
            (SObject::User, USER_COUNT),
            (SObject::Account, ACCOUNT_COUNT),
            (SObject::Contact, CONTACT_COUNT),
            (SObject::Opportunity, OPPORTUNITY_COUNT),
            (SObject::OpportunityContactRole, role_count),
            (SObject::Lead, LEAD_COUNT),
            (SObject::Task, TASK_COUNT),
            (SObject::Note, NOTE_COUNT),
        ] {
            next_ids.insert(sobject, sobject.id_base() + count * ID_STEP);
        }
        tables.insert(SObject::User, users);
        tables.insert(SObject::Account, accounts);
        tables.insert(SObject::Contact, contacts);
        tables.insert(SObject::Opportunity, opportunities);
        tables.insert(SObject::OpportunityContactRole, roles);
        tables.insert(SObject::Lead, leads);
        tables.insert(SObject::Task, tasks);
        tables.insert(SObject::Note, notes);
        tables.insert(SObject::DealRegistration, registrations);
        Store {
            tables,
            next_ids,
            cursors: HashMap::new(),
            cursors_opened: 0,
        }
    }
}

fn keyed(r: Record) -> (String, Record) {
    (r.id.clone(), r)
}

fn attributes(sobject: SObject, id: &str, api_base: &str) -> Value {
    json!({
        "type": sobject.name(),
        "url": format!("{api_base}/sobjects/{}/{id}", sobject.name()),
    })
}

/// Orders two non-null values of one field type.
fn compare(a: &Value, b: &Value, ty: FieldType) -> Ordering {
    match ty {
        FieldType::Int | FieldType::Currency | FieldType::Percent => {
            let x = a.as_f64().unwrap_or(0.0);
            let y = b.as_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        FieldType::DateTime => {
            let x = a.as_str().and_then(parse_sf_datetime);
            let y = b.as_str().and_then(parse_sf_datetime);
            x.cmp(&y)
        }
        FieldType::Date => {
            let x = a.as_str().and_then(parse_sf_date);
            let y = b.as_str().and_then(parse_sf_date);
            x.cmp(&y)
        }
        FieldType::Bool => a.as_bool().cmp(&b.as_bool()),
        FieldType::Id | FieldType::Reference { .. } => a.as_str().cmp(&b.as_str()),
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Picklist => {
            let x = a.as_str().unwrap_or("").to_lowercase();
            let y = b.as_str().unwrap_or("").to_lowercase();
            x.cmp(&y)
        }
    }
}

// ---------------------------------------------------------------------------------------
// SOQL

#[derive(Debug)]
pub(crate) struct Query {
    pub sobject: SObject,
    pub columns: Vec<Column>,
    filter: Option<Cond>,
    order: Option<OrderBy>,
    limit: Option<usize>,
}

#[derive(Clone, Debug)]
struct OrderBy {
    column: FieldRef,
    descending: bool,
    nulls_first: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Like,
}

/// One piece of a LIKE pattern.
#[derive(Clone, Debug, PartialEq)]
enum PatTok {
    /// `%`: any run of characters.
    Any,
    /// `_`: exactly one character.
    One,
    Char(char),
}

#[derive(Clone, Debug)]
enum Literal {
    Null,
    Bool(bool),
    Text(String),
    Number(f64),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    Pattern(Vec<PatTok>),
}

#[derive(Clone, Debug)]
struct Filter {
    column: FieldRef,
    op: Op,
    values: Vec<Literal>,
}

/// A WHERE clause: conditions joined by AND, OR and NOT.
#[derive(Clone, Debug)]
enum Cond {
    Leaf(Filter),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

impl Filter {
    fn matches(&self, value: &Value, ty: FieldType) -> bool {
        match self.op {
            Op::In => self.values.iter().any(|l| equals(value, l, ty)),
            Op::NotIn => !self.values.iter().any(|l| equals(value, l, ty)),
            Op::Eq => self.values.iter().all(|l| equals(value, l, ty)),
            Op::Ne => !self.values.iter().all(|l| equals(value, l, ty)),
            Op::Like => self.values.iter().all(|l| match (l, value.as_str()) {
                (Literal::Pattern(p), Some(text)) => like(text, p),
                _ => false,
            }),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => self.values.iter().all(|l| {
                let Some(o) = order_against(value, l, ty) else {
                    return false;
                };
                match self.op {
                    Op::Lt => o == Ordering::Less,
                    Op::Le => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }
            }),
        }
    }
}

/// Case-insensitive LIKE matching.
fn like(text: &str, pattern: &[PatTok]) -> bool {
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let pattern: Vec<PatTok> = pattern
        .iter()
        .map(|p| match p {
            PatTok::Char(c) => {
                let lower: Vec<char> = c.to_lowercase().collect();
                match lower.as_slice() {
                    [one] => PatTok::Char(*one),
                    _ => PatTok::Char(*c),
                }
            }
            other => other.clone(),
        })
        .collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(PatTok::One) => {
                t += 1;
                p += 1;
            }
            Some(PatTok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(PatTok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == PatTok::Any)
}

fn equals(value: &Value, literal: &Literal, ty: FieldType) -> bool {
    match literal {
        Literal::Null => value.is_null(),
        _ if value.is_null() => false,
        _ => order_against(value, literal, ty) == Some(Ordering::Equal),
    }
}

/// How a non-null record value orders against a literal; None when either is null.
fn order_against(value: &Value, literal: &Literal, ty: FieldType) -> Option<Ordering> {
    if value.is_null() {
        return None;
    }
    match literal {
        Literal::Null | Literal::Pattern(_) => None,
        Literal::Bool(b) => Some(value.as_bool()?.cmp(b)),
        Literal::Number(n) => value.as_f64()?.partial_cmp(n),
        Literal::Date(d) => Some(parse_sf_date(value.as_str()?)?.cmp(d)),
        Literal::DateTime(t) => Some(parse_sf_datetime(value.as_str()?)?.cmp(t)),
        Literal::Text(s) => match ty {
            FieldType::Id | FieldType::Reference { .. } => Some(value.as_str()?.cmp(s.as_str())),
            _ => Some(value.as_str()?.to_lowercase().cmp(&s.to_lowercase())),
        },
    }
}

/// A SOQL rejection: `errorCode` and the message, which for positioned errors carries
/// Salesforce's excerpt (`\n<query>\n   ^\nERROR at Row:1:Column:N\n<text>`).
#[derive(Debug)]
pub(crate) struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

pub(crate) const NO_SUCH_COLUMN_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";

const NO_SUCH_RELATIONSHIP_HINT: &str = "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    /// A quoted string: its value, and the same as a LIKE pattern (where `%` and `_` are
    /// wildcards unless escaped).
    Text(String, Vec<PatTok>),
    Literal(String),
    Comma,
    Open,
    Close,
    Op(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// Character offset in the query.
    pos: usize,
}

impl Token {
    fn display(&self) -> String {
        match &self.tok {
            Tok::Word(w) | Tok::Literal(w) => w.clone(),
            Tok::Text(t, _) => format!("'{t}'"),
            Tok::Comma => ",".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Op(op) => (*op).into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

struct Parser<'q> {
    query: &'q str,
    tokens: Vec<Token>,
    at: usize,
}

/// What one SELECT (top level or sub-query) parses to.
struct Parts {
    sobject: SObject,
    rel: Option<&'static ChildRel>,
    columns: Vec<Column>,
    filter: Option<Cond>,
    order: Option<OrderBy>,
    limit: Option<usize>,
}

/// An entry of a select list before FROM is known.
enum Item {
    Field(String, usize),
    /// A sub-query: the token indexes of its parentheses.
    Sub(usize, usize),
}

pub(crate) fn parse_soql(query: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(query)?;
    let parts = Parser {
        query,
        tokens,
        at: 0,
    }
    .select(None)?;
    Ok(Query {
        sobject: parts.sobject,
        columns: parts.columns,
        filter: parts.filter,
        order: parts.order,
        limit: parts.limit,
    })
}

fn positioned(query: &str, pos: usize, code: &'static str, text: &str) -> SoqlError {
    // Row and column are 1-based; the excerpt is the offending line with a caret under it.
    let before: String = query.chars().take(pos).collect();
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = query.lines().nth(row - 1).unwrap_or("");
    let caret = " ".repeat(column - 1);
    SoqlError {
        code,
        message: format!("\n{line}\n{caret}^\nERROR at Row:{row}:Column:{column}\n{text}"),
    }
}

fn tokenize(query: &str) -> Result<Vec<Token>, SoqlError> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.'))
            {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else if c.is_ascii_digit()
            || (matches!(c, '-' | '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '-' | ':' | '+' | '.'))
            {
                i += 1;
            }
            Tok::Literal(chars[start..i].iter().collect())
        } else if c == '\'' {
            i += 1;
            let mut text = String::new();
            let mut pattern = Vec::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(positioned(
                            query,
                            start,
                            "MALFORMED_QUERY",
                            "unexpected token: <EOF>",
                        ));
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let escaped = match chars.get(i + 1) {
                            Some('n' | 'N') => '\n',
                            Some('t' | 'T') => '\t',
                            Some('r' | 'R') => '\r',
                            Some('b' | 'B') => '\u{8}',
                            Some('f' | 'F') => '\u{c}',
                            Some(c @ ('\'' | '"' | '\\' | '%' | '_')) => *c,
                            other => {
                                let shown = other.map_or(String::new(), char::to_string);
                                return Err(positioned(
                                    query,
                                    i,
                                    "MALFORMED_QUERY",
                                    &format!(
                                        "Invalid string literal: illegal escape sequence '\\{shown}'"
                                    ),
                                ));
                            }
                        };
                        text.push(escaped);
                        pattern.push(PatTok::Char(escaped));
                        i += 2;
                    }
                    Some(other) => {
                        text.push(*other);
                        pattern.push(match other {
                            '%' => PatTok::Any,
                            '_' => PatTok::One,
                            c => PatTok::Char(*c),
                        });
                        i += 1;
                    }
                }
            }
            Tok::Text(text, pattern)
        } else {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                (',', _) => (Tok::Comma, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                ('!', Some('=')) => (Tok::Op("!="), 2),
                ('<', Some('>')) => (Tok::Op("<>"), 2),
                ('<', Some('=')) => (Tok::Op("<="), 2),
                ('>', Some('=')) => (Tok::Op(">="), 2),
                ('<', _) => (Tok::Op("<"), 1),
                ('>', _) => (Tok::Op(">"), 1),
                ('=', _) => (Tok::Op("="), 1),
                _ => {
                    return Err(positioned(
                        query,
                        start,
                        "MALFORMED_QUERY",
                        &format!("unexpected token: '{c}'"),
                    ));
                }
            };
            i += len;
            tok
        };
        tokens.push(Token { tok, pos: start });
    }
    Ok(tokens)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn end_pos(&self) -> usize {
        self.query.chars().count()
    }

    fn unexpected(&self, token: Option<&Token>) -> SoqlError {
        match token {
            Some(t) => positioned(
                self.query,
                t.pos,
                "MALFORMED_QUERY",
                &format!("unexpected token: '{}'", t.display()),
            ),
            None => positioned(
                self.query,
                self.end_pos(),
                "MALFORMED_QUERY",
                "unexpected token: <EOF>",
            ),
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), SoqlError> {
        match self.next() {
            Some(t) if t.is_keyword(keyword) => Ok(()),
            other => Err(self.unexpected(other.as_ref())),
        }
    }

    fn accept(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(keyword)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Result<(String, usize), SoqlError> {
        match self.next() {
            Some(Token {
                tok: Tok::Word(w),
                pos,
            }) => Ok((w, pos)),
            other => Err(self.unexpected(other.as_ref())),
        }
    }

    fn column(&self, sobject: SObject, name: &str, pos: usize) -> Result<FieldRef, SoqlError> {
        let no_column = |shown: &str| {
            positioned(
                self.query,
                pos,
                "INVALID_FIELD",
                &format!(
                    "No such column '{shown}' on entity '{}'. {NO_SUCH_COLUMN_HINT}",
                    sobject.name()
                ),
            )
        };
        let Some((relationship, rest)) = name.split_once('.') else {
            return sobject
                .field(name)
                .map(FieldRef::Direct)
                .ok_or_else(|| no_column(name));
        };
        // Only single-target lookups are followed; polymorphic ones (Who, What, Parent)
        // would need TYPEOF, which the subset does not have.
        let parent = sobject.fields().iter().find_map(|f| match f.ty {
            FieldType::Reference {
                to: [target],
                relationship: r,
            } if r.eq_ignore_ascii_case(relationship) => Some((f, *target, r)),
            _ => None,
        });
        let Some((via, target, canonical)) = parent else {
            return Err(positioned(
                self.query,
                pos,
                "INVALID_FIELD",
                &format!(
                    "Didn't understand relationship '{relationship}' in field path. {NO_SUCH_RELATIONSHIP_HINT}"
                ),
            ));
        };
        let field = target.field(rest).ok_or_else(|| {
            positioned(
                self.query,
                pos,
                "INVALID_FIELD",
                &format!(
                    "No such column '{rest}' on entity '{}'. {NO_SUCH_COLUMN_HINT}",
                    target.name()
                ),
            )
        })?;
        Ok(FieldRef::Parent {
            via,
            relationship: canonical,
            target,
            field,
        })
    }

    /// A field in WHERE or ORDER BY: long text areas cannot be used there.
    fn usable_column(
        &self,
        sobject: SObject,
        name: &str,
        pos: usize,
        what: &str,
    ) -> Result<FieldRef, SoqlError> {
        let column = self.column(sobject, name, pos)?;
        if column.ty() == FieldType::LongText {
            return Err(positioned(
                self.query,
                pos,
                "INVALID_FIELD",
                &format!(
                    "field '{}' can not be {what} in a query call",
                    column.name()
                ),
            ));
        }
        Ok(column)
    }

    fn select_item(&mut self, allow_sub: bool) -> Result<Item, SoqlError> {
        match self.peek() {
            Some(Token { tok: Tok::Open, .. }) if allow_sub => {
                let start = self.at;
                let mut depth = 0usize;
                for (i, t) in self.tokens.iter().enumerate().skip(start) {
                    match t.tok {
                        Tok::Open => depth += 1,
                        Tok::Close => {
                            depth -= 1;
                            if depth == 0 {
                                self.at = i + 1;
                                return Ok(Item::Sub(start, i));
                            }
                        }
                        _ => {}
                    }
                }
                Err(self.unexpected(None))
            }
            _ => {
                let (name, pos) = self.word()?;
                Ok(Item::Field(name, pos))
            }
        }
    }

    /// `SELECT ... FROM ...`: top level when `parent` is None, else a sub-query over one of
    /// `parent`'s child relationships. Consumes every token it was given.
    fn select(mut self, parent: Option<SObject>) -> Result<Parts, SoqlError> {
        self.keyword("SELECT")?;
        let mut items = vec![self.select_item(parent.is_none())?];
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Comma)) {
            self.at += 1;
            items.push(self.select_item(parent.is_none())?);
        }
        self.keyword("FROM")?;
        let (object, object_pos) = self.word()?;
        let (sobject, rel) = match parent {
            None => {
                let sobject = SObject::from_name(&object).ok_or_else(|| {
                    positioned(
                        self.query,
                        object_pos,
                        "INVALID_TYPE",
                        &format!(
                            "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
                        ),
                    )
                })?;
                (sobject, None)
            }
            Some(parent) => {
                let rel = child_relationship(parent, &object).ok_or_else(|| {
                    positioned(
                        self.query,
                        object_pos,
                        "INVALID_TYPE",
                        &format!(
                            "Didn't understand relationship '{object}' in FROM part of query call. {NO_SUCH_RELATIONSHIP_HINT}"
                        ),
                    )
                })?;
                (rel.child, Some(rel))
            }
        };
        let mut columns: Vec<Column> = Vec::new();
        for item in items {
            let (column, pos) = match item {
                Item::Field(name, pos) => (Column::Field(self.column(sobject, &name, pos)?), pos),
                Item::Sub(open, close) => {
                    let pos = self.tokens[open].pos;
                    let sub = Parser {
                        query: self.query,
                        tokens: self.tokens[open + 1..close].to_vec(),
                        at: 0,
                    }
                    .select(Some(sobject))?;
                    let Some(rel) = sub.rel else {
                        return Err(positioned(
                            self.query,
                            pos,
                            "MALFORMED_QUERY",
                            "unexpected token: '('",
                        ));
                    };
                    let child = ChildQuery {
                        rel,
                        columns: sub.columns,
                        filter: sub.filter,
                        order: sub.order,
                        limit: sub.limit,
                    };
                    (Column::Children(child), pos)
                }
            };
            if columns.iter().any(|c| c.path() == column.path()) {
                return Err(positioned(
                    self.query,
                    pos,
                    "MALFORMED_QUERY",
                    &format!("duplicate field selected: {}", column.path()),
                ));
            }
            columns.push(column);
        }

        let filter = if self.accept("WHERE") {
            Some(self.expr(sobject)?)
        } else {
            None
        };
        let mut order = None;
        if self.accept("ORDER") {
            self.keyword("BY")?;
            let (name, pos) = self.word()?;
            let column = self.usable_column(sobject, &name, pos, "ordered")?;
            let descending = if self.accept("DESC") {
                true
            } else {
                self.accept("ASC");
                false
            };
            let mut nulls_first = !descending;
            if self.accept("NULLS") {
                match self.next() {
                    Some(t) if t.is_keyword("FIRST") => nulls_first = true,
                    Some(t) if t.is_keyword("LAST") => nulls_first = false,
                    other => return Err(self.unexpected(other.as_ref())),
                }
            }
            order = Some(OrderBy {
                column,
                descending,
                nulls_first,
            });
        }
        let mut limit = None;
        if self.accept("LIMIT") {
            match self.next() {
                Some(Token {
                    tok: Tok::Literal(n),
                    ..
                }) if n.parse::<usize>().is_ok() => limit = n.parse().ok(),
                other => return Err(self.unexpected(other.as_ref())),
            }
        }
        if let Some(extra) = self.peek() {
            return Err(self.unexpected(Some(extra)));
        }
        // Without ORDER BY Salesforce promises no order; the sandbox uses Id order.
        let order = order.or(Some(OrderBy {
            column: FieldRef::Direct(&sobject.fields()[0]),
            descending: false,
            nulls_first: true,
        }));
        Ok(Parts {
            sobject,
            rel,
            columns,
            filter,
            order,
            limit,
        })
    }

    /// Operands joined by AND, or by OR; mixing the two needs parentheses.
    fn expr(&mut self, sobject: SObject) -> Result<Cond, SoqlError> {
        let first = self.operand(sobject)?;
        let joiner = match self.peek() {
            Some(t) if t.is_keyword("AND") => "AND",
            Some(t) if t.is_keyword("OR") => "OR",
            _ => return Ok(first),
        };
        let other = if joiner == "AND" { "OR" } else { "AND" };
        let mut items = vec![first];
        while self.accept(joiner) {
            items.push(self.operand(sobject)?);
        }
        if let Some(t) = self.peek()
            && t.is_keyword(other)
        {
            return Err(self.unexpected(Some(t)));
        }
        Ok(if joiner == "AND" {
            Cond::All(items)
        } else {
            Cond::Any(items)
        })
    }

    fn operand(&mut self, sobject: SObject) -> Result<Cond, SoqlError> {
        if self.accept("NOT") {
            return Ok(Cond::Not(Box::new(self.operand(sobject)?)));
        }
        if matches!(self.peek().map(|t| &t.tok), Some(Tok::Open)) {
            self.at += 1;
            let inner = self.expr(sobject)?;
            return match self.next() {
                Some(Token {
                    tok: Tok::Close, ..
                }) => Ok(inner),
                other => Err(self.unexpected(other.as_ref())),
            };
        }
        Ok(Cond::Leaf(self.condition(sobject)?))
    }

    fn condition(&mut self, sobject: SObject) -> Result<Filter, SoqlError> {
        let (name, pos) = self.word()?;
        let column = self.usable_column(sobject, &name, pos, "filtered")?;
        let op_token = self.next();
        let op = match op_token.as_ref().map(|t| &t.tok) {
            Some(Tok::Op(op)) => match *op {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => Op::Like,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") => {
                self.keyword("IN")?;
                Op::NotIn
            }
            _ => return Err(self.unexpected(op_token.as_ref())),
        };
        let mut values = Vec::new();
        if op == Op::Like {
            let token = self.next();
            match token.as_ref().map(|t| &t.tok) {
                Some(Tok::Text(_, pattern)) if column.ty().is_text() => {
                    values.push(Literal::Pattern(pattern.clone()));
                }
                Some(Tok::Text(..)) => {
                    return Err(positioned(
                        self.query,
                        pos,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        &format!("invalid operator on field '{}': LIKE", column.path()),
                    ));
                }
                _ => return Err(self.unexpected(token.as_ref())),
            }
        } else if matches!(op, Op::In | Op::NotIn) {
            match self.next() {
                Some(Token { tok: Tok::Open, .. }) => {}
                other => return Err(self.unexpected(other.as_ref())),
            }
            loop {
                values.push(self.literal(&column)?);
                match self.next() {
                    Some(Token {
                        tok: Tok::Comma, ..
                    }) => continue,
                    Some(Token {
                        tok: Tok::Close, ..
                    }) => break,
                    other => return Err(self.unexpected(other.as_ref())),
                }
            }
        } else {
            values.push(self.literal(&column)?);
        }
        Ok(Filter { column, op, values })
    }

    /// A literal, checked against the column's type the way Salesforce checks it.
    fn literal(&mut self, column: &FieldRef) -> Result<Literal, SoqlError> {
        let token = self.next();
        let Some(token) = token else {
            return Err(self.unexpected(None));
        };
        let path = column.path();
        let ty = column.ty();
        let wrong = |must: &str| {
            positioned(
                self.query,
                token.pos,
                "INVALID_QUERY_FILTER_OPERATOR",
                &format!("value of filter criterion for field '{path}' must be of type {must}"),
            )
        };
        let literal = match &token.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => return Ok(Literal::Null),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Text(t, _) => Literal::Text(t.clone()),
            Tok::Literal(raw) => {
                if let Ok(n) = raw.parse::<f64>() {
                    Literal::Number(n)
                } else if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
                    Literal::DateTime(t)
                } else if let Ok(t) = DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z") {
                    Literal::DateTime(t)
                } else if let Some(d) = parse_sf_date(raw).filter(|_| raw.len() == 10) {
                    Literal::Date(d)
                } else {
                    return Err(positioned(
                        self.query,
                        token.pos,
                        "MALFORMED_QUERY",
                        &format!(
                            "line 1:{} no viable alternative at character '{raw}'",
                            token.pos
                        ),
                    ));
                }
            }
            _ => return Err(self.unexpected(Some(&token))),
        };
        match (ty, literal) {
            (FieldType::Id | FieldType::Reference { .. }, Literal::Text(t)) => {
                match normalize_id(&t) {
                    Some(id) => Ok(Literal::Text(id)),
                    None => Err(positioned(
                        self.query,
                        token.pos,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        &format!("invalid ID field: {t}"),
                    )),
                }
            }
            (FieldType::Id | FieldType::Reference { .. }, _) => {
                Err(wrong("id and should be enclosed in quotes"))
            }
            (FieldType::Bool, l @ Literal::Bool(_)) => Ok(l),
            (FieldType::Bool, _) => Err(wrong("boolean and should not be enclosed in quotes")),
            (FieldType::Int, l @ Literal::Number(_)) => Ok(l),
            (FieldType::Int, _) => Err(wrong("int and should not be enclosed in quotes")),
            (FieldType::Currency | FieldType::Percent, l @ Literal::Number(_)) => Ok(l),
            (FieldType::Currency | FieldType::Percent, _) => {
                Err(wrong("double and should not be enclosed in quotes"))
            }
            (FieldType::Date, l @ Literal::Date(_)) => Ok(l),
            (FieldType::Date, _) => Err(wrong("date and should not be enclosed in quotes")),
            (FieldType::DateTime, l @ Literal::DateTime(_)) => Ok(l),
            (FieldType::DateTime, _) => Err(wrong("dateTime and should not be enclosed in quotes")),
            (_, l @ Literal::Text(_)) => Ok(l),
            (_, _) => Err(wrong("string and should be enclosed in quotes")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Seed

#[rustfmt::skip]
const ACCOUNT_PREFIXES: [&str; 20] = [
    "Northwind", "Bluebird", "Cascadia", "Redwood", "Silverline", "Tidewater", "Evergreen",
    "Ironwood", "Sunridge", "Lakeshore", "Zürich", "Société Lumière", "Kraków", "São Vicente",
    "Øresund", "Highland", "Meridian", "Pinecrest", "Riverbend", "Stonegate",
];

#[rustfmt::skip]
const ACCOUNT_SUFFIXES: [(&str, &str); 13] = [
    ("Technologies", "Technology"), ("Bank", "Banking"), ("Health", "Healthcare"),
    ("Manufacturing", "Manufacturing"), ("Retail Group", "Retail"), ("Energy", "Energy"),
    ("Media", "Media"), ("Consulting", "Consulting"), ("Insurance", "Insurance"),
    ("Logistics", "Transportation"), ("Foods", "Food & Beverage"), ("Telecom", "Telecommunications"),
    ("Academy", "Education"),
];

#[rustfmt::skip]
/// City, state (empty where the country has none in addresses), postal code, country,
/// and the currency the org keeps for records there.
const PLACES: [(&str, &str, &str, &str, &str); 11] = [
    ("San Francisco", "CA", "94105", "USA", "USD"), ("Chicago", "IL", "60601", "USA", "USD"),
    ("London", "", "EC2V 7HH", "United Kingdom", "GBP"), ("Paris", "", "75002", "France", "EUR"),
    ("München", "Bayern", "80331", "Germany", "EUR"), ("Tokyo", "Tokyo", "100-0005", "Japan", "JPY"),
    ("Toronto", "ON", "M5H 2N2", "Canada", "CAD"), ("Sydney", "NSW", "2000", "Australia", "AUD"),
    ("Bogotá", "Cundinamarca", "110111", "Colombia", "COP"), ("Reykjavík", "", "101", "Iceland", "ISK"),
    ("Singapore", "", "048619", "Singapore", "SGD"),
];

#[rustfmt::skip]
const STREETS: [&str; 11] = [
    "Market Street", "Main Street", "Harbour Road", "Rue de Rivoli", "Leopoldstraße",
    "Chuo-dori", "King Street West", "George Street", "Carrera 7", "Laugavegur", "Orchard Road",
];

#[rustfmt::skip]
const DEPARTMENTS: [&str; 8] = [
    "Sales", "Procurement", "Executive", "IT", "Marketing", "Finance", "Engineering", "Operations",
];

#[rustfmt::skip]
const USERS: [(&str, &str); 24] = [
    ("Integration", "User"), ("Morgan", "Reyes"), ("Avery", "Chen"), ("Jordan", "Okoye"),
    ("Riley", "Schmidt"), ("Casey", "Nguyen"), ("Quinn", "Larsen"), ("Harper", "Silva"),
    ("Rowan", "Kapoor"), ("Emerson", "Duarte"), ("Sasha", "Ivanova"), ("Dana", "Whitaker"),
    ("Kai", "Yamamoto"), ("Noor", "Haddad"), ("Elliot", "Brandt"), ("Zoë", "Lefèvre"),
    ("Tobias", "Keller"), ("Imani", "Mensah"), ("Lucía", "Romero"), ("Finn", "O'Sullivan"),
    ("Hana", "Kim"), ("Oskar", "Nilsson"), ("Priyanka", "Rao"), ("Mateus", "Costa"),
];

#[rustfmt::skip]
const PRODUCTS: [&str; 7] = [
    "Platform License", "Renewal", "Expansion", "Implementation Services", "Support Upgrade",
    "Pilot", "Enterprise Agreement",
];

#[rustfmt::skip]
const CONTACT_ROLES: [&str; 6] = [
    "Decision Maker", "Economic Buyer", "Technical Buyer", "Evaluator", "Influencer",
    "Executive Sponsor",
];

#[rustfmt::skip]
const LEAD_FIRST_NAMES: [&str; 13] = [
    "Grace", "Omar", "Lena", "Victor", "Sofia", "Nikhil", "Hannah", "Diego", "Astrid", "Felix",
    "Maya", "Benedikt", "Ife",
];

#[rustfmt::skip]
const LEAD_LAST_NAMES: [&str; 23] = [
    "Hopper", "Farouk", "Berg", "Almeida", "Conti", "Mehta", "Schulz", "Herrera", "Lund",
    "Baptiste", "Cohen", "Wagner", "Eze", "Kowalski", "Marsh", "Quintero", "Sato", "Varga",
    "Boateng", "Lindgren", "Pereira", "Hale", "Ibsen",
];

#[rustfmt::skip]
const LEAD_COMPANY_WORDS: [&str; 11] = [
    "Acme", "Globex", "Initech", "Umbrella", "Vandelay", "Hooli", "Stark", "Wayne", "Tyrell",
    "Soylent", "Cyberdyne",
];

#[rustfmt::skip]
const LEAD_COMPANY_KINDS: [&str; 7] = [
    "Analytics", "Industries", "Labs", "Systems", "Partners", "Robotics", "Outfitters",
];

#[rustfmt::skip]
const LEAD_SOURCES: [&str; 7] = [
    "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show", "Word of mouth",
    "Other",
];

#[rustfmt::skip]
const OPEN_LEAD_STATUSES: [&str; 4] = [
    "Open - Not Contacted", "Working - Contacted", "Working - Contacted", "Closed - Not Converted",
];

#[rustfmt::skip]
const TASK_SUBJECTS: [&str; 7] = [
    "Call", "Send quote", "Follow up", "Email", "Prepare demo", "Send contract", "Check in",
];

#[rustfmt::skip]
const NOTE_TOPICS: [&str; 6] = [
    "Discovery call", "Pricing discussion", "Follow-up", "Contract questions",
    "Onboarding kickoff", "Quarterly review",
];

// 17 and 19 are coprime, so (i % 17, i % 19) never repeats for the 260 seeded contacts:
// every generated name, and so every generated email, is unique.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 17] = [
    "Olivia", "Mateo", "Amara", "Henrik", "Priya", "Tomás", "Yuki", "Chloé", "Kwame", "Ingrid",
    "Rafael", "Leila", "Dmitri", "Aoife", "Santiago", "Mei", "Jonas",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 19] = [
    "Fischer", "Okafor", "Lindqvist", "Moreau", "Castillo", "Tanaka", "Novak", "Haddad",
    "Sørensen", "Brennan", "Kowalczyk", "Ferreira", "Nakamura", "Adeyemi", "Rossi", "Dubois",
    "Petrov", "Whitfield", "Álvarez",
];

const TITLES: [&str; 10] = [
    "VP Sales",
    "Procurement Manager",
    "CEO",
    "IT Director",
    "Head of Marketing",
    "Controller",
    "Solutions Architect",
    "Office Manager",
    "COO",
    "Buyer",
];

const TIERS: [&str; 3] = ["Gold", "Silver", "Bronze"];

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

/// Lower-case ASCII for email local parts and domains: folds the accents used in the seed
/// names and drops anything else that is not alphanumeric.
pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ï' => 'i',
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

fn date_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

fn record(id: String, values: BTreeMap<&'static str, Value>) -> Record {
    Record {
        id,
        values,
        deleted: false,
    }
}

fn seed_user(j: u64) -> Record {
    let (first, last) = pick(&USERS, j);
    let email = format!("{}.{}@sandbox-org.example", slug(first), slug(last));
    let created = at(
        (2020, 1, 10, 9),
        Duration::days(small(j, 1000) * 17) + Duration::minutes(small(j * 31, 600)),
    );
    let modified = created + Duration::days(30 + small(j * 7, 200));
    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    v.insert("Username", json!(format!("{email}.sbx")));
    v.insert("FirstName", json!(first));
    v.insert("LastName", json!(last));
    v.insert("Email", json!(email));
    // Every sixth user has left the company: deactivated, still owning old records.
    v.insert("IsActive", json!(j % 6 != 5));
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(seed_id(SObject::User, j), v)
}

fn seed_account(j: u64, owners: &[String]) -> Record {
    let id = seed_id(SObject::Account, j);
    let prefix = pick(&ACCOUNT_PREFIXES, j);
    let (suffix, industry) = pick(&ACCOUNT_SUFFIXES, j);
    let (city, state, postal, country, currency) = pick(&PLACES, j * 3);
    let name = format!("{prefix} {suffix}");
    let created = at(
        (2021, 6, 1, 9),
        Duration::days(small(j, 1000) * 3)
            + Duration::minutes(small(j * 97, 1440))
            + Duration::milliseconds(small(j * 71, 1000)),
    );
    let modified = created
        + Duration::days(20 + small(j * 13, 300))
        + Duration::minutes(small(j * 17, 600))
        + Duration::milliseconds(small(j * 29, 1000));
    let employees = pick(&[3u64, 15, 60, 240, 900, 2500, 11000, 48000], j * 5);

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    v.insert("Name", json!(name));
    if j % 17 != 3 {
        let words: Vec<String> = name.split(' ').map(slug).collect();
        v.insert("Website", json!(format!("www.{}.example", words.join("-"))));
    }
    if j % 19 != 7 {
        v.insert("Industry", json!(industry));
    }
    if j % 10 != 9 {
        v.insert("NumberOfEmployees", json!(employees));
        let revenue = employees * (90_000 + j * 500);
        v.insert("AnnualRevenue", json!(revenue as f64));
    }
    v.insert("CurrencyIsoCode", json!(currency));
    if j % 5 != 4 {
        let what = if j % 19 != 7 {
            format!(
                "{name} is a {} company based in {city}.",
                industry.to_lowercase()
            )
        } else {
            format!("{name}, based in {city}.")
        };
        v.insert("Description", json!(what));
    }
    v.insert(
        "Phone",
        json!(format!("+1 (212) 555-{:04}", (j * 6_761) % 10_000)),
    );
    let street = format!("{} {}", 1 + (j * 37) % 400, pick(&STREETS, j * 3));
    let street = if j % 23 == 5 {
        format!("{street}\nSuite 400")
    } else {
        street
    };
    v.insert("BillingStreet", json!(street));
    v.insert("BillingCity", json!(city));
    if !state.is_empty() {
        v.insert("BillingState", json!(state));
    }
    v.insert("BillingPostalCode", json!(postal));
    v.insert("BillingCountry", json!(country));
    v.insert("OwnerId", json!(owner(owners, j)));
    if j % 3 != 1 {
        let last = date_of(modified) - Duration::days(small(j * 11, 15));
        v.insert("LastActivityDate", json!(sf_date(last)));
    }
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

fn seed_contact(i: u64, accounts: &BTreeMap<String, Record>, owners: &[String]) -> Record {
    let id = seed_id(SObject::Contact, i);
    let mut first = Some(pick(&FIRST_NAMES, i).to_owned());
    let mut last = pick(&LAST_NAMES, i).to_owned();
    // Contacts spread over the first 130 accounts, two or so each; some have none.
    let account = (i % 9 != 4).then(|| seed_id(SObject::Account, (i * 7) % 130));
    let domain = account
        .as_ref()
        .and_then(|a| accounts.get(a))
        .and_then(|a| a.text("Website"))
        .map_or("mail.example", |w| w.trim_start_matches("www."))
        .to_owned();
    let mut local: Option<String> = None;
    // Hand-picked edge cases a mapping layer must survive.
    match i {
        12 => local = Some(String::new()), // no email at all
        30 => {
            first = Some("Siobhán".into());
            last = "Ní Bhraonáin".into();
            local = Some("siobhan.nibhraonain".into());
        }
        57 => {
            first = Some("美咲".into());
            last = "佐藤".into();
            local = Some("misaki.sato".into());
        }
        88 => {
            // FirstName is optional in Salesforce; LastName is not.
            first = None;
            last = "Teller".into();
            local = Some("teller".into());
        }
        120 => {
            first = Some("D'Arcy".into());
            last = "O'Connor-Smythe".into();
            local = Some("darcy.oconnor-smythe".into());
        }
        199 => {
            first = Some("Ana".into());
            last = "Souza".into();
            local = Some("Ana.Souza+sf".into());
        }
        259 => {
            first = Some("Robert".into());
            last = "Zeta-Jones, Jr.".into();
            local = Some("robert.zetajones.jr".into());
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
        (2023, 3, 1, 8),
        Duration::days(small(i, 1000))
            + Duration::seconds(small(i, 1000) * (2 * 3600 + 13 * 60 + 7))
            + Duration::milliseconds(small(i * 37, 1000)),
    );
    let modified = created
        + Duration::days(1 + small(i * 13, 120))
        + Duration::minutes(small(i * 7, 60))
        + Duration::milliseconds(small(i * 53, 1000));

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    if let Some(first) = first {
        v.insert("FirstName", json!(first));
    }
    v.insert("LastName", json!(last));
    if let Some(email) = email {
        v.insert("Email", json!(email));
    }
    if i % 6 != 5 {
        v.insert(
            "Phone",
            json!(format!("(415) 555-{:04}", (i * 7_919) % 10_000)),
        );
    }
    if i % 11 != 6 {
        v.insert("Title", json!(pick(&TITLES, i)));
    }
    if i % 8 != 2 {
        v.insert("Department", json!(pick(&DEPARTMENTS, i)));
    }
    if i % 5 != 1 {
        let (city, state, postal, country, _) = pick(&PLACES, i * 7);
        v.insert(
            "MailingStreet",
            json!(format!("{} {}", 2 + (i * 53) % 900, pick(&STREETS, i * 7))),
        );
        v.insert("MailingCity", json!(city));
        if !state.is_empty() {
            v.insert("MailingState", json!(state));
        }
        v.insert("MailingPostalCode", json!(postal));
        v.insert("MailingCountry", json!(country));
    }
    if let Some(account) = account {
        v.insert("AccountId", json!(account));
    }
    v.insert("OwnerId", json!(owner(owners, i * 5)));
    if !i.is_multiple_of(4) {
        let last = date_of(modified) - Duration::days(small(i * 3, 10));
        v.insert("LastActivityDate", json!(sf_date(last)));
    }
    if i % 7 != 3 {
        v.insert("Customer_Tier__c", json!(pick(&TIERS, i)));
    }
    if i % 5 != 2 {
        v.insert("Industry__c", json!(pick(&CUSTOM_INDUSTRIES, i)));
    }
    if i % 3 != 1 {
        v.insert(
            "Phone_Primary__c",
            json!(format!("+44 20 7946 {:04}", (i * 6_131) % 10_000)),
        );
    }
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

/// Deal names that exercise search escaping: a quote, a `%`, an `_` and a backslash, each
/// beside a near miss that an unescaped pattern would also match.
fn special_opportunity_name(k: u64) -> Option<&'static str> {
    match k {
        42 => Some("O'Brien Renewal - 20% uplift"),
        43 => Some("O'Brien Renewal - 20 seats uplift"),
        44 => Some("Phase_2 Rollout"),
        45 => Some("Phase-2 Rollout"),
        46 => Some("Dev\\Ops Tooling"),
        _ => None,
    }
}

fn seed_opportunity(k: u64, accounts: &BTreeMap<String, Record>, owners: &[String]) -> Record {
    let id = seed_id(SObject::Opportunity, k);
    let account = (k % 13 != 7)
        .then(|| accounts.get(&seed_id(SObject::Account, (k * 7) % 200)))
        .flatten();
    let product = pick(&PRODUCTS, k * 3);
    let name = match (special_opportunity_name(k), account) {
        (Some(special), _) => special.to_owned(),
        (None, Some(a)) => format!("{} - {product}", a.text("Name").unwrap_or("Account")),
        (None, None) => format!("Online Order #{:05}", 10_000 + k),
    };
    let (stage_name, probability, closed, _) = pick(&STAGES, k * 7);
    let created = at(
        (2023, 1, 5, 10),
        Duration::days(small(k, 1000) * 2)
            + Duration::minutes(small(k * 41, 1440))
            + Duration::milliseconds(small(k * 13, 1000)),
    );
    let modified = created
        + Duration::days(1 + small(k * 17, 200))
        + Duration::minutes(small(k * 3, 600))
        + Duration::milliseconds(small(k * 59, 1000));
    let close = date_of(created) + Duration::days(30 + small(k * 31, 150));

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    if let Some(a) = account {
        v.insert("AccountId", json!(a.id));
    }
    v.insert("Name", json!(name));
    if k % 4 != 1 {
        v.insert(
            "Description",
            json!(format!("{product} for {} seats.", 10 + (k * 7_919) % 490)),
        );
    }
    v.insert("StageName", json!(stage_name));
    if k % 11 != 3 {
        let amount = 1000.0 + ((k * 7_919) % 9_000) as f64 * 25.0 + (k % 4) as f64 * 0.25;
        v.insert("Amount", json!(amount));
    }
    // Some open deals have a probability set by hand instead of the stage default.
    let probability = if !closed && k % 9 == 4 {
        probability + 5.0
    } else {
        probability
    };
    v.insert("Probability", json!(probability));
    v.insert("CloseDate", json!(sf_date(close)));
    let currency = account
        .and_then(|a| a.text("CurrencyIsoCode"))
        .unwrap_or("USD");
    v.insert("CurrencyIsoCode", json!(currency));
    v.insert("OwnerId", json!(owner(owners, k * 3)));
    if !k.is_multiple_of(3) {
        let last = date_of(modified) - Duration::days(small(k, 20));
        v.insert("LastActivityDate", json!(sf_date(last)));
    }
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

/// Zero to two roles per opportunity, played by contacts of its account.
fn seed_contact_roles(
    opportunities: &BTreeMap<String, Record>,
    contacts: &BTreeMap<String, Record>,
) -> BTreeMap<String, Record> {
    let mut by_account: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for c in contacts.values() {
        if let Some(a) = c.text("AccountId") {
            by_account.entry(a).or_default().push(c);
        }
    }
    let mut out = BTreeMap::new();
    let mut n = 0u64;
    for (k, opp) in opportunities.values().enumerate() {
        let k = u64::try_from(k).unwrap_or(0);
        let Some(people) = opp.text("AccountId").and_then(|a| by_account.get(a)) else {
            continue;
        };
        let wanted = usize::try_from(k % 3).unwrap_or(0);
        for (slot, contact) in people.iter().take(wanted).enumerate() {
            let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
            v.insert("OpportunityId", json!(opp.id));
            v.insert("ContactId", json!(contact.id));
            v.insert("Role", json!(pick(&CONTACT_ROLES, k + n)));
            v.insert("IsPrimary", json!(slot == 0));
            for key in ["CreatedDate", "LastModifiedDate"] {
                if let Some(t) = opp.values.get("CreatedDate") {
                    v.insert(key, t.clone());
                }
            }
            let r = record(seed_id(SObject::OpportunityContactRole, n), v);
            out.insert(r.id.clone(), r);
            n += 1;
        }
    }
    out
}

fn seed_lead(
    l: u64,
    contacts: &BTreeMap<String, Record>,
    opportunities: &BTreeMap<String, Record>,
    owners: &[String],
) -> Record {
    let id = seed_id(SObject::Lead, l);
    let mut first = Some(pick(&LEAD_FIRST_NAMES, l).to_owned());
    let mut last = pick(&LEAD_LAST_NAMES, l).to_owned();
    let mut company = format!(
        "{} {}",
        pick(&LEAD_COMPANY_WORDS, l),
        pick(&LEAD_COMPANY_KINDS, l)
    );
    match l {
        7 => {
            first = Some("Seán".into());
            last = "O'Neil".into();
        }
        64 => first = None,
        150 => company = "Müller & Söhne GmbH".into(),
        _ => {}
    }
    let created = at(
        (2023, 6, 1, 7),
        Duration::days(small(l, 1000) * 2)
            + Duration::minutes(small(l * 29, 1440))
            + Duration::milliseconds(small(l * 43, 1000)),
    );
    let mut modified = created
        + Duration::days(1 + small(l * 11, 90))
        + Duration::minutes(small(l * 19, 600))
        + Duration::milliseconds(small(l * 7, 1000));

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    if let Some(first) = &first {
        v.insert("FirstName", json!(first));
    }
    v.insert("LastName", json!(last));
    v.insert("Company", json!(company));
    if l % 5 != 3 {
        v.insert("Title", json!(pick(&TITLES, l * 3)));
    }
    if l % 12 != 11 {
        let local = match &first {
            Some(f) => format!("{}.{}", slug(f), slug(&last)),
            None => slug(&last),
        };
        v.insert(
            "Email",
            json!(format!("{local}@{}.example", slug(&company))),
        );
    }
    if l % 4 != 2 {
        v.insert(
            "Phone",
            json!(format!("+1 (646) 555-{:04}", (l * 4_127) % 10_000)),
        );
    }
    if l % 6 != 2 {
        let (city, state, postal, country, _) = pick(&PLACES, l * 5);
        v.insert(
            "Street",
            json!(format!("{} {}", 5 + (l * 71) % 700, pick(&STREETS, l * 5))),
        );
        v.insert("City", json!(city));
        if !state.is_empty() {
            v.insert("State", json!(state));
        }
        v.insert("PostalCode", json!(postal));
        v.insert("Country", json!(country));
    }
    if l % 8 != 6 {
        v.insert("LeadSource", json!(pick(&LEAD_SOURCES, l)));
    }
    v.insert("OwnerId", json!(owner(owners, l * 7)));
    // Every tenth lead was converted: into a contact, that contact's account and (mostly)
    // one of the account's opportunities.
    let conversion = (l % 10 == 3)
        .then(|| {
            (0..CONTACT_COUNT)
                .map(|step| seed_id(SObject::Contact, (l * 3 + 1 + step) % CONTACT_COUNT))
                .find_map(|c| contacts.get(&c).filter(|c| c.text("AccountId").is_some()))
        })
        .flatten();
    match conversion {
        Some(contact) => {
            let account = contact.text("AccountId").unwrap_or_default();
            let converted = created + Duration::days(10 + small(l, 40));
            modified = modified.max(converted + Duration::hours(1));
            v.insert("Status", json!("Closed - Converted"));
            v.insert("IsConverted", json!(true));
            v.insert("ConvertedDate", json!(sf_date(date_of(converted))));
            v.insert("ConvertedContactId", json!(contact.id));
            v.insert("ConvertedAccountId", json!(account));
            if l % 20 != 13
                && let Some(opp) = opportunities
                    .values()
                    .find(|o| o.text("AccountId") == Some(account))
            {
                v.insert("ConvertedOpportunityId", json!(opp.id));
            }
        }
        None => {
            v.insert("Status", json!(pick(&OPEN_LEAD_STATUSES, l)));
            v.insert("IsConverted", json!(false));
        }
    }
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

fn seed_task(t: u64, contacts: &BTreeMap<String, Record>, owners: &[String]) -> Record {
    let id = seed_id(SObject::Task, t);
    // Who: a lead, a contact (twice as often) or nobody. A task about a lead cannot be
    // related to anything else, as in Salesforce.
    let who = match t % 4 {
        0 => Some(seed_id(SObject::Lead, (t * 3) % LEAD_COUNT)),
        1 | 2 => Some(seed_id(SObject::Contact, (t * 5) % CONTACT_COUNT)),
        _ => None,
    };
    let who_is_lead = t.is_multiple_of(4);
    let what = if who_is_lead {
        None
    } else {
        match t % 3 {
            0 => Some(seed_id(SObject::Opportunity, (t * 7) % OPPORTUNITY_COUNT)),
            1 => who
                .as_ref()
                .and_then(|c| contacts.get(c))
                .and_then(|c| c.text("AccountId"))
                .map(str::to_owned)
                .or_else(|| Some(seed_id(SObject::Account, (t * 11) % ACCOUNT_COUNT))),
            _ => None,
        }
    };
    let status = match t % 5 {
        0 | 1 => "Completed",
        2 => "Not Started",
        3 => "In Progress",
        _ => "Waiting on someone else",
    };
    let created = at(
        (2024, 1, 3, 9),
        Duration::days(small(t, 1000))
            + Duration::minutes(small(t * 23, 600))
            + Duration::milliseconds(small(t * 31, 1000)),
    );
    let mut modified = created
        + Duration::hours(2 + small(t * 5, 72))
        + Duration::milliseconds(small(t * 17, 1000));

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    if let Some(who) = who {
        v.insert("WhoId", json!(who));
    }
    if let Some(what) = what {
        v.insert("WhatId", json!(what));
    }
    v.insert(
        "Subject",
        json!(format!("{} #{}", pick(&TASK_SUBJECTS, t), 100 + t)),
    );
    if t % 7 != 6 {
        let due = date_of(created) + Duration::days(small(t, 14));
        v.insert("ActivityDate", json!(sf_date(due)));
    }
    v.insert("Status", json!(status));
    v.insert(
        "Priority",
        json!(pick(&["Normal", "High", "Normal", "Low"], t)),
    );
    v.insert("OwnerId", json!(owner(owners, t * 11)));
    if t % 3 != 2 {
        v.insert(
            "Description",
            json!(format!("{} about the next steps.", pick(&TASK_SUBJECTS, t))),
        );
    }
    if status == "Completed" {
        let done = created + Duration::days(1) + Duration::minutes(small(t, 300));
        modified = modified.max(done);
        v.insert("CompletedDateTime", json!(sf_datetime(done)));
    }
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

/// Industry values of the demo org's own picklist (not Salesforce's standard list).
const CUSTOM_INDUSTRIES: [&str; 5] = [
    "Aerospace & Defense",
    "Biotech - Clinical",
    "Public Sector (EU)",
    "Retail / EMEA",
    "Industrial IoT",
];

pub(crate) const DEAL_REGISTRATION_COUNT: u64 = 80;
const REGISTRATION_STATUSES: [&str; 4] = ["Submitted", "Approved", "Rejected", "Expired"];

/// Deal registrations hang off every third contact (some contacts have two).
fn seed_deal_registration(r: u64) -> Record {
    let id = seed_id(SObject::DealRegistration, r);
    let contact = seed_id(SObject::Contact, (r * 3) % CONTACT_COUNT);
    let created = at(
        (2024, 4, 2, 9),
        Duration::days(small(r, 500)) + Duration::minutes(small(r * 29, 700)),
    );
    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    v.insert("Name", json!(format!("DR-{:05}", 1000 + r)));
    v.insert("Contact__c", json!(contact));
    v.insert("Status__c", json!(pick(&REGISTRATION_STATUSES, r)));
    v.insert("Amount__c", json!(((r * 7_919) % 90 + 10) as f64 * 1_000.0));
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert(
        "LastModifiedDate",
        json!(sf_datetime(created + Duration::hours(3))),
    );
    record(id, v)
}

fn seed_note(n: u64, owners: &[String]) -> Record {
    let id = seed_id(SObject::Note, n);
    let parent = match n % 4 {
        0 => seed_id(SObject::Contact, (n * 3) % CONTACT_COUNT),
        1 => seed_id(SObject::Account, (n * 7) % ACCOUNT_COUNT),
        2 => seed_id(SObject::Opportunity, (n * 11) % OPPORTUNITY_COUNT),
        _ => seed_id(SObject::Lead, (n * 13) % LEAD_COUNT),
    };
    let created = at(
        (2024, 2, 1, 11),
        Duration::days(small(n, 1000))
            + Duration::minutes(small(n * 37, 900))
            + Duration::milliseconds(small(n * 3, 1000)),
    );
    let modified = created + Duration::minutes(5 + small(n * 13, 5000));
    let topic = pick(&NOTE_TOPICS, n);
    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    v.insert("ParentId", json!(parent));
    v.insert(
        "Title",
        json!(format!("{topic} ({})", sf_date(date_of(created)))),
    );
    v.insert("IsPrivate", json!(n % 17 == 5));
    if n % 9 != 4 {
        let body = if n % 25 == 7 {
            "Asked about \"multi-year\" pricing & SSO.\nNext: send the <b>security</b> pack."
                .to_owned()
        } else {
            format!("{topic}: agreed to follow up in {} days.", 2 + n % 12)
        };
        v.insert("Body", json!(body));
    }
    v.insert("OwnerId", json!(owner(owners, n * 13)));
    v.insert("CreatedDate", json!(sf_datetime(created)));
    v.insert("LastModifiedDate", json!(sf_datetime(modified)));
    record(id, v)
}

/// Seeded records that exercise the edge cases, by seed index.
pub(crate) fn sample_ids(sobject: SObject) -> Vec<String> {
    let picks: &[u64] = match sobject {
        SObject::Contact => &[0, 4, 12, 30, 57, 88, 120, 199],
        SObject::Account => &[0, 3, 5, 7, 9, 10, 11, 13],
        SObject::Opportunity => &[0, 1, 3, 7, 8, 9, 42, 46],
        SObject::OpportunityContactRole => &[0, 1, 2],
        SObject::Lead => &[0, 2, 3, 7, 11, 13, 64, 150],
        SObject::Task => &[0, 1, 2, 3, 6, 11],
        SObject::Note => &[0, 1, 2, 3, 4, 7],
        SObject::User => &[0, 1, 5],
        SObject::DealRegistration => &[0, 1, 2],
    };
    picks.iter().map(|i| seed_id(sobject, *i)).collect()
}

fn owner(owners: &[String], i: u64) -> &str {
    let len = u64::try_from(owners.len()).unwrap_or(1).max(1);
    owners
        .get(usize::try_from(i % len).unwrap_or(0))
        .map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_case_safe_and_round_trip() {
        let id = seed_id(SObject::Contact, 0);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("003"));
        assert_eq!(normalize_id(&id).as_deref(), Some(id.as_str()));
        assert_eq!(normalize_id(&id[..15]).as_deref(), Some(id.as_str()));
        // An 18-character id survives a case-insensitive system.
        assert_eq!(
            normalize_id(&id.to_lowercase()).as_deref(),
            Some(id.as_str())
        );
        assert_eq!(normalize_id("not an id"), None);
        assert_eq!(normalize_id("003"), None);
        // The documented example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
        assert_eq!(
            normalize_id("001A0000006Vm9r").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        for sobject in SObject::ALL {
            assert_eq!(sobject_of(&seed_id(sobject, 3)), Some(sobject));
        }
    }

    #[test]
    fn seed_is_deterministic_unique_and_sorted_by_creation() {
        let a = Store::seed();
        let b = Store::seed();
        for sobject in SObject::ALL {
            let columns = Store::all_columns(sobject);
            let left: Vec<Value> = a
                .table(sobject)
                .values()
                .map(|r| a.render(sobject, r, &columns, ""))
                .collect();
            let right: Vec<Value> = b
                .table(sobject)
                .values()
                .map(|r| b.render(sobject, r, &columns, ""))
                .collect();
            assert_eq!(left, right);
            let min = match sobject {
                SObject::User => 20,
                SObject::OpportunityContactRole => 100,
                SObject::DealRegistration => 60,
                _ => 260,
            };
            assert!(left.len() >= min, "{sobject:?}: {}", left.len());
            // Seed order is id order, so new records sort last.
            let ids: Vec<&String> = a.table(sobject).keys().collect();
            let expected: Vec<String> = (0..u64::try_from(ids.len()).unwrap())
                .map(|i| seed_id(sobject, i))
                .collect();
            assert_eq!(ids, expected.iter().collect::<Vec<_>>());
            for record in a.table(sobject).values() {
                assert!(record.text("CreatedDate") <= record.text("LastModifiedDate"));
                // Every lookup points at a live record of an allowed type.
                for field in sobject.fields() {
                    if let FieldType::Reference { to, .. } = field.ty
                        && let Some(target) = record.text(field.name)
                    {
                        let kind = sobject_of(target).unwrap();
                        assert!(to.contains(&kind), "{sobject:?}.{}", field.name);
                        assert!(a.live(kind, target).is_some(), "{sobject:?}.{}", field.name);
                    }
                }
            }
        }
        let emails: Vec<String> = a
            .table(SObject::Contact)
            .values()
            .filter_map(|r| r.text("Email"))
            .map(str::to_lowercase)
            .collect();
        let unique: HashSet<&String> = emails.iter().collect();
        assert_eq!(unique.len(), emails.len());
        assert_eq!(emails.len(), usize::try_from(CONTACT_COUNT).unwrap() - 1);
        // A converted lead's contact, account and opportunity belong together.
        let converted: Vec<&Record> = a
            .table(SObject::Lead)
            .values()
            .filter(|l| l.values.get("IsConverted") == Some(&json!(true)))
            .collect();
        assert!(converted.len() >= 20);
        for lead in converted {
            let contact = a
                .live(SObject::Contact, lead.text("ConvertedContactId").unwrap())
                .unwrap();
            assert_eq!(contact.text("AccountId"), lead.text("ConvertedAccountId"));
            if let Some(opp) = lead.text("ConvertedOpportunityId") {
                let opp = a.live(SObject::Opportunity, opp).unwrap();
                assert_eq!(opp.text("AccountId"), lead.text("ConvertedAccountId"));
            }
        }
        // Tasks about a lead are related to nothing else.
        for task in a.table(SObject::Task).values() {
            if task.text("WhoId").is_some_and(|w| w.starts_with("00Q")) {
                assert!(task.text("WhatId").is_none());
            }
            assert_eq!(task.task_closed(), task.text("CompletedDateTime").is_some());
        }
    }

    #[test]
    fn soql_subset_parses_and_rejects() {
        let store = Store::seed();
        let q = parse_soql("select id, email, account.name from contact where Customer_Tier__c = 'GOLD' and AccountId != null order by LastName desc limit 5").unwrap();
        assert_eq!(q.sobject, SObject::Contact);
        let rows = store.run(&q, false);
        assert_eq!(rows.len(), 5);
        for r in &rows {
            assert_eq!(r.text("Customer_Tier__c"), Some("Gold"));
            assert!(r.text("AccountId").is_some());
        }
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.text("LastName").unwrap().to_lowercase())
            .collect();
        assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");

        let q = parse_soql("SELECT Id FROM Account WHERE CreatedDate >= 2022-01-01T00:00:00Z AND NumberOfEmployees > 1000").unwrap();
        assert!(!store.run(&q, false).is_empty());

        // OR needs its own level; NOT and parentheses nest.
        let q = parse_soql("SELECT Id FROM Contact WHERE (Customer_Tier__c = 'Gold' OR Customer_Tier__c = 'Silver') AND NOT (AccountId = null)").unwrap();
        let rows = store.run(&q, false);
        assert!(!rows.is_empty());
        for r in &rows {
            assert!(matches!(
                r.text("Customer_Tier__c"),
                Some("Gold" | "Silver")
            ));
            assert!(r.text("AccountId").is_some());
        }

        // LIKE: wildcards, escapes, case-insensitivity.
        let like_names = |q: &str| -> Vec<String> {
            let q = parse_soql(q).unwrap();
            store
                .run(&q, false)
                .iter()
                .map(|r| r.text("Name").unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            like_names(
                r"SELECT Name FROM Opportunity WHERE Name LIKE '%o\'brien renewal - 20\% up%'"
            ),
            ["O'Brien Renewal - 20% uplift"]
        );
        assert_eq!(
            like_names(
                r"SELECT Name FROM Opportunity WHERE Name LIKE '%o\'brien renewal - 20% up%'"
            )
            .len(),
            2
        );
        assert_eq!(
            like_names(r"SELECT Name FROM Opportunity WHERE Name LIKE 'Phase\_2%'"),
            ["Phase_2 Rollout"]
        );
        assert_eq!(
            like_names(r"SELECT Name FROM Opportunity WHERE Name LIKE 'Phase_2%'").len(),
            2
        );
        assert_eq!(
            like_names(r"SELECT Name FROM Opportunity WHERE Name LIKE '%dev\\ops%'"),
            ["Dev\\Ops Tooling"]
        );
        assert!(like("abc", &[PatTok::Any]));
        assert!(like("", &[PatTok::Any, PatTok::Any]));
        assert!(!like("ab", &[PatTok::One]));

        // Child sub-queries: nested results, null when there is no child.
        let q = parse_soql("SELECT Id, (SELECT ContactId, Role FROM OpportunityContactRoles ORDER BY ContactId) FROM Opportunity").unwrap();
        let rendered: Vec<Value> = store
            .run(&q, false)
            .iter()
            .map(|r| store.render(SObject::Opportunity, r, &q.columns, ""))
            .collect();
        assert!(
            rendered
                .iter()
                .any(|r| r["OpportunityContactRoles"].is_null())
        );
        let with = rendered
            .iter()
            .find(|r| r["OpportunityContactRoles"]["totalSize"] == 2)
            .unwrap();
        assert_eq!(with["OpportunityContactRoles"]["done"], true);
        assert_eq!(
            with["OpportunityContactRoles"]["records"][0]["attributes"]["type"],
            "OpportunityContactRole"
        );

        let q = parse_soql(
            "SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01 AND Probability >= 50",
        )
        .unwrap();
        assert!(!store.run(&q, false).is_empty());

        for (query, code) in [
            ("SELECT Id, Foo__c FROM Contact", "INVALID_FIELD"),
            ("SELECT Id FROM Campaign", "INVALID_TYPE"),
            ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
            ("SELECT FROM Contact", "MALFORMED_QUERY"),
            (
                "SELECT Id FROM Contact WHERE Id = 'nope'",
                "INVALID_QUERY_FILTER_OPERATOR",
            ),
            (
                "SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01'",
                "INVALID_QUERY_FILTER_OPERATOR",
            ),
            (
                "SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-01T00:00:00Z",
                "INVALID_QUERY_FILTER_OPERATOR",
            ),
            (
                "SELECT Id FROM Contact WHERE Email = 'a' OR Email = 'b' AND Id != null",
                "MALFORMED_QUERY",
            ),
            (
                "SELECT Id FROM Contact WHERE NumberOfEmployees LIKE '1%'",
                "INVALID_FIELD",
            ),
            (
                "SELECT Id FROM Account WHERE NumberOfEmployees LIKE '1%'",
                "INVALID_QUERY_FILTER_OPERATOR",
            ),
            (
                "SELECT Id FROM Account WHERE Description = 'x'",
                "INVALID_FIELD",
            ),
            (
                "SELECT Id FROM Account ORDER BY Description",
                "INVALID_FIELD",
            ),
            (
                r"SELECT Id FROM Account WHERE Name = 'a\qb'",
                "MALFORMED_QUERY",
            ),
            (
                "SELECT Id, (SELECT Id FROM Contacts) FROM Opportunity",
                "INVALID_TYPE",
            ),
            (
                "SELECT Id, (SELECT Id, (SELECT Id FROM Contacts) FROM Contacts) FROM Account",
                "MALFORMED_QUERY",
            ),
            (
                "SELECT Id, (SELECT Id FROM Contacts FROM Account",
                "MALFORMED_QUERY",
            ),
            ("SELECT Id, id FROM Contact", "MALFORMED_QUERY"),
            ("SELECT Id FROM Contact LIMIT", "MALFORMED_QUERY"),
            ("SELECT Id FROM Contact 'x", "MALFORMED_QUERY"),
            ("SELECT Foo.Name FROM Account", "INVALID_FIELD"),
            ("SELECT Who.Name FROM Task", "INVALID_FIELD"),
            ("", "MALFORMED_QUERY"),
            (
                "SELECT Id FROM Contact WHERE Email = 'é' ;",
                "MALFORMED_QUERY",
            ),
        ] {
            let err = parse_soql(query).unwrap_err();
            assert_eq!(err.code, code, "{query}: {}", err.message);
        }
        let err = parse_soql("SELECT Id, Foo__c FROM Contact").unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "\nSELECT Id, Foo__c FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo__c' on entity 'Contact'. {NO_SUCH_COLUMN_HINT}"
            )
        );
    }

    #[test]
    fn deleting_cascades_to_what_hangs_off_the_record() {
        let mut store = Store::seed();
        let account = store
            .table(SObject::Opportunity)
            .values()
            .find_map(|o| o.text("AccountId").map(str::to_owned))
            .unwrap();
        assert!(store.delete(SObject::Account, &account));
        let mut cascaded = 0;
        for (sobject, field) in CASCADES {
            for r in store.table(sobject).values() {
                if r.text(field).is_some_and(|p| store.live_any(p).is_none()) {
                    assert!(r.deleted, "{sobject:?} {} is still live", r.id);
                    cascaded += 1;
                }
            }
        }
        assert!(cascaded > 0);
        assert!(!store.delete(SObject::Account, &account));
    }
}
