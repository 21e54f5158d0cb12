//! KSeF on the panel: an invoice's FA(3) XML file as a download (`/e-faktury/{id}.xml`, its
//! owner only) and the verification QR code KOD I on the print page and the PDF, with the
//! KSeF number under it, or `OFFLINE` while KSeF has not given one.

use axum::http::StatusCode;
use axum::response::Response;

use crate::web::download::attachment;
use crate::web::error::PanelError;
use crate::web::i18n::Tr;
use crate::web::pages::error_page;
use crate::web::AppState;
use ebok_store::billing::Invoice;
use ebok_store::ksef;

/// The verification host of KSeF's production system (`[isp] ksef_qr_host`'s default).
pub const DEFAULT_QR_HOST: &str = "qr.ksef.mf.gov.pl";

/// Printed under KOD I while the invoice has no KSeF number.
const OFFLINE: &str = "OFFLINE";

/// KOD I of one invoice, ready to draw.
#[derive(Clone, Debug)]
pub struct KsefCode {
    /// `https://{host}/invoice/{NIP}/{DD-MM-RRRR}/{hash}`: what the QR code encodes.
    pub url: String,
    /// The QR code as inline SVG (see [`crate::web::qr::qr_svg`]).
    pub svg: String,
    /// The KSeF number, or `OFFLINE`.
    pub caption: String,
}

/// Why `host` cannot be `[isp] ksef_qr_host`: it must be a bare host name (no scheme, port,
/// path or user), lower-case letters, digits, dashes and dots, like `qr-test.ksef.mf.gov.pl`.
pub fn check_qr_host(host: &str) -> Result<(), String> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.contains('.') || !host.split('.').all(ok_label)
    {
        return Err(format!(
            "{host:?} is not a bare host name like {DEFAULT_QR_HOST:?} (lower-case letters, \
             digits, dashes and dots; no https://, port or path)"
        ));
    }
    Ok(())
}

/// KOD I for `inv` of `subscriber_id`, when its XML file is stored (invoices without one get
/// no code).
pub(crate) async fn code_for(
    state: &AppState,
    t: Tr,
    subscriber_id: i64,
    inv: &Invoice,
) -> Result<Option<KsefCode>, PanelError> {
    let Some(xml) = ksef::stored_xml(&state.db, subscriber_id, inv.id).await? else {
        return Ok(None);
    };
    let url = ksef::verification_url(
        state.config.isp.ksef_qr_host(),
        &xml.seller_nip,
        inv.issued_on,
        &xml.sha256,
    );
    let svg = crate::web::qr::qr_svg(&url, t.t("invoice.ksef_qr_label"));
    Ok(Some(KsefCode {
        url,
        svg,
        caption: inv
            .ksef_number
            .clone()
            .unwrap_or_else(|| OFFLINE.to_owned()),
    }))
}

/// `/e-faktury/{id}.xml`: the FA(3) file byte for byte, to its owner only (another
/// subscriber's invoice, or one without a file, is a 404 like a missing one).
pub(crate) async fn xml_download(
    state: &AppState,
    info: &crate::web::request::RequestInfo,
    subscriber_id: i64,
    id: &str,
) -> Result<Response, PanelError> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(error_page(state, info, StatusCode::NOT_FOUND).await);
    };
    let Some(xml) = ksef::xml_for(&state.db, subscriber_id, id).await? else {
        return Ok(error_page(state, info, StatusCode::NOT_FOUND).await);
    };
    let Some(inv) = ebok_store::billing::invoice_by_id(&state.db, id).await? else {
        return Ok(error_page(state, info, StatusCode::NOT_FOUND).await);
    };
    Ok(attachment(
        "application/xml",
        &format!("faktura-{}.xml", inv.number),
        xml,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_hosts() {
        for ok in [
            DEFAULT_QR_HOST,
            "qr-test.ksef.mf.gov.pl",
            "qr-demo.ksef.mf.gov.pl",
        ] {
            assert_eq!(check_qr_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "https://qr.ksef.mf.gov.pl",
            "qr.ksef.mf.gov.pl/",
            "qr.ksef.mf.gov.pl:443",
            "QR.ksef.mf.gov.pl",
            "localhost",
            "a..b",
            "-a.b",
            "user@qr.ksef.mf.gov.pl",
        ] {
            assert!(check_qr_host(bad).is_err(), "{bad:?}");
        }
    }
}
