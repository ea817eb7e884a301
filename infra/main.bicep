// Stratus on Azure: everything `azd up` provisions, in one resource group.
//
//   Function App (Linux, Python 3.13) on an Elastic Premium EP1 plan, with a `staging` slot; both
//   slots run as one user-assigned identity
//   PostgreSQL Flexible Server (Entra ID only, built-in PgBouncer)   Azure Managed Redis (Entra ID, TLS)
//   Key Vault (RBAC) for SECRET_KEY / JWT_SECRET_KEY                  Storage for the Functions host
//   Log Analytics + Application Insights                              the runbook's alerts
//
// Parameters come from main.parameters.json (azd environment values). The outputs are the names the
// release workflows need: set them as GitHub repository variables of the same name (the list is at
// the top of .github/workflows/deploy-production.yml).

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources.')
param location string

@description('Object id of the operator running azd (AZURE_PRINCIPAL_ID); gets read access to the vault\'s secrets.')
param principalId string = ''

@description('Set by the preprovision hook: true when the Function App already exists.')
param appExists bool = false

@description('Email address of the on-call rotation that receives the alerts.')
param alertEmail string

@description('Entra administrator of PostgreSQL for people (ideally a group): object id, name and type.')
param postgresAdminObjectId string
param postgresAdminName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresAdminType string = 'Group'

@description('Service principal the GitHub release logs in as (OIDC). It becomes a PostgreSQL Entra administrator (runs migrations, creates the app roles) and may deploy and swap the app. Leave empty to wire it up later.')
param deployPrincipalObjectId string = ''

@description('Display name of that service principal: its PostgreSQL user name (GitHub variable AZURE_DEPLOY_PRINCIPAL_NAME).')
param deployPrincipalName string = ''

@description('Entra ID app registration of the API (AZURE_CLIENT_ID); Entra sign-in is off when empty.')
param apiClientId string = ''

@description('Tenant of that registration; defaults to this subscription\'s tenant.')
param apiTenantId string = ''

param apiAdminRole string = 'Stratus.Admin'

@description('Comma-separated browser origins the app allows (CORS_ORIGINS).')
param corsOrigins string = ''

@description('Frontend base URL used in password-recovery emails (FRONTEND_HOST).')
param frontendHost string = ''

@description('Swagger UI at /docs and ReDoc at /redoc (API_DOCS_ENABLED); docs/runbook.md says when to turn them off.')
param apiDocsEnabled string = 'true'

param smtpHost string = ''
param smtpPort string = '587'
param smtpUser string = ''
param emailsFromEmail string = ''

@secure()
param smtpPassword string = ''

@secure()
@minLength(32)
@description('Generated once by the preprovision hook, then kept (azd environment / Key Vault).')
param secretKey string

@secure()
@minLength(32)
param jwtSecretKey string

@description('Name of the application database (created by infra/db/bootstrap-roles.sql).')
param databaseName string = 'stratus'

@allowed([
  '15'
  '16'
])
param postgresVersion string = '16'
param postgresSkuName string = 'Standard_D2ds_v5'
param redisSkuName string = 'Balanced_B0'
param maximumElasticWorkerCount int = 20

@description('Turn off only for throwaway environments: a purge-protected vault name stays taken for 90 days after deletion.')
param keyVaultPurgeProtection bool = true

var tags = {
  'azd-env-name': environmentName
  application: 'stratus'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var names = {
  resourceGroup: 'rg-${environmentName}'
  app: 'func-stratus-${token}'
  plan: 'plan-stratus-${token}'
  storage: 'ststratus${token}'
  identity: 'id-stratus-${token}'
  keyVault: 'kv-stratus-${token}'
  workspace: 'log-stratus-${token}'
  appInsights: 'appi-stratus-${token}'
  postgres: 'psql-stratus-${token}'
  redis: 'redis-stratus-${token}'
  actionGroup: 'ag-stratus-${token}'
}

var humanPostgresAdmins = [
  {
    objectId: postgresAdminObjectId
    principalName: postgresAdminName
    principalType: postgresAdminType
  }
]
var deployPostgresAdmins = empty(deployPrincipalObjectId) ? [] : [
  {
    objectId: deployPrincipalObjectId
    principalName: deployPrincipalName
    principalType: 'ServicePrincipal'
  }
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    enablePurgeProtection: keyVaultPurgeProtection
    secretKey: secretKey
    jwtSecretKey: jwtSecretKey
    smtpPassword: smtpPassword
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: names.postgres
    location: location
    tags: tags
    version: postgresVersion
    skuName: postgresSkuName
    administrators: concat(humanPostgresAdmins, deployPostgresAdmins)
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    name: names.redis
    location: location
    tags: tags
    skuName: redisSkuName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    appName: names.app
    planName: names.plan
    storageName: names.storage
    identityName: names.identity
    location: location
    tags: tags
    maximumElasticWorkerCount: maximumElasticWorkerCount
    appExists: appExists
    appInsightsConnectionString: monitoring.outputs.connectionString
    workspaceId: monitoring.outputs.workspaceId
    secretKeyUri: keyVault.outputs.secretKeyUri
    jwtSecretKeyUri: keyVault.outputs.jwtSecretKeyUri
    smtpPasswordUri: keyVault.outputs.smtpPasswordUri
    postgresHost: postgres.outputs.fullyQualifiedDomainName
    databaseName: databaseName
    redisHost: redis.outputs.hostName
    redisPort: redis.outputs.port
    apiClientId: apiClientId
    apiTenantId: apiTenantId
    apiAdminRole: apiAdminRole
    corsOrigins: corsOrigins
    frontendHost: frontendHost
    apiDocsEnabled: apiDocsEnabled
    smtpHost: smtpHost
    smtpPort: smtpPort
    smtpUser: smtpUser
    emailsFromEmail: emailsFromEmail
  }
}

module access 'modules/access.bicep' = {
  name: 'access'
  scope: rg
  params: {
    keyVaultName: keyVault.outputs.name
    redisName: redis.outputs.name
    appName: functionApp.outputs.name
    postgresName: postgres.outputs.name
    appPrincipalId: functionApp.outputs.identityPrincipalId
    deployPrincipalObjectId: deployPrincipalObjectId
    operatorPrincipalId: principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
    planId: functionApp.outputs.planId
    siteId: functionApp.outputs.id
    appName: functionApp.outputs.name
    appInsightsId: monitoring.outputs.appInsightsId
    workspaceId: monitoring.outputs.workspaceId
  }
}

// Names the release workflows read (as GitHub repository variables of the same name) and the
// preprovision hook reads back from the azd environment.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTIONAPP_NAME string = functionApp.outputs.name
output AZURE_APP_IDENTITY_NAME string = functionApp.outputs.identityName
output AZURE_FUNCTIONAPP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_FUNCTIONAPP_STAGING_HOSTNAME string = functionApp.outputs.stagingHostName
output AZURE_POSTGRES_SERVER string = postgres.outputs.name
output AZURE_POSTGRES_HOST string = postgres.outputs.fullyQualifiedDomainName
output AZURE_POSTGRES_DATABASE string = databaseName
output AZURE_REDIS_HOST string = redis.outputs.hostName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
