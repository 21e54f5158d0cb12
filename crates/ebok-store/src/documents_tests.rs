//! Documents on SQLite and PostgreSQL: the PDF check by content, publishing general and
//! per-contract documents, who sees what, withdrawal. Also the harness the reminder tests
//! share: a scenario run on a temp SQLite file and on a fresh PostgreSQL database.

use super::*;
use crate::subscribers::{contracts_of, subscriber_by_ext_id};
use crate::testkit::subscriber_with_login;

/// Run `scenario` on a fresh SQLite file.
pub(crate) async fn on_sqlite(scenario: impl AsyncFnOnce(&Db)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
    let db = Db::connect(&url).await.expect("open sqlite");
    scenario(&db).await;
}

/// Run `scenario` on a fresh PostgreSQL database (skipped when PostgreSQL is unreachable,
/// failed instead under `EBOK_REQUIRE_SERVICES=1`).
pub(crate) async fn on_postgres(test: &str, scenario: impl AsyncFnOnce(&Db)) {
    let Some(pg) = crate::testkit::FreshPg::create(test).await else {
        return;
    };
    let db = Db::connect(&pg.url).await.expect("connect and migrate");
    scenario(&db).await;
    if let Db::Postgres(p) = &db {
        p.close().await;
    }
    pg.drop_db().await;
}

/// A small PDF-shaped byte string.
pub(crate) fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {text}\ntrailer\n%%EOF\n").into_bytes()
}

#[test]
fn pdf_is_checked_by_content() {
    assert_eq!(check_pdf(&pdf("x")), Ok(()));
    assert_eq!(check_pdf(b"%PDF-1.4\n...%%EOF"), Ok(()));
    assert_eq!(check_pdf(b""), Err(PdfError::Empty));
    assert_eq!(check_pdf(b"GIF89a...%%EOF"), Err(PdfError::NotPdf));
    // A PDF header but cut short (no trailer).
    assert_eq!(check_pdf(b"%PDF-1.7\n1 0 obj"), Err(PdfError::NotPdf));
    // Something appended after the trailer beyond whitespace.
    assert_eq!(
        check_pdf(b"%PDF-1.7\n%%EOF\n<script>"),
        Err(PdfError::NotPdf)
    );
    let mut big = pdf("x");
    big.resize(MAX_DOCUMENT_BYTES + 1, b' ');
    assert_eq!(
        check_pdf(&big),
        Err(PdfError::TooLarge {
            size: MAX_DOCUMENT_BYTES + 1,
            max: MAX_DOCUMENT_BYTES
        })
    );
}

async fn scenario(db: &Db) {
    subscriber_with_login(db, 1, "Alański", "ala").await;
    subscriber_with_login(db, 2, "Bartecki", "bartek").await;
    let ala = subscriber_by_ext_id(db, "S1").await.unwrap().unwrap().id;
    let bartek = subscriber_by_ext_id(db, "S2").await.unwrap().unwrap().id;
    let ala_contract = contracts_of(db, ala).await.unwrap()[0].id;

    let mut tx = db.begin().await.unwrap();
    let terms = publish(
        &mut tx,
        &NewDocument {
            kind: DocumentKind::Terms,
            title: "  Regulamin świadczenia usług ",
            contract_ext_id: None,
            pdf: &pdf("regulamin"),
        },
    )
    .await
    .unwrap();
    let contract = publish(
        &mut tx,
        &NewDocument {
            kind: DocumentKind::Contract,
            title: "Umowa UM/1",
            contract_ext_id: Some("C1"),
            pdf: &pdf("umowa"),
        },
    )
    .await
    .unwrap();
    // Refused: not a PDF, an empty title, an unknown contract.
    for (title, contract_ext_id, bytes, field) in [
        ("X", None, b"<html>".to_vec(), "pdf"),
        (" ", None, pdf("y"), "title"),
        ("X", Some("C9999"), pdf("y"), ""),
    ] {
        let doc = NewDocument {
            kind: DocumentKind::Annex,
            title,
            contract_ext_id,
            pdf: &bytes,
        };
        match publish(&mut tx, &doc).await {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            Err(StoreError::UnknownReference { ext_id, .. }) => assert_eq!(ext_id, "C9999"),
            other => panic!("{title:?} {contract_ext_id:?}: {other:?}"),
        }
    }
    tx.commit().await.unwrap();

    assert_eq!(terms.title, "Regulamin świadczenia usług");
    assert_eq!(terms.size, pdf("regulamin").len() as i64);
    assert_eq!(
        terms.sha256,
        crate::auth::hex(&Sha256::digest(pdf("regulamin")))
    );
    assert_eq!(contract.contract_number.as_deref(), Some("UM/1"));
    assert_eq!(contract.contract_id, Some(ala_contract));

    let ids = |docs: Vec<Document>| docs.iter().map(|d| d.id).collect::<Vec<_>>();
    // General first, then the caller's own contract documents.
    assert_eq!(
        ids(visible_documents(db, Some(ala)).await.unwrap()),
        [terms.id, contract.id]
    );
    assert_eq!(
        ids(visible_documents(db, Some(bartek)).await.unwrap()),
        [terms.id]
    );
    assert_eq!(ids(visible_documents(db, None).await.unwrap()), [terms.id]);

    let (doc, bytes) = visible_pdf(db, contract.id, Some(ala))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((doc.id, bytes), (contract.id, pdf("umowa")));
    assert!(visible_pdf(db, contract.id, Some(bartek))
        .await
        .unwrap()
        .is_none());
    assert!(visible_pdf(db, contract.id, None).await.unwrap().is_none());
    assert!(visible_pdf(db, terms.id, None).await.unwrap().is_some());
    assert!(visible_pdf(db, 424242, Some(ala)).await.unwrap().is_none());

    let mut tx = db.begin().await.unwrap();
    assert!(withdraw(&mut tx, terms.id).await.unwrap());
    assert!(!withdraw(&mut tx, terms.id).await.unwrap());
    assert!(!withdraw(&mut tx, 424242).await.unwrap());
    tx.commit().await.unwrap();
    assert!(visible_pdf(db, terms.id, None).await.unwrap().is_none());
    assert_eq!(
        ids(visible_documents(db, Some(ala)).await.unwrap()),
        [contract.id]
    );
    // The operators still see it, marked withdrawn.
    let all = all_documents(db).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .find(|d| d.id == terms.id)
        .unwrap()
        .withdrawn_at
        .is_some());
}

#[tokio::test]
async fn documents_on_sqlite() {
    on_sqlite(scenario).await;
}

#[tokio::test]
async fn documents_on_postgres() {
    on_postgres("store::documents::tests::documents_on_postgres", scenario).await;
}
