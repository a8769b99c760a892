// Container registry for the connector image. No admin user: the connector's identity pulls with AcrPull,
// and `az acr build` pushes with the deploying person's Entra login.
param location string
param tags object
param registryName string

@allowed(['Basic', 'Standard', 'Premium'])
@description('Registry SKU. Basic holds 10 GB, plenty for one image line.')
param sku string = 'Basic'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

output name string = registry.name
output id string = registry.id
output loginServer string = registry.properties.loginServer
