// enroll: the Azure resources for the Functions app (Flex Consumption, custom handler).
//
// scripts/deploy deploys it (README, "Deployment"): this file, the package, this file again
// with subscribeRosterUploads=true once the package has created the `blobs_extension` system
// key that the Event Grid subscriptions need, Graph permissions through `enroll grant`
// (Bicep cannot grant Graph app roles without the Graph extension), and the rosters.

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Short lowercase prefix for resource names (3 to 11 letters or digits).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'enroll'

@description('Entra tenant id or domain whose access packages are kept in line (ENROLL_TENANT_ID).')
param tenantId string

@description('E-mail domains guests may be invited from, comma-separated; * for any (ENROLL_INVITE_DOMAINS).')
param inviteDomains string

@description('Catalog searched for rosters not in a catalog folder (ENROLL_CATALOG); empty for all.')
param catalog string = ''

@description('NCRONTAB of the nightly reconcile, UTC (ENROLL_SCHEDULE).')
param schedule string = '0 0 2 * * *'

@description('Removals always allowed per package (ENROLL_MAX_REMOVALS).')
param maxRemovals int = 10

@description('Past maxRemovals, the share of members that may be removed, in percent (ENROLL_MAX_REMOVAL_PERCENT).')
param maxRemovalPercent int = 20

@description('Invitations and assignments always allowed per package (ENROLL_MAX_ADDITIONS).')
param maxAdditions int = 50

@description('Past maxAdditions, how many people may be added, as a share of the current members, in percent (ENROLL_MAX_ADDITION_PERCENT).')
param maxAdditionPercent int = 100

@description('People no plan removes: comma-separated addresses or object ids (ENROLL_PROTECTED_PEOPLE); empty for none.')
param protectedPeople string = ''

@description('Undo window of removals: 0, or a whole number with s, m, h or d such as 24h, at most 7d (ENROLL_REMOVAL_DELAY).')
param removalDelay string = '0'

@description('Where invited guests land; must be https (ENROLL_INVITE_REDIRECT_URL).')
param inviteRedirectUrl string = 'https://myapps.microsoft.com'

@description('Whether Microsoft e-mails the invitation to invited guests (ENROLL_SEND_INVITATIONS).')
param sendInvitations bool = false

@description('Application (client) id whose app roles the manifests describe, when a manifest names none (ENROLL_APP_ID).')
param appId string = ''

@description('Group naming convention for app roles; must hold {value} (ENROLL_ROLE_GROUP_PATTERN).')
param roleGroupPattern string = 'APP-{value}'

@description('Create the Event Grid subscriptions that trigger RosterUploaded and ManifestUploaded (needs the deployed code).')
param subscribeRosterUploads bool = false

@description('Object ids of the principals that upload rosters and manifests (the roster repository\'s pipeline, the administrator running scripts/deploy): Storage Blob Data Contributor on those two containers.')
param uploaderPrincipalIds array = []

@description('Most instances the app may scale out to.')
param maximumInstanceCount int = 40

var suffix = uniqueString(resourceGroup().id, namePrefix)
var storageName = take('${namePrefix}${suffix}', 24)
var deploymentContainer = 'app-package'
// The queues of function_definitions/ and their poison queues: created here so that the
// first messages do not wait for the host to create them, and so `enroll doctor` finds them.
var queueNames = [
  'reconcile'
  'invite'
  'assign'
  'remove'
  'map-roles'
  'reconcile-poison'
  'invite-poison'
  'assign-poison'
  'remove-poison'
  'map-roles-poison'
]
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-id-${suffix}'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:The Functions host and Event Grid reach the account over the public endpoint; access is by managed identity only (shared keys are off).
  // checkov:skip=CKV_AZURE_59:As above: a private endpoint needs a virtual network, which Flex Consumption makes optional; the account takes no shared key or anonymous access.
  // checkov:skip=CKV_AZURE_206:Rosters live in Git and reports are rebuilt every night; locally redundant storage is enough.
  // checkov:skip=CKV_AZURE_43:The name is computed (prefix and uniqueString, lowercase letters and digits, at most 24), which the check cannot evaluate.
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    isVersioningEnabled: true
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for name in [ 'rosters', 'manifests', 'reports', 'audit', deploymentContainer ]: {
    parent: blobService
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for name in queueNames: {
    parent: queueService
    name: name
  }
]

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(roles): {
    name: guid(storage.id, identity.id, role.value)
    scope: storage
    properties: {
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    }
  }
]

// Uploaders write rosters (containers[0]) and manifests (containers[1]), nothing else.
resource rosterUploaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in uploaderPrincipalIds: {
    name: guid(storage.id, 'rosters', principalId, blobDataContributor)
    scope: containers[0]
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    }
  }
]

resource manifestUploaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in uploaderPrincipalIds: {
    name: guid(storage.id, 'manifests', principalId, blobDataContributor)
    scope: containers[1]
    properties: {
      principalId: principalId
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    }
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-ai-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption scales per event; zone redundancy is a choice of the region and plan, not needed for a nightly job that retries.
  name: '${namePrefix}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Callers are the Functions host and Event Grid; there is no HTTP API to authenticate with client certificates yet.
  // checkov:skip=CKV_AZURE_222:Event Grid delivers blob events to the public webhook of the blob trigger.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design; queued work waits for the next instance.
  // checkov:skip=CKV_AZURE_213:The app serves no HTTP functions yet; the host checks the handler itself (GET / on the local port).
  name: '${namePrefix}-func-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 512
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
        { name: 'ENROLL_TENANT_ID', value: tenantId }
        { name: 'ENROLL_MANAGED_IDENTITY_CLIENT_ID', value: identity.properties.clientId }
        { name: 'ENROLL_INVITE_DOMAINS', value: inviteDomains }
        { name: 'ENROLL_INVITE_REDIRECT_URL', value: inviteRedirectUrl }
        { name: 'ENROLL_SEND_INVITATIONS', value: string(sendInvitations) }
        { name: 'ENROLL_CATALOG', value: catalog }
        { name: 'ENROLL_SCHEDULE', value: schedule }
        { name: 'ENROLL_MAX_REMOVALS', value: string(maxRemovals) }
        { name: 'ENROLL_MAX_REMOVAL_PERCENT', value: string(maxRemovalPercent) }
        { name: 'ENROLL_MAX_ADDITIONS', value: string(maxAdditions) }
        { name: 'ENROLL_MAX_ADDITION_PERCENT', value: string(maxAdditionPercent) }
        { name: 'ENROLL_PROTECTED_PEOPLE', value: protectedPeople }
        { name: 'ENROLL_REMOVAL_DELAY', value: removalDelay }
        { name: 'ENROLL_MAX_DEQUEUE_COUNT', value: '5' }
        { name: 'ENROLL_APP_ID', value: appId }
        { name: 'ENROLL_ROLE_GROUP_PATTERN', value: roleGroupPattern }
      ]
    }
  }
  dependsOn: [
    storageRoles
  ]
}

resource rosterEvents 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = if (subscribeRosterUploads) {
  name: '${namePrefix}-events-${suffix}'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// One subscription per blob-triggered function: each container's uploads go to its function.
var blobTriggers = [
  { name: 'roster-uploaded', function: 'RosterUploaded', container: 'rosters' }
  { name: 'manifest-uploaded', function: 'ManifestUploaded', container: 'manifests' }
]

resource uploads 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = [
  for trigger in blobTriggers: if (subscribeRosterUploads) {
    parent: rosterEvents
    name: trigger.name
    properties: {
      destination: {
        endpointType: 'WebHook'
        properties: {
          endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${trigger.function}&code=${listKeys('${app.id}/host/default', '2024-04-01').systemKeys.blobs_extension}'
        }
      }
      filter: {
        includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
        subjectBeginsWith: '/blobServices/default/containers/${trigger.container}/'
      }
    }
  }
]

@description('The Function App name, for deploying the package.')
output functionAppName string = app.name

@description('The storage account holding rosters, reports and the audit trail.')
output storageAccountName string = storage.name

@description('The managed identity to grant Microsoft Graph application permissions to.')
output principalId string = identity.properties.principalId
