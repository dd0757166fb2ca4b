//! Account SAS tokens signed from an account key.
//!
//! The 1.x Azure storage crates accept only Entra ID tokens or URLs that already carry a SAS,
//! no shared key. Connection strings (Azurite's included) carry a key, so we sign an account
//! SAS ourselves and add it to every request through [`SasPolicy`].
//!
//! String-to-sign for service version 2020-12-06 and later, per "Create an account SAS"
//! (learn.microsoft.com/rest/api/storageservices/create-account-sas), the same that Azurite
//! checks (`generateAccountSASSignature20201206`):
//!
//! ```text
//! account \n permissions \n services \n resource types \n start \n expiry \n ip \n protocol \n version \n encryption scope \n
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use azure_core::time::{Duration, OffsetDateTime};

use super::SERVICE_VERSION;

/// Blob and queue.
const SERVICES: &str = "bq";
/// Service, container and object level operations.
const RESOURCE_TYPES: &str = "sco";
/// Read, write, delete, list, add, create, update, process: what rosters, reports, audit
/// append blobs and queues need (process is dequeue).
const PERMISSIONS: &str = "rwdlacup";
/// How long a token is valid; [`SasPolicy`] re-signs well before that.
const LIFETIME: Duration = Duration::hours(1);
/// Re-sign when less than this is left, so no request is sent with a token about to expire.
const RENEW_BEFORE: Duration = Duration::minutes(10);

/// An account key and the account it belongs to: what signs account SAS tokens.
#[derive(Clone)]
pub struct AccountKey {
    account: String,
    key: Secret,
}

impl AccountKey {
    /// The key as a connection string carries it (base64) for the named account.
    ///
    /// # Errors
    ///
    /// The key is not valid base64 (the message does not repeat it).
    pub fn new(account: &str, key_base64: &str) -> Result<Self, SasError> {
        azure_core::base64::decode(key_base64).map_err(|_| SasError::KeyNotBase64)?;
        Ok(Self {
            account: account.to_owned(),
            key: Secret::new(key_base64.to_owned()),
        })
    }

    /// The storage account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Signs an account SAS for blob and queue, valid until `expiry`, for HTTPS only or for
    /// HTTPS and HTTP, and returns it as a URL query string (`sv=...&sig=...`, no `?`).
    ///
    /// # Errors
    ///
    /// Signing failed (only if the key cannot be used as an HMAC key).
    pub fn sign(&self, expiry: OffsetDateTime, https_only: bool) -> Result<String, SasError> {
        let se = format_sas_time(expiry);
        let spr = if https_only { "https" } else { "https,http" };
        let string_to_sign = string_to_sign(
            &self.account,
            PERMISSIONS,
            SERVICES,
            RESOURCE_TYPES,
            &se,
            spr,
        );
        let sig = azure_core::hmac::hmac_sha256(&string_to_sign, &self.key)
            .map_err(|_| SasError::Sign)?;
        let mut query =
            azure_core::http::Url::parse("http://localhost/").map_err(|_| SasError::Sign)?;
        query
            .query_pairs_mut()
            .append_pair("sv", SERVICE_VERSION)
            .append_pair("ss", SERVICES)
            .append_pair("srt", RESOURCE_TYPES)
            .append_pair("sp", PERMISSIONS)
            .append_pair("se", &se)
            .append_pair("spr", spr)
            .append_pair("sig", &sig);
        Ok(query.query().unwrap_or_default().to_owned())
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a SAS could not be signed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SasError {
    /// The account key is not base64.
    #[error("the account key is not valid base64")]
    KeyNotBase64,
    /// HMAC signing failed.
    #[error("could not sign the SAS with the account key")]
    Sign,
}

/// The documented string-to-sign for an account SAS (version 2020-12-06 and later), with no
/// start time, IP range or encryption scope.
fn string_to_sign(
    account: &str,
    permissions: &str,
    services: &str,
    resource_types: &str,
    expiry: &str,
    protocol: &str,
) -> String {
    [
        account,
        permissions,
        services,
        resource_types,
        "", // start: none, so clock skew cannot make a fresh token "not yet valid"
        expiry,
        "", // IP range: any
        protocol,
        SERVICE_VERSION,
        "", // encryption scope: none
        "", // the string ends with a newline
    ]
    .join("\n")
}

/// `YYYY-MM-DDThh:mm:ssZ`, the UTC form SAS times take.
fn format_sas_time(t: OffsetDateTime) -> String {
    // Through the Unix timestamp: the result is in UTC whatever offset `t` carries.
    let t = OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Where the SAS of every request comes from.
#[derive(Clone)]
pub(crate) enum SasSource {
    /// Signed here from the account key and renewed before it expires.
    Key(AccountKey),
    /// Given whole by the connection string (`SharedAccessSignature=`).
    Fixed(Secret),
}

/// A pipeline policy that adds the account SAS to each request's URL.
///
/// Per-call, so it runs once before the SDK's retries and every retry reuses the signed URL.
pub(crate) struct SasPolicy {
    source: SasSource,
    https_only: bool,
    /// The current token and its expiry.
    cache: Mutex<Option<(OffsetDateTime, Arc<str>)>>,
}

impl SasPolicy {
    pub(crate) fn new(source: SasSource, https_only: bool) -> Self {
        Self {
            source,
            https_only,
            cache: Mutex::new(None),
        }
    }

    fn token(&self) -> azure_core::Result<Arc<str>> {
        let key = match &self.source {
            SasSource::Fixed(sas) => return Ok(Arc::from(sas.secret().trim_start_matches('?'))),
            SasSource::Key(key) => key,
        };
        let now = OffsetDateTime::now_utc();
        // A poisoned lock only means another request panicked while holding it; the cached
        // token is still either valid or replaced below.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((expiry, token)) = cache.as_ref()
            && *expiry - now > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let expiry = now + LIFETIME;
        let token: Arc<str> = key
            .sign(expiry, self.https_only)
            .map_err(|e| {
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    e.to_string(),
                )
            })?
            .into();
        *cache = Some((expiry, token.clone()));
        Ok(token)
    }
}

impl fmt::Debug for SasPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasPolicy")
            .field("sas", &"<redacted>")
            .finish()
    }
}

#[async_trait::async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let token = self.token()?;
        let url = request.url_mut();
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{token}"),
            _ => token.to_string(),
        };
        url.set_query(Some(&query));
        match next.split_first() {
            Some((first, rest)) => first.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "SAS policy is the last policy of the pipeline",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    #[test]
    fn string_to_sign_has_the_documented_eleven_lines() {
        let s = string_to_sign(
            "acct",
            "rwdlacup",
            "bq",
            "sco",
            "2030-01-02T03:04:05Z",
            "https",
        );
        assert_eq!(
            s,
            format!(
                "acct\nrwdlacup\nbq\nsco\n\n2030-01-02T03:04:05Z\n\nhttps\n{SERVICE_VERSION}\n\n"
            )
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Expected value computed outside Rust:
        // python3 -c 'import hmac,hashlib,base64;k=base64.b64decode(KEY);
        //   print(base64.b64encode(hmac.new(k,STRING.encode(),hashlib.sha256).digest()).decode())'
        // with STRING = "devstoreaccount1\nrwdlacup\nbq\nsco\n\n2030-01-02T03:04:05Z\n\nhttps,http\n2025-11-05\n\n"
        let key = AccountKey::new("devstoreaccount1", DEV_KEY).unwrap();
        let expiry = OffsetDateTime::from_unix_timestamp(1_893_553_445).unwrap(); // 2030-01-02T03:04:05Z
        let token = key.sign(expiry, false).unwrap();
        assert_eq!(
            token,
            format!(
                "sv={SERVICE_VERSION}&ss=bq&srt=sco&sp=rwdlacup&se=2030-01-02T03%3A04%3A05Z&spr=https%2Chttp&sig={}",
                EXPECTED_SIG
            )
        );
    }
    /// `+qDv8NoPqRd/2rkJAljILUxIv3c4gHTciRM246gfDG4=`, form-encoded as in the query.
    const EXPECTED_SIG: &str = "%2BqDv8NoPqRd%2F2rkJAljILUxIv3c4gHTciRM246gfDG4%3D";

    #[test]
    fn key_must_be_base64_and_never_shows_in_debug() {
        assert_eq!(
            AccountKey::new("a", "not base64!").unwrap_err(),
            SasError::KeyNotBase64
        );
        let key = AccountKey::new("devstoreaccount1", DEV_KEY).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("Eby8"), "{dbg}");
        assert!(dbg.contains("devstoreaccount1"));
    }
}
