//! PPPoE accounts: the RADIUS User-Name of one contract.

use super::*;

/// A PPPoE account as the billing system sends it. The password is kept so that its owner
/// may reveal it to configure a router; `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct PppoeAccountRecord {
    pub ext_id: String,
    pub contract_ext_id: String,
    /// RADIUS User-Name, unique.
    pub login: String,
    pub password: Option<String>,
}

impl fmt::Debug for PppoeAccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeAccountRecord")
            .field("ext_id", &self.ext_id)
            .field("contract_ext_id", &self.contract_ext_id)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A stored PPPoE account.
#[derive(Clone, PartialEq, Eq)]
pub struct PppoeAccount {
    pub id: i64,
    pub ext_id: String,
    pub contract_id: i64,
    pub login: String,
    pub password: Option<String>,
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for PppoeAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeAccount")
            .field("id", &self.id)
            .field("ext_id", &self.ext_id)
            .field("contract_id", &self.contract_id)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl PppoeAccount {
    pub fn to_record(&self, contract_ext_id: String) -> PppoeAccountRecord {
        PppoeAccountRecord {
            ext_id: self.ext_id.clone(),
            contract_ext_id,
            login: self.login.clone(),
            password: self.password.clone(),
        }
    }
}

pub(super) const PPPOE_COLS: &[&str] = &[
    "id",
    "ext_id",
    "contract_id",
    "login",
    "password",
    "updated_at",
];

pub(super) fn read_pppoe<R: RowGet>(c: &Cols<'_, R>) -> Result<PppoeAccount, sqlx::Error> {
    Ok(PppoeAccount {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        contract_id: c.i64("contract_id")?,
        login: c.text("login")?,
        password: c.opt_text("password")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update a PPPoE account by `ext_id`; its contract is named by the contract's
/// `ext_id`. A login held by another account is [`StoreError::Duplicate`].
pub async fn upsert_pppoe_account(
    tx: &mut DbTx,
    rec: &PppoeAccountRecord,
) -> Result<Upserted, StoreError> {
    not_blank("ext_id", &rec.ext_id)?;
    not_blank("login", &rec.login)?;
    let select = pppoe_select();
    let uniques = [
        (UniqueField::PppoeLogin, rec.login.as_str()),
        (
            UniqueField::ExtId(Entity::PppoeAccount),
            rec.ext_id.as_str(),
        ),
    ];
    let (outcome, _) = on_tx!(tx, conn => {
        let contract_id = parent_id!(conn, Entity::Contract, &rec.contract_ext_id);
        let vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("contract_id", Val::from(contract_id)),
            ("login", Val::from(&rec.login)),
            ("password", Val::from(&rec.password)),
            ("updated_at", Val::from(now())),
        ];
        upsert_steps!(conn, "pppoe_accounts", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_pppoe(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

pub(super) fn pppoe_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM pppoe_accounts a \
         JOIN contracts p ON p.id = a.contract_id WHERE a.ext_id = $1",
        select_list("a", "", PPPOE_COLS)
    )
}

/// [`upsert_pppoe_account`], the fields `absent` names (`password`) kept as stored.
pub async fn upsert_pppoe_account_keeping(
    tx: &mut DbTx,
    rec: &PppoeAccountRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if !absent.has("password") {
        return upsert_pppoe_account(tx, rec).await;
    }
    let select = pppoe_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_pppoe(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(a) = stored {
        rec.password = a.password;
    }
    upsert_pppoe_account(tx, &rec).await
}

/// The PPPoE accounts of a contract, by login.
pub async fn pppoe_accounts_of(db: &Db, contract_id: i64) -> Result<Vec<PppoeAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM pppoe_accounts a WHERE a.contract_id = $1 ORDER BY a.login",
        select_list("a", "", PPPOE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_pppoe(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// The PPPoE accounts of every contract of a subscriber, by login (the panel's PPPoE page
/// and the filter for the subscriber's live sessions and history).
pub async fn pppoe_accounts_of_subscriber(
    db: &Db,
    subscriber_id: i64,
) -> Result<Vec<PppoeAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM pppoe_accounts a JOIN contracts c ON c.id = a.contract_id \
         WHERE c.subscriber_id = $1 ORDER BY a.login",
        select_list("a", "", PPPOE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_pppoe(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}
