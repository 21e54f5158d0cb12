//! An FA(3) XML file written from an invoice record, in the structure of KSeF's schema
//! (Naglowek, Podmiot1 seller, Podmiot2 buyer, Fa with P_1 date, P_2 number, the totals per
//! VAT rate, Adnotacje, lines, payment): what the demo's billing hands over for its company
//! subscribers and what the tests store. A real billing system sends its own files.

use std::fmt::Write as _;

use time::{Date, OffsetDateTime};

use crate::billing::InvoiceRecord;
use crate::money::{Money, VatRate};

/// FA(3)'s namespace.
pub const FA3_NAMESPACE: &str = "http://crd.gov.pl/wzor/2025/06/25/13775/";

/// A party of the invoice: NIP, name, address lines.
#[derive(Clone, Debug)]
pub struct Party<'a> {
    pub nip: &'a str,
    pub name: &'a str,
    /// Street and number.
    pub street: &'a str,
    /// Postcode and city.
    pub city: &'a str,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn amount(m: Money) -> String {
    let g = m.grosze();
    let sign = if g < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        g.unsigned_abs() / 100,
        g.unsigned_abs() % 100
    )
}

fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn party(out: &mut String, tag: &str, p: &Party<'_>, buyer: bool) {
    let _ = write!(
        out,
        "  <{tag}>\n    <DaneIdentyfikacyjne>\n      <NIP>{}</NIP>\n      <Nazwa>{}</Nazwa>\n    \
         </DaneIdentyfikacyjne>\n    <Adres>\n      <KodKraju>PL</KodKraju>\n      \
         <AdresL1>{}</AdresL1>\n      <AdresL2>{}</AdresL2>\n    </Adres>\n",
        esc(p.nip),
        esc(p.name),
        esc(p.street),
        esc(p.city)
    );
    if buyer {
        // Not a local-government unit (JST) nor a VAT group member (GV).
        out.push_str("    <JST>2</JST>\n    <GV>2</GV>\n");
    }
    let _ = writeln!(out, "  </{tag}>");
}

/// The FA(3) file of `rec` issued by `seller` to `buyer`, created at `created`.
pub fn fa3_xml(
    rec: &InvoiceRecord,
    seller: &Party<'_>,
    buyer: &Party<'_>,
    created: OffsetDateTime,
) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<Faktura xmlns=\"{FA3_NAMESPACE}\">");
    let _ = write!(
        out,
        "  <Naglowek>\n    <KodFormularza kodSystemowy=\"FA (3)\" wersjaSchemy=\"1-0E\">FA</KodFormularza>\n    \
         <WariantFormularza>3</WariantFormularza>\n    <DataWytworzeniaFa>{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z</DataWytworzeniaFa>\n    \
         <SystemInfo>ebok</SystemInfo>\n  </Naglowek>\n",
        created.year(),
        u8::from(created.month()),
        created.day(),
        created.hour(),
        created.minute(),
        created.second()
    );
    party(&mut out, "Podmiot1", seller, false);
    party(&mut out, "Podmiot2", buyer, true);
    let _ = write!(
        out,
        "  <Fa>\n    <KodWaluty>PLN</KodWaluty>\n    <P_1>{}</P_1>\n    <P_2>{}</P_2>\n",
        iso(rec.issued_on),
        esc(&rec.number)
    );
    if rec.sold_on != rec.issued_on {
        let _ = writeln!(out, "    <P_6>{}</P_6>", iso(rec.sold_on));
    }
    // Totals per rate: P_13_1/P_14_1 for 23 %, _2 for 8 %, _3 for 5 %, P_13_6_1 for 0 %,
    // P_13_7 exempt; P_13_8 for "np" (outside Polish VAT).
    for t in crate::billing::vat_totals(&rec.lines) {
        let (net, vat) = match t.rate {
            VatRate::R23 => ("P_13_1", Some("P_14_1")),
            VatRate::R8 => ("P_13_2", Some("P_14_2")),
            VatRate::R5 => ("P_13_3", Some("P_14_3")),
            VatRate::R0 => ("P_13_6_1", None),
            VatRate::Zw => ("P_13_7", None),
            VatRate::Np => ("P_13_8", None),
        };
        let _ = writeln!(out, "    <{net}>{}</{net}>", amount(t.net));
        if let Some(vat) = vat {
            let _ = writeln!(out, "    <{vat}>{}</{vat}>", amount(t.vat));
        }
    }
    let _ = write!(
        out,
        "    <P_15>{}</P_15>\n    <Adnotacje>\n      <P_16>2</P_16>\n      <P_17>2</P_17>\n      \
         <P_18>2</P_18>\n      <P_18A>2</P_18A>\n      <Zwolnienie>\n        <P_19N>1</P_19N>\n      \
         </Zwolnienie>\n      <NoweSrodkiTransportu>\n        <P_22N>1</P_22N>\n      \
         </NoweSrodkiTransportu>\n      <P_23>2</P_23>\n      <PMarzy>\n        \
         <P_PMarzyN>1</P_PMarzyN>\n      </PMarzy>\n    </Adnotacje>\n    \
         <RodzajFaktury>VAT</RodzajFaktury>\n",
        amount(rec.gross)
    );
    let mut lines: Vec<_> = rec.lines.iter().collect();
    lines.sort_by_key(|l| l.position);
    for l in lines {
        let rate = match l.vat_rate {
            VatRate::Zw => "zw".to_owned(),
            VatRate::Np => "np I".to_owned(),
            VatRate::R0 => "0 KR".to_owned(),
            r => r.percent().to_string(),
        };
        let _ = write!(
            out,
            "    <FaWiersz>\n      <NrWierszaFa>{}</NrWierszaFa>\n      <P_7>{}</P_7>\n      \
             <P_8A>{}</P_8A>\n      <P_8B>{}</P_8B>\n      <P_9A>{}</P_9A>\n      \
             <P_11>{}</P_11>\n      <P_12>{rate}</P_12>\n    </FaWiersz>\n",
            l.position,
            esc(&l.name),
            esc(&l.unit),
            l.quantity.to_string().replace(',', "."),
            amount(l.unit_net),
            amount(l.net)
        );
    }
    let _ = write!(
        out,
        "    <Platnosc>\n      <TerminPlatnosci>\n        <Termin>{}</Termin>\n      \
         </TerminPlatnosci>\n      <FormaPlatnosci>6</FormaPlatnosci>\n    </Platnosc>\n  </Fa>\n</Faktura>\n",
        iso(rec.due_on)
    );
    out
}
