// The Functions app: Linux, Node 20, Flex Consumption (scales to zero; the deployment package is run from
// the blob container, which is Flex's form of run-from-package), integrated into the virtual network so it
// can reach the connector's private API. Every app setting below is one the code reads (shared/config.ts)
// or one the Functions runtime needs (infra/checks/runtimeSettings.ts); CI checks both ways.
param location string
param tags object
param planName string
param functionAppName string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param subnetId string
param cosmosEndpoint string
param cosmosDatabaseName string
param serviceBusFullyQualifiedNamespace string
@description('Key Vault secret URI of the connector API key; the app setting is a Key Vault reference to it.')
param connectorApiKeySecretUri string
param jobDeviceTimeoutSeconds int
@description('Equal to the device-jobs queue maxDeliveryCount: the job function treats that delivery as the last.')
param jobsMaxDeliveryCount int
param jobsRetryDelaySeconds int
param jobsMaxRetryDelaySeconds int
@description('Six-field NCRONTAB schedule of the unsent-job sweep (Jobs__queuedSweepSchedule).')
param jobsQueuedSweepSchedule string
@description('Below the device-jobs duplicate-detection window, so a re-send of a message that did land is dropped.')
param jobsQueuedSweepAfterSeconds int
param jobsQueuedMaxAgeSeconds int
@description('How long a job without ttlSeconds waits for a sleeping queue-mode device, seconds.')
param jobsMaxWaitForDeviceSeconds int
@description('Observation attributes per property class, seconds, as the connector has them (deep reads record them in the twin).')
param observation object
param stalenessGraceSeconds int
param stalenessSchedule string
param maximumInstanceCount int
param instanceMemoryMB int

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: subnetId
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '20'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // Functions runtime: host storage through the identity.
        { name: 'AzureWebJobsStorage__accountName', value: storageAccount.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        // Functions runtime: telemetry, Entra-authenticated.
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        // The code (shared/config.ts): Cosmos through the identity named by AZURE_CLIENT_ID.
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'CosmosDb__accountEndpoint', value: cosmosEndpoint }
        { name: 'CosmosDb__databaseName', value: cosmosDatabaseName }
        // The Service Bus connection, read by the trigger binding (credential) and the code (namespace, client id).
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusFullyQualifiedNamespace }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identityClientId }
        // The connector's API key: a Key Vault reference, resolved by the platform with keyVaultReferenceIdentity.
        { name: 'Connector__apiKey', value: '@Microsoft.KeyVault(SecretUri=${connectorApiKeySecretUri})' }
        { name: 'Jobs__deviceTimeoutSeconds', value: string(jobDeviceTimeoutSeconds) }
        { name: 'Jobs__maxDeliveryCount', value: string(jobsMaxDeliveryCount) }
        { name: 'Jobs__retryDelaySeconds', value: string(jobsRetryDelaySeconds) }
        { name: 'Jobs__maxRetryDelaySeconds', value: string(jobsMaxRetryDelaySeconds) }
        { name: 'Jobs__queuedSweepSchedule', value: jobsQueuedSweepSchedule }
        { name: 'Jobs__queuedSweepAfterSeconds', value: string(jobsQueuedSweepAfterSeconds) }
        { name: 'Jobs__queuedMaxAgeSeconds', value: string(jobsQueuedMaxAgeSeconds) }
        { name: 'Jobs__maxWaitForDeviceSeconds', value: string(jobsMaxWaitForDeviceSeconds) }
        { name: 'Staleness__graceSeconds', value: string(stalenessGraceSeconds) }
        { name: 'Staleness__schedule', value: stalenessSchedule }
        { name: 'Observe__device__pmin', value: string(observation.device.pmin) }
        { name: 'Observe__device__pmax', value: string(observation.device.pmax) }
        { name: 'Observe__firmwareUpdate__pmin', value: string(observation.firmwareUpdate.pmin) }
        { name: 'Observe__firmwareUpdate__pmax', value: string(observation.firmwareUpdate.pmax) }
        { name: 'Observe__server__pmin', value: string(observation.server.pmin) }
        { name: 'Observe__server__pmax', value: string(observation.server.pmax) }
      ]
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output url string = 'https://${functionApp.properties.defaultHostName}'
