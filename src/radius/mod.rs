//! RADIUS: packet checks, event decoding, dictionaries, NAS table, duplicate cache and the
//! UDP listener. Produces plain [`event::AccountingEvent`] values; knows nothing of storage.

pub mod decode;
pub mod dedup;
pub mod dict;
pub mod event;
pub mod listener;
pub mod nas;
pub mod packet;
