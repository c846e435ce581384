//! Access tokens: HS256 JWTs with `iss`, `aud`, `exp` validated, the algorithm pinned and a small leeway.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Issuer and audience of Languard access tokens.
pub const ISSUER: &str = "languard-controller";
/// Audience of Languard access tokens.
pub const AUDIENCE: &str = "languard-api";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a string.
    pub sub: String,
    /// Username, for logs.
    pub name: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
}

/// Signs and checks access tokens with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], ttl_seconds: u64) -> Result<Self, TokenError> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| TokenError(e.to_string()))?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| TokenError(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            encoding,
            decoding,
            validation,
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(900),
        })
    }

    /// Issues a token for a user; returns it with its expiry.
    pub fn issue(
        &self,
        user_id: i64,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        let exp = now + chrono::Duration::seconds(self.ttl_seconds);
        let claims = Claims {
            sub: user_id.to_string(),
            name: username.to_owned(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: exp.timestamp(),
            iat: now.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError(e.to_string()))?;
        Ok((token, exp))
    }

    /// Checks signature, algorithm, issuer, audience and expiry; returns the user id and claims.
    pub fn verify(&self, token: &str) -> Result<(i64, Claims), TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError(format!("invalid access token: {e}")))?;
        let id = data
            .claims
            .sub
            .parse::<i64>()
            .map_err(|_| TokenError("invalid access token: bad subject".into()))?;
        Ok((id, data.claims))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef", 900).expect("keys")
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let (t, _) = k.issue(7, "alice", Utc::now()).expect("issue");
        let (id, c) = k.verify(&t).expect("verify");
        assert_eq!(id, 7);
        assert_eq!(c.name, "alice");
    }

    #[test]
    fn expired_forged_and_alg_none_are_refused() {
        let k = keys();
        let (t, _) = k
            .issue(7, "alice", Utc::now() - chrono::Duration::hours(1))
            .expect("issue");
        assert!(k.verify(&t).is_err(), "expired");
        let other = JwtKeys::new(b"ffffffffffffffffffffffffffffffff", 900).expect("keys");
        let (t, _) = other.issue(7, "alice", Utc::now()).expect("issue");
        assert!(k.verify(&t).is_err(), "forged signature");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = Utc::now().timestamp() + 600;
        let body = URL_SAFE_NO_PAD.encode(
            format!(r#"{{"sub":"7","name":"a","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"iat":0}}"#).as_bytes(),
        );
        assert!(k.verify(&format!("{header}.{body}.")).is_err(), "alg none");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        assert!(
            k.verify(&format!("{header}.{body}.AAAA")).is_err(),
            "other alg"
        );
    }
}
