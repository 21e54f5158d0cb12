//! The panel's reference and costs: a hello-world axum handler, one argon2id verification,
//! the demo subscriber's contract number, ten years of billing, one invoice PDF.

use super::*;

/// The smallest useful axum server: one route, a static body, no middleware. Runs until
/// killed.
pub(super) async fn hello(args: HelloArgs) -> anyhow::Result<()> {
    async fn handler() -> &'static str {
        "Hello, World!"
    }
    let app = axum::Router::new().route("/", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("hello-world on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Hash one password with `ebok::web::passwords::hash`, then verify it `--n` times in a row
/// with `verify` (each on tokio's blocking pool, as the login handler does, but never two at
/// once): mean and p99 per verification, and what one core sustains.
pub(super) async fn argon2_cost(args: Argon2Args) -> anyhow::Result<()> {
    use ebok::web::passwords::{hash, verify};
    let password = "Wiosna nad Wisłą 7";
    let stored = hash(password).await?;
    let params = stored.split('$').nth(3).unwrap_or("?").to_owned();
    anyhow::ensure!(
        verify(password, Some(&stored)).await?,
        "verify refused the password"
    );
    let n = args.n.max(1);
    let mut micros = Vec::with_capacity(n as usize);
    let cpu0 = proc_cpu_ticks(std::process::id())?;
    let t0 = Instant::now();
    for i in 0..n {
        // Alternate right and wrong passwords: both take the full cost.
        let given = if i % 2 == 0 { password } else { "zły 1234567" };
        let t = Instant::now();
        let ok = verify(given, Some(&stored)).await?;
        micros.push(t.elapsed().as_micros() as u32);
        anyhow::ensure!(ok == (i % 2 == 0), "wrong verification result");
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (proc_cpu_ticks(std::process::id())? - cpu0) as f64 / clock_ticks_per_second();
    micros.sort_unstable();
    let mean_ms = micros.iter().map(|&m| f64::from(m)).sum::<f64>() / f64::from(n) / 1000.0;
    let p99_ms = f64::from(percentile(&micros, 0.99)) / 1000.0;
    println!(
        "RESULT argon2 params={params} n={n} mean_ms={mean_ms:.1} p99_ms={p99_ms:.1} \
         per_core_per_s={:.1} cpu_ms_per_verify={:.1}",
        f64::from(n) / wall,
        cpu * 1000.0 / f64::from(n),
    );
    Ok(())
}

pub(super) async fn demo_contract(args: DemoContractArgs) -> anyhow::Result<()> {
    let db = ebok::store::Db::connect(&args.database_url)
        .await
        .context("opening the database")?;
    let (_, contract) = ebok::store::subscribers::subscriber_by_login(&db, ebok::demo::DEMO_LOGIN)
        .await?
        .context("the demo data set is not loaded")?;
    println!("{}", contract.number);
    Ok(())
}

/// Jan Kowalski (the demo's live line) and his subscriber record.
pub(super) async fn demo_jan(
    url: &str,
) -> anyhow::Result<(ebok::store::Db, ebok::store::subscribers::Subscriber)> {
    let db = ebok::store::Db::connect(url)
        .await
        .context("opening the database")?;
    let (sub, _) = ebok::store::subscribers::subscriber_by_login(&db, ebok::demo::DEMO_LOGIN)
        .await?
        .context("the demo data set is not loaded")?;
    Ok((db, sub))
}

/// Monthly invoices (subscription 79.99 zł and a router 9.99 zł, 23 % VAT, issued on the 1st,
/// due on the 15th, paid on the 10th) for the months before the demo's own twelve, back to
/// `years` years before the current month; idempotent (fixed ext ids).
pub(super) async fn billing_history(args: BillingHistoryArgs) -> anyhow::Result<()> {
    use ebok::store::billing::{
        upsert_invoices, upsert_payments, InvoiceLine, InvoiceRecord, InvoiceStatus, PaymentRecord,
    };
    use ebok::store::money::{LineAmounts, Money, Quantity, VatRate};
    let (db, jan) = demo_jan(&args.database_url).await?;
    let today = OffsetDateTime::now_utc().date();
    let first = today.replace_day(1)?;
    let line = |position: u32, name: String, grosze: i64| {
        let unit_gross = Money::from_grosze(grosze);
        let a = LineAmounts::from_gross(Quantity::ONE, unit_gross, VatRate::R23);
        InvoiceLine {
            position,
            name,
            unit: "mies.".into(),
            quantity: Quantity::ONE,
            unit_net: VatRate::R23.split_gross(unit_gross).0,
            net: a.net,
            vat_rate: VatRate::R23,
            vat: a.vat,
            gross: a.gross,
        }
    };
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    for months_ago in 12..i64::from(args.years.max(1)) * 12 {
        // The 1st of the month `months_ago` months before this one.
        let total =
            i64::from(first.year()) * 12 + i64::from(u8::from(first.month())) - 1 - months_ago;
        let (y, m) = (
            i32::try_from(total.div_euclid(12))?,
            u8::try_from(total.rem_euclid(12) + 1)?,
        );
        let issued = time::Date::from_calendar_date(y, m.try_into()?, 1)?;
        let lines = vec![
            line(1, format!("Abonament internet – {m:02}/{y}"), 7999),
            line(2, format!("Dzierżawa routera – {m:02}/{y}"), 999),
        ];
        let gross: Money = lines.iter().map(|l| l.gross).sum();
        let number = format!("FV/BENCH/{y}/{m:02}");
        let key = format!("{}-{y}-{m:02}", jan.ext_id);
        payments.push(PaymentRecord {
            ext_id: format!("bench-pay-{key}"),
            subscriber_ext_id: jan.ext_id.clone(),
            paid_on: issued + time::Duration::days(9),
            amount: gross,
            title: format!("Faktura {number}"),
            method: "przelew".into(),
        });
        invoices.push(InvoiceRecord {
            ext_id: format!("bench-inv-{key}"),
            subscriber_ext_id: jan.ext_id.clone(),
            number,
            issued_on: issued,
            sold_on: issued,
            due_on: issued + time::Duration::days(14),
            net: lines.iter().map(|l| l.net).sum(),
            vat: lines.iter().map(|l| l.vat).sum(),
            gross,
            status: InvoiceStatus::Paid,
            ksef_number: None,
            ksef_xml: None,
            lines,
        });
    }
    let mut tx = db.begin().await?;
    upsert_invoices(&mut tx, &invoices, &[])
        .await
        .map_err(|(i, e)| anyhow::anyhow!("invoice {i}: {e}"))?;
    upsert_payments(&mut tx, &payments)
        .await
        .map_err(|(i, e)| anyhow::anyhow!("payment {i}: {e}"))?;
    tx.commit().await?;
    println!(
        "wrote {} invoices and {} payments for {}",
        invoices.len(),
        payments.len(),
        jan.display_name()
    );
    Ok(())
}

/// Build the document and the PDF of Jan's newest invoice `n` times, as the
/// `/e-faktury/{id}?pdf` handler does (minus the blocking-pool hop and the HTTP answer).
pub(super) async fn pdf_cost(args: PdfArgs) -> anyhow::Result<()> {
    use ebok::store::billing::{invoice_for, invoices_of};
    use ebok::web::billing::{invoice_doc, invoice_pdf};
    use ebok::web::i18n::{Lang, Tr};
    let (db, jan) = demo_jan(&args.database_url).await?;
    let newest = invoices_of(&db, jan.id, ebok::store::repo::Page { number: 1, size: 1 })
        .await?
        .items
        .into_iter()
        .next()
        .context("Jan has no invoice")?;
    let (inv, lines) = invoice_for(&db, jan.id, newest.id)
        .await?
        .context("the newest invoice vanished")?;
    let t = Tr::new(Lang::Pl);
    let isp = ebok::config::IspConfig {
        name: ebok::demo::ISP_NAME.into(),
        ..Default::default()
    };
    let contracts = ebok::store::subscribers::contracts_of(&db, jan.id).await?;
    let today = OffsetDateTime::now_utc().date();
    let one = || -> anyhow::Result<usize> {
        let doc = invoice_doc(t, &isp, &jan, &contracts, &inv, &lines, today)?;
        Ok(invoice_pdf(t, &doc, None)?.len())
    };
    let bytes = one()?; // warm-up: font parsing and the like happen once
    let n = args.n.max(1);
    let mut micros = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t0 = Instant::now();
        one()?;
        micros.push(t0.elapsed().as_micros() as u32);
    }
    micros.sort_unstable();
    let mean_ms = micros.iter().map(|&m| f64::from(m)).sum::<f64>() / f64::from(n) / 1000.0;
    let p99_ms = f64::from(percentile(&micros, 0.99)) / 1000.0;
    println!(
        "RESULT pdf invoice={} lines={} bytes={bytes} n={n} mean_ms={mean_ms:.2} p99_ms={p99_ms:.2}",
        inv.number,
        lines.len()
    );
    Ok(())
}
