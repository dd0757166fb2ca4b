//! Rosters this instance has read, by name and ETag: a step asks storage for the roster's
//! version (a HEAD request) and downloads it again only when that version changed, so the
//! many Invite, Assign and Remove messages of one roster do not each download it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Blob;

/// The most roster bytes one instance keeps; past it the cache starts over, so memory stays
/// bounded whatever the number of rosters (a Functions instance has 1.5 GB).
const BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// The rosters read so far, shared by every clone of a [`crate::Store`].
#[derive(Debug, Default)]
pub(crate) struct RosterCache {
    blobs: Mutex<HashMap<String, Blob>>,
    downloads: AtomicU64,
}

impl RosterCache {
    /// The roster `name` as last read, if this instance has read it.
    pub(crate) fn get(&self, name: &str) -> Option<Blob> {
        self.lock().get(name).cloned()
    }

    /// Keeps `blob` as the roster `name`, counting it as downloaded.
    pub(crate) fn downloaded(&self, name: &str, blob: &Blob) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let mut blobs = self.lock();
        let held: usize = blobs.values().map(|b| b.bytes.len()).sum();
        if held + blob.bytes.len() > BUDGET_BYTES {
            blobs.clear();
        }
        if blob.bytes.len() <= BUDGET_BYTES {
            blobs.insert(name.to_owned(), blob.clone());
        }
    }

    /// Forgets the roster `name` (it was deleted).
    pub(crate) fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// How many times a roster's bytes were downloaded.
    pub(crate) fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Blob>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.blobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
