//! An FA(3) invoice file as the billing system sends it: at most [`MAX_XML_BYTES`], UTF-8,
//! well-formed XML without a DOCTYPE, rooted at `Faktura` with the form code `FA (3)`, and
//! the facts the panel shows from it (seller's NIP, issue date P_1, number P_2). The schema
//! itself is KSeF's to enforce: a file KSeF accepted passes here.

use quick_xml::events::Event;
use quick_xml::Reader;
use time::Date;

use crate::validate;

/// The largest XML file stored (3 MiB; KSeF's own limit for an invoice without
/// attachments is 1 MB, so this leaves room and bounds the work per record).
pub const MAX_XML_BYTES: usize = 3 * 1024 * 1024;

/// Deepest element nesting accepted (FA(3) needs fewer than ten levels).
const MAX_DEPTH: usize = 64;

/// What the panel takes from an FA(3) file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fa3Facts {
    /// Podmiot1/DaneIdentyfikacyjne/NIP: the seller.
    pub seller_nip: String,
    /// Fa/P_1: the issue date.
    pub issued_on: Date,
    /// Fa/P_2: the invoice number.
    pub number: String,
}

/// Check `xml` and read its facts; the reason names what is wrong.
pub fn check_xml(xml: &[u8]) -> Result<Fa3Facts, String> {
    if xml.len() > MAX_XML_BYTES {
        return Err(format!(
            "the XML file has {} bytes, more than the {} MiB allowed",
            xml.len(),
            MAX_XML_BYTES / (1024 * 1024)
        ));
    }
    let text = std::str::from_utf8(xml).map_err(|e| format!("the XML is not UTF-8: {e}"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut path: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut form_code: Option<String> = None;
    let (mut nip, mut p1, mut p2) = (None::<String>, None::<String>, None::<String>);
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("the XML is not well-formed at byte {pos}: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) if path.len() >= MAX_DEPTH => {
                let _ = e;
                return Err(format!("the XML nests deeper than {MAX_DEPTH} elements"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                if path.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err("the XML has more than one root element".into());
                    }
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                for a in e.attributes() {
                    let a =
                        a.map_err(|e| format!("the XML is not well-formed at byte {pos}: {e}"))?;
                    let value = a
                        .unescape_value()
                        .map_err(|e| format!("the XML is not well-formed at byte {pos}: {e}"))?;
                    if name == "KodFormularza" && a.key.local_name().as_ref() == b"kodSystemowy" {
                        form_code = Some(value.into_owned());
                    }
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| format!("the XML is not well-formed at byte {pos}: {e}"))?;
                if path.is_empty() {
                    if !value.trim().is_empty() {
                        return Err("the XML has text outside its root element".into());
                    }
                    continue;
                }
                let at = |p: &[&str]| path.iter().map(String::as_str).eq(p.iter().copied());
                let value = value.trim().to_owned();
                if at(&["Faktura", "Podmiot1", "DaneIdentyfikacyjne", "NIP"]) {
                    nip = Some(value);
                } else if at(&["Faktura", "Fa", "P_1"]) {
                    p1 = Some(value);
                } else if at(&["Faktura", "Fa", "P_2"]) {
                    p2 = Some(value);
                }
            }
            Event::CData(_) if path.is_empty() => {
                return Err("the XML has text outside its root element".into());
            }
            Event::DocType(_) => return Err("the XML must not carry a DOCTYPE".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(format!(
            "the XML ends inside the element {:?}",
            path.join("/")
        ));
    }
    if roots == 0 {
        return Err("the XML has no root element".into());
    }
    if form_code.as_deref() != Some("FA (3)") {
        return Err(format!(
            "not an FA(3) invoice: Faktura/Naglowek/KodFormularza kodSystemowy is {:?}, not \"FA (3)\"",
            form_code.unwrap_or_default()
        ));
    }
    let nip =
        nip.ok_or("the XML has no seller's NIP (Faktura/Podmiot1/DaneIdentyfikacyjne/NIP)")?;
    let seller_nip = validate::nip(&nip)
        .map_err(|e| format!("the XML's seller's NIP {nip:?}: {e}"))?
        .as_str()
        .to_owned();
    let p1 = p1.ok_or("the XML has no issue date (Faktura/Fa/P_1)")?;
    let issued_on = Date::parse(
        &p1,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("the XML's issue date P_1 {p1:?} is not a date YYYY-MM-DD"))?;
    let number = p2.ok_or("the XML has no invoice number (Faktura/Fa/P_2)")?;
    Ok(Fa3Facts {
        seller_nip,
        issued_on,
        number,
    })
}
