//! Bearer tokens: HS256 JWTs signed with a key the engine generates on first
//! start and keeps in its settings table, so every instance on one database
//! accepts the same tokens.
//!
//! A token names a person (`sub`) and the person's token epoch when it was
//! issued (`ep`). On use, [`authenticate`] also asks whether the person
//! still exists (the domain's [`crate::domain::Domain::person_exists`]) and
//! whether the token's epoch is still the person's (`auftrag token revoke`
//! raises it, in `auftrag_token_epochs`). The answer is remembered per
//! person for [`SUBJECT_CHECK_TTL`], so a client that sends many requests
//! costs two small reads every few seconds, not two per request: a
//! revocation or a deletion takes effect at once on a server that starts
//! afterwards or revoked itself, and within that time on running ones.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::HashMap;

use crate::error::EngineError;
use crate::http::server::Engine;
use crate::store;
use crate::workflow::context::Principal;

const KEY_SETTING: &str = "token_signing_key";
const ISSUER: &str = "auftrag";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// `PERS_KEY` of the person.
    sub: String,
    iss: String,
    iat: i64,
    exp: i64,
    /// The person's token epoch at issue; tokens from before epochs
    /// existed have none (0).
    #[serde(default)]
    ep: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Tokens that passed [`verify`](Self::verify), with their subject
    /// and expiry: a client sends the same token with every request, and
    /// checking its signature and claims again costs more than the rest of
    /// reading the request. Only the whole token string, signature
    /// included, finds an entry, and the key never changes while the
    /// process runs; an entry is used only until the token's `exp`.
    verified: std::sync::Mutex<HashMap<Box<str>, Verified>>,
    /// What [`authenticate`] last read about a person: whether they exist
    /// and their token epoch, and when it read it.
    subjects: std::sync::Mutex<HashMap<String, Subject>>,
}

/// A verified token's subject, epoch and expiry (Unix seconds).
#[derive(Debug, Clone)]
struct Verified {
    sub: String,
    ep: i64,
    exp: i64,
}

/// A person as the database said when last asked.
#[derive(Debug, Clone, Copy)]
struct Subject {
    exists: bool,
    epoch: i64,
    read_at: std::time::Instant,
}

/// How long what the database said about a token's person (existence,
/// token epoch) is taken as still true.
pub const SUBJECT_CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// At most this many verified tokens are remembered; when full, the
/// memory starts over.
const VERIFIED_MAX: usize = 4096;

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Loads the signing key, creating it on first start.
    pub async fn load_or_create(conn: &mut AnyConnection) -> Result<Self, EngineError> {
        let fresh: [u8; 32] = rand::random();
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let key = store::init_setting(conn, KEY_SETTING, &hex).await?;
        Ok(Self::from_secret(key.as_bytes()))
    }

    fn from_secret(key: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            verified: Default::default(),
            subjects: Default::default(),
        }
    }

    /// A token for `person` of token epoch `epoch`, valid for `ttl`.
    pub fn issue(
        &self,
        person: &str,
        epoch: i64,
        ttl: time::Duration,
    ) -> Result<String, EngineError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: person.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.whole_seconds(),
            ep: epoch,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| EngineError::Internal(format!("signing token: {e}")))
    }

    /// The person a token was issued to and the token's epoch, if it is
    /// ours and still valid (whether the person still exists and the epoch
    /// is still theirs is [`authenticate`]'s question).
    pub fn verify(&self, token: &str) -> Result<(String, i64), EngineError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = verified.get(token).filter(|v| now < v.exp) {
                return Ok((v.sub.clone(), v.ep));
            }
        }
        let claims = self.decode(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(
            token.into(),
            Verified {
                sub: claims.sub.clone(),
                ep: claims.ep,
                exp: claims.exp,
            },
        );
        Ok((claims.sub, claims.ep))
    }

    /// What is remembered about `person` for a token of epoch `ep`, if it
    /// is recent enough to decide on — a token newer than the remembered
    /// epoch is asked about anew.
    fn remembered(&self, person: &str, ep: i64) -> Option<Subject> {
        let subjects = self.subjects.lock().unwrap_or_else(|e| e.into_inner());
        subjects
            .get(person)
            .filter(|s| s.read_at.elapsed() < SUBJECT_CHECK_TTL && ep <= s.epoch)
            .copied()
    }

    fn remember(&self, person: &str, subject: Subject) {
        let mut subjects = self.subjects.lock().unwrap_or_else(|e| e.into_inner());
        if subjects.len() >= VERIFIED_MAX {
            subjects.clear();
        }
        subjects.insert(person.to_owned(), subject);
    }

    /// Forgets what was read about `person` (after revoking their tokens).
    pub fn forget(&self, person: &str) {
        self.subjects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(person);
    }

    /// Checks the token's signature and claims.
    fn decode(&self, token: &str) -> Result<Claims, EngineError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                EngineError::Unauthorized(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the bearer token has expired; get a new one with `auftrag token issue`"
                            .into()
                    }
                    _ => "the bearer token is not valid for this server".into(),
                })
            })
    }
}

/// A person's token epoch (0 if their tokens were never revoked).
pub async fn token_epoch(conn: &mut AnyConnection, person: &str) -> Result<i64, EngineError> {
    Ok(
        sqlx::query_scalar("SELECT epoch FROM auftrag_token_epochs WHERE person = $1")
            .bind(person)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0),
    )
}

/// Raises a person's token epoch: every token issued to them before is
/// refused from now on. Returns the new epoch.
pub async fn revoke(conn: &mut AnyConnection, person: &str) -> Result<i64, EngineError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO auftrag_token_epochs (person, epoch) VALUES ($1, 1) \
         ON CONFLICT (person) DO UPDATE SET epoch = auftrag_token_epochs.epoch + 1 \
         RETURNING epoch",
    )
    .bind(person)
    .fetch_one(&mut *conn)
    .await?)
}

/// The person a request is made for, from its `Authorization: Bearer`
/// header: the token must be ours and unexpired, its person must still
/// exist, and its epoch must be the person's (not revoked). What the
/// database says about the person is remembered for [`SUBJECT_CHECK_TTL`]
/// (see the module documentation).
pub async fn authenticate(
    engine: &Engine,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, EngineError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            EngineError::Unauthorized(
                "this endpoint needs `Authorization: Bearer TOKEN`; get a token with `auftrag token issue --person PERS_KEY`".into(),
            )
        })?;
    let token = crate::http::credentials(header, "Bearer").ok_or_else(|| {
        EngineError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
    })?;
    let keys = &engine.tokens;
    let (person, ep) = keys.verify(token)?;
    let subject = match keys.remembered(&person, ep) {
        Some(s) => s,
        None => {
            let mut conn = engine.store.acquire().await?;
            let subject = Subject {
                exists: engine.domain.person_exists(&mut conn, &person).await?,
                epoch: token_epoch(&mut conn, &person).await?,
                read_at: std::time::Instant::now(),
            };
            keys.remember(&person, subject);
            subject
        }
    };
    if !subject.exists {
        return Err(EngineError::Unauthorized(format!(
            "the person `{person}` this bearer token was issued to no longer exists; tokens are only valid for persons of the database"
        )));
    }
    if ep < subject.epoch {
        return Err(EngineError::Unauthorized(format!(
            "this bearer token was revoked (`auftrag token revoke`); get a new one with `auftrag token issue --person {person}`"
        )));
    }
    Ok(Principal { person })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_token_verifies_again_from_memory_and_a_changed_one_does_not() {
        let keys = keys();
        let token = keys.issue("1002", 0, time::Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), ("1002".into(), 0));
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
        assert_eq!(keys.verify(&token).unwrap(), ("1002".into(), 0));
        // the same claims under another signature
        let (body, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let forged = format!("{body}.{flipped}{}", &sig[1..]);
        assert!(matches!(
            keys.verify(&forged),
            Err(EngineError::Unauthorized(_))
        ));
        // another server's token
        let other = TokenKeys::from_secret(b"another key, another server....!")
            .issue("1002", 0, time::Duration::hours(1))
            .unwrap();
        assert!(keys.verify(&other).is_err());
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_remembered_token_is_used_only_until_its_expiry() {
        let keys = keys();
        // expired two minutes ago: beyond the validation's leeway
        let token = keys.issue("1002", 0, time::Duration::minutes(-2)).unwrap();
        let e = keys.verify(&token).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        assert!(keys.verified.lock().unwrap().is_empty());
        // an entry past its expiry is not used: the token is checked again
        let token = keys.issue("1003", 0, time::Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), ("1003".into(), 0));
        {
            let mut verified = keys.verified.lock().unwrap();
            let entry = verified.get_mut(token.as_str()).unwrap();
            entry.exp -= 2 * 3600;
            entry.sub = "someone else".into();
        }
        assert_eq!(keys.verify(&token).unwrap(), ("1003".into(), 0));
        assert_eq!(keys.verify(&token).unwrap(), ("1003".into(), 0));
    }

    #[test]
    fn the_memory_is_bounded() {
        let keys = keys();
        for p in 0..VERIFIED_MAX + 10 {
            let token = keys
                .issue(&p.to_string(), 0, time::Duration::hours(1))
                .unwrap();
            assert_eq!(keys.verify(&token).unwrap(), (p.to_string(), 0));
        }
        assert!(keys.verified.lock().unwrap().len() <= VERIFIED_MAX);
    }

    #[test]
    fn what_is_remembered_about_a_person_decides_only_while_fresh_and_not_older_than_the_token() {
        let keys = keys();
        let token = keys.issue("1002", 3, time::Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), ("1002".into(), 3));
        assert!(keys.remembered("1002", 3).is_none());
        let now = std::time::Instant::now();
        keys.remember(
            "1002",
            Subject {
                exists: true,
                epoch: 3,
                read_at: now,
            },
        );
        assert!(keys.remembered("1002", 3).is_some());
        // an older token is decided on (refused by the caller) ...
        assert_eq!(keys.remembered("1002", 2).unwrap().epoch, 3);
        // ... a newer one is asked about anew
        assert!(keys.remembered("1002", 4).is_none());
        // as is everything once the time is over
        if let Some(past) = now.checked_sub(SUBJECT_CHECK_TTL) {
            keys.remember(
                "1002",
                Subject {
                    exists: true,
                    epoch: 3,
                    read_at: past,
                },
            );
            assert!(keys.remembered("1002", 3).is_none());
        }
        keys.forget("1002");
        assert!(keys.remembered("1002", 0).is_none());
    }
}
