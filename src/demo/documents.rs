//! The demo ISP's published documents: a regulamin and a cennik for everyone and Jan
//! Kowalski's umowa, as small PDFs made with the invoices' PDF writer. Published once: a
//! database that already holds documents is left alone.

use super::*;
use crate::store::documents::{self, DocumentKind, NewDocument};
use crate::web::billing::text_pdf;
use crate::web::i18n::{Lang, Tr};

/// Publish the demo documents unless documents exist; gives how many were published.
pub async fn load_documents(db: &Db) -> anyhow::Result<usize> {
    if !documents::all_documents(db).await?.is_empty() {
        return Ok(0);
    }
    let (_, contract) = crate::store::subscribers::subscriber_by_login(db, DEMO_LOGIN)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo data set has no {DEMO_LOGIN}"))?;
    let t = Tr::new(Lang::Pl);
    let umowa = format!("Umowa nr {}", contract.number);
    let docs: [(DocumentKind, &str, Option<&str>, Vec<&str>); 3] = [
        (
            DocumentKind::Terms,
            "Regulamin świadczenia usług telekomunikacyjnych",
            None,
            vec![
                "§ 1. Regulamin określa zasady świadczenia usług dostępu do internetu przez \
                 DemoNet sp. z o.o.",
                "§ 2. Abonent może sprawdzać płatności, faktury i dane umowy w e-BOK.",
                "§ 3. Reklamacje przyjmuje Biuro Obsługi Klienta pisemnie, telefonicznie \
                 i przez e-BOK; odpowiadamy w ciągu 30 dni.",
            ],
        ),
        (
            DocumentKind::PriceList,
            "Cennik usług",
            None,
            vec![
                "Internet 300 Mb/s – 59,00 zł miesięcznie.",
                "Internet 600 Mb/s – 79,00 zł miesięcznie.",
                "Stały publiczny adres IPv4 – 10,00 zł miesięcznie.",
            ],
        ),
        (
            DocumentKind::Contract,
            &umowa,
            Some(contract.ext_id.as_str()),
            vec![
                "Umowa o świadczenie usług dostępu do internetu zawarta między DemoNet \
                 sp. z o.o. a Abonentem.",
                "Integralną częścią umowy są Regulamin i Cennik opublikowane w e-BOK.",
            ],
        ),
    ];
    let mut tx = db.begin().await?;
    for (kind, title, contract_ext_id, paragraphs) in &docs {
        let pdf = text_pdf(t, title, paragraphs)?;
        documents::publish(
            &mut tx,
            &NewDocument {
                kind: *kind,
                title,
                contract_ext_id: *contract_ext_id,
                pdf: &pdf,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(docs.len())
}
