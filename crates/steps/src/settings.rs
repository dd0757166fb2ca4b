//! Every setting (environment variable, app setting) enroll reads or documents, in one list.
//!
//! A test (`tests/it/deploy.rs`) holds this list against the code, README's Configuration
//! tables and the app settings of `infra/main.bicep`: a name the code reads must be here, a
//! name here must be in the README, and a setting here must be in the Bicep unless it says
//! why not. To add a setting: read it, add it here, add a README row, and add it to the Bicep
//! (or give the reason it is not there).

/// Whether `infra/main.bicep` sets a setting for the Function App.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bicep {
    /// It is one of the Function App's app settings.
    Set,
    /// It deliberately is not, for this reason.
    NotSet(&'static str),
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The variable's name.
    pub name: &'static str,
    /// Whether the deployment's Bicep sets it.
    pub bicep: Bicep,
}

const fn set(name: &'static str) -> Setting {
    Setting {
        name,
        bicep: Bicep::Set,
    }
}

const fn not_set(name: &'static str, reason: &'static str) -> Setting {
    Setting {
        name,
        bicep: Bicep::NotSet(reason),
    }
}

const CLI_ONLY: &str = "command line only";
const HOST_SETS: &str = "set by the Functions host (or App Service) itself";
const TESTS_ONLY: &str = "tests and benchmarks only";
const NO_SECRETS: &str = "the deployment signs in with its managed identity; secrets and certificates are for the command line or other hosts";
const CLOUD: &str = "the defaults are the public cloud's; a national cloud sets all three by hand";
const TUNING: &str = "tuning: the defaults follow Graph's guidance";
const API_TUNING: &str = "tuning: the defaults suit Entra's tokens and key rotation";

/// Every setting, grouped as in the README.
pub const SETTINGS: &[Setting] = &[
    // Rosters and safety
    not_set("ENROLL_TENANT", CLI_ONLY),
    set("ENROLL_CATALOG"),
    set("ENROLL_MAX_REMOVALS"),
    set("ENROLL_MAX_REMOVAL_PERCENT"),
    set("ENROLL_INVITE_DOMAINS"),
    set("ENROLL_INVITE_REDIRECT_URL"),
    set("ENROLL_SEND_INVITATIONS"),
    set("ENROLL_MAX_ADDITIONS"),
    set("ENROLL_MAX_ADDITION_PERCENT"),
    set("ENROLL_PROTECTED_PEOPLE"),
    set("ENROLL_REMOVAL_DELAY"),
    set("ENROLL_MAX_DEQUEUE_COUNT"),
    not_set("ENROLL_REPROCESS_AFTER_MINUTES", TUNING),
    not_set(
        "ENROLL_ACTOR",
        "the default, `enroll`, names the Functions app in the audit trail",
    ),
    not_set(
        "ENROLL_REPORTS",
        "command line only: the Functions app writes reports to the `reports` container",
    ),
    set("ENROLL_SCHEDULE"),
    // App roles
    set("ENROLL_APP_ID"),
    set("ENROLL_ROLE_GROUP_PATTERN"),
    // Microsoft Graph
    set("ENROLL_TENANT_ID"),
    not_set("ENROLL_CLIENT_ID", NO_SECRETS),
    not_set("ENROLL_CLIENT_SECRET", NO_SECRETS),
    not_set("ENROLL_CLIENT_CERTIFICATE", NO_SECRETS),
    not_set("ENROLL_CLIENT_KEY", NO_SECRETS),
    not_set("IDENTITY_ENDPOINT", HOST_SETS),
    not_set("IDENTITY_HEADER", HOST_SETS),
    set("ENROLL_MANAGED_IDENTITY_CLIENT_ID"),
    not_set("ENROLL_GRAPH_URL", CLOUD),
    not_set("ENROLL_AUTHORITY_URL", CLOUD),
    not_set("ENROLL_GRAPH_RESOURCE", CLOUD),
    not_set("ENROLL_GRAPH_CONCURRENCY", TUNING),
    not_set("ENROLL_GRAPH_TIMEOUT_SECONDS", TUNING),
    not_set("ENROLL_GRAPH_MAX_ATTEMPTS", TUNING),
    not_set("ENROLL_GRAPH_RETRY_BASE_MS", TUNING),
    not_set("ENROLL_GRAPH_MAX_WAIT_SECONDS", TUNING),
    not_set(
        "ENROLL_CA_FILE",
        "Graph and Entra present certificates of public CAs the system trusts; an extra CA is for `enroll sim --tls` and test hosts",
    ),
    // The HTTP API
    set("ENROLL_API_AUDIENCE"),
    not_set(
        "ENROLL_API_TENANT_ID",
        "the default, ENROLL_TENANT_ID, is the deployment's own tenant",
    ),
    not_set(
        "ENROLL_API_DISCOVERY_URL",
        "the default follows ENROLL_AUTHORITY_URL and the tenant",
    ),
    not_set(
        "ENROLL_API_ISSUER",
        "scripts/deploy registers the API for v2 tokens, whose issuer the discovery document names",
    ),
    not_set("ENROLL_API_LEEWAY_SECONDS", API_TUNING),
    not_set("ENROLL_API_KEY_REFRESH_SECONDS", API_TUNING),
    not_set(
        "ENROLL_API_MAX_BODY_BYTES",
        "the default, 16 MiB, is a roster's own limit",
    ),
    // Storage and the Functions host
    not_set(
        "AzureWebJobsStorage",
        "the deployment uses the identity-based form; the account takes no shared key",
    ),
    set("AzureWebJobsStorage__accountName"),
    not_set(
        "AzureWebJobsStorage__blobServiceUri",
        "`__accountName` gives both endpoints in the public cloud",
    ),
    not_set(
        "AzureWebJobsStorage__queueServiceUri",
        "`__accountName` gives both endpoints in the public cloud",
    ),
    set("AzureWebJobsStorage__clientId"),
    set("AzureWebJobsStorage__credential"),
    not_set(
        "ENROLL_STORAGE_PREFIX",
        "the deployment has a storage account of its own",
    ),
    set("APPLICATIONINSIGHTS_CONNECTION_STRING"),
    set("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"),
    not_set("FUNCTIONS_CUSTOMHANDLER_PORT", HOST_SETS),
    not_set("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", HOST_SETS),
    not_set("FUNCTIONS_APP_ROOT_PATH", HOST_SETS),
    not_set(
        "FUNCTIONS_WORKER_RUNTIME",
        "on Flex Consumption the runtime is `functionAppConfig.runtime.name: custom`, which infra/main.bicep sets",
    ),
    // Logging
    not_set(
        "ENROLL_LOG",
        "the default suits Azure; set it by hand to see more",
    ),
    not_set("RUST_LOG", "read only when ENROLL_LOG is not set"),
    // Tests and benchmarks
    not_set("ENROLL_TEST_STORAGE", TESTS_ONLY),
    not_set("ENROLL_AZURITE_DIR", TESTS_ONLY),
    not_set("UPDATE_GOLDEN", TESTS_ONLY),
    not_set("ENROLL_FAULT_SEED", TESTS_ONLY),
    not_set("ENROLL_FAULT_ROUNDS", TESTS_ONLY),
    not_set("ENROLL_SAFETY_SEED", TESTS_ONLY),
    not_set("ENROLL_SCHEMATHESIS", TESTS_ONLY),
    not_set("ENROLL_CARGO_LAMBDA", TESTS_ONLY),
];

/// The setting named `name`, if enroll knows it.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_reasons_given() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a setting is listed twice");
        assert!(SETTINGS.iter().all(|s| match s.bicep {
            Bicep::Set => true,
            Bicep::NotSet(reason) => !reason.is_empty(),
        }));
        assert_eq!(
            setting("ENROLL_TENANT_ID").map(|s| s.bicep),
            Some(Bicep::Set)
        );
        assert_eq!(setting("NOT_A_SETTING"), None);
    }
}
