//! `[web]`, `[isp]`, `[ops]` and `[reminders]`: the panel's and the ops API's sections, owned by the web
//! layer.

pub use crate::web::billing::RemindersConfig;
pub use crate::web::settings::{host_name, IspConfig, OpsConfig, OpsToken, WebConfig};
