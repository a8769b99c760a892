// User-assigned managed identities: one for the Functions app, one for the connector.
// Their roles are granted in rbac.bicep.
param location string
param tags object
param functionsIdentityName string
param connectorIdentityName string

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionsIdentityName
  location: location
  tags: tags
}

resource connectorIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: connectorIdentityName
  location: location
  tags: tags
}

output functionsIdentityId string = functionsIdentity.id
output functionsClientId string = functionsIdentity.properties.clientId
output functionsPrincipalId string = functionsIdentity.properties.principalId
output connectorIdentityId string = connectorIdentity.id
output connectorClientId string = connectorIdentity.properties.clientId
output connectorPrincipalId string = connectorIdentity.properties.principalId
