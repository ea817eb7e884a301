// Key Vault (RBAC authorization) holding the app's secrets. The Function App reads them through
// Key Vault references (@Microsoft.KeyVault(SecretUri=...)) resolved with its managed identity;
// the role assignments that allow this are in access.bicep, once the identities exist.

param name string
param location string
param tags object

@description('Purge protection cannot be turned off once on; disable it only for throwaway environments.')
param enablePurgeProtection bool = true

@secure()
@minLength(32)
@description('Signs everything but access tokens (password-reset tokens).')
param secretKey string

@secure()
@minLength(32)
@description('Signs access tokens (HS256). Must differ from secretKey.')
param jwtSecretKey string

@secure()
@description('SMTP password; no secret is created when empty.')
param smtpPassword string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // The API rejects an explicit false once purge protection has been on, so leave it unset instead.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

resource secretKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'SECRET-KEY'
  properties: {
    value: secretKey
    contentType: 'text/plain'
  }
}

resource jwtSecretKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'JWT-SECRET-KEY'
  properties: {
    value: jwtSecretKey
    contentType: 'text/plain'
  }
}

resource smtpPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(smtpPassword)) {
  parent: vault
  name: 'SMTP-PASSWORD'
  properties: {
    value: smtpPassword
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
// Versionless URIs: the app picks up a rotated secret without a redeploy.
output secretKeyUri string = secretKeySecret.properties.secretUri
output jwtSecretKeyUri string = jwtSecretKeySecret.properties.secretUri
output smtpPasswordUri string = empty(smtpPassword) ? '' : smtpPasswordSecret.properties.secretUri
