// Every role assignment of the deployment, in one place. Names are guid(scope, principal, role), so a
// redeploy finds the same assignment. Each role is named in a comment next to its definition id.
param functionsPrincipalId string
param connectorPrincipalId string

@description('The person deploying; empty: no assignment for them.')
param deployerPrincipalId string = ''
param deployerPrincipalType string = 'User'

param storageAccountName string
param cosmosAccountName string
param cosmosDatabaseName string
param twinsContainerName string
param jobsContainerName string
param registrationsContainerName string
@description('Device PSKs: the Functions app writes them, only the connector reads them.')
param credentialsContainerName string
param serviceBusNamespaceName string
param twinEventsTopicName string
param jobsQueueName string
param registryName string
param keyVaultName string
param applicationInsightsName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}
// Cosmos DB data-plane roles are SQL role definitions of the account, not Azure RBAC roles.
var cosmosDataContributorRole = '00000000-0000-0000-0000-000000000002' // Cosmos DB Built-in Data Contributor
var cosmosDataReaderRole = '00000000-0000-0000-0000-000000000001' // Cosmos DB Built-in Data Reader
var hasDeployer = !empty(deployerPrincipalId)
// Cosmos data roles are scoped to containers, so no identity gets data access to a container it has no business
// in: in particular the credentials container is written by the Functions app alone and read by the connector alone.
var cosmosContainerScope = '${cosmosAccount.id}/dbs/${cosmosDatabaseName}/colls'
var credentialsScope = '${cosmosContainerScope}/${credentialsContainerName}'
var functionsDataContainers = [twinsContainerName, jobsContainerName]
var connectorDataContainers = [twinsContainerName, jobsContainerName, registrationsContainerName]
var deployerDataContainers = [twinsContainerName, jobsContainerName, registrationsContainerName]

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource cosmosAccount 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

// Account, database and container metadata only (no data): what the SDK reads before any item operation, here
// for every database and container, so each data role below can be scoped to its containers alone.
resource cosmosMetadataReaderRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleDefinitions@2024-11-15' = {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, 'lwm2m-twins metadata reader')
  properties: {
    roleName: 'lwm2m-twins metadata reader'
    type: 'CustomRole'
    assignableScopes: [cosmosAccount.id]
    permissions: [
      {
        dataActions: ['Microsoft.DocumentDB/databaseAccounts/readMetadata']
      }
    ]
  }
}

// Writes device credentials and never reads them: create, upsert, replace and delete on the credentials
// container; no read, query or change feed, so the Functions app cannot hand a stored key back.
resource credentialsWriterRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleDefinitions@2024-11-15' = {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, 'lwm2m-twins credentials writer')
  properties: {
    roleName: 'lwm2m-twins credentials writer'
    type: 'CustomRole'
    assignableScopes: [credentialsScope]
    permissions: [
      {
        dataActions: [
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create'
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert'
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/replace'
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/delete'
        ]
      }
    ]
  }
}

// Reads device credentials and never writes them: point reads and queries (the connector polls for records newer than
// those it holds) on the credentials container.
resource credentialsReaderRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleDefinitions@2024-11-15' = {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, 'lwm2m-twins credentials reader')
  properties: {
    roleName: 'lwm2m-twins credentials reader'
    type: 'CustomRole'
    assignableScopes: [credentialsScope]
    permissions: [
      {
        dataActions: [
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read'
          'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery'
        ]
      }
    ]
  }
}

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource twinEventsTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: serviceBusNamespace
  name: twinEventsTopicName
}

resource jobsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBusNamespace
  name: jobsQueueName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Storage Blob Data Owner: the Functions host's leases, timer schedule monitor and deployment package.
resource functionsBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionsPrincipalId, roles.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the Functions host's internal queues (blob-trigger receipts, retries).
resource functionsQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionsPrincipalId, roles.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roles.storageQueueDataContributor
    )
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor: the Functions host's diagnostic events table.
resource functionsTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionsPrincipalId, roles.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roles.storageTableDataContributor
    )
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Sender: the jobs API enqueues on device-jobs; twin events go to twin-events.
resource functionsServiceBusSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusNamespace.id, functionsPrincipalId, roles.serviceBusDataSender)
  scope: serviceBusNamespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Receiver: the device-jobs session trigger.
resource functionsServiceBusReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusNamespace.id, functionsPrincipalId, roles.serviceBusDataReceiver)
  scope: serviceBusNamespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User: the Key Vault reference behind Connector__apiKey.
resource functionsKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionsPrincipalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher: Entra-authenticated telemetry to Application Insights (local auth is off).
resource functionsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, functionsPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roles.monitoringMetricsPublisher
    )
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// AcrPull: the connector container group pulls its image with the connector identity.
resource connectorAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, connectorPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: connectorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Cosmos DB Built-in Data Contributor, on the twins and jobs containers only: the Functions app reads and
// writes twins and jobs.
resource functionsCosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for container in functionsDataContainers: {
    parent: cosmosAccount
    name: guid('${cosmosContainerScope}/${container}', functionsPrincipalId, cosmosDataContributorRole)
    properties: {
      roleDefinitionId: '${cosmosAccount.id}/sqlRoleDefinitions/${cosmosDataContributorRole}'
      principalId: functionsPrincipalId
      scope: '${cosmosContainerScope}/${container}'
    }
  }
]

// lwm2m-twins metadata reader (custom, no data): the Functions app's SDK reads database and container metadata.
resource functionsCosmosMetadataReader 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, functionsPrincipalId, cosmosMetadataReaderRole.id)
  properties: {
    roleDefinitionId: cosmosMetadataReaderRole.id
    principalId: functionsPrincipalId
    scope: cosmosAccount.id
  }
}

// lwm2m-twins credentials writer (custom): provisioning, rotation and deprovisioning upsert device credentials.
resource functionsCredentialsWriter 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmosAccount
  name: guid(credentialsScope, functionsPrincipalId, credentialsWriterRole.id)
  properties: {
    roleDefinitionId: credentialsWriterRole.id
    principalId: functionsPrincipalId
    scope: credentialsScope
  }
}

// Azure Service Bus Data Sender on the twin-events topic: the connector publishes connection and
// propertyFresh events.
resource connectorTwinEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(twinEventsTopic.id, connectorPrincipalId, roles.serviceBusDataSender)
  scope: twinEventsTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: connectorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Sender on the device-jobs queue: the connector sends the jobs waiting for a
// queue-mode device back to the queue when the device wakes (Register/Update); it never receives from it.
resource connectorJobsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(jobsQueue.id, connectorPrincipalId, roles.serviceBusDataSender)
  scope: jobsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: connectorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Cosmos DB Built-in Data Contributor, on the twins, jobs and registrations containers only: the connector
// patches twins on register and notify, keeps its registrations, and reads the jobs waiting for a woken
// queue-mode device.
resource connectorCosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for container in connectorDataContainers: {
    parent: cosmosAccount
    name: guid('${cosmosContainerScope}/${container}', connectorPrincipalId, cosmosDataContributorRole)
    properties: {
      roleDefinitionId: '${cosmosAccount.id}/sqlRoleDefinitions/${cosmosDataContributorRole}'
      principalId: connectorPrincipalId
      scope: '${cosmosContainerScope}/${container}'
    }
  }
]

// lwm2m-twins metadata reader (custom, no data): the connector's SDK reads database and container metadata.
resource connectorCosmosMetadataReader 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, connectorPrincipalId, cosmosMetadataReaderRole.id)
  properties: {
    roleDefinitionId: cosmosMetadataReaderRole.id
    principalId: connectorPrincipalId
    scope: cosmosAccount.id
  }
}

// lwm2m-twins credentials reader (custom): the connector's credential cache (point reads, queries).
resource connectorCredentialsReader 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmosAccount
  name: guid(credentialsScope, connectorPrincipalId, credentialsReaderRole.id)
  properties: {
    roleDefinitionId: credentialsReaderRole.id
    principalId: connectorPrincipalId
    scope: credentialsScope
  }
}

// Key Vault Secrets User: the deploying person, so azd reads the connector key back instead of making a new one.
resource deployerKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDeployer) {
  name: guid(keyVault.id, deployerPrincipalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// Cosmos DB Built-in Data Reader, on the twins, jobs and registrations containers only: the deploying person can
// look at twins (Data Explorer, SDK), never at device keys.
resource deployerCosmosDataReader 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for container in deployerDataContainers: if (hasDeployer) {
    parent: cosmosAccount
    name: guid('${cosmosContainerScope}/${container}', deployerPrincipalId, cosmosDataReaderRole)
    properties: {
      roleDefinitionId: '${cosmosAccount.id}/sqlRoleDefinitions/${cosmosDataReaderRole}'
      principalId: deployerPrincipalId
      scope: '${cosmosContainerScope}/${container}'
    }
  }
]

// lwm2m-twins metadata reader (custom, no data): the deploying person's Data Explorer lists databases and containers.
resource deployerCosmosMetadataReader 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (hasDeployer) {
  parent: cosmosAccount
  name: guid(cosmosAccount.id, deployerPrincipalId, cosmosMetadataReaderRole.id)
  properties: {
    roleDefinitionId: cosmosMetadataReaderRole.id
    principalId: deployerPrincipalId
    scope: cosmosAccount.id
  }
}
