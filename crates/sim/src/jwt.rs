//! The simulated tenant's token signing key: RS256 JWTs with a `kid` in the header, the
//! JSON Web Key that publishes the key (JWKS), and the check Graph makes of each token.
//!
//! One RSA-2048 key is generated per process, the first time a simulator starts, and shared
//! by every simulator of that process: generating one costs tens of milliseconds, and the
//! test suite starts hundreds of simulators. Each simulator still has its own issuer (its
//! base URL), so a validator configured for one refuses the tokens of another.

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::auth::{decode_part, der_tlv};

/// The process's signing key and what publishes it.
pub(crate) struct SigningKey {
    pair: RsaKeyPair,
    /// The key id: the key's JWK thumbprint (RFC 7638), base64url.
    kid: String,
    /// The modulus, base64url without leading zeros.
    n: String,
    /// The public exponent, base64url.
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

static KEY: OnceLock<Result<SigningKey, String>> = OnceLock::new();

/// The process's signing key, generated on first use.
pub(crate) fn key() -> Result<&'static SigningKey, String> {
    KEY.get_or_init(SigningKey::generate)
        .as_ref()
        .map_err(Clone::clone)
}

/// The contents of each INTEGER of a DER SEQUENCE, without leading zero bytes.
fn der_integers(der: &[u8]) -> Option<Vec<&[u8]>> {
    let (tag, mut rest, _, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (tag, value, _, next) = der_tlv(rest)?;
        if tag != 0x02 {
            return None;
        }
        let start = value.iter().position(|b| *b != 0).unwrap_or(value.len());
        out.push(&value[start..]);
        rest = next;
    }
    Some(out)
}

impl SigningKey {
    fn generate() -> Result<Self, String> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| "cannot generate the token signing key".to_owned())?;
        // The public key is PKCS#1 RSAPublicKey: SEQUENCE { modulus, publicExponent }.
        let integers = der_integers(pair.public_key().as_ref())
            .ok_or("cannot read the token signing key's public half")?;
        let [n, e] = integers.as_slice() else {
            return Err("the token signing key's public half is not an RSA key".to_owned());
        };
        let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
        // RFC 7638: SHA-256 over the required members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref(),
        );
        Ok(Self { pair, kid, n, e })
    }

    /// The key id tokens name in their header.
    #[cfg(test)]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as the JWKS publishes it, with Entra's extra `issuer` member.
    pub(crate) fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": self.n,
            "e": self.e,
            "issuer": issuer,
        })
    }

    /// `claims` as a JWT signed RS256, header `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub(crate) fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "cannot sign the token".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// The claims of `token` if it is a JWT this key signed; otherwise why not, in Graph's
    /// words.
    pub(crate) fn verify(&self, token: &str) -> Result<Value, &'static str> {
        let malformed = "IDX14100: JWT is not well formed, there are no dots (.).";
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, sig] = parts.as_slice() else {
            return Err(malformed);
        };
        let header: Value = decode_part(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(malformed)?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return Err("Access token validation failure: the token is not signed by this tenant.");
        }
        let signature = decode_part(sig).map_err(|_| malformed)?;
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        )
        .verify(format!("{}.{claims}", parts[0]).as_bytes(), &signature)
        .map_err(|_| "Access token validation failure: the signature is invalid.")?;
        decode_part(claims)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(malformed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn signed_tokens_verify_and_altered_ones_do_not() {
        let key = key().unwrap();
        let token = key
            .sign(&json!({"aud": "api://enroll", "roles": ["Rosters.Read"]}))
            .unwrap();
        let claims = key.verify(&token).unwrap();
        assert_eq!(claims["roles"], json!(["Rosters.Read"]));
        let header: Value =
            serde_json::from_slice(&decode_part(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["kid"], key.kid());
        assert_eq!(header["alg"], "RS256");

        // The same signature over other claims does not verify.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(r#"{"aud":"api://enroll","roles":["Runs.Start"]}"#);
        assert!(key.verify(&parts.join(".")).is_err());
        assert!(key.verify("opaque").is_err());
    }

    #[test]
    fn the_jwk_holds_the_modulus_and_exponent_of_the_key() {
        let key = key().unwrap();
        let jwk = key.jwk("https://issuer/");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256, "a 2048-bit modulus");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(
            jwk["kid"].as_str().unwrap().len(),
            43,
            "a SHA-256 thumbprint"
        );
        // A verifier built from n and e alone (as JWKS clients do) accepts the signature.
        let token = key.sign(&json!({"sub": "x"})).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let components = signature::RsaPublicKeyComponents {
            n: n.as_slice(),
            e: &[1u8, 0, 1][..],
        };
        components
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &URL_SAFE_NO_PAD.decode(sig).unwrap(),
            )
            .unwrap();
    }
}
