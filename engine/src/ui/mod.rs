//! Web pages for people: staff work the queue of waiting orders, requesters
//! place and follow orders (`/ui/…`, server-rendered by `auftrag serve`).
//!
//! The pages are generic over the compiled definitions, like the rest of
//! the engine: forms come from the order types' typed fields ([`form`]),
//! the queue from the workflows' waiting states, the timeline from the
//! history document. They know no domain.
//!
//! - Templates are askama (`engine/templates/ui/`), checked when the crate
//!   builds; askama escapes every value, so a host name, comment or field
//!   value with markup shows as text.
//! - The CSS is embedded in the binary; pages need no JavaScript and load
//!   nothing from elsewhere.
//! - What a person sees and may do is decided by the functions the API
//!   calls: [`crate::pdp::may_read`] for an order page,
//!   [`crate::workflow::executor::act`] (staff: the `staff_action` policy)
//!   for every action, [`crate::workflow::claims`] for claims,
//!   [`crate::http::validate::validate`] and
//!   [`crate::workflow::executor::submit`] for new orders, the staff table
//!   for the queue (as `GET /api/v1/orders` lists all orders to staff
//!   only), [`crate::history::search::search`] and
//!   [`crate::history::stats::stats`] with the signed-in person for the
//!   history search and statistics ([`history`]), the staff table for the
//!   agency and jobs page ([`jobs`]). A form or link left out of a page is
//!   a courtesy, never the protection.
//! - Charts are SVG drawn on the server ([`charts`]).
//! - Sessions, sign-in links and form tokens against CSRF: [`session`].
//! - German and English: [`i18n`].
//!
//! The pages are not part of the JSON API's contract and not in its
//! OpenAPI document: they answer HTML, and their forms change with the
//! definitions.

mod charts;
mod definitions;
pub mod form;
mod history;
pub mod i18n;
mod jobs;
pub mod session;
mod views;

pub use views::router;

/// Settings of the pages (flags of `auftrag serve`).
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// The language of the pages for browsers that ask for neither German
    /// nor English.
    pub default_language: i18n::Lang,
    /// How long a sign-in lasts.
    pub session_ttl: time::Duration,
    /// Mark the cookies `Secure` (the server is reached over https through
    /// a proxy that does not send `X-Forwarded-Proto`).
    pub secure_cookies: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            default_language: i18n::Lang::En,
            session_ttl: time::Duration::hours(8),
            secure_cookies: false,
        }
    }
}
