//! The demo's payment reminder: the first debtor gets a panel account with a confirmed
//! address, and the demo's `[reminders]` days put that subscriber's unpaid invoice of this
//! month (issued on the 1st, due on the 15th) in today's window at any hour, so the outbox
//! holds a reminder as soon as the demo runs.

use super::*;
use crate::store::panel;
use crate::store::subscribers::subscriber_by_ext_id;
use crate::web::billing::RemindersConfig;

/// The subscriber who is reminded: the first debtor, whose invoice of this month is unpaid.
const DEBTOR: u32 = DEBTORS[0].0;
/// The day of the month the demo's invoices fall due (they are issued on the 1st).
const DUE_DAY: u8 = 1 + super::billing::DAYS_TO_PAY;

/// `[reminders]` for the demo on `today`: before the 15th (and on it) the reminder before
/// the due date, after it the one after, both on the day the demo runs and at any hour.
pub fn reminders_config(today: Date) -> RemindersConfig {
    let day = today.day();
    let mut cfg = RemindersConfig {
        from_hour: 0,
        until_hour: 24,
        ..RemindersConfig::default()
    };
    if day <= DUE_DAY {
        cfg.days_before = u32::from((DUE_DAY - day).max(1));
    } else {
        cfg.days_after = u32::from(day - DUE_DAY);
    }
    cfg
}

/// Give the debtor a panel account with a confirmed address unless the subscriber has one
/// (its password is random and shown nowhere: the account is there to be mailed). Gives the
/// account's address when it was made now.
pub async fn load_reminder_account(db: &Db) -> anyhow::Result<Option<String>> {
    let sub = subscriber_by_ext_id(db, &ext("sub", DEBTOR))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo data set has no subscriber {DEBTOR}"))?;
    if panel::panel_account_of_subscriber(db, sub.id)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let email = sub
        .email
        .clone()
        .unwrap_or_else(|| format!("abonent{DEBTOR}@example.pl"));
    let password = format!("{:032x}", rand::random::<u128>());
    let hash = crate::web::passwords::hash(&password).await?;
    let mut tx = db.begin().await?;
    let id =
        panel::create_panel_account(&mut tx, sub.id, &format!("abonent{DEBTOR}"), &hash, &email)
            .await?;
    panel::confirm_email(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Some(email))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_this_months_due_date_on_every_day() {
        for day in 1..=31u8 {
            let Ok(today) = Date::from_calendar_date(2026, Month::December, day) else {
                continue;
            };
            let cfg = reminders_config(today);
            assert!(cfg.problems().is_empty(), "{day}: {:?}", cfg.problems());
            let due = today.replace_day(DUE_DAY).unwrap();
            if day <= DUE_DAY {
                // The sender's window for reminders before: due dates today … today + days.
                let last = today + time::Duration::days(i64::from(cfg.days_before));
                assert!(today <= due && due <= last, "{day}");
            } else {
                assert_eq!(due + time::Duration::days(i64::from(cfg.days_after)), today);
            }
        }
    }
}
