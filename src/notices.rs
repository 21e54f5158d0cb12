//! `ebok notices`: post, change, resolve and list outage and maintenance notices from the
//! command line, straight in the database (audited as `cli:<user>`); a running panel shows
//! a change within [`ebok_web::web::notices::BOARD_TTL`] and mails about a new notice (when
//! `[mail] notices` is on) within 30 s.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};

use ebok_store::notices::{self, Listing, Notice};
use ebok_store::repo::Page;
use ebok_store::Db;
use ebok_web::ops::api::notices::NoticeRequest;
use ebok_web::terminal::{safe, time};

#[derive(Subcommand)]
pub enum NoticesCommand {
    /// Post a notice (severity and title required; a target or --everyone).
    Post(Fields),
    /// Change a notice: the options given replace the stored values.
    Update {
        id: i64,
        #[command(flatten)]
        fields: Fields,
    },
    /// Resolve a notice: it leaves the panel.
    Resolve { id: i64 },
    /// Open notices (with --all also the resolved), newest first.
    List {
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args)]
pub struct Fields {
    /// info, maintenance or outage.
    #[arg(long)]
    severity: Option<String>,
    #[arg(long)]
    title: Option<String>,
    /// The text under the title.
    #[arg(long)]
    body: Option<String>,
    /// Start (RFC 3339, Warsaw time `2026-01-31 13:00`, or Unix seconds); default now.
    #[arg(long)]
    start: Option<String>,
    /// Expected end (same forms; "" clears it).
    #[arg(long)]
    end: Option<String>,
    /// For every subscriber and visitor.
    #[arg(long)]
    everyone: bool,
    /// A NAS key as the live map names it (repeatable).
    #[arg(long = "nas")]
    nas: Vec<String>,
    /// A postcode of installation addresses (repeatable).
    #[arg(long = "postcode")]
    postcodes: Vec<String>,
    /// A city of installation addresses (repeatable).
    #[arg(long = "city")]
    cities: Vec<String>,
}

impl Fields {
    fn request(self) -> NoticeRequest {
        let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
        NoticeRequest {
            title: self.title,
            body: self.body,
            severity: self.severity,
            starts_at: self.start,
            expected_end: self.end,
            everyone: self.everyone.then_some(true),
            nas: list(self.nas),
            postcodes: list(self.postcodes),
            cities: list(self.cities),
        }
    }
}

/// Run one `ebok notices` command.
pub async fn run(
    db: &Db,
    actor: &str,
    command: NoticesCommand,
    utc: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        NoticesCommand::Post(fields) => {
            let draft = fields
                .request()
                .new_draft()
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            let mut tx = db.begin().await?;
            let id = notices::create(&mut tx, &draft).await?;
            let detail = format!("{} {:?}", draft.severity, draft.title);
            ebok_store::audit::append(&mut tx, actor, "cli_notice_create", None, &detail).await?;
            tx.commit().await?;
            writeln!(out, "notice {id} posted")?;
        }
        NoticesCommand::Update { id, fields } => {
            let stored = notices::get(db, id)
                .await?
                .with_context(|| format!("no notice {id}"))?;
            let draft = fields
                .request()
                .onto(stored.draft)
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            let mut tx = db.begin().await?;
            notices::update(&mut tx, id, &draft).await?;
            let detail = format!("notice {id}");
            ebok_store::audit::append(&mut tx, actor, "cli_notice_update", None, &detail).await?;
            tx.commit().await?;
            writeln!(out, "notice {id} changed")?;
        }
        NoticesCommand::Resolve { id } => {
            let mut tx = db.begin().await?;
            notices::resolve(&mut tx, id).await?;
            let detail = format!("notice {id}");
            ebok_store::audit::append(&mut tx, actor, "cli_notice_resolve", None, &detail).await?;
            tx.commit().await?;
            writeln!(out, "notice {id} resolved")?;
        }
        NoticesCommand::List { all } => {
            let which = if all { Listing::All } else { Listing::Open };
            let found = notices::list(db, which, Page::first(Page::MAX_SIZE)).await?;
            for n in &found.items {
                print_notice(out, n, utc)?;
            }
            writeln!(out, "{} of {} notices", found.items.len(), found.total)?;
        }
    }
    Ok(())
}

fn print_notice(out: &mut impl Write, n: &Notice, utc: bool) -> std::io::Result<()> {
    let d = &n.draft;
    let end = d
        .expected_end
        .map(|t| time(t, utc))
        .unwrap_or_else(|| "?".into());
    let state = match n.resolved_at {
        Some(t) => format!("resolved {}", time(t, utc)),
        None => "open".into(),
    };
    let mut targets = Vec::new();
    if d.everyone {
        targets.push("everyone".to_owned());
    }
    targets.extend(d.nas.iter().map(|v| format!("nas {}", safe(v))));
    targets.extend(d.postcodes.iter().map(|v| format!("postcode {}", safe(v))));
    targets.extend(d.cities.iter().map(|v| format!("city {}", safe(v))));
    writeln!(
        out,
        "{:>5}  {:<11}  {} – {}  {}  {}\n       {}",
        n.id,
        d.severity.as_str(),
        time(d.starts_at, utc),
        end,
        state,
        safe(&d.title),
        targets.join(", ")
    )
}
