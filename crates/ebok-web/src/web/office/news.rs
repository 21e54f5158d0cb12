//! Aktualności and FAQ, their Markdown rendered by [`super::markdown`].

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::markdown::markdown_html;
use super::{ListQuery, FAQ_PER_PAGE, NEWS_PER_PAGE};
use crate::web::pages::{error_page, render, Chrome, Ctx};
use crate::web::paging::{clamped, Pager};
use crate::web::AppState;
use ebok_store::content::{self};
use ebok_store::tz::{format_date, warsaw_date};

pub(crate) struct NewsView {
    pub id: i64,
    pub title: String,
    /// `15.01.2026`, in Europe/Warsaw.
    pub date: String,
    /// `2026-01-15`, for `<time datetime>`.
    pub iso_date: String,
    /// Sanitised by [`markdown_html`].
    pub html: String,
}

#[derive(Template)]
#[template(path = "news.html")]
struct NewsPage {
    c: Chrome,
    items: Vec<NewsView>,
    single: bool,
    pager: Pager,
}

fn news_view(n: ebok_store::content::NewsItem) -> NewsView {
    let day = warsaw_date(n.published_at);
    NewsView {
        id: n.id,
        title: n.title,
        date: format_date(day),
        iso_date: day.to_string(),
        html: markdown_html(&n.body_md),
    }
}

/// Aktualności: published news, newest first.
pub async fn news(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Response, PanelError> {
    let p = clamped(q.page(NEWS_PER_PAGE), |p| {
        content::published_news(&state.db, p)
    })
    .await?;
    let pager = Pager::of(&p, "/aktualnosci");
    let c = Chrome::new(&state, &ctx, "/aktualnosci").await;
    Ok(render(
        StatusCode::OK,
        &NewsPage {
            c,
            items: p.items.into_iter().map(news_view).collect(),
            single: false,
            pager,
        },
    ))
}

/// One news item (not yet published or unknown: 404).
pub async fn news_item(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    let item = match content::news_item(&state.db, id).await {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => return Err(e.into()),
    };
    let c = Chrome::new(&state, &ctx, &format!("/aktualnosci/{id}")).await;
    Ok(render(
        StatusCode::OK,
        &NewsPage {
            c,
            items: vec![news_view(item)],
            single: true,
            pager: Pager::single(),
        },
    ))
}

pub(crate) struct FaqView {
    pub id: i64,
    pub question: String,
    /// Sanitised by [`markdown_html`].
    pub html: String,
}

#[derive(Template)]
#[template(path = "faq.html")]
struct FaqPage {
    c: Chrome,
    items: Vec<FaqView>,
    pager: Pager,
}

/// FAQ: the questions in their display order.
pub async fn faq(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Response, PanelError> {
    let p = clamped(q.page(FAQ_PER_PAGE), |p| content::faq_page(&state.db, p)).await?;
    let pager = Pager::of(&p, "/faq");
    let c = Chrome::new(&state, &ctx, "/faq").await;
    Ok(render(
        StatusCode::OK,
        &FaqPage {
            c,
            items: p
                .items
                .into_iter()
                .map(|f| FaqView {
                    id: f.id,
                    question: f.question,
                    html: markdown_html(&f.answer_md),
                })
                .collect(),
            pager,
        },
    ))
}
