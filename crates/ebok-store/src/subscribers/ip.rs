//! IP assignments of a contract: static addresses and pools, IPv4 and IPv6 prefixes.

use super::*;

/// Parse `192.0.2.10` (a single address) or `2001:db8:1::/48` (a prefix).
pub(crate) fn parse_ip_or_net(s: &str) -> Result<IpNet, ipnet::AddrParseError> {
    let s = s.trim();
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => s.parse::<IpNet>(),
    }
}

/// Stored form: a bare address for a single host, `net/len` for a prefix.
pub(crate) fn ip_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

pub(super) fn deserialize_ip_or_net<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    parse_ip_or_net(&s).map_err(serde::de::Error::custom)
}

#[derive(Debug, thiserror::Error)]
#[error("not an IP address or prefix")]
pub(super) struct BadIp;

/// An assigned IP as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IpAssignmentRecord {
    pub ext_id: String,
    pub contract_ext_id: String,
    /// An address (`192.0.2.10`) or a prefix (`2001:db8:1::/48`).
    #[serde(deserialize_with = "deserialize_ip_or_net")]
    pub address: IpNet,
    pub kind: IpKind,
    #[serde(default, with = "iso_date::option")]
    pub activated_on: Option<Date>,
    /// Where this IP is used, when it differs from the contract's installation address.
    pub installation: Option<Address>,
}

/// A stored IP assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAssignment {
    pub id: i64,
    pub ext_id: String,
    pub contract_id: i64,
    pub address: IpNet,
    pub kind: IpKind,
    pub activated_on: Option<Date>,
    pub installation: Option<Address>,
    pub updated_at: OffsetDateTime,
}

impl IpAssignment {
    /// The address as shown: `192.0.2.10` or `2001:db8:1::/48`.
    pub fn address_text(&self) -> String {
        ip_text(&self.address)
    }

    pub fn to_record(&self, contract_ext_id: String) -> IpAssignmentRecord {
        IpAssignmentRecord {
            ext_id: self.ext_id.clone(),
            contract_ext_id,
            address: self.address,
            kind: self.kind,
            activated_on: self.activated_on,
            installation: self.installation.clone(),
        }
    }
}

pub(super) const IP_COLS: &[&str] = &[
    "id",
    "ext_id",
    "contract_id",
    "address",
    "kind",
    "activated_on",
    "inst_street",
    "inst_postcode",
    "inst_city",
    "updated_at",
];

pub(super) fn read_ip<R: RowGet>(c: &Cols<'_, R>) -> Result<IpAssignment, sqlx::Error> {
    let text = c.text("address")?;
    let address = parse_ip_or_net(&text).map_err(|_| sqlx::Error::ColumnDecode {
        index: "address".into(),
        source: Box::new(BadIp),
    })?;
    Ok(IpAssignment {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        contract_id: c.i64("contract_id")?,
        address,
        kind: c.parse("kind")?,
        activated_on: c.opt_date("activated_on")?,
        installation: read_address(c, &INST)?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update an IP assignment by `ext_id`; its contract is named by the contract's
/// `ext_id`.
pub async fn upsert_ip_assignment(
    tx: &mut DbTx,
    rec: &IpAssignmentRecord,
) -> Result<Upserted, StoreError> {
    not_blank("ext_id", &rec.ext_id)?;
    if let Some(a) = &rec.installation {
        check_postcode("installation_postcode", &a.postcode)?;
    }
    let select = ip_select();
    let uniques = [(
        UniqueField::ExtId(Entity::IpAssignment),
        rec.ext_id.as_str(),
    )];
    let (outcome, _) = on_tx!(tx, conn => {
        let contract_id = parent_id!(conn, Entity::Contract, &rec.contract_ext_id);
        let mut vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("contract_id", Val::from(contract_id)),
            ("address", Val::from(ip_text(&rec.address).as_str())),
            ("kind", Val::from(rec.kind.as_str())),
            ("activated_on", Val::from(rec.activated_on)),
        ];
        vals.extend(address_vals(&INST, rec.installation.as_ref()));
        vals.push(("updated_at", Val::from(now())));
        upsert_steps!(conn, "ip_assignments", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_ip(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

pub(super) fn ip_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM ip_assignments i \
         JOIN contracts p ON p.id = i.contract_id WHERE i.ext_id = $1",
        select_list("i", "", IP_COLS)
    )
}

/// [`upsert_ip_assignment`], the fields `absent` names (`activated_on`, the installation
/// address) kept as stored.
pub async fn upsert_ip_assignment_keeping(
    tx: &mut DbTx,
    rec: &IpAssignmentRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if absent.is_empty() {
        return upsert_ip_assignment(tx, rec).await;
    }
    let select = ip_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_ip(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(i) = stored {
        if absent.has("activated_on") {
            rec.activated_on = i.activated_on;
        }
        if absent.has("installation_street") {
            rec.installation = i.installation;
        }
    }
    upsert_ip_assignment(tx, &rec).await
}

/// The IPs of a contract, by activation date then address.
pub async fn ip_assignments_of(db: &Db, contract_id: i64) -> Result<Vec<IpAssignment>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ip_assignments i WHERE i.contract_id = $1 \
         ORDER BY i.activated_on, i.address, i.id",
        select_list("i", "", IP_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_ip(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Assignments of exactly this address (single-host entries; prefixes are not searched).
pub async fn ip_assignments_by_address(
    db: &Db,
    ip: IpAddr,
) -> Result<Vec<IpAssignment>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ip_assignments i WHERE i.address = $1 ORDER BY i.id",
        select_list("i", "", IP_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ip.to_string())
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_ip(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}
