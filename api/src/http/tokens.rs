//! Access tokens: short-lived HS256 JWTs.
//!
//! Verification pins the algorithm (so `alg: none` and algorithm confusion
//! fail), and requires `exp`, `nbf`, `iss`, `aud`, `sub` and `jti`. The
//! `fam` claim ties a token to its login session, so a logout or a detected
//! refresh-token reuse ends the access tokens of that session too.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voxq_shared::auth::scope::Scopes;

use crate::config::ApiConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The user's account.
    pub acct: Uuid,
    /// The login session (refresh-token family).
    pub fam: Uuid,
    pub jti: Uuid,
    /// Space-separated scopes.
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: i64,
}

impl TokenKeys {
    pub fn new(config: &ApiConfig) -> Self {
        let secret = config.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl: i64::try_from(config.access_token_ttl).unwrap_or(900),
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl
    }

    pub fn issue(
        &self,
        user: Uuid,
        account: Uuid,
        family: Uuid,
        scopes: &Scopes,
    ) -> jsonwebtoken::errors::Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            acct: account,
            fam: family,
            jti: Uuid::now_v7(),
            scope: scopes.to_claim(),
            iat: now,
            nbf: now,
            exp: now + self.ttl,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .ok()
    }
}
