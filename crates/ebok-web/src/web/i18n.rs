//! Languages of the panel: one catalogue per language (`templates/i18n/*.toml`), Polish by
//! default, English by choice (cookie) or by `Accept-Language`.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;

/// A language the panel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Pl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Pl => "pl",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "pl" => Some(Lang::Pl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: the `lang` cookie when set, else the first of ours in
    /// `Accept-Language` by preference, else Polish.
    pub(crate) fn of_request(headers: &HeaderMap, cookie: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::from_code) {
            return l;
        }
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(Lang::Pl)
    }

    fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in value.split(',').enumerate() {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_code(primary) else {
                continue;
            };
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            // Higher q wins; on a tie the earlier entry.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }
}

/// A catalogue: every page looks up dozens of keys, so with a hash quicker than the default
/// SipHash (foldhash, as the duplicate cache). The keys are ours and fixed.
type Catalogue = HashMap<String, String, foldhash::fast::FixedState>;

fn load(text: &str) -> Catalogue {
    let table: toml::Table = toml::from_str(text).expect("catalogue is valid TOML");
    let mut out = Catalogue::default();
    flatten("", &table, &mut out);
    out
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => panic!("catalogue key {key}: expected text, found {other}"),
        }
    }
}

static PL: LazyLock<Catalogue> =
    LazyLock::new(|| load(include_str!("../../../../templates/i18n/pl.toml")));
static EN: LazyLock<Catalogue> =
    LazyLock::new(|| load(include_str!("../../../../templates/i18n/en.toml")));

/// The translator handed to every template: `t.t("menu.login")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    fn catalogue(&self) -> &'static Catalogue {
        match self.lang {
            Lang::Pl => &PL,
            Lang::En => &EN,
        }
    }

    /// The text under `key`; a missing key shows itself (tests keep that from happening).
    pub fn t<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.catalogue().get(key).map(String::as_str).unwrap_or(key)
    }

    /// The text under `key` with `{name}` placeholders filled in, in one pass (a value is
    /// never searched for placeholders itself).
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let text = self.t(key);
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open + 1..];
            let filled = tail.split_once('}').and_then(|(name, after)| {
                let (_, value) = args.iter().find(|(n, _)| *n == name)?;
                Some((*value, after))
            });
            match filled {
                Some((value, after)) => {
                    out.push_str(value);
                    rest = after;
                }
                None => {
                    out.push('{');
                    rest = tail;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The language code (`pl`, `en`) for `<html lang>`.
    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    /// Whether text the database holds only in Polish (news, FAQ, services, tariffs, invoice
    /// lines) needs `lang="pl"` on its element: on a page in another language, so that a
    /// screen reader pronounces it as Polish.
    pub(crate) fn marks_polish(&self) -> bool {
        self.lang != Lang::Pl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys() {
        let pl: std::collections::BTreeSet<_> = PL.keys().collect();
        let en: std::collections::BTreeSet<_> = EN.keys().collect();
        let only_pl: Vec<_> = pl.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&pl).collect();
        assert!(
            only_pl.is_empty() && only_en.is_empty(),
            "pl only: {only_pl:?}, en only: {only_en:?}"
        );
        for (k, v) in PL.iter() {
            let placeholders = |s: &str| {
                let mut p: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|x| x.split_once('}').map(|(n, _)| n.to_owned()))
                    .collect();
                p.sort();
                p
            };
            assert_eq!(placeholders(v), placeholders(&EN[k]), "placeholders of {k}");
        }
    }

    /// Every `t.t("…")` / `t.f("…"` / `tr.t("…")` key in templates and web code exists.
    #[test]
    fn every_used_key_exists() {
        let mut sources = Vec::new();
        for dir in ["../../templates", "src/web"] {
            let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in walk(&base).into_iter().filter(|p| !p.ends_with("i18n.rs")) {
                sources.push((entry.clone(), std::fs::read_to_string(&entry).unwrap()));
            }
        }
        let mut checked = 0;
        for (path, text) in &sources {
            // Keys given as arguments (`errors.require(.., "required.login")`) too.
            for pat in [".t(\"", ".f(\"", "\"required."] {
                for piece in text.split(pat).skip(1) {
                    let key = piece.split('"').next().unwrap();
                    let key = match pat {
                        "\"required." => format!("required.{key}"),
                        _ => key.to_owned(),
                    };
                    let key = key.as_str();
                    if key.contains('{') || key.is_empty() {
                        continue;
                    }
                    assert!(
                        PL.contains_key(key),
                        "{}: unknown key {key}",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "found only {checked} keys");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.extension().is_some_and(|x| x == "html" || x == "rs") {
                out.push(p);
            }
        }
        out
    }

    /// One voice in Polish: no form that addresses only men or only women ("dostałeś",
    /// "prosiłaś", "zostanę powiadomiony"), no network jargon, one spelling of each name.
    #[test]
    fn polish_speaks_to_everyone_in_one_voice() {
        // Word endings of the past tense in the 2nd and 1st person ("dostałeś", "byłam").
        let gendered = [
            "łeś",
            "łaś",
            "iłem",
            "iłam",
            "ałem",
            "ałam",
            "yłem",
            "yłam",
            "powiadomiony",
            "powiadomiona",
        ];
        let jargon = ["koncentrator", "nas)", "acct-"];
        let spelling = [
            "E-BOK",
            "e-faktur ",
            "e-faktury ",
            "Przywrócenie hasła",
            "Nr umowy",
        ];
        for (key, text) in PL.iter() {
            let lower = text.to_lowercase();
            for word in lower.split(|c: char| !c.is_alphabetic()) {
                for w in gendered {
                    assert!(!word.ends_with(w), "{key}: {word:?} in {text:?}");
                }
            }
            for w in jargon {
                assert!(!lower.contains(w), "{key}: {w:?} in {text:?}");
            }
            for w in spelling {
                assert!(!text.contains(w), "{key}: {w:?} in {text:?}");
            }
        }
        for (key, text) in EN.iter() {
            assert!(!text.contains("E-BOK"), "{key}: {text:?}");
        }
    }

    #[test]
    fn language_choice() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of_request(&h, None), Lang::Pl);
        h.insert(
            "accept-language",
            "en-GB,en;q=0.9,pl;q=0.8".parse().unwrap(),
        );
        assert_eq!(Lang::of_request(&h, None), Lang::En);
        assert_eq!(Lang::of_request(&h, Some("pl")), Lang::Pl);
        h.insert(
            "accept-language",
            "de-DE, pl;q=0.5, en;q=0.4".parse().unwrap(),
        );
        assert_eq!(Lang::of_request(&h, None), Lang::Pl);
        h.insert("accept-language", "en;q=0, fr".parse().unwrap());
        assert_eq!(Lang::of_request(&h, None), Lang::Pl);
    }

    #[test]
    fn placeholders_filled() {
        let t = Tr::new(Lang::En);
        assert_eq!(
            t.f("limit.try_again", &[("minutes", "5")]),
            "Too many attempts. Try again in 5 min."
        );
        // A value is not searched for placeholders; unknown and broken ones stay as written.
        assert_eq!(
            t.f(
                "conn.known_own",
                &[("ip", "{contract}"), ("contract", "K/1")]
            ),
            "You are connecting from {contract} — the line of contract K/1."
        );
        assert_eq!(t.f("limit.try_again", &[]), t.t("limit.try_again"));
        assert_eq!(Tr::new(Lang::Pl).t("menu.register"), "Rejestracja");
    }
}
