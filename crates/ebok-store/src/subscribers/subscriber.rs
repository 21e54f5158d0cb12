//! Subscribers: the record imported from the billing system, the stored row, upserts by the
//! billing system's id and reads by id.

use super::*;

/// A subscriber as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscriberRecord {
    pub ext_id: String,
    pub kind: SubscriberKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub pesel: Option<Pesel>,
    pub nip: Option<Nip>,
    pub home: Address,
    pub correspondence: Option<Address>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The subscriber's individual account for transfers.
    pub bank_account: Option<Nrb>,
}

impl SubscriberRecord {
    /// A person needs first and last name; a company its name.
    pub fn check(&self) -> Result<(), StoreError> {
        not_blank("ext_id", &self.ext_id)?;
        match self.kind {
            SubscriberKind::Person => {
                if !opt_not_blank(&self.first_name) {
                    return Err(StoreError::invalid(
                        "first_name",
                        "a person needs a first name",
                    ));
                }
                if !opt_not_blank(&self.last_name) {
                    return Err(StoreError::invalid(
                        "last_name",
                        "a person needs a last name",
                    ));
                }
            }
            SubscriberKind::Company => {
                if !opt_not_blank(&self.company_name) {
                    return Err(StoreError::invalid(
                        "company_name",
                        "a company needs a name",
                    ));
                }
            }
        }
        check_postcode("home_postcode", &self.home.postcode)?;
        if let Some(c) = &self.correspondence {
            check_postcode("correspondence_postcode", &c.postcode)?;
        }
        if let Some(email) = self.email.as_deref().filter(|e| !e.is_empty()) {
            if !valid_email(email) {
                return Err(StoreError::invalid(
                    "email",
                    format!("{email:?} is not an e-mail address (name@domain.pl)"),
                ));
            }
        }
        if let Some(phone) = self.phone.as_deref().filter(|p| !p.is_empty()) {
            if !valid_phone(phone) {
                return Err(StoreError::invalid(
                    "phone",
                    format!(
                        "{phone:?} is not a phone number (9 to 15 digits, e.g. 12 345 67 89 \
                         or +48 12 345 67 89)"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn vals(&self, updated_at: OffsetDateTime) -> Vec<(&'static str, Val)> {
        let mut v = vec![
            ("ext_id", Val::from(&self.ext_id)),
            ("kind", Val::from(self.kind.as_str())),
            ("first_name", Val::from(&self.first_name)),
            ("last_name", Val::from(&self.last_name)),
            ("company_name", Val::from(&self.company_name)),
            ("pesel", Val::from(self.pesel.as_ref().map(Pesel::as_str))),
            ("nip", Val::from(self.nip.as_ref().map(Nip::as_str))),
        ];
        v.extend(address_vals(&HOME, Some(&self.home)));
        v.extend(address_vals(&CORR, self.correspondence.as_ref()));
        v.extend([
            ("phone", Val::from(&self.phone)),
            ("email", Val::from(&self.email)),
            (
                "bank_account",
                Val::from(self.bank_account.as_ref().map(Nrb::as_str)),
            ),
            ("updated_at", Val::from(updated_at)),
        ]);
        v
    }
}

/// A stored subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub ext_id: String,
    pub kind: SubscriberKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub pesel: Option<Pesel>,
    pub nip: Option<Nip>,
    pub home: Address,
    pub correspondence: Option<Address>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub bank_account: Option<Nrb>,
    pub updated_at: OffsetDateTime,
}

impl Subscriber {
    /// "Jan Kowalski" or the company name.
    pub fn display_name(&self) -> String {
        match self.kind {
            SubscriberKind::Company => self.company_name.clone().unwrap_or_default(),
            SubscriberKind::Person => {
                let parts = [self.first_name.as_deref(), self.last_name.as_deref()];
                parts.into_iter().flatten().collect::<Vec<_>>().join(" ")
            }
        }
    }

    /// Where letters go: the correspondence address when given, else home.
    pub fn mailing_address(&self) -> &Address {
        self.correspondence.as_ref().unwrap_or(&self.home)
    }

    pub fn to_record(&self) -> SubscriberRecord {
        SubscriberRecord {
            ext_id: self.ext_id.clone(),
            kind: self.kind,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            company_name: self.company_name.clone(),
            pesel: self.pesel.clone(),
            nip: self.nip.clone(),
            home: self.home.clone(),
            correspondence: self.correspondence.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            bank_account: self.bank_account.clone(),
        }
    }
}

pub(crate) const SUBSCRIBER_COLS: &[&str] = &[
    "id",
    "ext_id",
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "pesel",
    "nip",
    "home_street",
    "home_postcode",
    "home_city",
    "corr_street",
    "corr_postcode",
    "corr_city",
    "phone",
    "email",
    "bank_account",
    "updated_at",
];

pub(crate) fn read_subscriber<R: RowGet>(c: &Cols<'_, R>) -> Result<Subscriber, sqlx::Error> {
    Ok(Subscriber {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        kind: c.parse("kind")?,
        first_name: c.opt_text("first_name")?,
        last_name: c.opt_text("last_name")?,
        company_name: c.opt_text("company_name")?,
        pesel: c.opt_parse("pesel")?,
        nip: c.opt_parse("nip")?,
        home: required_address(c, &HOME)?,
        correspondence: read_address(c, &CORR)?,
        phone: c.opt_text("phone")?,
        email: c.opt_text("email")?,
        bank_account: c.opt_parse("bank_account")?,
        updated_at: c.ts("updated_at")?,
    })
}

impl SubscriberRecord {
    /// `self` with the fields `absent` names taken from `stored` (see [`Absent`]).
    pub fn kept(&self, stored: &SubscriberRecord, absent: &Absent) -> SubscriberRecord {
        let mut r = self.clone();
        let keep = |field: &str| absent.has(field);
        if keep("first_name") {
            r.first_name = stored.first_name.clone();
        }
        if keep("last_name") {
            r.last_name = stored.last_name.clone();
        }
        if keep("company_name") {
            r.company_name = stored.company_name.clone();
        }
        if keep("pesel") {
            r.pesel = stored.pesel.clone();
        }
        if keep("nip") {
            r.nip = stored.nip.clone();
        }
        if keep("correspondence_street") {
            r.correspondence = stored.correspondence.clone();
        }
        if keep("phone") {
            r.phone = stored.phone.clone();
        }
        if keep("email") {
            r.email = stored.email.clone();
        }
        if keep("bank_account") {
            r.bank_account = stored.bank_account.clone();
        }
        r
    }
}

pub(super) fn subscriber_select() -> String {
    format!(
        "SELECT {} FROM subscribers s WHERE s.ext_id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    )
}

/// [`upsert_subscriber`], the fields `absent` names kept as stored.
pub async fn upsert_subscriber_keeping(
    tx: &mut DbTx,
    rec: &SubscriberRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if absent.is_empty() {
        return upsert_subscriber(tx, rec).await;
    }
    let select = subscriber_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?);
    match stored {
        Some(s) => upsert_subscriber(tx, &rec.kept(&s.to_record(), absent)).await,
        None => upsert_subscriber(tx, rec).await,
    }
}

/// Insert or update a subscriber by `ext_id`.
pub async fn upsert_subscriber(
    tx: &mut DbTx,
    rec: &SubscriberRecord,
) -> Result<Upserted, StoreError> {
    rec.check()?;
    let select = subscriber_select();
    let vals = rec.vals(now());
    let uniques = [(UniqueField::ExtId(Entity::Subscriber), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => upsert_steps!(conn, "subscribers", rec, vals, &uniques, {
        sqlx::query(&select)
            .bind(&rec.ext_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| read_subscriber(&Cols::new(&r)).map(|s| (s.id, s.to_record())))
            .transpose()?
    }));
    Ok(outcome)
}

/// A subscriber by internal id.
pub async fn subscriber(db: &Db, id: i64) -> Result<Option<Subscriber>, StoreError> {
    let sql = format!(
        "SELECT {} FROM subscribers s WHERE s.id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?))
}

/// A subscriber by the billing system's id.
pub async fn subscriber_by_ext_id(db: &Db, ext_id: &str) -> Result<Option<Subscriber>, StoreError> {
    let sql = format!(
        "SELECT {} FROM subscribers s WHERE s.ext_id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ext_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?))
}
