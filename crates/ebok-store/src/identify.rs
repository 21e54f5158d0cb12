//! Who is on a line: IP → live session (live map) → PPPoE login → contract → subscriber
//! (SQL). The panel recognises callers with it, the ops API and `ebok sessions lookup`
//! answer operators with it.

use std::net::IpAddr;

use crate::subscribers::{self, Contract, Subscriber};
use crate::Db;
use ebok_live::sessions::{LiveSession, LiveSessions};

/// A live session and, when its PPPoE login is known, the contract and subscriber it
/// belongs to.
#[derive(Debug, Clone)]
pub struct Identified {
    pub session: LiveSession,
    pub holder: Option<(Subscriber, Contract)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error("live sessions: {0}")]
    Live(#[from] ebok_live::sessions::StoreError),
    #[error("database: {0}")]
    Db(#[from] crate::repo::StoreError),
}

/// The live session holding `ip`, joined to its subscriber.
pub async fn identify(
    live: &dyn LiveSessions,
    db: &Db,
    ip: IpAddr,
) -> Result<Option<Identified>, IdentifyError> {
    let Some(session) = live.lookup(ip).await? else {
        return Ok(None);
    };
    let holder = match &session.user_name {
        Some(login) => subscribers::subscriber_by_login(db, login).await?,
        None => None,
    };
    Ok(Some(Identified { session, holder }))
}
