//! Bearer tokens: HS256 JWTs signed with a key the engine generates on first
//! start and keeps in its settings table, so every instance on one database
//! accepts the same tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::HashMap;

use crate::error::EngineError;
use crate::store;

const KEY_SETTING: &str = "token_signing_key";
const ISSUER: &str = "auftrag";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// `PERS_KEY` of the person.
    sub: String,
    iss: String,
    iat: i64,
    exp: i64,
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
}

/// A verified token's subject and expiry (Unix seconds).
struct Verified {
    sub: String,
    exp: i64,
}

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
        }
    }

    /// A token for `person`, valid for `ttl`.
    pub fn issue(&self, person: &str, ttl: time::Duration) -> Result<String, EngineError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: person.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.whole_seconds(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| EngineError::Internal(format!("signing token: {e}")))
    }

    /// The person a token was issued to, if it is ours and still valid.
    pub fn verify(&self, token: &str) -> Result<String, EngineError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = verified.get(token).filter(|v| now < v.exp) {
                return Ok(v.sub.clone());
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
                exp: claims.exp,
            },
        );
        Ok(claims.sub)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_token_verifies_again_from_memory_and_a_changed_one_does_not() {
        let keys = keys();
        let token = keys.issue("1002", time::Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), "1002");
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
        assert_eq!(keys.verify(&token).unwrap(), "1002");
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
            .issue("1002", time::Duration::hours(1))
            .unwrap();
        assert!(keys.verify(&other).is_err());
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_remembered_token_is_used_only_until_its_expiry() {
        let keys = keys();
        // expired two minutes ago: beyond the validation's leeway
        let token = keys.issue("1002", time::Duration::minutes(-2)).unwrap();
        let e = keys.verify(&token).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        assert!(keys.verified.lock().unwrap().is_empty());
        // an entry past its expiry is not used: the token is checked again
        let token = keys.issue("1003", time::Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), "1003");
        {
            let mut verified = keys.verified.lock().unwrap();
            let entry = verified.get_mut(token.as_str()).unwrap();
            entry.exp -= 2 * 3600;
            entry.sub = "someone else".into();
        }
        assert_eq!(keys.verify(&token).unwrap(), "1003");
        assert_eq!(keys.verify(&token).unwrap(), "1003");
    }

    #[test]
    fn the_memory_is_bounded() {
        let keys = keys();
        for p in 0..VERIFIED_MAX + 10 {
            let token = keys
                .issue(&p.to_string(), time::Duration::hours(1))
                .unwrap();
            assert_eq!(keys.verify(&token).unwrap(), p.to_string());
        }
        assert!(keys.verified.lock().unwrap().len() <= VERIFIED_MAX);
    }
}
