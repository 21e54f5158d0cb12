//! Joins: subscriber and contract by PPPoE login, the dashboard overview, the holder of a
//! contract by PESEL or NIP and contract number (registration).

use super::*;

/// `SELECT s.… AS s_…, c.… AS c_… FROM contracts c JOIN subscribers s …` + `tail`.
pub(super) fn subscriber_contract_sql(from_and_where: &str) -> String {
    format!(
        "SELECT {}, {} {from_and_where}",
        select_list("s", "s_", SUBSCRIBER_COLS),
        select_list("c", "c_", CONTRACT_COLS)
    )
}

pub(super) fn read_pair<R: RowGet>(r: &R) -> Result<(Subscriber, Contract), sqlx::Error> {
    Ok((
        read_subscriber(&Cols::prefixed(r, "s_"))?,
        read_contract(&Cols::prefixed(r, "c_"))?,
    ))
}

/// The subscriber and contract behind a PPPoE login (the RADIUS User-Name, exact match) —
/// the join from a live session to its owner. The contract's status is not checked here.
pub async fn subscriber_by_login(
    db: &Db,
    pppoe_login: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    let sql = subscriber_contract_sql(
        "FROM pppoe_accounts a JOIN contracts c ON c.id = a.contract_id \
         JOIN subscribers s ON s.id = c.subscriber_id WHERE a.login = $1",
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(pppoe_login)
        .fetch_optional(pool)
        .await?
        .map(|r| read_pair(&r))
        .transpose()?))
}

/// What "Twój panel" shows of the logged-in subscriber: him, his contracts and their IPs.
/// Read in the same query as his session and account (the select list, joins and order
/// below, after `subscribers s`).
#[derive(Debug, Clone)]
pub struct Overview {
    pub subscriber: Subscriber,
    /// Newest first (as [`contracts_of`]), each with its IPs (as [`ip_assignments_of`]).
    pub contracts: Vec<(Contract, Vec<IpAssignment>)>,
}

/// The columns of an [`Overview`] (prefixes `s_`, `c_`, `i_`).
pub(crate) fn overview_select_list() -> String {
    format!(
        "{}, {}, {}",
        select_list("s", "s_", SUBSCRIBER_COLS),
        select_list("c", "c_", CONTRACT_COLS),
        select_list("i", "i_", IP_COLS)
    )
}

/// The joins of an [`Overview`] after `subscribers s`.
pub(crate) const OVERVIEW_JOINS: &str = "LEFT JOIN contracts c ON c.subscriber_id = s.id \
     LEFT JOIN ip_assignments i ON i.contract_id = c.id";

/// The order [`read_overview`] needs (contracts newest first, then their IPs).
pub(crate) const OVERVIEW_ORDER: &str =
    "ORDER BY c.starts_on DESC, c.id DESC, i.activated_on, i.address, i.id";

/// The overview in rows selected with [`overview_select_list`]; `None` without a subscriber.
pub(crate) fn read_overview<R: RowGet>(rows: &[R]) -> Result<Option<Overview>, sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let s = Cols::prefixed(first, "s_");
    if s.opt_i64("id")?.is_none() {
        return Ok(None);
    }
    let subscriber = read_subscriber(&s)?;
    let mut contracts: Vec<(Contract, Vec<IpAssignment>)> = Vec::new();
    for r in rows {
        let c = Cols::prefixed(r, "c_");
        let Some(contract_id) = c.opt_i64("id")? else {
            continue; // no contract at all
        };
        if contracts.last().map(|(k, _)| k.id) != Some(contract_id) {
            contracts.push((read_contract(&c)?, Vec::new()));
        }
        let i = Cols::prefixed(r, "i_");
        if i.opt_i64("id")?.is_some() {
            if let Some((_, ips)) = contracts.last_mut() {
                ips.push(read_ip(&i)?);
            }
        }
    }
    Ok(Some(Overview {
        subscriber,
        contracts,
    }))
}

/// For registration: the subscriber with this PESEL holding the contract with this number.
pub async fn subscriber_by_pesel_and_contract(
    db: &Db,
    pesel: &Pesel,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    holder_of_contract(db, "pesel", pesel.as_str(), contract_number).await
}

/// For registration of a company: the subscriber with this NIP holding this contract.
pub async fn subscriber_by_nip_and_contract(
    db: &Db,
    nip: &Nip,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    holder_of_contract(db, "nip", nip.as_str(), contract_number).await
}

/// The subscriber whose identifier column (`pesel` or `nip`, never user input) equals `id`
/// and who holds the contract with this number.
pub(super) async fn holder_of_contract(
    db: &Db,
    id_column: &'static str,
    id: &str,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    let sql = subscriber_contract_sql(&format!(
        "FROM contracts c JOIN subscribers s ON s.id = c.subscriber_id \
         WHERE c.number = $1 AND s.{id_column} = $2"
    ));
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_number.trim())
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_pair(&r))
        .transpose()?))
}
