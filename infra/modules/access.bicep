// Data-plane access, granted once the identities exist:
//   * the app's user-assigned identity (both slots run as it) reads the Key Vault secrets behind
//     the Key Vault references and uses the Managed Redis database with Entra ID;
//   * the release pipeline's identity (GitHub OIDC) may deploy to the app, set its settings and
//     swap its slots, and manage firewall rules of the PostgreSQL server for its runner;
//   * the operator running `azd provision` may read the vault's secrets (the preprovision hook
//     reuses them instead of generating new ones).
// The PostgreSQL side of database access is SQL (infra/db/*.sql), not Azure RBAC.

param keyVaultName string
param redisName string
param appName string
param postgresName string

@description('Object id of the app\'s user-assigned identity, which both slots run as.')
param appPrincipalId string

@description('Object id of the release pipeline\'s service principal; no roles when empty.')
param deployPrincipalObjectId string = ''

@description('Object id of the operator running azd; no role when empty.')
param operatorPrincipalId string = ''

var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  websiteContributor: 'de139f84-1756-47ae-9be6-808fbbe84772'
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource redisCluster 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = {
  name: redisName
}

resource redisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' existing = {
  parent: redisCluster
  name: 'default'
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: postgresName
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Assignment names are alphanumeric.
resource appRedisAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: redisDatabase
  name: replace(guid(redisDatabase.id, appPrincipalId), '-', '')
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: appPrincipalId
    }
  }
}

resource deployWebsiteContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployPrincipalObjectId)) {
  name: guid(site.id, deployPrincipalObjectId, roles.websiteContributor)
  scope: site
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.websiteContributor)
    principalId: deployPrincipalObjectId
    principalType: 'ServicePrincipal'
  }
}

// Scoped to the server only; needed for the temporary firewall rule around the migrations.
resource deployPostgresContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployPrincipalObjectId)) {
  name: guid(postgres.id, deployPrincipalObjectId, roles.contributor)
  scope: postgres
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.contributor)
    principalId: deployPrincipalObjectId
    principalType: 'ServicePrincipal'
  }
}

resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
  }
}
