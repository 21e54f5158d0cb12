//! Access recovery (a single-use link by mail, valid [`RESET_TTL`], the same answer whether or
//! not the address is known), e-mail confirmation (and a new link when one no longer
//! works), and the account settings: password, e-mail, the account's sessions (each other
//! one can be ended, or all), the optional TOTP second factor and its recovery codes.
//!
//! Rooms: [`recovery`], [`email`] (confirmation), [`settings`] (password, e-mail),
//! [`sessions`], [`two_factor`] (TOTP).

mod email;
mod recovery;
mod sessions;
mod settings;
#[cfg(test)]
mod tests;
mod two_factor;

pub use email::*;
pub use recovery::*;
pub(crate) use sessions::*;
pub use settings::*;
pub(crate) use two_factor::*;

use askama::Template;

use super::pages::Chrome;

/// How long a recovery link works.
pub(crate) const RESET_TTL: time::Duration = time::Duration::minutes(30);
/// How long an e-mail confirmation link works.
pub(crate) const CONFIRM_TTL: time::Duration = time::Duration::hours(24);

/// A page with a title and a notice (a mail sent, a link used up).
#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    c: Chrome,
    title: String,
}
