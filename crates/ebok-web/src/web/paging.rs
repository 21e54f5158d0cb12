//! Lists shown a page at a time: `?strona=N` in, one page of items and the links to its
//! neighbours out. A number past the end shows the last page (a bookmark to page 5 of a
//! list that has shrunk to 2 shows page 2, never "Strona 5 z 2" with nothing on it).

use std::future::Future;

use ebok_store::repo::{Page, Paged};

/// `?strona=N`; anything but a positive number is the first page.
#[derive(serde::Deserialize, Default, Debug)]
pub struct PageQuery {
    #[serde(default)]
    strona: Option<String>,
}

impl PageQuery {
    /// The page asked for (1 when none or nonsense).
    pub fn number(&self) -> u32 {
        self.strona
            .as_deref()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1)
    }

    /// The page asked for, of `size` items.
    pub fn page(&self, size: u32) -> Page {
        Page::new(self.number(), size)
    }
}

/// Fetch `page` of a list with `fetch`; when it lies past the last page, the last page
/// instead (a second query only in that case).
pub async fn clamped<T, E, F, Fut>(page: Page, fetch: F) -> Result<Paged<T>, E>
where
    F: Fn(Page) -> Fut,
    Fut: Future<Output = Result<Paged<T>, E>>,
{
    let got = fetch(page).await?;
    let last = got.pages();
    if got.page.number <= last {
        return Ok(got);
    }
    fetch(Page::new(last, page.size)).await
}

/// Links to the previous and next page of a list, for the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pager {
    pub number: u32,
    pub pages: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The pager of `p`, whose pages are at `base?strona=N`. A page past the end (not
    /// fetched through [`clamped`]) counts as the last one.
    pub fn of<T>(p: &Paged<T>, base: &str) -> Pager {
        let pages = p.pages();
        let number = p.page.number.clamp(1, pages);
        let link = |n: u32| format!("{base}?strona={n}");
        Pager {
            number,
            pages,
            prev: (number > 1).then(|| link(number - 1)),
            next: (number < pages).then(|| link(number + 1)),
        }
    }

    /// A list that is not paged (one item, or nothing to list).
    pub fn single() -> Pager {
        Pager {
            number: 1,
            pages: 1,
            prev: None,
            next: None,
        }
    }

    /// Whether there is more than one page to move between.
    pub fn shown(&self) -> bool {
        self.pages > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paged(number: u32, total: u64) -> Paged<u32> {
        Paged {
            items: Vec::new(),
            total,
            page: Page::new(number, 10),
        }
    }

    #[test]
    fn links_and_the_end_of_the_list() {
        let p = Pager::of(&paged(2, 25), "/kontakt");
        assert_eq!(p.number, 2);
        assert_eq!(p.pages, 3);
        assert_eq!(p.prev.as_deref(), Some("/kontakt?strona=1"));
        assert_eq!(p.next.as_deref(), Some("/kontakt?strona=3"));
        // Past the end: the last page, with no way further.
        let p = Pager::of(&paged(99, 12), "/faq");
        assert_eq!((p.number, p.pages), (2, 2));
        assert_eq!(p.prev.as_deref(), Some("/faq?strona=1"));
        assert_eq!(p.next, None);
        // An empty list is one empty page.
        let p = Pager::of(&paged(5, 0), "/faq");
        assert!(!p.shown());
        assert_eq!(p, Pager::single());
    }

    #[test]
    fn page_numbers_from_the_query() {
        let q = |s: &str| PageQuery {
            strona: Some(s.into()),
        };
        assert_eq!(q("3").number(), 3);
        assert_eq!(q(" 4 ").number(), 4);
        for odd in ["0", "-1", "abc", "", "99999999999"] {
            assert!(q(odd).number() <= 1, "{odd}");
        }
        assert_eq!(PageQuery::default().number(), 1);
    }

    #[tokio::test]
    async fn a_page_past_the_end_fetches_the_last() {
        let items: Vec<u32> = (1..=12).collect();
        let fetch = |page: Page| {
            let items = &items;
            async move {
                let start = ((page.number - 1) * page.size) as usize;
                Ok::<_, ()>(Paged {
                    items: items
                        .iter()
                        .skip(start)
                        .take(page.size as usize)
                        .copied()
                        .collect(),
                    total: items.len() as u64,
                    page,
                })
            }
        };
        let p = clamped(Page::new(99, 10), fetch).await.unwrap();
        assert_eq!(p.page.number, 2);
        assert_eq!(p.items, vec![11, 12]);
        let p = clamped(Page::new(1, 10), fetch).await.unwrap();
        assert_eq!(p.items.len(), 10);
    }
}
