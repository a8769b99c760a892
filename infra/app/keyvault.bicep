// Key Vault holding the one shared secret: the connector's internal API key. The Functions app reads it
// through a Key Vault reference; the connector gets it as a secure environment variable.
param location string
param tags object
param keyVaultName string

@secure()
param connectorApiKey string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

// The name is what azd's secretOrRandomPassword reads back on the next provision (main.parameters.json).
resource connectorApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'connectorApiKey'
  properties: {
    value: connectorApiKey
    contentType: 'connector internal API key'
  }
}

output name string = keyVault.name
output id string = keyVault.id
// A URI without a version: the Key Vault reference follows the latest version.
output connectorApiKeySecretUri string = '${keyVault.properties.vaultUri}secrets/${connectorApiKeySecret.name}'
