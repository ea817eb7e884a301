// The Function App: Elastic Premium plan (Linux), the Python 3.13 app with its `staging` slot, the
// host's storage account, the user-assigned identity both slots run as, app settings for both
// slots and which of them stay with their slot.
//
// Releases deploy to `staging`, smoke-test it and swap it into production (see
// .github/workflows/deploy-production.yml). A swap moves the code together with every app setting
// that is not sticky; sticky settings (slotConfigNames) stay with their slot.

param appName string
param planName string
param storageName string
@description('The user-assigned managed identity of both slots.')
param identityName string
param location string
param tags object

@description('Instances the plan may scale out to.')
param maximumElasticWorkerCount int = 20

@description('True when the app already exists: its swap-travelling settings are then read back and kept.')
param appExists bool = false

@description('APP_VERSION of a brand-new slot, until the first release records its commit SHA (scripts/release.py NO_RELEASE).')
param initialAppVersion string = 'unreleased'

param appInsightsConnectionString string
param workspaceId string

@description('Versionless Key Vault secret URIs.')
param secretKeyUri string
param jwtSecretKeyUri string
param smtpPasswordUri string = ''

param postgresHost string
param databaseName string

param redisHost string
param redisPort int

@description('Entra ID app registration of the API (token audience); Entra sign-in is off when empty.')
param apiClientId string = ''
param apiTenantId string = ''
param apiAdminRole string = 'Stratus.Admin'

@description('Comma-separated browser origins allowed by the app\'s own CORS handling.')
param corsOrigins string = ''
param frontendHost string = ''

param smtpHost string = ''
param smtpPort string = '587'
param smtpUser string = ''
param emailsFromEmail string = ''

param dbPoolSize string = '5'
@description('''Worker processes per instance (FUNCTIONS_WORKER_PROCESS_COUNT, 1 to 10). Each is
one Python interpreter, so one GIL: keep 1 on EP1 (1 vCPU), raise it to the vCPU count on EP2 (2)
or EP3 (4). Every process has its own connection pool: PostgreSQL (here through PgBouncer) sees
up to (DB_POOL_SIZE + DB_MAX_OVERFLOW) x processes x instances client connections.''')
param workerProcessCount string = '1'
param dbMaxOverflow string = '5'
param dbPoolTimeout string = '5'
param dbConnectTimeout string = '5'
@description('Seconds a request may wait for PostgreSQL in total (DB_DEADLINE_SECONDS).')
param dbDeadlineSeconds string = '5'
param jwtAccessTokenExpireMinutes string = '11520'
param cachePrefix string = 'stratus'
param readinessTimeoutMs string = '1000'
@description('Swagger UI at /docs and ReDoc at /redoc (API_DOCS_ENABLED); docs/runbook.md says when to turn them off.')
param apiDocsEnabled string = 'true'

@description('NCRONTAB (six fields) of the redis_reconnect timer.')
param redisReconnectSchedule string = '0 */1 * * * *'

var stagingSlotName = 'staging'

// Role assignments the Functions host needs for identity-based AzureWebJobsStorage.
var storageRoleIds = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
]

// One identity for both slots. System-assigned identities do not swap (Azure/Azure-Functions issue
// 2511): each slot would sign in as its own principal, with its own database role, grants and
// role assignments to keep in step. With one user-assigned identity both slots are the same
// principal for Key Vault, storage, PostgreSQL and Redis, so a swap changes nothing about access.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Shared keys stay enabled for one reason: the Elastic Premium content share (Azure Files,
    // WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) has no identity-based connection. The host itself
    // (blobs, queues, tables) uses the managed identity, see AzureWebJobsStorage__accountName.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: 'EP1'
    tier: 'ElasticPremium'
    family: 'EP'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: maximumElasticWorkerCount
  }
}

// Settings that travel with a swap but differ per slot must survive re-provisioning: APP_VERSION
// (the release's record of the build a slot holds, written once the slot's /healthz reports the
// version inside the package; scripts/release.py reads it to know what to roll back to) and
// WEBSITE_CONTENTSHARE (where each slot's code lives; after an odd number of swaps production
// runs from the share created for staging).
// Writing fresh values would reset the version or silently exchange the slots' code, so for an
// existing app the current values are read back. ARM evaluates only the taken branch of a
// conditional, so list() is never called before the app exists.
var currentProductionSettings = appExists ? list(resourceId('Microsoft.Web/sites/config', appName, 'appsettings'), '2024-04-01').properties : {}
var currentStagingSettings = appExists ? list(resourceId('Microsoft.Web/sites/slots/config', appName, stagingSlotName, 'appsettings'), '2024-04-01').properties : {}
var productionAppVersion = contains(currentProductionSettings, 'APP_VERSION') ? currentProductionSettings.APP_VERSION : initialAppVersion
var stagingAppVersion = contains(currentStagingSettings, 'APP_VERSION') ? currentStagingSettings.APP_VERSION : initialAppVersion
var productionContentShare = contains(currentProductionSettings, 'WEBSITE_CONTENTSHARE') ? currentProductionSettings.WEBSITE_CONTENTSHARE : toLower('${take(appName, 50)}-production')
var stagingContentShare = contains(currentStagingSettings, 'WEBSITE_CONTENTSHARE') ? currentStagingSettings.WEBSITE_CONTENTSHARE : toLower('${take(appName, 50)}-staging')

// With DB_ENTRA_AUTH the database user is the identity's name (infra/db/bootstrap-roles.sql
// creates its role once), the same in both slots. Port 6432 is the built-in PgBouncer.
var databaseUrl = 'postgresql+psycopg://${uriComponent(identity.name)}@${postgresHost}:6432/${databaseName}?sslmode=require'

var contentShareConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

// Identical in both slots (so a swap changes nothing about them).
var baseAppSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
  // The identity the app signs in to PostgreSQL and Redis with (shared/azure_auth.py).
  { name: 'AZURE_MANAGED_IDENTITY_CLIENT_ID', value: identity.properties.clientId }
  { name: 'DATABASE_URL', value: databaseUrl }
  { name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', value: contentShareConnectionString }
  // The release uploads a prebuilt package (.python_packages); no remote build.
  { name: 'WEBSITE_RUN_FROM_PACKAGE', value: '1' }
  { name: 'SCM_DO_BUILD_DURING_DEPLOYMENT', value: 'false' }
  { name: 'ENABLE_ORYX_BUILD', value: 'false' }
  // A swap first warms the staging instances up: it waits for /readyz (database, migrations,
  // cache, configuration) to answer 200 before routing production traffic to them.
  { name: 'WEBSITE_SWAP_WARMUP_PING_PATH', value: '/readyz' }
  { name: 'WEBSITE_SWAP_WARMUP_PING_STATUSES', value: '200' }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  { name: 'ENVIRONMENT', value: 'production' }
  { name: 'DB_ENTRA_AUTH', value: 'true' }
  { name: 'DB_PGBOUNCER', value: 'true' }
  { name: 'FUNCTIONS_WORKER_PROCESS_COUNT', value: workerProcessCount }
  { name: 'DB_POOL_SIZE', value: dbPoolSize }
  { name: 'DB_MAX_OVERFLOW', value: dbMaxOverflow }
  { name: 'DB_POOL_TIMEOUT', value: dbPoolTimeout }
  { name: 'DB_CONNECT_TIMEOUT', value: dbConnectTimeout }
  { name: 'DB_DEADLINE_SECONDS', value: dbDeadlineSeconds }
  { name: 'SECRET_KEY', value: '@Microsoft.KeyVault(SecretUri=${secretKeyUri})' }
  { name: 'JWT_SECRET_KEY', value: '@Microsoft.KeyVault(SecretUri=${jwtSecretKeyUri})' }
  { name: 'JWT_ACCESS_TOKEN_EXPIRE_MINUTES', value: jwtAccessTokenExpireMinutes }
  { name: 'REDIS_URL', value: 'rediss://${redisHost}:${redisPort}' }
  { name: 'REDIS_ENTRA_AUTH', value: 'true' }
  { name: 'CACHE_PREFIX', value: cachePrefix }
  { name: 'CACHE_TTL_SHORT', value: '60' }
  { name: 'CACHE_TTL_MEDIUM', value: '300' }
  { name: 'CACHE_TTL_LONG', value: '3600' }
  { name: 'CACHE_TTL_DAILY', value: '86400' }
  { name: 'CACHE_TTL_SESSION', value: '1800' }
  { name: 'CACHE_TTL_DEFAULT', value: '300' }
  { name: 'CACHE_TTL_AUTH', value: '4' }
  { name: 'READINESS_TIMEOUT_MS', value: readinessTimeoutMs }
  { name: 'API_DOCS_ENABLED', value: apiDocsEnabled }
  { name: 'REDIS_RECONNECT_SCHEDULE', value: redisReconnectSchedule }
]
var entraAppSettings = empty(apiClientId) ? [] : [
  { name: 'AZURE_CLIENT_ID', value: apiClientId }
  { name: 'AZURE_TENANT_ID', value: empty(apiTenantId) ? subscription().tenantId : apiTenantId }
  { name: 'AZURE_ADMIN_ROLE', value: apiAdminRole }
]
var corsAppSettings = empty(corsOrigins) ? [] : [
  { name: 'CORS_ORIGINS', value: corsOrigins }
]
var frontendAppSettings = empty(frontendHost) ? [] : [
  { name: 'FRONTEND_HOST', value: frontendHost }
]
var smtpAppSettings = empty(smtpHost) ? [] : [
  { name: 'SMTP_HOST', value: smtpHost }
  { name: 'SMTP_PORT', value: smtpPort }
  { name: 'SMTP_USER', value: smtpUser }
  { name: 'EMAILS_FROM_EMAIL', value: emailsFromEmail }
]
var smtpPasswordAppSettings = empty(smtpPasswordUri) ? [] : [
  { name: 'SMTP_PASSWORD', value: '@Microsoft.KeyVault(SecretUri=${smtpPasswordUri})' }
]
var commonAppSettings = concat(baseAppSettings, entraAppSettings, corsAppSettings, frontendAppSettings, smtpAppSettings, smtpPasswordAppSettings)

var productionAppSettings = concat(commonAppSettings, [
  { name: 'APP_VERSION', value: productionAppVersion }
  { name: 'WEBSITE_CONTENTSHARE', value: productionContentShare }
  { name: 'OTEL_SERVICE_NAME', value: appName }
  { name: 'AzureWebJobs.redis_reconnect.Disabled', value: 'false' }
])

var stagingAppSettings = concat(commonAppSettings, [
  { name: 'APP_VERSION', value: stagingAppVersion }
  { name: 'WEBSITE_CONTENTSHARE', value: stagingContentShare }
  { name: 'OTEL_SERVICE_NAME', value: '${appName}-${stagingSlotName}' }
  // Timers must not run twice: the staging slot's copy of redis_reconnect stays disabled.
  { name: 'AzureWebJobs.redis_reconnect.Disabled', value: 'true' }
])

// Sticky: these stay with their slot through a swap. APP_VERSION and WEBSITE_CONTENTSHARE are
// deliberately not sticky: they describe the code, so they travel with it.
var stickyAppSettingNames = [
  'AzureWebJobs.redis_reconnect.Disabled' // timer runs in production only
  'OTEL_SERVICE_NAME' // telemetry role name tells the slots apart
]

var siteConfigBase = {
  linuxFxVersion: 'Python|3.13'
  // App Service health check: instances failing /healthz are taken out of rotation and replaced.
  healthCheckPath: '/healthz'
  ftpsState: 'Disabled'
  minTlsVersion: '1.2'
  scmMinTlsVersion: '1.2'
  http20Enabled: true
  minimumElasticInstanceCount: 1
  functionAppScaleLimit: maximumElasticWorkerCount
  // No `cors` block: platform CORS stays off, because it answers OPTIONS before the app does and
  // the app implements CORS itself (CORS_ORIGINS).
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
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
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identity.id
    siteConfig: union(siteConfigBase, { appSettings: productionAppSettings })
  }
}

resource stagingSlot 'Microsoft.Web/sites/slots@2024-04-01' = {
  parent: site
  name: stagingSlotName
  location: location
  tags: tags
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
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identity.id
    siteConfig: union(siteConfigBase, { appSettings: stagingAppSettings })
  }
}

resource slotConfigNames 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'slotConfigNames'
  properties: {
    appSettingNames: stickyAppSettingNames
  }
}

// Deployments authenticate with Entra ID (the release's OIDC login); no publishing passwords.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource stagingScmBasicAuth 'Microsoft.Web/sites/slots/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: stagingSlot
  name: 'scm'
  properties: {
    allow: false
  }
}

resource stagingFtpBasicAuth 'Microsoft.Web/sites/slots/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: stagingSlot
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageRoleIds: {
    name: guid(storage.id, identity.id, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Platform metrics (Requests, Http5xx, ...) and host logs into Log Analytics: the HTTP 5xx rate
// alert computes its ratio from the AzureMetrics table.
resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output id string = site.id
output planId string = plan.id
output defaultHostName string = site.properties.defaultHostName
output stagingHostName string = stagingSlot.properties.defaultHostName
output identityName string = identity.name
output identityPrincipalId string = identity.properties.principalId
output stagingSlotName string = stagingSlotName
