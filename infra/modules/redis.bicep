// Azure Managed Redis (Microsoft.Cache/redisEnterprise). Azure Cache for Redis (Basic/Standard/
// Premium) is retiring and no longer takes new instances, so new deployments use Managed Redis.
//
// TLS only (clientProtocol Encrypted) and Microsoft Entra ID only (access keys disabled): the app
// authenticates with a token of its managed identity (REDIS_ENTRA_AUTH=true, redis-entraid); the
// access-policy assignments for the two slot identities are in access.bicep.

param name string
param location string
param tags object

@description('Balanced_B0 is the smallest Managed Redis size.')
param skuName string = 'Balanced_B0'

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: 'Enabled'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    // One endpoint that behaves like a single Redis server (the app uses a plain, non-cluster
    // client); the proxy handles SCAN and multi-key UNLINK across shards.
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Disabled'
  }
}

output name string = cluster.name
output hostName string = cluster.properties.hostName
output port int = database.properties.port
