//! The public side of the panel: the service catalogue (imported) and orders for it (from
//! subscribers and visitors), news and FAQ entries (imported, bodies in Markdown).

use serde::Deserialize;
use time::OffsetDateTime;

use super::money::Money;
use super::repo::{
    ensure_exists, now, paged_by, select_list, text_enum, upsert_steps, Cols, Entity, Page, Paged,
    RowGet, StoreError, UniqueField, Upserted, Val,
};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

/// A service in the catalogue as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ServiceRecord {
    pub ext_id: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    /// Only active services can be ordered.
    pub active: bool,
}

/// A stored service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub id: i64,
    pub ext_id: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub active: bool,
    pub updated_at: OffsetDateTime,
}

impl Service {
    pub fn to_record(&self) -> ServiceRecord {
        ServiceRecord {
            ext_id: self.ext_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price: self.price,
            active: self.active,
        }
    }
}

const SERVICE_COLS: &[&str] = &[
    "id",
    "ext_id",
    "name",
    "description",
    "price",
    "active",
    "updated_at",
];

fn read_service<R: RowGet>(c: &Cols<'_, R>) -> Result<Service, sqlx::Error> {
    Ok(Service {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        name: c.text("name")?,
        description: c.text("description")?,
        price: c.money("price")?,
        active: c.boolean("active")?,
        updated_at: c.ts("updated_at")?,
    })
}

fn need(field: &'static str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// Insert or update a service by `ext_id`.
pub async fn upsert_service(tx: &mut DbTx, rec: &ServiceRecord) -> Result<Upserted, StoreError> {
    need("ext_id", &rec.ext_id)?;
    need("name", &rec.name)?;
    let select = format!(
        "SELECT {} FROM services s WHERE s.ext_id = $1",
        select_list("s", "", SERVICE_COLS)
    );
    let vals = vec![
        ("ext_id", Val::from(&rec.ext_id)),
        ("name", Val::from(&rec.name)),
        ("description", Val::from(&rec.description)),
        ("price", Val::from(rec.price)),
        ("active", Val::from(rec.active)),
        ("updated_at", Val::from(now())),
    ];
    let uniques = [(UniqueField::ExtId(Entity::Service), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => upsert_steps!(conn, "services", rec, vals, &uniques, {
        sqlx::query(&select)
            .bind(&rec.ext_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| read_service(&Cols::new(&r)).map(|s| (s.id, s.to_record())))
            .transpose()?
    }));
    Ok(outcome)
}

/// Services that can be ordered, by name.
pub async fn active_services(db: &Db) -> Result<Vec<Service>, StoreError> {
    let sql = format!(
        "SELECT {} FROM services s WHERE s.active = $1 ORDER BY s.name, s.id",
        select_list("s", "", SERVICE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(true)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_service(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// One service (active or not).
pub async fn service(db: &Db, id: i64) -> Result<Option<Service>, StoreError> {
    let sql = format!(
        "SELECT {} FROM services s WHERE s.id = $1",
        select_list("s", "", SERVICE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_service(&Cols::new(&r)))
        .transpose()?))
}

// ---------------------------------------------------------------------------------------------
// Service orders
// ---------------------------------------------------------------------------------------------

text_enum! {
    pub enum OrderStatus {
        New = "new",
        InProgress = "in_progress",
        Done = "done",
        Rejected = "rejected",
    }
}

/// An order as placed in the panel: by a logged-in subscriber, or by a visitor who leaves
/// contact details.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewServiceOrder {
    pub subscriber_id: Option<i64>,
    pub service_id: i64,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub note: String,
}

/// A stored service order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOrder {
    pub id: i64,
    pub subscriber_id: Option<i64>,
    pub service_id: i64,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub note: String,
    pub status: OrderStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const ORDER_COLS: &[&str] = &[
    "id",
    "subscriber_id",
    "service_id",
    "contact_name",
    "contact_email",
    "contact_phone",
    "note",
    "status",
    "created_at",
    "updated_at",
];

fn read_order<R: RowGet>(c: &Cols<'_, R>) -> Result<ServiceOrder, sqlx::Error> {
    Ok(ServiceOrder {
        id: c.i64("id")?,
        subscriber_id: c.opt_i64("subscriber_id")?,
        service_id: c.i64("service_id")?,
        contact_name: c.opt_text("contact_name")?,
        contact_email: c.opt_text("contact_email")?,
        contact_phone: c.opt_text("contact_phone")?,
        note: c.text("note")?,
        status: c.parse("status")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Place an order (status `new`). The service must exist and be active; a visitor must
/// leave an e-mail or a phone number. Gives the order id.
pub async fn create_service_order(
    tx: &mut DbTx,
    order: &NewServiceOrder,
) -> Result<i64, StoreError> {
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if order.subscriber_id.is_none() && !has(&order.contact_email) && !has(&order.contact_phone) {
        return Err(StoreError::invalid(
            "contact_email",
            "a visitor must leave an e-mail or a phone number",
        ));
    }
    let at = now().unix_timestamp();
    let active_sql = "SELECT active FROM services WHERE id = $1";
    let sql = "INSERT INTO service_orders (subscriber_id, service_id, contact_name, \
               contact_email, contact_phone, note, status, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id";
    on_tx!(tx, conn => {
        if let Some(id) = order.subscriber_id {
            ensure_exists!(conn, Entity::Subscriber, id);
        }
        let active = sqlx::query(active_sql)
            .bind(order.service_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| Cols::new(&r).boolean("active"))
            .transpose()?;
        match active {
            None => {
                return Err(StoreError::NotFound {
                    kind: Entity::Service,
                    id: order.service_id,
                })
            }
            Some(false) => {
                return Err(StoreError::invalid("service_id", "the service is not offered"))
            }
            Some(true) => {}
        }
        let row = sqlx::query(sql)
            .bind(order.subscriber_id)
            .bind(order.service_id)
            .bind(&order.contact_name)
            .bind(&order.contact_email)
            .bind(&order.contact_phone)
            .bind(&order.note)
            .bind(OrderStatus::New.as_str())
            .bind(at)
            .fetch_one(&mut **conn)
            .await?;
        Ok(Cols::new(&row).i64("id")?)
    })
}

/// A subscriber's orders, newest first.
pub async fn service_orders_of(
    db: &Db,
    subscriber_id: i64,
) -> Result<Vec<ServiceOrder>, StoreError> {
    let sql = format!(
        "SELECT {} FROM service_orders o WHERE o.subscriber_id = $1 \
         ORDER BY o.created_at DESC, o.id DESC",
        select_list("o", "", ORDER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_order(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Orders in one status, oldest first (the office's work queue).
pub async fn service_orders_by_status(
    db: &Db,
    status: OrderStatus,
) -> Result<Vec<ServiceOrder>, StoreError> {
    let sql = format!(
        "SELECT {} FROM service_orders o WHERE o.status = $1 ORDER BY o.created_at, o.id",
        select_list("o", "", ORDER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(status.as_str())
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_order(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Move an order to another status.
pub async fn set_service_order_status(
    tx: &mut DbTx,
    order_id: i64,
    status: OrderStatus,
) -> Result<(), StoreError> {
    let sql = "UPDATE service_orders SET status = $1, updated_at = $2 WHERE id = $3";
    let at = now().unix_timestamp();
    let done = on_tx!(tx, conn => sqlx::query(sql)
        .bind(status.as_str())
        .bind(at)
        .bind(order_id)
        .execute(&mut **conn)
        .await?
        .rows_affected());
    if done == 0 {
        return Err(StoreError::NotFound {
            kind: Entity::ServiceOrder,
            id: order_id,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// News
// ---------------------------------------------------------------------------------------------

/// A news item as the billing system (or the office) sends it. Shown from `published_at`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NewsRecord {
    pub ext_id: String,
    pub title: String,
    /// Markdown.
    pub body_md: String,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A stored news item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewsItem {
    pub id: i64,
    pub ext_id: String,
    pub title: String,
    pub body_md: String,
    pub published_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl NewsItem {
    pub fn to_record(&self) -> NewsRecord {
        NewsRecord {
            ext_id: self.ext_id.clone(),
            title: self.title.clone(),
            body_md: self.body_md.clone(),
            published_at: self.published_at,
        }
    }
}

const NEWS_COLS: &[&str] = &[
    "id",
    "ext_id",
    "title",
    "body_md",
    "published_at",
    "updated_at",
];

fn read_news<R: RowGet>(c: &Cols<'_, R>) -> Result<NewsItem, sqlx::Error> {
    Ok(NewsItem {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        title: c.text("title")?,
        body_md: c.text("body_md")?,
        published_at: c.ts("published_at")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update a news item by `ext_id`. `published_at` is kept to the second.
pub async fn upsert_news(tx: &mut DbTx, rec: &NewsRecord) -> Result<Upserted, StoreError> {
    need("ext_id", &rec.ext_id)?;
    need("title", &rec.title)?;
    // Stored as Unix seconds: compare at that precision.
    let mut canonical = rec.clone();
    canonical.published_at = super::repo::from_ts(rec.published_at.unix_timestamp());
    let select = format!(
        "SELECT {} FROM news n WHERE n.ext_id = $1",
        select_list("n", "", NEWS_COLS)
    );
    let vals = vec![
        ("ext_id", Val::from(&rec.ext_id)),
        ("title", Val::from(&rec.title)),
        ("body_md", Val::from(&rec.body_md)),
        ("published_at", Val::from(rec.published_at)),
        ("updated_at", Val::from(now())),
    ];
    let uniques = [(UniqueField::ExtId(Entity::News), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => upsert_steps!(conn, "news", &canonical, vals, &uniques, {
        sqlx::query(&select)
            .bind(&rec.ext_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| read_news(&Cols::new(&r)).map(|n| (n.id, n.to_record())))
            .transpose()?
    }));
    Ok(outcome)
}

/// News already published (at or before now), newest first.
pub async fn published_news(db: &Db, page: Page) -> Result<Paged<NewsItem>, StoreError> {
    let at = now().unix_timestamp();
    let sql = format!(
        "SELECT {} FROM news n WHERE n.published_at <= $1 \
         ORDER BY n.published_at DESC, n.id DESC LIMIT $2 OFFSET $3",
        select_list("n", "", NEWS_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM news WHERE published_at <= $1";
    paged_by!(db, count, &sql, at, page, read_news)
}

/// The `n` most recently published news items, without counting the rest (the dashboard
/// shows them; the news page pages through all with [`published_news`]).
pub async fn latest_news(db: &Db, n: i64) -> Result<Vec<NewsItem>, StoreError> {
    let sql = format!(
        "SELECT {} FROM news n WHERE n.published_at <= $1 \
         ORDER BY n.published_at DESC, n.id DESC LIMIT $2",
        select_list("n", "", NEWS_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(now().unix_timestamp())
        .bind(n)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_news(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// One published news item (`None` when missing or not yet published).
pub async fn news_item(db: &Db, id: i64) -> Result<Option<NewsItem>, StoreError> {
    let at = now().unix_timestamp();
    let sql = format!(
        "SELECT {} FROM news n WHERE n.id = $1 AND n.published_at <= $2",
        select_list("n", "", NEWS_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .bind(at)
        .fetch_optional(pool)
        .await?
        .map(|r| read_news(&Cols::new(&r)))
        .transpose()?))
}

// ---------------------------------------------------------------------------------------------
// FAQ
// ---------------------------------------------------------------------------------------------

/// A FAQ entry as sent by the billing system (or the office).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FaqRecord {
    pub ext_id: String,
    pub question: String,
    /// Markdown.
    pub answer_md: String,
    /// Display order, ascending.
    pub position: i64,
}

/// A stored FAQ entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaqEntry {
    pub id: i64,
    pub ext_id: String,
    pub question: String,
    pub answer_md: String,
    pub position: i64,
    pub updated_at: OffsetDateTime,
}

impl FaqEntry {
    pub fn to_record(&self) -> FaqRecord {
        FaqRecord {
            ext_id: self.ext_id.clone(),
            question: self.question.clone(),
            answer_md: self.answer_md.clone(),
            position: self.position,
        }
    }
}

const FAQ_COLS: &[&str] = &[
    "id",
    "ext_id",
    "question",
    "answer_md",
    "position",
    "updated_at",
];

fn read_faq<R: RowGet>(c: &Cols<'_, R>) -> Result<FaqEntry, sqlx::Error> {
    Ok(FaqEntry {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        question: c.text("question")?,
        answer_md: c.text("answer_md")?,
        position: c.i64("position")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update a FAQ entry by `ext_id`.
pub async fn upsert_faq(tx: &mut DbTx, rec: &FaqRecord) -> Result<Upserted, StoreError> {
    need("ext_id", &rec.ext_id)?;
    need("question", &rec.question)?;
    let select = format!(
        "SELECT {} FROM faq f WHERE f.ext_id = $1",
        select_list("f", "", FAQ_COLS)
    );
    let vals = vec![
        ("ext_id", Val::from(&rec.ext_id)),
        ("question", Val::from(&rec.question)),
        ("answer_md", Val::from(&rec.answer_md)),
        ("position", Val::from(rec.position)),
        ("updated_at", Val::from(now())),
    ];
    let uniques = [(UniqueField::ExtId(Entity::Faq), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => upsert_steps!(conn, "faq", rec, vals, &uniques, {
        sqlx::query(&select)
            .bind(&rec.ext_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| read_faq(&Cols::new(&r)).map(|f| (f.id, f.to_record())))
            .transpose()?
    }));
    Ok(outcome)
}

/// All FAQ entries in display order.
pub async fn faq(db: &Db) -> Result<Vec<FaqEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM faq f ORDER BY f.position, f.id",
        select_list("f", "", FAQ_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_faq(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

// ---------------------------------------------------------------------------------------------
// Pages for the panel and the office
// ---------------------------------------------------------------------------------------------

/// One page of a subscriber's orders, newest first.
pub async fn service_orders_page(
    db: &Db,
    subscriber_id: i64,
    page: Page,
) -> Result<Paged<ServiceOrder>, StoreError> {
    let sql = format!(
        "SELECT {} FROM service_orders o WHERE o.subscriber_id = $1 \
         ORDER BY o.created_at DESC, o.id DESC LIMIT $2 OFFSET $3",
        select_list("o", "", ORDER_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM service_orders WHERE subscriber_id = $1";
    paged_by!(db, count, &sql, subscriber_id, page, read_order)
}

/// One page of the orders in one status, oldest first (the office's work queue).
pub async fn service_orders_by_status_page(
    db: &Db,
    status: OrderStatus,
    page: Page,
) -> Result<Paged<ServiceOrder>, StoreError> {
    let sql = format!(
        "SELECT {} FROM service_orders o WHERE o.status = $1 \
         ORDER BY o.created_at, o.id LIMIT $2 OFFSET $3",
        select_list("o", "", ORDER_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM service_orders WHERE status = $1";
    paged_by!(db, count, &sql, status.as_str(), page, read_order)
}

/// One order by id.
pub async fn service_order(db: &Db, id: i64) -> Result<Option<ServiceOrder>, StoreError> {
    let sql = format!(
        "SELECT {} FROM service_orders o WHERE o.id = $1",
        select_list("o", "", ORDER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_order(&Cols::new(&r)))
        .transpose()?))
}

/// Remove a news item by `ext_id`; `false` when there was none.
pub async fn delete_news(tx: &mut DbTx, ext_id: &str) -> Result<bool, StoreError> {
    let sql = "DELETE FROM news WHERE ext_id = $1";
    let done = on_tx!(tx, conn => sqlx::query(sql)
        .bind(ext_id)
        .execute(&mut **conn)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// One page of the FAQ in display order.
pub async fn faq_page(db: &Db, page: Page) -> Result<Paged<FaqEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM faq f ORDER BY f.position, f.id LIMIT $1 OFFSET $2",
        select_list("f", "", FAQ_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM faq";
    let (total, items) = on_pool!(db, pool => {
        let total = Cols::new(&sqlx::query(count).fetch_one(pool).await?).i64("n")?;
        let items = sqlx::query(&sql)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| read_faq(&Cols::new(r)))
            .collect::<Result<Vec<_>, _>>()?;
        (total, items)
    });
    Ok(Paged {
        items,
        total: total as u64,
        page,
    })
}
