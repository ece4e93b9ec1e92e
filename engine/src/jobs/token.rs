//! The agency's shared secret and CRIMSy's token (DESIGN.md §8).
//!
//! A token is `hex(ms timestamp) "#" nonce "#" hex(HMAC-SHA256(key =
//! SHA-256(secret), message = "ts#nonce#"))`; the nonce is two random longs
//! in hex. It is accepted when the MAC matches (compared in constant time),
//! the timestamp is within ±100 s of the server's clock, and its nonce was
//! not seen before inside that window — nonces are kept in the database, so
//! every engine instance refuses a replay. Any failure is the same 401.
//!
//! The engine stores SHA-256(secret) — the HMAC key — not the secret itself,
//! and never logs either.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use subtle::ConstantTimeEq;

use super::{JobError, now_ms};
use crate::store::{self, Store};

/// Settings row holding hex(SHA-256(secret)).
pub const KEY_SETTING: &str = "agency_secret_sha256";
/// How far a token's timestamp may be from the server's clock.
pub const MAX_SKEW_MS: i64 = 100_000;
/// Shortest secret accepted (as CRIMSy).
pub const MIN_SECRET_CHARS: usize = 8;

/// `n` random bytes in hex.
pub fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

/// A new secret: 32 random bytes, in hex.
pub fn generate_secret() -> String {
    random_hex(32)
}

/// The HMAC key of a secret: SHA-256 of its UTF-8 bytes.
pub fn key_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn mac(key: &[u8], ts: &str, nonce: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("{ts}#{nonce}#").as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A token for `secret` at `at_ms` with `nonce` (used by tests and tools;
/// agencies compute their own).
pub fn make_token(secret: &str, at_ms: i64, nonce: &str) -> String {
    let ts = format!("{at_ms:x}");
    let mac = mac(&key_of(secret), &ts, nonce);
    format!("{ts}#{nonce}#{}", hex::encode(mac))
}

/// Stores a new secret (replacing the old one at once on every instance).
pub async fn set_secret(conn: &mut AnyConnection, secret: &str) -> Result<(), JobError> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(JobError::BadRequest(format!(
            "the agency secret must have at least {MIN_SECRET_CHARS} characters"
        )));
    }
    if secret.contains(['\n', '\r']) {
        return Err(JobError::BadRequest(
            "the agency secret must be one line (agencies read the first line of their secret file)"
                .into(),
        ));
    }
    sqlx::query(
        "INSERT INTO auftrag_settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(KEY_SETTING)
    .bind(hex::encode(key_of(secret)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Generates, stores and returns a new secret.
pub async fn rotate_secret(conn: &mut AnyConnection) -> Result<String, JobError> {
    let secret = generate_secret();
    set_secret(conn, &secret).await?;
    Ok(secret)
}

static CLEANUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Why a token failed; logged at debug level only, never answered.
#[derive(Debug)]
enum Failure {
    Shape,
    Skew,
    NoSecret,
    Mac,
    Replay,
}

/// Checks an agency token; `Err(JobError::Unauthorized)` on any failure.
pub async fn verify(store: &Store, token: &str) -> Result<(), JobError> {
    match check(store, token, now_ms()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failure)) => {
            tracing::debug!(?failure, "agency token refused");
            Err(JobError::Unauthorized)
        }
        Err(e) => Err(e),
    }
}

async fn check(store: &Store, token: &str, now: i64) -> Result<Result<(), Failure>, JobError> {
    let mut parts = token.trim().split('#');
    let (Some(ts), Some(nonce), Some(given), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Err(Failure::Shape));
    };
    let hexish = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if !hexish(ts, 16) || !hexish(nonce, 64) || !hexish(given, 64) {
        return Ok(Err(Failure::Shape));
    }
    let Ok(at) = i64::from_str_radix(ts, 16) else {
        return Ok(Err(Failure::Shape));
    };
    if (now - at).abs() > MAX_SKEW_MS {
        return Ok(Err(Failure::Skew));
    }
    let Ok(given) = hex::decode(given) else {
        return Ok(Err(Failure::Shape));
    };
    let mut conn = store.pool.acquire().await?;
    let Some(key) = store::get_setting(&mut conn, KEY_SETTING).await? else {
        return Ok(Err(Failure::NoSecret));
    };
    let Ok(key) = hex::decode(key) else {
        return Ok(Err(Failure::NoSecret));
    };
    let expected = mac(&key, ts, nonce);
    if !bool::from(expected.ct_eq(&given)) {
        return Ok(Err(Failure::Mac));
    }
    // The nonce is remembered until the token could no longer pass the
    // clock check; a second use inside that time is a replay.
    let nonce = nonce.to_ascii_lowercase();
    // only a token whose MAC is right gets a turn at writing
    drop(conn);
    let mut conn = store.write_conn().await?;
    if super::every_nth(&CLEANUPS, 32) {
        sqlx::query("DELETE FROM auftrag_agency_nonces WHERE expires_ms < $1")
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO auftrag_agency_nonces (nonce, expires_ms) VALUES ($1, $2) \
         ON CONFLICT (nonce) DO NOTHING",
    )
    .bind(&nonce)
    .bind(at + MAX_SKEW_MS + 1_000)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Err(Failure::Replay));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let t = make_token(
            "geheimnis",
            0x18f0a1b2c3d,
            "0123456789abcdef0123456789abcdef",
        );
        let parts: Vec<&str> = t.split('#').collect();
        assert_eq!(parts[0], "18f0a1b2c3d");
        assert_eq!(parts[1], "0123456789abcdef0123456789abcdef");
        assert_eq!(parts[2].len(), 64);
    }
}
