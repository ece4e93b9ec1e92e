//! Bearer tokens: HS256 JWTs signed with a key the engine generates on first
//! start and keeps in its settings table, so every instance on one database
//! accepts the same tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

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
}

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
        Ok(Self {
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
        })
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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims.sub)
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
