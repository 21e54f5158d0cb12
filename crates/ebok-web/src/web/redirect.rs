//! Where the panel may send a browser back to: its own paths, nothing else.
//!
//! A "back to" target comes from the request (`/jezyk/en?wroc=…`, the page a logged-out
//! visitor asked for), so it is an attacker's choice. Browsers treat `//host`, `/\host` and
//! `/<TAB>/host` as other sites, and a CR, LF or NUL cannot go into a header at all. Only a
//! plain absolute path of visible ASCII is kept; anything else becomes `/`.

/// Longest target kept.
const MAX_LEN: usize = 512;

/// `target` when it is a path of this panel, else `/`.
pub(crate) fn local_target(target: &str) -> &str {
    let plain = target.len() <= MAX_LEN
        && target.starts_with('/')
        && !target.starts_with("//")
        && target.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain {
        target
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_panels_own_paths() {
        for ok in [
            "/",
            "/pppoe",
            "/e-faktury/12?strona=2",
            "/kontakt/1#odp",
            "/a%20b",
        ] {
            assert_eq!(local_target(ok), ok);
        }
        for other in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\r\nSet-Cookie: a=b",
            "/x\0",
            "/ /evil.example",
            "https://evil.example",
            "evil.example",
            "",
            "/ż",
        ] {
            assert_eq!(local_target(other), "/", "{other:?}");
        }
        assert_eq!(local_target(&format!("/{}", "a".repeat(600))), "/");
    }
}
