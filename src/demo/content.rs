//! The demo ISP's services, news and FAQ.

use super::*;

pub(super) fn services() -> Vec<ServiceRecord> {
    let s = |id: &str, name: &str, description: &str, price: i64, active: bool| ServiceRecord {
        ext_id: format!("demo-svc-{id}"),
        name: name.into(),
        description: description.into(),
        price: Money::from_grosze(price),
        active,
    };
    vec![
        s(
            "public-ip",
            PUBLIC_IP.name,
            "Stały, publiczny adres IPv4 zamiast adresu z puli — dla kamer, serwera domowego \
             i zdalnego dostępu. Opłata miesięczna.",
            PUBLIC_IP.price,
            true,
        ),
        s(
            "tv",
            TV.name,
            "Ponad 80 kanałów telewizji cyfrowej na dekoderze IPTV lub w aplikacji, w tym \
             20 w jakości HD. Opłata miesięczna, dekoder w cenie.",
            TV.price,
            true,
        ),
        s(
            "speed-up",
            SPEED_UP.name,
            "Dodatkowe 300 Mb/s do pobierania w Twoim obecnym pakiecie, bez zmiany umowy. \
             Opłata miesięczna.",
            SPEED_UP.price,
            true,
        ),
        s(
            "router",
            ROUTER.name,
            "Dwupasmowy router Wi-Fi 6 skonfigurowany przez nas do Twojego łącza, z wymianą \
             w razie awarii. Opłata miesięczna.",
            ROUTER.price,
            true,
        ),
        s(
            "voip",
            "Telefon VoIP",
            "Numer stacjonarny z abonamentem na rozmowy krajowe. Usługa wycofana z oferty.",
            pln(9, 99),
            false,
        ),
    ]
}

/// Published at 08:00 UTC `days_ago` days before `today`.
pub(super) fn news(today: Date) -> Vec<NewsRecord> {
    let at = |days_ago: i64| {
        (today - time::Duration::days(days_ago))
            .with_time(Time::from_hms(8, 0, 0).expect("08:00"))
            .assume_utc()
    };
    let works = today + time::Duration::days(6);
    let works_end = works.next_day().expect("a later day");
    let n = |i: u32, days_ago: i64, title: &str, body: String| NewsRecord {
        ext_id: format!("demo-news-{i}"),
        title: title.into(),
        body_md: body,
        published_at: at(days_ago),
    };
    vec![
        n(
            1,
            2,
            "Nowy panel klienta e-BOK",
            "Oddajemy do Państwa dyspozycji nowy **panel klienta e-BOK**. Znajdą w nim \
             Państwo:\n\n\
             - dane umowy, abonament i adresy IP przypisane do łącza,\n\
             - ustawienia PPPoE do konfiguracji routera,\n\
             - faktury i płatności wraz z aktualnym saldem,\n\
             - zgodę na **e-Fakturę** i faktury do wydruku,\n\
             - kontakt z Biurem Obsługi Klienta.\n\n\
             Aby założyć konto, wybierz **Logowanie do panelu → Rejestracja** — \
             z własnego łącza w naszej sieci. Szczegóły w [FAQ](/faq)."
                .into(),
        ),
        n(
            2,
            5,
            "Planowane prace serwisowe",
            format!(
                "W nocy z **{} na {}**, w godzinach **1.00–4.00**, przeprowadzimy prace \
                 modernizacyjne sieci szkieletowej na Krowodrzy i w Bronowicach. W tym \
                 czasie możliwe są krótkie, kilkuminutowe przerwy w dostępie do \
                 Internetu.\n\nZa utrudnienia przepraszamy.",
                crate::tz::format_date(works),
                crate::tz::format_date(works_end)
            ),
        ),
        n(
            3,
            30,
            "Szybszy Internet w tej samej cenie",
            "Od tego miesiąca pakiet **Internet 300** ma prędkość pobierania **300 Mb/s** \
             i wysyłania **50 Mb/s**, a **Internet 600** — **600 / 100 Mb/s**. Zmiana \
             następuje automatycznie, bez aneksu do umowy i bez zmiany abonamentu.\n\n\
             Jeżeli po zmianie prędkość nie wzrosła, uruchom ponownie router."
                .into(),
        ),
        n(
            4,
            75,
            "e-Faktura — wygodniej i bez papieru",
            "Zamiast papierowej faktury pocztą możesz otrzymywać **e-Fakturę**: dostępną \
             w panelu zaraz po wystawieniu, do pobrania i wydruku w każdej chwili.\n\n\
             Zgodę wyrazisz w panelu w zakładce **e-Faktury**; możesz ją też w każdej \
             chwili wycofać."
                .into(),
        ),
        n(
            5,
            120,
            "Faktury dla firm w KSeF",
            "Faktury dla klientów biznesowych wystawiamy w **Krajowym Systemie e-Faktur \
             (KSeF)**. Numer KSeF każdej faktury widać w panelu przy fakturze. Klienci \
             indywidualni otrzymują faktury jak dotychczas."
                .into(),
        ),
    ]
}

pub(super) fn faq() -> Vec<FaqRecord> {
    let q = |position: i64, question: &str, answer: &str| FaqRecord {
        ext_id: format!("demo-faq-{position}"),
        question: question.into(),
        answer_md: answer.into(),
        position,
    };
    vec![
        q(
            1,
            "Jak zarejestrować się w panelu klienta?",
            "Rejestracja jest możliwa **tylko z Twojego łącza** w naszej sieci — panel \
             rozpoznaje łącze, z którego się łączysz.\n\n\
             1. Połącz się z Internetem przez swoje łącze (router lub komputer w domu).\n\
             2. Wybierz **Logowanie do panelu → Rejestracja**.\n\
             3. Wymyśl identyfikator i hasło, podaj adres e-mail, numer **PESEL** (firmy: \
             **NIP**) i **numer umowy**, np. `KR/2013/0001`.\n\
             4. Kliknij **Zatwierdź**.\n\n\
             Dane te służą tylko do sprawdzenia, że jesteś stroną umowy, i nie są nigdzie \
             publikowane. Od tej chwili logujesz się swoim identyfikatorem i hasłem.",
        ),
        q(
            2,
            "Nie pamiętam hasła ani identyfikatora. Co zrobić?",
            "Wybierz **Przywracanie dostępu** i wpisz adres e-mail podany przy \
             rejestracji — wyślemy na niego Twój identyfikator i link do ustawienia nowego \
             hasła. Jeśli nie masz już dostępu do tej skrzynki, skontaktuj się z Biurem \
             Obsługi Klienta.",
        ),
        q(
            3,
            "Jak skonfigurować router (PPPoE)?",
            "W ustawieniach WAN routera wybierz typ połączenia **PPPoE** i wpisz:\n\n\
             | Ustawienie | Wartość |\n\
             | --- | --- |\n\
             | Nazwa użytkownika | login PPPoE z panelu, np. `jan.kowalski` |\n\
             | Hasło | hasło PPPoE z panelu (zakładka **PPPoE**) |\n\
             | MTU | 1492 |\n\
             | IPv6 | DHCPv6-PD (prefiks /56) |\n\n\
             Adres IP i serwery DNS router otrzyma automatycznie.",
        ),
        q(
            4,
            "Jak opłacić fakturę?",
            "Najwygodniej przelewem na **Twój indywidualny numer rachunku** — znajdziesz go \
             w panelu w zakładce **Płatności** i na każdej fakturze. Wpłaty na ten rachunek \
             księgujemy automatycznie, więc tytuł przelewu może być dowolny.\n\n\
             Termin płatności to **14 dni** od daty wystawienia faktury. Można też zapłacić \
             gotówką lub kartą w Biurze Obsługi Klienta.",
        ),
        q(
            5,
            "Co to jest e-Faktura i jak ją włączyć?",
            "e-Faktura to faktura w formie elektronicznej, dostępna w panelu zaraz po \
             wystawieniu. Zgodę na jej otrzymywanie wyrażasz w zakładce **e-Faktury**; \
             zapisujemy datę i treść zgody. Zgodę możesz w każdej chwili wycofać — wtedy \
             wrócimy do faktur papierowych.",
        ),
        q(
            6,
            "Gdzie sprawdzę swój adres IP?",
            "W zakładce **Adres IP** panelu: adresy przypisane do umowy, data aktywacji \
             i adres instalacji. Publiczny, stały adres IPv4 można zamówić w zakładce \
             **Zamawianie usług**.",
        ),
        q(
            7,
            "Jak zmienić pakiet albo zamówić dodatkową usługę?",
            "Wybierz **Zamawianie usług**, wskaż usługę i wyślij zamówienie. Skontaktujemy \
             się, aby potwierdzić termin. Zmiana pakietu na szybszy nie wymaga wizyty \
             technika.",
        ),
        q(
            8,
            "Jak skontaktować się z Biurem Obsługi Klienta?",
            // The same details as the footer and the contact page (`isp()`).
            &format!(
                "**Biuro Obsługi Klienta** — {OFFICE_ADDRESS}, {OFFICE_HOURS}, \
                 tel. {OFFICE_PHONE}, e-mail {OFFICE_EMAIL}.\n\n\
                 **Serwis techniczny** — tel. {TECHNICAL_PHONE}, {TECHNICAL_HOURS}.\n\n\
                 Po zalogowaniu możesz też napisać do nas z zakładki **Kontakt** w panelu."
            ),
        ),
    ]
}
