//! Sign-in sessions of the pages, one-time sign-in links, and the form
//! tokens against cross-site request forgery.
//!
//! A session is a row of `auftrag_ui_sessions` found by the SHA-256 of the
//! cookie's random secret. It carries a bearer token, checked on every
//! request by [`crate::http::auth::authenticate`] exactly as the API checks
//! one (a revoked token or a deleted person ends the session), and a random
//! form token every form of the session must send back. Before a session
//! exists (the sign-in forms), the form token is a random value in a cookie
//! of its own that the form must repeat (double submit). The cookies are
//! HttpOnly, SameSite=Strict, limited to `/ui`, and Secure behind https.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use sha2::Digest;
use sqlx::Row;

use crate::error::EngineError;
use crate::http::server::Engine;
use crate::store::history::{format_instant, now};
use crate::workflow::context::Principal;

pub const SESSION_COOKIE: &str = "auftrag_session";
pub const FORM_COOKIE: &str = "auftrag_form";

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The form token every form of the session carries.
    pub csrf: String,
    /// SHA-256 of the cookie's secret (the row's key).
    id: String,
}

fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Compares two tokens in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Whether the request came over https (directly configured, or through
/// a proxy that says so).
fn secure(engine: &Engine, headers: &HeaderMap) -> bool {
    engine.ui.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// A `Set-Cookie` value for `name`, living `max_age` (zero: removed).
pub fn set_cookie(
    engine: &Engine,
    headers: &HeaderMap,
    name: &'static str,
    value: String,
    max_age: time::Duration,
) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(engine, headers))
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of hex digits is a header value")
}

/// The session of the request, if its cookie names a live one whose token
/// still authenticates.
pub async fn find(engine: &Engine, headers: &HeaderMap) -> Result<Option<Session>, EngineError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id = digest(&secret);
    let row = sqlx::query(
        "SELECT token, csrf FROM auftrag_ui_sessions WHERE id = $1 AND expires_at > $2",
    )
    .bind(&id)
    .bind(now())
    .fetch_optional(&engine.store.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let token: String = row.try_get("token")?;
    let csrf: String = row.try_get("csrf")?;
    let mut auth = HeaderMap::new();
    auth.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            EngineError::Internal("a stored session token is not a header value".into())
        })?,
    );
    match crate::http::auth::authenticate(engine, &auth).await {
        Ok(principal) => Ok(Some(Session {
            principal,
            csrf,
            id,
        })),
        Err(EngineError::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Starts a session acting with `token` (already authenticated as
/// `person`); returns the cookie's secret.
pub async fn start(engine: &Engine, person: &str, token: &str) -> Result<String, EngineError> {
    let secret = random_secret();
    let expires = format_instant(time::OffsetDateTime::now_utc() + engine.ui.session_ttl);
    let mut conn = engine.store.write_conn().await?;
    // sessions that ended are removed as new ones begin
    sqlx::query("DELETE FROM auftrag_ui_sessions WHERE expires_at <= $1")
        .bind(now())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO auftrag_ui_sessions (id, person, token, csrf, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest(&secret))
    .bind(person)
    .bind(token)
    .bind(random_secret())
    .bind(expires)
    .execute(&mut *conn)
    .await?;
    Ok(secret)
}

/// Ends a session (sign-out).
pub async fn end(engine: &Engine, session: &Session) -> Result<(), EngineError> {
    let mut conn = engine.store.write_conn().await?;
    sqlx::query("DELETE FROM auftrag_ui_sessions WHERE id = $1")
        .bind(&session.id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A new form token for the sign-in forms (set as [`FORM_COOKIE`]).
pub fn form_token() -> String {
    random_secret()
}

/// Creates a one-time sign-in link for `person`, valid for `ttl`; returns
/// its secret (the link is `/ui/login/SECRET`).
pub async fn create_link(
    engine: &Engine,
    person: &str,
    ttl: time::Duration,
) -> Result<String, EngineError> {
    let mut conn = engine.store.write_conn().await?;
    if !engine.domain.person_exists(&mut conn, person).await? {
        return Err(EngineError::Forbidden(format!(
            "there is no person with key `{person}`"
        )));
    }
    let secret = random_secret();
    sqlx::query("INSERT INTO auftrag_login_links (id, person, expires_at) VALUES ($1, $2, $3)")
        .bind(digest(&secret))
        .bind(person)
        .bind(format_instant(time::OffsetDateTime::now_utc() + ttl))
        .execute(&mut *conn)
        .await?;
    Ok(secret)
}

/// Uses a sign-in link: its row is deleted, so it works once. Returns the
/// person it was made for, if it exists and has not expired.
pub async fn use_link(engine: &Engine, secret: &str) -> Result<Option<String>, EngineError> {
    let id = digest(secret);
    let mut tx = engine.store.begin_write().await?;
    let person: Option<(String, String)> =
        sqlx::query_as("SELECT person, expires_at FROM auftrag_login_links WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
    let deleted = sqlx::query("DELETE FROM auftrag_login_links WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(person
        .filter(|(_, expires)| deleted == 1 && *expires > now())
        .map(|(p, _)| p))
}
