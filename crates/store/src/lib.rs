//! Storage for the pipeline: rosters, reports, the audit trail and the step queues.
//!
//! Built on Azure's 1.x Rust SDK (`azure_storage_blob`, `azure_storage_queue`). Configuration
//! comes from `AzureWebJobsStorage` like the Functions host's own ([`StorageConfig`]): with a
//! connection string we sign account SAS tokens from its key ([`AccountKey`]), because the
//! 1.x crates take no shared key; with the identity-based settings we use the managed identity.
//!
//! Layout (container names are configurable through [`Layout`], so tests can run side by side):
//!
//! | what | where |
//! | --- | --- |
//! | rosters | `rosters/{name}` (the blob trigger's path) |
//! | app role manifests | `manifests/{name}.json` and `manifests/{name}.mapping.json` |
//! | reports | `reports/{run id}/{name}.json` and `.md` |
//! | audit trail | append blobs in `audit/`, one JSON line per record |
//! | steps | queues (`reconcile`, `invite`, ...), messages base64-encoded like the Functions host's default |
//!
//! [`Storage`] is what the steps need of storage; [`Store`] (Azure Storage) and
//! [`local::LocalStorage`] (a folder, for `enroll apply`) implement it.
//!
//! May depend on `enroll-core` only, of enroll's crates.

mod cache;
mod config;
mod error;
pub mod local;
pub mod pipeline;
mod sas;
mod storage;

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{
    ClientOptions, Etag, ExponentialRetryOptions, RequestContent, RetryOptions, StatusCode,
    XmlFormat,
};
use azure_core::time::OffsetDateTime;
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientDownloadOptions, BlobClientGetPropertiesOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientUploadOptions,
    BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions,
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueServiceClient, QueueServiceClientOptions};
use futures_util::TryStreamExt as _;

pub use config::{ConfigError, PREFIX_SETTING, STORAGE_SETTING, StorageConfig, storage_layout};
pub use error::{Resource, StoreError};
pub use sas::{AccountKey, SasError};
pub use storage::{Storage, StorageError, StoredRoster};

use config::Auth;
use sas::{SasPolicy, SasSource};

/// The storage service version every request and every SAS uses: the newest that the
/// pinned Azurite (3.35.0, see `scripts/azurite`) speaks, and one Azure serves.
pub const SERVICE_VERSION: &str = "2025-11-05";

/// Largest message text a queue stores (64 KiB), after base64 encoding.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// An entity tag: the version of a blob, opaque, always in the quoted form of HTTP headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ETag(pub String);

impl ETag {
    /// The quoted form headers use. Listings send the same tag without quotes
    /// (`<Etag>0x8D..</Etag>`), so tags from either compare equal once normalised.
    pub fn normalized(tag: &str) -> Self {
        let tag = tag.trim();
        if tag.starts_with('"') || tag.starts_with("W/") {
            ETag(tag.to_owned())
        } else {
            ETag(format!("\"{tag}\""))
        }
    }

    /// The tag, quoted as in HTTP headers.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&ETag> for Etag {
    fn from(t: &ETag) -> Self {
        Etag::from(t.0.clone())
    }
}

/// When a write may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Always: create or overwrite.
    Always,
    /// Only if the blob is still at this version (`If-Match`): for concurrent writers of
    /// reports and state. Fails with [`StoreError::Conflict`] otherwise.
    IfMatch(ETag),
    /// Only if no blob of that name exists (`If-None-Match: *`).
    IfNotExists,
}

/// Container names. [`Layout::default`] is what the Functions bindings use; tests take
/// [`Layout::with_prefix`] to keep their data apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Rosters, one blob per access package (the blob trigger watches it).
    pub rosters: String,
    /// App role manifests and their mapping files (the blob trigger watches it).
    pub manifests: String,
    /// Reports, under `{run id}/`.
    pub reports: String,
    /// Audit append blobs.
    pub audit: String,
    /// What goes before the name of a queue the handler writes to itself (the delayed
    /// Remove messages of the undo window); the test harness prefixes its queues so.
    pub queue_prefix: String,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            rosters: "rosters".to_owned(),
            manifests: "manifests".to_owned(),
            reports: "reports".to_owned(),
            audit: "audit".to_owned(),
            queue_prefix: String::new(),
        }
    }
}

impl Layout {
    /// `{prefix}rosters`, `{prefix}manifests`, `{prefix}reports`, `{prefix}audit`, and
    /// queues `{prefix}{queue}`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            rosters: format!("{prefix}rosters"),
            manifests: format!("{prefix}manifests"),
            reports: format!("{prefix}reports"),
            audit: format!("{prefix}audit"),
            queue_prefix: prefix.to_owned(),
        }
    }
}

/// How queue message text is stored. The Functions queue extension expects base64 by default
/// (`messageEncoding` in host.json): a message that is not base64 fails to bind and ends in
/// the poison queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageEncoding {
    /// Base64 of the UTF-8 text (the host's default).
    #[default]
    Base64,
    /// The text as it is (`messageEncoding: none`).
    None,
}

/// A blob's content and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The version they belong to.
    pub etag: ETag,
}

/// One blob of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// The name inside the container.
    pub name: String,
    /// The current version.
    pub etag: ETag,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: Option<OffsetDateTime>,
}

/// Where a report went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLocation {
    /// The container.
    pub container: String,
    /// The JSON blob's name.
    pub json: String,
    /// The Markdown blob's name.
    pub markdown: String,
}

/// What identifies a received message for deleting it or changing its visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHandle {
    /// The message id.
    pub id: String,
    /// The pop receipt of the latest receive or update; older ones are refused.
    pub pop_receipt: String,
}

/// A message taken from a queue (invisible to others until its visibility timeout ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Id and pop receipt, for [`Store::delete_message`] and [`Store::set_visibility`].
    pub handle: MessageHandle,
    /// How often it has been received, this time included (1 on first delivery).
    pub dequeue_count: u32,
    /// The text as stored.
    pub raw: String,
    /// The decoded text; `None` if it is not valid under the store's [`MessageEncoding`]
    /// (the Functions host would fail to bind it).
    pub text: Option<String>,
    /// When it was sent.
    pub inserted_on: Option<OffsetDateTime>,
    /// When it expires.
    pub expires_on: Option<OffsetDateTime>,
}

/// A message looked at without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedMessage {
    /// The message id.
    pub id: String,
    /// How often it has been received so far.
    pub dequeue_count: u32,
    /// The text as stored.
    pub raw: String,
    /// The decoded text, as in [`ReceivedMessage::text`].
    pub text: Option<String>,
}

/// How a [`Store`] retries failed requests itself (throttling, server errors, broken
/// connections) before reporting a [`StoreError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Retries per request after the first try; 0 turns retrying off. Default 3.
    pub max_retries: u32,
    /// Give up retrying once this much time has passed since the first try. Default 10 s:
    /// a step that cannot reach storage should fail soon and let its queue message be
    /// retried, rather than hold the invocation (the SDK's own default is a minute).
    pub max_elapsed: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_elapsed: Duration::from_secs(10),
        }
    }
}

/// The pipeline's storage: blob containers and queues of one account.
///
/// Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Store {
    blobs: Arc<BlobServiceClient>,
    queues: Arc<QueueServiceClient>,
    layout: Layout,
    encoding: MessageEncoding,
    /// The largest roster, manifest or mapping blob read; larger ones are refused unread.
    read_limit: u64,
    /// Rosters read by this instance, downloaded again only when their ETag changed.
    rosters: Arc<cache::RosterCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("blob_endpoint", &self.blobs.url().as_str())
            .field("queue_endpoint", &self.queues.url().as_str())
            .field("layout", &self.layout)
            .field("encoding", &self.encoding)
            .field("read_limit", &self.read_limit)
            .finish()
    }
}

/// Storage container names: 3-63 lowercase letters, digits and single hyphens, starting and
/// ending with a letter or digit. Queue names follow the same rule.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid {kind} name (3-63 lowercase letters, digits and single hyphens)"
        ))
    }
}

fn etag_of(op: &'static str, resource: &Resource, etag: Option<Etag>) -> Result<ETag, StoreError> {
    etag.map(|e| ETag::normalized(e.as_ref()))
        .ok_or_else(|| StoreError::invalid(op, resource.clone(), "storage sent no ETag"))
}

impl Store {
    /// Builds the clients for `config` (no request is sent yet) with the default [`Layout`]
    /// and base64 messages.
    ///
    /// # Errors
    ///
    /// The managed identity credential cannot be set up, or an endpoint is unusable.
    pub fn new(config: &StorageConfig) -> Result<Self, StoreError> {
        Self::with_options(config, &StoreOptions::default())
    }

    /// Like [`Store::new`] with explicit [`StoreOptions`].
    ///
    /// # Errors
    ///
    /// The managed identity credential cannot be set up, or an endpoint is unusable.
    pub fn with_options(
        config: &StorageConfig,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let account = Resource::Container(String::new());
        let op = "connect to";
        let mut client_options = ClientOptions {
            retry: if options.max_retries == 0 {
                RetryOptions::none()
            } else {
                RetryOptions::exponential(ExponentialRetryOptions {
                    initial_delay: azure_core::time::Duration::milliseconds(200),
                    max_retries: options.max_retries,
                    max_total_elapsed: to_time(options.max_elapsed),
                    max_delay: azure_core::time::Duration::seconds(5),
                })
            },
            ..Default::default()
        };
        let credential: Option<Arc<dyn azure_core::credentials::TokenCredential>> =
            match &config.auth {
                Auth::Key(key) => {
                    client_options
                        .per_call_policies
                        .push(Arc::new(SasPolicy::new(
                            SasSource::Key(key.clone()),
                            https_only(config),
                        )));
                    None
                }
                Auth::Sas(sas) => {
                    client_options
                        .per_call_policies
                        .push(Arc::new(SasPolicy::new(
                            SasSource::Fixed(sas.clone()),
                            https_only(config),
                        )));
                    None
                }
                Auth::ManagedIdentity { client_id } => {
                    let options = azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id
                            .clone()
                            .map(azure_identity::UserAssignedId::ClientId),
                        ..Default::default()
                    };
                    let cred = azure_identity::ManagedIdentityCredential::new(Some(options))
                        .map_err(|e| StoreError::from_azure(op, account.clone(), &e))?;
                    Some(cred)
                }
            };
        let blobs = BlobServiceClient::new(
            config.blob_endpoint.clone(),
            credential.clone(),
            Some(BlobServiceClientOptions {
                client_options: client_options.clone(),
                version: SERVICE_VERSION.to_owned(),
            }),
        )
        .map_err(|e| StoreError::from_azure(op, account.clone(), &e))?;
        let queues = QueueServiceClient::new(
            config.queue_endpoint.clone(),
            credential,
            Some(QueueServiceClientOptions {
                client_options,
                version: SERVICE_VERSION.to_owned(),
            }),
        )
        .map_err(|e| StoreError::from_azure(op, account, &e))?;
        Ok(Self {
            blobs: Arc::new(blobs),
            queues: Arc::new(queues),
            layout: Layout::default(),
            encoding: MessageEncoding::default(),
            read_limit: enroll_core::roster::MAX_FILE_BYTES as u64,
            rosters: Arc::default(),
        })
    }

    /// The same store with another limit for the rosters, manifests and mapping files it
    /// reads (default [`enroll_core::roster::MAX_FILE_BYTES`]).
    pub fn with_read_limit(mut self, bytes: u64) -> Self {
        self.read_limit = bytes;
        self
    }

    /// The same store with other container names.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The same store with another message encoding (match host.json's `messageEncoding`).
    pub fn with_message_encoding(mut self, encoding: MessageEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The container names in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn container(&self, op: &'static str, name: &str) -> Result<BlobContainerClient, StoreError> {
        check_name("container", name)
            .map_err(|m| StoreError::invalid(op, Resource::Container(name.to_owned()), m))?;
        Ok(self.blobs.blob_container_client(name))
    }

    fn queue(&self, op: &'static str, name: &str) -> Result<QueueClient, StoreError> {
        let resource = || Resource::Queue(name.to_owned());
        check_name("queue", name).map_err(|m| StoreError::invalid(op, resource(), m))?;
        self.queues
            .queue_client(name)
            .map_err(|e| StoreError::from_azure(op, resource(), &e))
    }

    // ----- containers and blobs -----

    /// Creates the container unless it exists.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the container.
    pub async fn ensure_container(&self, name: &str) -> Result<(), StoreError> {
        let op = "create container";
        let client = self.container(op, name)?;
        match client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {
                let err = StoreError::from_azure(op, Resource::Container(name.to_owned()), &e);
                // Only "already exists" is success; "being deleted" and others are not.
                if err.code() == Some("ContainerAlreadyExists") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
            Err(e) => Err(StoreError::from_azure(
                op,
                Resource::Container(name.to_owned()),
                &e,
            )),
        }
    }

    /// Creates the rosters, manifests, reports and audit containers of the layout unless they exist.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the first container that could not be created.
    pub async fn ensure_containers(&self) -> Result<(), StoreError> {
        for c in [
            &self.layout.rosters,
            &self.layout.manifests,
            &self.layout.reports,
            &self.layout.audit,
        ] {
            self.ensure_container(c).await?;
        }
        Ok(())
    }

    /// Reads a blob and its ETag. With `if_match`, only that version: a newer one gives
    /// [`StoreError::Conflict`].
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the blob or container does not exist, and the others.
    pub async fn get_blob(
        &self,
        container: &str,
        name: &str,
        if_match: Option<&ETag>,
    ) -> Result<Blob, StoreError> {
        let op = "get";
        let resource = Resource::blob(container, name);
        let client = self.container(op, container)?.blob_client(name);
        let options = BlobClientDownloadOptions {
            if_match: if_match.map(Etag::from),
            ..Default::default()
        };
        let response = client
            .download(Some(options))
            .await
            .map_err(|e| StoreError::from_azure(op, resource.clone(), &e))?;
        let etag = etag_of(op, &resource, response.properties.etag.clone())?;
        let bytes = response
            .body
            .collect()
            .await
            .map_err(|e| StoreError::from_azure(op, resource.clone(), &e))?;
        Ok(Blob {
            bytes: bytes.to_vec(),
            etag,
        })
    }

    /// Reads a blob of at most `limit` bytes, like [`Store::get_blob`]. The blob's length is
    /// asked first (a HEAD request), so a larger blob is refused without being downloaded;
    /// the download is then pinned to the version measured (`If-Match`), and stops one byte
    /// past the limit whatever storage sends.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] over the limit; [`StoreError::Conflict`] when the blob
    /// changes between the two requests (or is not at `if_match`); and the others.
    pub async fn get_blob_within(
        &self,
        container: &str,
        name: &str,
        if_match: Option<&ETag>,
        limit: u64,
    ) -> Result<Blob, StoreError> {
        let (blob, _) = self
            .get_blob_unless(container, name, if_match, limit, None)
            .await?;
        Ok(blob)
    }

    /// Like [`Store::get_blob_within`], but when the blob is still at the version of
    /// `known`, `known` comes back without a download; the flag says whether one was made.
    async fn get_blob_unless(
        &self,
        container: &str,
        name: &str,
        if_match: Option<&ETag>,
        limit: u64,
        known: Option<Blob>,
    ) -> Result<(Blob, bool), StoreError> {
        let op = "get";
        let resource = Resource::blob(container, name);
        let azure = |e: azure_core::Error| StoreError::from_azure(op, resource.clone(), &e);
        let client = self.container(op, container)?.blob_client(name);
        let properties = client
            .get_properties(Some(BlobClientGetPropertiesOptions {
                if_match: if_match.map(Etag::from),
                ..Default::default()
            }))
            .await
            .map_err(azure)?;
        let etag = etag_of(op, &resource, properties.etag().map_err(azure)?)?;
        if let Some(known) = known.filter(|known| known.etag == etag) {
            return Ok((known, false));
        }
        let size = properties.content_length().map_err(azure)?.unwrap_or(0);
        let too_large = |size| StoreError::TooLarge {
            op,
            resource: resource.clone(),
            size,
            limit,
        };
        if size > limit {
            return Err(too_large(Some(size)));
        }
        let options = BlobClientDownloadOptions {
            if_match: Some(Etag::from(&etag)),
            ..Default::default()
        };
        let mut body = client.download(Some(options)).await.map_err(azure)?.body;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
        while let Some(chunk) = body.try_next().await.map_err(azure)? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large(None));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((Blob { bytes, etag }, true))
    }

    /// Writes a block blob under `condition` and returns its new ETag.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the condition does not hold; [`StoreError::NotFound`]
    /// when the container does not exist.
    pub async fn put_blob(
        &self,
        container: &str,
        name: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let op = "put";
        let resource = Resource::blob(container, name);
        let client = self.container(op, container)?.blob_client(name);
        let (if_match, if_none_match) = match &condition {
            PutCondition::Always => (None, None),
            PutCondition::IfMatch(tag) => (Some(Etag::from(tag)), None),
            PutCondition::IfNotExists => (None, Some(Etag::from("*"))),
        };
        let options = BlobClientUploadOptions {
            blob_content_type: Some(content_type.to_owned()),
            if_match,
            if_none_match,
            ..Default::default()
        };
        let result = client
            .upload(RequestContent::from(bytes), Some(options))
            .await
            .map_err(|e| StoreError::from_azure(op, resource.clone(), &e))?;
        etag_of(op, &resource, result.etag)
    }

    /// Deletes a blob; a blob that is already gone is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the blob.
    pub async fn delete_blob(&self, container: &str, name: &str) -> Result<(), StoreError> {
        let op = "delete";
        let client = self.container(op, container)?.blob_client(name);
        match client.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(StoreError::from_azure(
                op,
                Resource::blob(container, name),
                &e,
            )),
        }
    }

    /// Lists the blobs whose names start with `prefix` (all pages), sorted by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the container does not exist, and the others.
    pub async fn list_blobs(
        &self,
        container: &str,
        prefix: &str,
    ) -> Result<Vec<BlobEntry>, StoreError> {
        let op = "list";
        let resource = || Resource::Container(container.to_owned());
        let client = self.container(op, container)?;
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            ..Default::default()
        };
        let mut pager = client
            .list_blobs(Some(options))
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        let mut entries = Vec::new();
        while let Some(item) = pager
            .try_next()
            .await
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?
        {
            let Some(name) = item.name else { continue };
            let props = item.properties.unwrap_or_default();
            let etag = etag_of(op, &Resource::blob(container, &name), props.etag)?;
            entries.push(BlobEntry {
                name,
                etag,
                size: props.content_length.unwrap_or(0),
                last_modified: props.last_modified,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The blob's URL, without any SAS: what the Functions host passes as a blob trigger's
    /// `Uri` metadata.
    pub fn blob_url(&self, container: &str, name: &str) -> String {
        self.blobs.blob_client(container, name).url().to_string()
    }

    // ----- rosters -----

    /// Reads a roster; with `if_match`, only that version (the one a plan saw). A roster
    /// over the store's read limit is refused without being downloaded.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when it does not exist; [`StoreError::Conflict`] when it has
    /// changed since `if_match`; [`StoreError::TooLarge`] over the limit.
    pub async fn get_roster(
        &self,
        name: &str,
        if_match: Option<&ETag>,
    ) -> Result<Blob, StoreError> {
        self.get_blob_within(&self.layout.rosters, name, if_match, self.read_limit)
            .await
    }

    /// Reads a roster as [`Store::get_roster`] does, but downloads it only when its ETag
    /// differs from the version this instance (any clone of this store) read last; an
    /// unchanged roster costs one HEAD request.
    ///
    /// # Errors
    ///
    /// As [`Store::get_roster`].
    pub async fn get_roster_cached(&self, name: &str) -> Result<Blob, StoreError> {
        let known = self.rosters.get(name);
        match self
            .get_blob_unless(&self.layout.rosters, name, None, self.read_limit, known)
            .await
        {
            Ok((blob, downloaded)) => {
                if downloaded {
                    self.rosters.downloaded(name, &blob);
                }
                Ok(blob)
            }
            Err(error) => {
                if matches!(error, StoreError::NotFound { .. }) {
                    self.rosters.forget(name);
                }
                Err(error)
            }
        }
    }

    /// How many times this store (with its clones) downloaded a roster's bytes through
    /// [`Store::get_roster_cached`]: what the cache saves shows here.
    pub fn roster_downloads(&self) -> u64 {
        self.rosters.downloads()
    }

    /// Reads a blob the steps read as a file (a manifest or a mapping file), within the
    /// store's read limit.
    ///
    /// # Errors
    ///
    /// As [`Store::get_blob_within`].
    pub async fn get_file(&self, container: &str, name: &str) -> Result<Blob, StoreError> {
        self.get_blob_within(container, name, None, self.read_limit)
            .await
    }

    /// Lists the rosters under `prefix` ("" for all) with their ETags.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the rosters container.
    pub async fn list_rosters(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        self.list_blobs(&self.layout.rosters, prefix).await
    }

    /// Uploads a roster (creating the container if needed) and returns its ETag.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the roster.
    pub async fn put_roster(&self, name: &str, bytes: Vec<u8>) -> Result<ETag, StoreError> {
        self.ensure_container(&self.layout.rosters).await?;
        self.put_blob(
            &self.layout.rosters,
            name,
            bytes,
            "text/csv",
            PutCondition::Always,
        )
        .await
    }

    /// Uploads an app role manifest or mapping file (creating the container if needed) and
    /// returns its ETag.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the blob.
    pub async fn put_manifest(&self, name: &str, bytes: Vec<u8>) -> Result<ETag, StoreError> {
        self.ensure_container(&self.layout.manifests).await?;
        self.put_blob(
            &self.layout.manifests,
            name,
            bytes,
            "application/json",
            PutCondition::Always,
        )
        .await
    }

    // ----- reports -----

    /// Writes one report file, `{run id}/{file}` in the reports container, under `condition`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the condition does not hold, and the others.
    pub async fn put_report_file(
        &self,
        run_id: &str,
        file: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let name = report_blob_name(run_id, file).map_err(|m| {
            StoreError::invalid("put", Resource::blob(&self.layout.reports, file), m)
        })?;
        match self
            .put_blob(
                &self.layout.reports,
                &name,
                bytes.clone(),
                content_type,
                condition.clone(),
            )
            .await
        {
            Err(StoreError::NotFound { code, .. }) if code == "ContainerNotFound" => {
                self.ensure_container(&self.layout.reports).await?;
                self.put_blob(&self.layout.reports, &name, bytes, content_type, condition)
                    .await
            }
            other => other,
        }
    }

    /// Writes a report as `{run id}/{name}.json` (for machines) and `{run id}/{name}.md`
    /// (for people), overwriting earlier versions.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the first file that could not be written.
    pub async fn put_report(
        &self,
        run_id: &str,
        name: &str,
        json: Vec<u8>,
        markdown: String,
    ) -> Result<ReportLocation, StoreError> {
        let json_file = format!("{name}.json");
        let md_file = format!("{name}.md");
        self.put_report_file(
            run_id,
            &json_file,
            json,
            "application/json",
            PutCondition::Always,
        )
        .await?;
        self.put_report_file(
            run_id,
            &md_file,
            markdown.into_bytes(),
            "text/markdown; charset=utf-8",
            PutCondition::Always,
        )
        .await?;
        Ok(ReportLocation {
            container: self.layout.reports.clone(),
            json: format!("{run_id}/{json_file}"),
            markdown: format!("{run_id}/{md_file}"),
        })
    }

    /// Reads one report file, `{run id}/{file}`.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when it does not exist, and the others.
    pub async fn get_report_file(&self, run_id: &str, file: &str) -> Result<Blob, StoreError> {
        let name = report_blob_name(run_id, file).map_err(|m| {
            StoreError::invalid("get", Resource::blob(&self.layout.reports, file), m)
        })?;
        self.get_blob(&self.layout.reports, &name, None).await
    }

    // ----- audit -----

    /// Appends records, one JSON line each, to the audit append blob `log`, creating the
    /// container and blob if missing.
    ///
    /// All records of one call go in one append block, which storage writes atomically:
    /// concurrent appenders never interleave within a line or lose one. (An append blob holds
    /// at most 50,000 blocks, so use one blob per run or per day.)
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when a record cannot be serialised or the batch exceeds an
    /// append block (4 MiB), and the others.
    pub async fn append_audit<T: serde::Serialize>(
        &self,
        log: &str,
        records: &[T],
    ) -> Result<(), StoreError> {
        let resource = || Resource::blob(&self.layout.audit, log);
        let mut body = Vec::new();
        for r in records {
            serde_json::to_writer(&mut body, r).map_err(|e| {
                StoreError::invalid(
                    "append to",
                    resource(),
                    format!("record is not serialisable: {e}"),
                )
            })?;
            body.push(b'\n');
        }
        let container = self.layout.audit.clone();
        self.append_block(&container, log, body, "application/x-ndjson")
            .await
    }

    /// Appends text (whole lines) to the append blob `{run_id}/{file}` in the reports
    /// container, creating it if missing: a run's failures are added as they happen.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the report blob.
    pub async fn append_report_lines(
        &self,
        run_id: &str,
        file: &str,
        text: &str,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let name = report_blob_name(run_id, file).map_err(|m| {
            StoreError::invalid("append to", Resource::blob(&self.layout.reports, file), m)
        })?;
        let container = self.layout.reports.clone();
        self.append_block(&container, &name, text.as_bytes().to_vec(), content_type)
            .await
    }

    /// Appends one block to an append blob, creating the blob (and its container) first if
    /// needed.
    async fn append_block(
        &self,
        container: &str,
        log: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let op = "append to";
        let resource = || Resource::blob(container, log);
        if body.is_empty() {
            return Ok(());
        }
        const MAX_APPEND_BLOCK: usize = 4 * 1024 * 1024;
        if body.len() > MAX_APPEND_BLOCK {
            return Err(StoreError::invalid(
                op,
                resource(),
                format!(
                    "{} bytes exceed one append block (4 MiB); append fewer records per call",
                    body.len()
                ),
            ));
        }
        let client = self
            .container(op, container)?
            .blob_client(log)
            .append_blob_client();
        let len = body.len() as u64;
        let append = || client.append_block(RequestContent::from(body.clone()), len, None);
        match append().await {
            Ok(_) => return Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {}
            Err(e) => return Err(StoreError::from_azure(op, resource(), &e)),
        }
        // First record of this log: create it (and its container), racing other appenders
        // safely: If-None-Match: * never truncates a blob someone else just created.
        self.ensure_container(container).await?;
        let create = AppendBlobClientCreateOptions {
            if_none_match: Some(Etag::from("*")),
            blob_content_type: Some(content_type.to_owned()),
            ..Default::default()
        };
        match client.create(Some(create)).await {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {}
            Err(e) => return Err(StoreError::from_azure("create", resource(), &e)),
        }
        append()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_azure(op, resource(), &e))
    }

    /// Reads the audit log `log` back as its JSON lines.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no such log; [`StoreError::Invalid`] when it is
    /// not UTF-8.
    pub async fn read_audit(&self, log: &str) -> Result<Vec<String>, StoreError> {
        let blob = self.get_blob(&self.layout.audit, log, None).await?;
        let text = String::from_utf8(blob.bytes).map_err(|_| {
            StoreError::invalid(
                "read",
                Resource::blob(&self.layout.audit, log),
                "is not UTF-8",
            )
        })?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    // ----- queues -----

    /// Creates the queue unless it exists.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn ensure_queue(&self, queue: &str) -> Result<(), StoreError> {
        let op = "create queue";
        // 201 when created, 204 when it already exists (with the same metadata).
        self.queue(op, queue)?
            .create(None)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_azure(op, Resource::Queue(queue.to_owned()), &e))
    }

    /// Deletes the queue; a queue that is already gone is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), StoreError> {
        let op = "delete queue";
        match self.queue(op, queue)?.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(StoreError::from_azure(
                op,
                Resource::Queue(queue.to_owned()),
                &e,
            )),
        }
    }

    /// Sends a message, encoded per the store's [`MessageEncoding`], and returns its id.
    /// With `delay`, it becomes visible only after that long (whole seconds).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when the stored text would exceed 64 KiB;
    /// [`StoreError::NotFound`] when the queue does not exist.
    pub async fn send_message(
        &self,
        queue: &str,
        text: &str,
        delay: Option<Duration>,
    ) -> Result<String, StoreError> {
        let op = "send message to";
        let resource = || Resource::Queue(queue.to_owned());
        let client = self.queue(op, queue)?;
        let stored = match self.encoding {
            MessageEncoding::Base64 => azure_core::base64::encode(text.as_bytes()),
            MessageEncoding::None => text.to_owned(),
        };
        if stored.len() > MAX_MESSAGE_BYTES {
            return Err(StoreError::invalid(
                op,
                resource(),
                format!(
                    "message is {} bytes as stored, over the queue limit of {MAX_MESSAGE_BYTES}; pass blob names, not data",
                    stored.len()
                ),
            ));
        }
        let message = QueueMessage {
            message_text: Some(stored),
        };
        let options = QueueClientSendMessageOptions {
            visibility_timeout: delay.map(seconds),
            ..Default::default()
        };
        let content: RequestContent<QueueMessage, XmlFormat> = message
            .try_into()
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        let sent = client
            .send_message(content, Some(options))
            .await
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?
            .into_model()
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        sent.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|m| m.message_id)
            .ok_or_else(|| StoreError::invalid(op, resource(), "storage confirmed no message id"))
    }

    /// Takes up to `max` messages (1 to 32), hiding them from other receivers for
    /// `visibility` (whole seconds, at least 1); undeleted ones come back after that with a
    /// higher dequeue count.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn receive_messages(
        &self,
        queue: &str,
        max: u8,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        let op = "receive messages from";
        let resource = || Resource::Queue(queue.to_owned());
        let client = self.queue(op, queue)?;
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::from(max.clamp(1, 32))),
            visibility_timeout: Some(seconds(visibility).max(1)),
            ..Default::default()
        };
        let received = client
            .receive_messages(Some(options))
            .await
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?
            .into_model()
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        let mut out = Vec::new();
        for m in received.items.unwrap_or_default() {
            let (Some(id), Some(pop_receipt)) = (m.message_id, m.pop_receipt) else {
                return Err(StoreError::invalid(
                    op,
                    resource(),
                    "a message came without id or pop receipt",
                ));
            };
            let raw = m.message_text.unwrap_or_default();
            out.push(ReceivedMessage {
                handle: MessageHandle { id, pop_receipt },
                dequeue_count: count(m.dequeue_count),
                text: self.decode(&raw),
                raw,
                inserted_on: m.insertion_time,
                expires_on: m.expiration_time,
            });
        }
        Ok(out)
    }

    /// Deletes a received message (the step is done with it).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when it is gone (deleted, or received again by someone else
    /// after its visibility ended: the pop receipt is then stale).
    pub async fn delete_message(
        &self,
        queue: &str,
        handle: &MessageHandle,
    ) -> Result<(), StoreError> {
        let op = "delete";
        self.queue(op, queue)?
            .delete_message(&handle.id, &handle.pop_receipt, None)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_azure(op, message_resource(queue, handle), &e))
    }

    /// Changes how long a received message stays hidden (zero makes it visible again now) and
    /// returns its new handle; the old pop receipt is no longer valid.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the message is gone or the pop receipt stale.
    pub async fn set_visibility(
        &self,
        queue: &str,
        handle: &MessageHandle,
        visibility: Duration,
    ) -> Result<MessageHandle, StoreError> {
        let op = "update visibility of";
        let response = self
            .queue(op, queue)?
            .update_message(&handle.id, &handle.pop_receipt, seconds(visibility), None)
            .await
            .map_err(|e| StoreError::from_azure(op, message_resource(queue, handle), &e))?;
        let pop_receipt = response
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "x-ms-popreceipt",
            ))
            .ok_or_else(|| {
                StoreError::invalid(
                    op,
                    message_resource(queue, handle),
                    "storage sent no new pop receipt",
                )
            })?
            .to_owned();
        Ok(MessageHandle {
            id: handle.id.clone(),
            pop_receipt,
        })
    }

    /// Looks at up to `max` (1 to 32) visible messages without taking them.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn peek_messages(
        &self,
        queue: &str,
        max: u8,
    ) -> Result<Vec<PeekedMessage>, StoreError> {
        let op = "peek into";
        let resource = || Resource::Queue(queue.to_owned());
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::from(max.clamp(1, 32))),
            ..Default::default()
        };
        let peeked = self
            .queue(op, queue)?
            .peek_messages(Some(options))
            .await
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?
            .into_model()
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        Ok(peeked
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let raw = m.message_text.unwrap_or_default();
                PeekedMessage {
                    id: m.message_id.unwrap_or_default(),
                    dequeue_count: count(m.dequeue_count),
                    text: self.decode(&raw),
                    raw,
                }
            })
            .collect())
    }

    /// The approximate number of messages in the queue, hidden ones included.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn approximate_message_count(&self, queue: &str) -> Result<u64, StoreError> {
        let op = "count messages of";
        let resource = || Resource::Queue(queue.to_owned());
        let response = self
            .queue(op, queue)?
            .get_properties(None)
            .await
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?;
        let n = response
            .approximate_messages_count()
            .map_err(|e| StoreError::from_azure(op, resource(), &e))?
            .ok_or_else(|| StoreError::invalid(op, resource(), "storage sent no message count"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Removes every message from the queue.
    ///
    /// # Errors
    ///
    /// [`StoreError`] for the queue.
    pub async fn clear_messages(&self, queue: &str) -> Result<(), StoreError> {
        let op = "clear";
        self.queue(op, queue)?
            .clear(None)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_azure(op, Resource::Queue(queue.to_owned()), &e))
    }

    fn decode(&self, raw: &str) -> Option<String> {
        match self.encoding {
            MessageEncoding::None => Some(raw.to_owned()),
            MessageEncoding::Base64 => azure_core::base64::decode(raw)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
        }
    }
}

/// `{run id}/{file}`, refusing names that would escape the run's folder.
fn report_blob_name(run_id: &str, file: &str) -> Result<String, String> {
    let bad =
        |s: &str| s.is_empty() || s.contains('/') || s.contains('\\') || s == "." || s == "..";
    if bad(run_id) {
        return Err(format!(
            "run id `{run_id}` must be one non-empty path segment"
        ));
    }
    if bad(file) {
        return Err(format!(
            "report file `{file}` must be one non-empty path segment"
        ));
    }
    Ok(format!("{run_id}/{file}"))
}

fn message_resource(queue: &str, handle: &MessageHandle) -> Resource {
    Resource::Message {
        queue: queue.to_owned(),
        id: handle.id.clone(),
    }
}

fn https_only(config: &StorageConfig) -> bool {
    config.blob_endpoint.scheme() == "https" && config.queue_endpoint.scheme() == "https"
}

fn to_time(d: Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
}

/// Whole seconds for the queue API, saturating.
fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn count(n: Option<i64>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_storage_rules() {
        assert!(check_name("queue", "reconcile").is_ok());
        assert!(check_name("queue", "invite-poison").is_ok());
        for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "a_b", &"x".repeat(64)] {
            assert!(check_name("queue", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn etags_from_headers_and_listings_compare_equal() {
        assert_eq!(
            ETag::normalized("0x8DBEEF"),
            ETag::normalized("\"0x8DBEEF\"")
        );
        assert_eq!(ETag::normalized("0x8DBEEF").as_str(), "\"0x8DBEEF\"");
        assert_eq!(ETag::normalized("W/\"x\"").as_str(), "W/\"x\"");
    }

    #[test]
    fn report_names_stay_inside_the_run() {
        assert_eq!(
            report_blob_name("run-1", "plan.json").unwrap(),
            "run-1/plan.json"
        );
        assert!(report_blob_name("..", "x").is_err());
        assert!(report_blob_name("run-1", "a/b").is_err());
        assert!(report_blob_name("", "x").is_err());
    }
}
