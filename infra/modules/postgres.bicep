// Azure Database for PostgreSQL Flexible Server: Microsoft Entra ID authentication only (password
// authentication disabled) and the built-in PgBouncer on port 6432, which the app uses
// (DB_PGBOUNCER=true) so that many Function instances share a small pool of server connections.
//
// The application database and the app's roles are not created here but by
// infra/db/bootstrap-roles.sql, run by the release as an Entra administrator: creating them in SQL
// makes the migrating identity the database owner, and binding roles to the Function App
// identities needs SQL (pgaadauth_create_principal_with_oid) anyway.

param name string
param location string
param tags object

@allowed([
  '15'
  '16'
])
param version string = '16'

@description('Built-in PgBouncer is not available on the Burstable tier, hence General Purpose.')
param skuName string = 'Standard_D2ds_v5'

@allowed([
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'GeneralPurpose'

param storageSizeGB int = 32

@description('Zone-redundant high availability (doubles the compute cost).')
param highAvailability bool = false

@description('Entra administrators: [{ objectId, principalName, principalType: User|Group|ServicePrincipal }].')
param administrators array

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: highAvailability ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

// The server accepts one management operation at a time, so the children below are chained.
resource pgbouncer 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'pgbouncer.enabled'
  properties: {
    value: 'true'
    source: 'user-override'
  }
}

// 0.0.0.0 is the documented marker for "connections from Azure services" (the Function App's
// outbound addresses). Access still needs an Entra token for a role that exists on the server.
// The release opens and deletes a rule for its runner's address around the migrations.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
  dependsOn: [
    pgbouncer
  ]
}

@batchSize(1)
resource entraAdministrators 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = [
  for admin in administrators: {
    parent: server
    name: admin.objectId
    properties: {
      principalName: admin.principalName
      principalType: admin.principalType
      tenantId: subscription().tenantId
    }
    dependsOn: [
      allowAzureServices
    ]
  }
]

output name string = server.name
output id string = server.id
output fullyQualifiedDomainName string = server.properties.fullyQualifiedDomainName
