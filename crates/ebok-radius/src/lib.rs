//! RADIUS: packet checks, event decoding, dictionaries, NAS table, duplicate cache, the
//! UDP listener, passive capture and the Disconnect (RFC 5176) client. Produces plain
//! [`event::AccountingEvent`] values; knows nothing of storage.

pub mod capture;
pub mod coa;
pub mod decode;
pub mod dedup;
pub mod dict;
pub mod event;
#[cfg(any(test, feature = "fake-nas"))]
pub mod fake_nas;
pub mod journal;
pub mod line_address;
pub mod listener;
mod mmsg;
pub mod nas;
pub mod packet;
pub mod throttle;
