//! The request contract every endpoint shares: authentication, parameter
//! decoding, `expand[]`, lists, events and optimistic writes. Handlers get a
//! [`Call`] (context + parameters) and answer through [`Ctx`].
//!
//! The pieces live in their own modules (`state`, `call`, `ctx`, `lists`,
//! `events`); this one re-exports them so `crate::http::api::...` stays the
//! one path handlers import from.

pub use crate::http::body::{MAX_BODY_BYTES, read_body};
pub use crate::http::call::{Call, ClientCall, decode_error};
pub use crate::http::ctx::{ClientInfo, Ctx, origin};
pub use crate::http::error::store_error;
pub use crate::http::events::previous_attributes;
pub use crate::http::lists::{ListParams, page_of_embedded, take_range};
pub use crate::http::state::{API_VERSION, AppState, Limits, Shared};
