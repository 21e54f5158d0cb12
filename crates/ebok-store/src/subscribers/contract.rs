//! Contracts of a subscriber: number, period, fee, installation address and status.

use super::*;

/// A contract as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ContractRecord {
    pub ext_id: String,
    pub subscriber_ext_id: String,
    /// The contract number the subscriber knows (Nr Umowy), unique.
    pub number: String,
    #[serde(with = "iso_date")]
    pub starts_on: Date,
    /// `None`: open-ended.
    #[serde(default, with = "iso_date::option")]
    pub ends_on: Option<Date>,
    pub monthly_fee: Money,
    pub tariff: String,
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub installation: Address,
    pub status: ContractStatus,
}

impl ContractRecord {
    pub fn check(&self) -> Result<(), StoreError> {
        not_blank("ext_id", &self.ext_id)?;
        not_blank("number", &self.number)?;
        if let Some(end) = self.ends_on {
            if end < self.starts_on {
                return Err(StoreError::invalid(
                    "ends_on",
                    "the contract ends before it starts",
                ));
            }
        }
        check_postcode("installation_postcode", &self.installation.postcode)
    }

    pub(super) fn vals(
        &self,
        subscriber_id: i64,
        updated_at: OffsetDateTime,
    ) -> Vec<(&'static str, Val)> {
        let mut v = vec![
            ("ext_id", Val::from(&self.ext_id)),
            ("subscriber_id", Val::from(subscriber_id)),
            ("number", Val::from(&self.number)),
            ("starts_on", Val::from(self.starts_on)),
            ("ends_on", Val::from(self.ends_on)),
            ("monthly_fee", Val::from(self.monthly_fee)),
            ("tariff", Val::from(&self.tariff)),
            ("download_kbps", Val::from(i64::from(self.download_kbps))),
            ("upload_kbps", Val::from(i64::from(self.upload_kbps))),
        ];
        v.extend(address_vals(&INST, Some(&self.installation)));
        v.extend([
            ("status", Val::from(self.status.as_str())),
            ("updated_at", Val::from(updated_at)),
        ]);
        v
    }
}

/// A stored contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub id: i64,
    pub ext_id: String,
    pub subscriber_id: i64,
    pub number: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub monthly_fee: Money,
    pub tariff: String,
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub installation: Address,
    pub status: ContractStatus,
    pub updated_at: OffsetDateTime,
}

impl Contract {
    pub fn to_record(&self, subscriber_ext_id: String) -> ContractRecord {
        ContractRecord {
            ext_id: self.ext_id.clone(),
            subscriber_ext_id,
            number: self.number.clone(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            monthly_fee: self.monthly_fee,
            tariff: self.tariff.clone(),
            download_kbps: self.download_kbps,
            upload_kbps: self.upload_kbps,
            installation: self.installation.clone(),
            status: self.status,
        }
    }
}

pub(crate) const CONTRACT_COLS: &[&str] = &[
    "id",
    "ext_id",
    "subscriber_id",
    "number",
    "starts_on",
    "ends_on",
    "monthly_fee",
    "tariff",
    "download_kbps",
    "upload_kbps",
    "inst_street",
    "inst_postcode",
    "inst_city",
    "status",
    "updated_at",
];

pub(crate) fn read_contract<R: RowGet>(c: &Cols<'_, R>) -> Result<Contract, sqlx::Error> {
    Ok(Contract {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        subscriber_id: c.i64("subscriber_id")?,
        number: c.text("number")?,
        starts_on: c.date("starts_on")?,
        ends_on: c.opt_date("ends_on")?,
        monthly_fee: c.money("monthly_fee")?,
        tariff: c.text("tariff")?,
        download_kbps: c.u32("download_kbps")?,
        upload_kbps: c.u32("upload_kbps")?,
        installation: required_address(c, &INST)?,
        status: c.parse("status")?,
        updated_at: c.ts("updated_at")?,
    })
}

pub(super) fn contract_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM contracts c \
         JOIN subscribers p ON p.id = c.subscriber_id WHERE c.ext_id = $1",
        select_list("c", "", CONTRACT_COLS)
    )
}

/// [`upsert_contract`], the fields `absent` names (`ends_on`) kept as stored.
pub async fn upsert_contract_keeping(
    tx: &mut DbTx,
    rec: &ContractRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if !absent.has("ends_on") {
        return upsert_contract(tx, rec).await;
    }
    let select = contract_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_contract(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(c) = stored {
        rec.ends_on = c.ends_on;
    }
    upsert_contract(tx, &rec).await
}

/// Insert or update a contract by `ext_id`; its subscriber is named by the subscriber's
/// `ext_id` ([`StoreError::UnknownReference`] when not stored).
pub async fn upsert_contract(tx: &mut DbTx, rec: &ContractRecord) -> Result<Upserted, StoreError> {
    rec.check()?;
    let select = contract_select();
    let uniques = [
        (UniqueField::ContractNumber, rec.number.as_str()),
        (UniqueField::ExtId(Entity::Contract), rec.ext_id.as_str()),
    ];
    let (outcome, _) = on_tx!(tx, conn => {
        let subscriber_id = parent_id!(conn, Entity::Subscriber, &rec.subscriber_ext_id);
        let vals = rec.vals(subscriber_id, now());
        upsert_steps!(conn, "contracts", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_contract(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

pub(super) async fn contracts_where(
    db: &Db,
    condition: &str,
    id: i64,
) -> Result<Vec<Contract>, StoreError> {
    let sql = format!(
        "SELECT {} FROM contracts c WHERE {condition} ORDER BY c.starts_on DESC, c.id DESC",
        select_list("c", "", CONTRACT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_contract(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// The contracts of a subscriber, newest first.
pub async fn contracts_of(db: &Db, subscriber_id: i64) -> Result<Vec<Contract>, StoreError> {
    contracts_where(db, "c.subscriber_id = $1", subscriber_id).await
}

/// A contract, only if it belongs to `subscriber_id`.
pub async fn contract_for(
    db: &Db,
    subscriber_id: i64,
    contract_id: i64,
) -> Result<Option<Contract>, StoreError> {
    let sql = format!(
        "SELECT {} FROM contracts c WHERE c.id = $1 AND c.subscriber_id = $2",
        select_list("c", "", CONTRACT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_contract(&Cols::new(&r)))
        .transpose()?))
}
