//! Where storage is and how to authenticate, read from the Functions app settings.
//!
//! Two forms, as the Functions host itself accepts them for `AzureWebJobsStorage`
//! (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity):
//!
//! - a connection string in `AzureWebJobsStorage`: `UseDevelopmentStorage=true` (Azurite on
//!   its default ports), or `DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...`
//!   with optional `BlobEndpoint`, `QueueEndpoint` and `EndpointSuffix`, or a
//!   `SharedAccessSignature=...` with endpoints;
//! - identity-based: `AzureWebJobsStorage__accountName`, or `AzureWebJobsStorage__blobServiceUri`
//!   and `AzureWebJobsStorage__queueServiceUri`, authenticated with the app's managed
//!   identity (`AzureWebJobsStorage__clientId` picks a user-assigned one).

use std::fmt;

use azure_core::credentials::Secret;
use azure_core::http::Url;

use super::sas::{AccountKey, SasError};

/// The app setting the Functions host uses for its own storage, and so do we.
pub const STORAGE_SETTING: &str = "AzureWebJobsStorage";

/// Azurite's well-known development account (documented; not a secret).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Storage endpoints and credentials. `Debug` shows endpoints and the kind of credential,
/// never a key or SAS.
#[derive(Clone)]
pub struct StorageConfig {
    pub(crate) blob_endpoint: Url,
    pub(crate) queue_endpoint: Url,
    pub(crate) auth: Auth,
}

/// How requests are authorised.
#[derive(Clone)]
pub(crate) enum Auth {
    /// Account key from a connection string: we sign account SAS tokens with it.
    Key(AccountKey),
    /// A SAS token given whole by a connection string.
    Sas(Secret),
    /// Entra ID tokens from the managed identity (user-assigned when a client id is given).
    ManagedIdentity { client_id: Option<String> },
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::Key(k) => format!("account key of `{}` (redacted)", k.account()),
            Auth::Sas(_) => "shared access signature (redacted)".to_owned(),
            Auth::ManagedIdentity { client_id: None } => {
                "managed identity (system-assigned)".to_owned()
            }
            Auth::ManagedIdentity {
                client_id: Some(id),
            } => format!("managed identity (client id {id})"),
        };
        f.debug_struct("StorageConfig")
            .field("blob_endpoint", &self.blob_endpoint.as_str())
            .field("queue_endpoint", &self.queue_endpoint.as_str())
            .field("auth", &auth)
            .finish()
    }
}

/// A storage setting is missing or malformed. The message names the variable and never
/// repeats a key or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Neither the connection string nor an identity-based form is set.
    #[error(
        "{var} is not set: set it to a storage connection string (`UseDevelopmentStorage=true` \
         for Azurite), or set {var}__accountName (or {var}__blobServiceUri and \
         {var}__queueServiceUri) to use the managed identity"
    )]
    Missing {
        /// The setting's name.
        var: String,
    },
    /// The setting is there but unusable.
    #[error("{var}: {problem}")]
    Invalid {
        /// The setting's name.
        var: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl StorageConfig {
    /// Reads `AzureWebJobsStorage` (or its identity-based `__` forms) from the environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable when it is missing or malformed.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_named(STORAGE_SETTING)
    }

    /// Like [`StorageConfig::from_env`] for another connection setting (a binding's
    /// `connection` name, or a test's variable).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable when it is missing or malformed.
    pub fn from_env_named(name: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(name, |k| std::env::var(k).ok())
    }

    /// Reads the setting `name` through `lookup` (the environment, or a map in tests).
    /// A non-empty connection string wins over the identity-based forms, as in the host.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable when it is missing or malformed.
    pub fn from_lookup(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |suffix: &str| {
            lookup(&format!("{name}{suffix}"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(conn) = get("") {
            return Self::parse_connection_string(&conn).map_err(|problem| ConfigError::Invalid {
                var: name.to_owned(),
                problem,
            });
        }
        let invalid = |suffix: &str, problem: String| ConfigError::Invalid {
            var: format!("{name}{suffix}"),
            problem,
        };
        let client_id = get("__clientId");
        if let Some(credential) = get("__credential")
            && !credential.eq_ignore_ascii_case("managedidentity")
        {
            return Err(invalid(
                "__credential",
                format!("`{credential}` is not supported; the only value is `managedidentity`"),
            ));
        }
        let (blob, queue) = match (
            get("__blobServiceUri"),
            get("__queueServiceUri"),
            get("__accountName"),
        ) {
            (Some(blob), Some(queue), _) => (
                parse_endpoint(&blob).map_err(|p| invalid("__blobServiceUri", p))?,
                parse_endpoint(&queue).map_err(|p| invalid("__queueServiceUri", p))?,
            ),
            (Some(_), None, None) => {
                return Err(invalid(
                    "__queueServiceUri",
                    format!(
                        "is not set, but {name}__blobServiceUri is: the pipeline needs both blobs and queues"
                    ),
                ));
            }
            (None, Some(_), None) => {
                return Err(invalid(
                    "__blobServiceUri",
                    format!(
                        "is not set, but {name}__queueServiceUri is: the pipeline needs both blobs and queues"
                    ),
                ));
            }
            (blob, queue, Some(account)) => {
                check_account_name(&account).map_err(|p| invalid("__accountName", p))?;
                let default = |service: &str| {
                    parse_endpoint(&format!("https://{account}.{service}.core.windows.net"))
                };
                let blob = match blob {
                    Some(b) => parse_endpoint(&b).map_err(|p| invalid("__blobServiceUri", p))?,
                    None => default("blob").map_err(|p| invalid("__accountName", p))?,
                };
                let queue = match queue {
                    Some(q) => parse_endpoint(&q).map_err(|p| invalid("__queueServiceUri", p))?,
                    None => default("queue").map_err(|p| invalid("__accountName", p))?,
                };
                (blob, queue)
            }
            (None, None, None) => {
                return Err(ConfigError::Missing {
                    var: name.to_owned(),
                });
            }
        };
        for (suffix, url) in [("__blobServiceUri", &blob), ("__queueServiceUri", &queue)] {
            if url.scheme() != "https" {
                return Err(invalid(
                    suffix,
                    "must be an https URL: managed identity tokens are only sent over HTTPS"
                        .to_owned(),
                ));
            }
        }
        Ok(Self {
            blob_endpoint: blob,
            queue_endpoint: queue,
            auth: Auth::ManagedIdentity { client_id },
        })
    }

    /// Parses a storage connection string.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] (for the variable "connection string") when it is malformed.
    pub fn from_connection_string(conn: &str) -> Result<Self, ConfigError> {
        Self::parse_connection_string(conn).map_err(|problem| ConfigError::Invalid {
            var: "connection string".to_owned(),
            problem,
        })
    }

    fn parse_connection_string(conn: &str) -> Result<Self, String> {
        let mut protocol = None;
        let mut account = None;
        let mut key = None;
        let mut sas = None;
        let mut suffix = None;
        let mut blob = None;
        let mut queue = None;
        let mut dev = false;
        for part in conn.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            // Split at the first `=` only: keys and signatures end in `=` padding.
            let Some((k, v)) = part.split_once('=') else {
                // The part may be a key pasted by mistake: do not echo it.
                return Err(
                    "is not a connection string: a part has no `=` (expected `Name=value;...`)"
                        .to_owned(),
                );
            };
            let v = v.trim().to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
                "developmentstorageproxyuri" => {
                    return Err("DevelopmentStorageProxyUri is not supported; give BlobEndpoint and QueueEndpoint".to_owned());
                }
                "defaultendpointsprotocol" => protocol = Some(v),
                "accountname" => account = Some(v),
                "accountkey" => key = Some(v),
                "sharedaccesssignature" => sas = Some(v),
                "endpointsuffix" => suffix = Some(v),
                "blobendpoint" => blob = Some(v),
                "queueendpoint" => queue = Some(v),
                // Table and file endpoints, and anything newer, are not ours to use.
                _ => {}
            }
        }
        if dev {
            let key = AccountKey::new(DEV_ACCOUNT, DEV_KEY).map_err(|e| e.to_string())?;
            return Ok(Self {
                blob_endpoint: parse_endpoint(&format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"))?,
                queue_endpoint: parse_endpoint(&format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"))?,
                auth: Auth::Key(key),
            });
        }
        let protocol = protocol
            .unwrap_or_else(|| "https".to_owned())
            .to_ascii_lowercase();
        if protocol != "https" && protocol != "http" {
            return Err(format!(
                "DefaultEndpointsProtocol `{protocol}` is neither https nor http"
            ));
        }
        let suffix = suffix.unwrap_or_else(|| "core.windows.net".to_owned());
        let endpoint =
            |given: Option<String>, service: &str, setting: &str| -> Result<Url, String> {
                match (given, &account) {
                    (Some(url), _) => parse_endpoint(&url).map_err(|p| format!("{setting}: {p}")),
                    (None, Some(account)) => {
                        parse_endpoint(&format!("{protocol}://{account}.{service}.{suffix}"))
                    }
                    (None, None) => Err(format!(
                        "has neither {setting} nor AccountName to derive it from"
                    )),
                }
            };
        let blob_endpoint = endpoint(blob, "blob", "BlobEndpoint")?;
        let queue_endpoint = endpoint(queue, "queue", "QueueEndpoint")?;
        let auth = match (key, sas, &account) {
            (Some(key), _, Some(account)) => {
                check_account_name(account)?;
                Auth::Key(AccountKey::new(account, &key).map_err(|e| match e {
                    SasError::KeyNotBase64 => "AccountKey is not valid base64".to_owned(),
                    SasError::Sign => e.to_string(),
                })?)
            }
            (Some(_), _, None) => {
                return Err("has an AccountKey but no AccountName to sign with".to_owned());
            }
            (None, Some(sas), _) => Auth::Sas(Secret::new(sas)),
            (None, None, _) => {
                return Err("has neither AccountKey nor SharedAccessSignature (for managed identity, \
                            set the __accountName or __blobServiceUri/__queueServiceUri forms instead)"
                    .to_owned());
            }
        };
        Ok(Self {
            blob_endpoint,
            queue_endpoint,
            auth,
        })
    }

    /// The blob service endpoint, e.g. `https://acct.blob.core.windows.net/` or Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> &Url {
        &self.blob_endpoint
    }

    /// The queue service endpoint.
    pub fn queue_endpoint(&self) -> &Url {
        &self.queue_endpoint
    }

    /// The account name when the configuration carries one with a key.
    pub fn account_name(&self) -> Option<&str> {
        match &self.auth {
            Auth::Key(k) => Some(k.account()),
            Auth::Sas(_) | Auth::ManagedIdentity { .. } => None,
        }
    }

    /// The same endpoints with another account key: for tests that prove a wrong key is
    /// refused, and for key rotation.
    ///
    /// # Errors
    ///
    /// The key is not base64, or this configuration has no account name.
    pub fn with_account_key(&self, key_base64: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            var: "account key".to_owned(),
            problem: problem.to_owned(),
        };
        let account = self
            .account_name()
            .ok_or_else(|| invalid("this configuration has no account name"))?;
        let key =
            AccountKey::new(account, key_base64).map_err(|_| invalid("is not valid base64"))?;
        Ok(Self {
            auth: Auth::Key(key),
            ..self.clone()
        })
    }
}

/// The setting that prefixes every container name (`ENROLL_STORAGE_PREFIX`).
pub const PREFIX_SETTING: &str = "ENROLL_STORAGE_PREFIX";

/// The longest name a prefix is put before: `map-roles-poison` (queues, in tests).
const LONGEST_NAME: usize = "map-roles-poison".len();

/// The containers' names with `ENROLL_STORAGE_PREFIX` (none when unset), checked against
/// Azure's naming rules for containers and queues (3–63 lowercase letters, digits and
/// single hyphens, starting with a letter or digit), so a bad prefix stops the program at
/// start instead of failing every storage call.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the setting.
pub fn storage_layout(prefix: Option<&str>) -> Result<super::Layout, ConfigError> {
    let Some(prefix) = prefix.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(super::Layout::default());
    };
    let invalid = |problem: String| ConfigError::Invalid {
        var: PREFIX_SETTING.to_owned(),
        problem,
    };
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(format!(
            "`{prefix}` may hold only lowercase letters, digits and hyphens (container and queue names)"
        )));
    }
    if prefix.starts_with('-') || prefix.contains("--") {
        return Err(invalid(format!(
            "`{prefix}` must start with a letter or digit and have no two hyphens in a row"
        )));
    }
    if prefix.len() + LONGEST_NAME > 63 {
        return Err(invalid(format!(
            "`{prefix}` is {} characters; at most {} leave container and queue names within 63",
            prefix.len(),
            63 - LONGEST_NAME
        )));
    }
    Ok(super::Layout::with_prefix(prefix))
}

/// A service endpoint: absolute http(s) URL, no query, no trailing slash (the SDK appends
/// `/container` and would otherwise produce `//container`).
fn parse_endpoint(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("`{text}` is not an http or https URL"));
    }
    if url.query().is_some() {
        return Err(
            "endpoint URLs must not carry a query; give a SAS as SharedAccessSignature".to_owned(),
        );
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// Storage account names: 3 to 24 lowercase letters and digits.
fn check_account_name(name: &str) -> Result<(), String> {
    if (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a storage account name (3-24 lowercase letters and digits)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const KEY: &str = "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdGluZy1vbmx5LTEyMzQ1Njc4OTA=";

    #[test]
    fn development_storage_is_azurite_on_default_ports() {
        let c = StorageConfig::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            c.blob_endpoint().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            c.queue_endpoint().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(c.account_name(), Some("devstoreaccount1"));
    }

    #[test]
    fn full_connection_string_uses_given_endpoints_and_derives_missing_ones() {
        let c = StorageConfig::from_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:4000/devstoreaccount1/;"
        ))
        .unwrap();
        assert_eq!(
            c.blob_endpoint().as_str(),
            "http://127.0.0.1:4000/devstoreaccount1"
        );
        assert_eq!(
            c.queue_endpoint().as_str(),
            "http://devstoreaccount1.queue.core.windows.net/"
        );
        let c = StorageConfig::from_connection_string(&format!(
            "AccountName=prodacct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ))
        .unwrap();
        assert_eq!(
            c.blob_endpoint().as_str(),
            "https://prodacct.blob.core.chinacloudapi.cn/"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let c = StorageConfig::from_connection_string(&format!(
            "AccountName=prodacct;AccountKey={KEY}"
        ))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(KEY) && !dbg.contains("c2VjcmV0"), "{dbg}");
        assert!(dbg.contains("prodacct"), "{dbg}");

        let sas = "sv=2025-11-05&ss=bq&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=TOPSECRETSIG%3D";
        let c = StorageConfig::from_connection_string(&format!(
            "BlobEndpoint=https://a.blob.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net;SharedAccessSignature={sas}"
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("TOPSECRETSIG"));

        // A malformed string whose parts are secrets: the error must not echo them.
        for bad in [
            format!("AccountName=prodacct;AccountKey={KEY}x!"),
            KEY.to_string(),
            format!("AccountKey={KEY}"),
            format!("AccountName=Bad_Name;AccountKey={KEY}"),
        ] {
            let err = StorageConfig::from_lookup(
                "AzureWebJobsStorage",
                lookup(&[("AzureWebJobsStorage", &bad)]),
            )
            .unwrap_err()
            .to_string();
            assert!(err.starts_with("AzureWebJobsStorage: "), "{err}");
            assert!(!err.contains("c2VjcmV0"), "{err}");
        }
    }

    #[test]
    fn missing_setting_names_the_variable_and_both_forms() {
        let err = StorageConfig::from_lookup("AzureWebJobsStorage", lookup(&[])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                var: "AzureWebJobsStorage".into()
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("UseDevelopmentStorage=true")
                && msg.contains("AzureWebJobsStorage__accountName")
        );
        // Blank counts as missing: an app setting left empty in the portal.
        assert!(matches!(
            StorageConfig::from_lookup(
                "AzureWebJobsStorage",
                lookup(&[("AzureWebJobsStorage", "  ")])
            ),
            Err(ConfigError::Missing { .. })
        ));
    }

    #[test]
    fn identity_based_settings() {
        let c = StorageConfig::from_lookup(
            "AzureWebJobsStorage",
            lookup(&[("AzureWebJobsStorage__accountName", "prodacct")]),
        )
        .unwrap();
        assert_eq!(
            c.blob_endpoint().as_str(),
            "https://prodacct.blob.core.windows.net/"
        );
        assert_eq!(
            c.queue_endpoint().as_str(),
            "https://prodacct.queue.core.windows.net/"
        );
        assert!(matches!(c.auth, Auth::ManagedIdentity { client_id: None }));

        let c = StorageConfig::from_lookup(
            "AzureWebJobsStorage",
            lookup(&[
                (
                    "AzureWebJobsStorage__blobServiceUri",
                    "https://x.blob.core.windows.net/",
                ),
                (
                    "AzureWebJobsStorage__queueServiceUri",
                    "https://x.queue.core.windows.net",
                ),
                ("AzureWebJobsStorage__credential", "managedidentity"),
                ("AzureWebJobsStorage__clientId", "1111-2222"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::ManagedIdentity { client_id: Some(id) } if id == "1111-2222")
        );

        let err = StorageConfig::from_lookup(
            "AzureWebJobsStorage",
            lookup(&[(
                "AzureWebJobsStorage__blobServiceUri",
                "https://x.blob.core.windows.net/",
            )]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AzureWebJobsStorage__queueServiceUri: is not set"),
            "{err}"
        );

        let err = StorageConfig::from_lookup(
            "AzureWebJobsStorage",
            lookup(&[
                ("AzureWebJobsStorage__blobServiceUri", "http://x/"),
                ("AzureWebJobsStorage__queueServiceUri", "https://x/"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("__blobServiceUri: must be an https URL"),
            "{err}"
        );
    }

    #[test]
    fn a_storage_prefix_must_make_valid_container_and_queue_names() {
        assert_eq!(
            storage_layout(Some("e1a2b3c4-")).unwrap().rosters,
            "e1a2b3c4-rosters"
        );
        assert_eq!(storage_layout(None).unwrap().rosters, "rosters");
        for bad in ["Prod-", "-x", "a--b", "a_b", &"x".repeat(48)] {
            let error = storage_layout(Some(bad)).unwrap_err().to_string();
            assert!(error.starts_with("ENROLL_STORAGE_PREFIX: "), "{error}");
        }
        assert!(storage_layout(Some(&"x".repeat(47))).is_ok());
    }

    #[test]
    fn connection_string_wins_over_identity_forms() {
        let c = StorageConfig::from_lookup(
            "AzureWebJobsStorage",
            lookup(&[
                ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
                ("AzureWebJobsStorage__accountName", "prodacct"),
            ]),
        )
        .unwrap();
        assert_eq!(c.account_name(), Some("devstoreaccount1"));
    }
}
