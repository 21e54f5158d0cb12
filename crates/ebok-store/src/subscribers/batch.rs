//! Batch upserts for the import: new rows inserted in multi-row statements, the rest
//! upserted one by one.

use super::*;

/// The fast path `$fast` (`Result<bool, StoreError>`: `true` when it wrote every record as
/// new), else `$one` on each record in turn; evaluates to the batch function's result.
macro_rules! batch_or_each {
    ($tx:ident, $recs:ident, $absents:ident, $fast:expr, $one:path) => {{
        match $fast {
            Ok(true) => return Ok(vec![Upserted::Inserted; $recs.len()]),
            Ok(false) => {}
            Err(e) => return Err((0, e)),
        }
        let mut out = Vec::with_capacity($recs.len());
        for (i, rec) in $recs.iter().enumerate() {
            let absent = $absents.get(i).unwrap_or(Absent::NONE);
            out.push($one($tx, rec, absent).await.map_err(|e| (i, e))?);
        }
        Ok(out)
    }};
}

/// The distinct values of `keys`.
pub(super) fn distinct<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = keys.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// [`upsert_subscriber_keeping`] for consecutive records of one file (each with what it lacks
/// in `absents`, none when shorter), with the same outcome and the
/// same first error (by index into `recs`). A batch of valid new subscribers is written with
/// multi-row statements; any other batch (an update, a refused record) goes record by record.
pub(crate) async fn upsert_subscribers(
    tx: &mut DbTx,
    recs: &[SubscriberRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_subscribers(tx, recs).await,
        upsert_subscriber_keeping
    )
}

/// Insert `recs` when all of them are valid and new; `false` (nothing written) otherwise.
pub(super) async fn insert_new_subscribers(
    tx: &mut DbTx,
    recs: &[SubscriberRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.check().is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str())) {
        return Ok(false);
    }
    let written = on_tx!(tx, conn => {
        if !ids_by!(conn, "subscribers", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
            .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> =
                recs.iter().map(|r| r.vals(updated_at)).collect();
            insert_rows!(conn, "subscribers", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_contract`] for consecutive records, like [`upsert_subscribers`]: the fast path
/// needs valid new contracts with free numbers whose subscribers are stored.
pub(crate) async fn upsert_contracts(
    tx: &mut DbTx,
    recs: &[ContractRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_contracts(tx, recs).await,
        upsert_contract_keeping
    )
}

pub(super) async fn insert_new_contracts(
    tx: &mut DbTx,
    recs: &[ContractRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.check().is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str()))
        || has_duplicates(recs.iter().map(|r| r.number.as_str()))
    {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.subscriber_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let subscriber_ids = ids_by!(conn, "subscribers", "ext_id", parents.clone());
        if subscriber_ids.len() < parents.len()
            || !ids_by!(conn, "contracts", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
            || !ids_by!(conn, "contracts", "number", recs.iter().map(|r| r.number.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| r.vals(subscriber_ids[&r.subscriber_ext_id], updated_at))
                .collect();
            insert_rows!(conn, "contracts", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_pppoe_account`] for consecutive records, like [`upsert_subscribers`]: the fast
/// path needs valid new accounts with free logins whose contracts are stored.
pub(crate) async fn upsert_pppoe_accounts(
    tx: &mut DbTx,
    recs: &[PppoeAccountRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_pppoe_accounts(tx, recs).await,
        upsert_pppoe_account_keeping
    )
}

pub(super) async fn insert_new_pppoe_accounts(
    tx: &mut DbTx,
    recs: &[PppoeAccountRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty()
        || recs.iter().any(|r| {
            not_blank("ext_id", &r.ext_id).is_err() || not_blank("login", &r.login).is_err()
        })
    {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str()))
        || has_duplicates(recs.iter().map(|r| r.login.as_str()))
    {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.contract_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let contract_ids = ids_by!(conn, "contracts", "ext_id", parents.clone());
        if contract_ids.len() < parents.len()
            || !ids_by!(conn, "pppoe_accounts", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
            || !ids_by!(conn, "pppoe_accounts", "login", recs.iter().map(|r| r.login.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| {
                    vec![
                        ("ext_id", Val::from(&r.ext_id)),
                        ("contract_id", Val::from(contract_ids[&r.contract_ext_id])),
                        ("login", Val::from(&r.login)),
                        ("password", Val::from(&r.password)),
                        ("updated_at", Val::from(updated_at)),
                    ]
                })
                .collect();
            insert_rows!(conn, "pppoe_accounts", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_ip_assignment`] for consecutive records, like [`upsert_subscribers`]: the fast
/// path needs valid new assignments whose contracts are stored.
pub(crate) async fn upsert_ip_assignments(
    tx: &mut DbTx,
    recs: &[IpAssignmentRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_ip_assignments(tx, recs).await,
        upsert_ip_assignment_keeping
    )
}

pub(super) async fn insert_new_ip_assignments(
    tx: &mut DbTx,
    recs: &[IpAssignmentRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| not_blank("ext_id", &r.ext_id).is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str())) {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.contract_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let contract_ids = ids_by!(conn, "contracts", "ext_id", parents.clone());
        if contract_ids.len() < parents.len()
            || !ids_by!(conn, "ip_assignments", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| {
                    let mut vals = vec![
                        ("ext_id", Val::from(&r.ext_id)),
                        ("contract_id", Val::from(contract_ids[&r.contract_ext_id])),
                        ("address", Val::from(ip_text(&r.address).as_str())),
                        ("kind", Val::from(r.kind.as_str())),
                        ("activated_on", Val::from(r.activated_on)),
                    ];
                    vals.extend(address_vals(&INST, r.installation.as_ref()));
                    vals.push(("updated_at", Val::from(updated_at)));
                    vals
                })
                .collect();
            insert_rows!(conn, "ip_assignments", &rows);
            true
        }
    });
    Ok(written)
}
