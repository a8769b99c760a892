// lwm2m-twins in Azure: the Functions app, Cosmos DB, Service Bus, the CoAP connector and what they need.
// Identity only: no key, password or connection string is stored; the one shared secret (the connector's
// internal API key) lives in Key Vault. Outputs are app-setting names, endpoints and resource ids.
// Checked in CI by infra/checks (see docs/deploy.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds resourceToken, so one name gives one set of resources.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Flex Consumption, Azure Container Instances in a virtual network and Azure Firewall Basic.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person deploying (azd sets it). Gets read access to the key vault secret and Cosmos data, for inspection. Empty: none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('Kind of principalId.')
param principalType string = 'User'

@secure()
@description('Shared key of the connector\'s internal HTTP API. azd generates it once and reads it back from Key Vault.')
param connectorApiKey string

@description('Connector image in the registry (`<registry>.azurecr.io/lwm2m-connector:<tag>`). Empty: the connector, its DNAT rule and DNS record are not deployed yet (first provision, before the image is built).')
param connectorImage string = ''

@minValue(0)
@description('Cosmos DB throughput: 0 = serverless (pay per request); otherwise provisioned RU/s shared by the database (>= 400, autoscale off).')
param cosmosProvisionedThroughput int = 0

@description('Cosmos DB free tier (one account per subscription may have it; only with provisioned throughput).')
param cosmosEnableFreeTier bool = false

@minValue(1)
@description('Bound on one device round trip made for a job, seconds (Jobs__deviceTimeoutSeconds). Also sizes the device-jobs lock duration.')
param jobDeviceTimeoutSeconds int = 30

@minValue(1)
@description('Deliveries of a job message before Service Bus dead-letters it: the device-jobs maxDeliveryCount, and Jobs__maxDeliveryCount so the job function knows its last try.')
param jobsMaxDeliveryCount int = 10

@minValue(0)
@description('First wait after a transient job failure before the function throws for redelivery, seconds; doubles per delivery (Jobs__retryDelaySeconds).')
param jobsRetryDelaySeconds int = 1

@minValue(0)
@description('Cap of that wait, seconds (Jobs__maxRetryDelaySeconds).')
param jobsMaxRetryDelaySeconds int = 30

@description('Six-field NCRONTAB schedule of the sweep that re-sends jobs whose queue send failed (Jobs__queuedSweepSchedule).')
param jobsQueuedSweepSchedule string = '0 */1 * * * *'

@minValue(1)
@maxValue(3599)
@description('A queued job without a sent message this long after its creation is sent again, seconds (Jobs__queuedSweepAfterSeconds). Below the device-jobs duplicate-detection window (1 h).')
param jobsQueuedSweepAfterSeconds int = 120

@minValue(2)
@description('A queued job still without a sent message this long after its creation is failed with JobQueueUnavailable, seconds (Jobs__queuedMaxAgeSeconds).')
param jobsQueuedMaxAgeSeconds int = 1800

@minValue(1)
@description('Bound on one CoAP request inside the connector, retransmissions included, seconds (Connector__deviceTimeoutSeconds).')
param connectorDeviceTimeoutSeconds int = 20

@description('Plain CoAP (UDP 5683) for devices provisioned with security mode none: the connector serves it and the firewall and NSG let it in only when true (Connector__plainCoapEnabled). Off: every device must use DTLS on 5684.')
param connectorPlainCoapEnabled bool = false

@minValue(1)
@description('How long a queue-mode device stays reachable after its last message, seconds (Connector__awakeWindowSeconds; default CoAP MAX_TRANSMIT_WAIT).')
param connectorAwakeWindowSeconds int = 93

@minValue(0)
@maxValue(65534)
@description('The connector\'s Short Server ID (Connector__shortServerId): of a device with several Server object instances, the one whose /1/x/0 holds it is this server\'s; 0: none, the lowest instance.')
param connectorShortServerId int = 0

@minValue(1)
@description('How long a job without ttlSeconds waits for a sleeping queue-mode device before it fails DeviceAsleep, seconds (Jobs__maxWaitForDeviceSeconds).')
param jobsMaxWaitForDeviceSeconds int = 86400

@minValue(0)
@description('How late a notify may be before its property is flagged stale, seconds (Staleness__graceSeconds).')
param stalenessGraceSeconds int = 93

@description('Six-field NCRONTAB schedule of the staleness sweep (Staleness__schedule).')
param stalenessSchedule string = '0 */1 * * * *'

@description('Observation attributes per property class, seconds (Observe__<class>__pmin / __pmax).')
param observation object = {
  device: { pmin: 300, pmax: 21600 }
  firmwareUpdate: { pmin: 30, pmax: 21600 }
  server: { pmin: 300, pmax: 21600 }
}

@description('Connector tuning: notifyBatchMs (one device\'s notifications within this window go to Cosmos as one write), maxConcurrentTwinWrites (twin writes in flight at once), expirySweepMs (how often expired registrations are looked for).')
param connectorTuning object = {
  notifyBatchMs: 100
  maxConcurrentTwinWrites: 32
  expirySweepMs: 1000
}

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the Functions app scales out to.')
param functionsMaximumInstanceCount int = 40

@allowed([512, 2048, 4096])
@description('Flex Consumption: memory per instance, MB.')
param functionsInstanceMemoryMB int = 2048

@minValue(1)
@description('Connector container: CPU cores.')
param connectorCpuCores int = 1

@minValue(1)
@description('Connector container: memory, GB.')
param connectorMemoryGB int = 1

@description('Address space of the virtual network; the subnets are carved from it.')
param vnetAddressPrefix string = '10.60.0.0/16'

@description('Tags applied to every resource.')
param tags object = {}

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })

// Service Bus lock on a device job: two device round trips plus slack, within Service Bus's 5 minute cap.
var jobsQueueLockSeconds = min(300, 2 * jobDeviceTimeoutSeconds + 30)

// The connector's internal API port, inside the virtual network only.
var connectorApiPort = 8080
// LwM2M over CoAP/UDP (RFC 7252 default port); open only with connectorPlainCoapEnabled.
var coapPort = 5683
// LwM2M over DTLS, coaps (RFC 7252 §12.8 default port): devices provisioned with a PSK.
var coapsPort = 5684

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: allTags
}

module identities './app/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: allTags
    functionsIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}func-${resourceToken}'
    connectorIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}connector-${resourceToken}'
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: allTags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  }
}

module network './app/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    location: location
    tags: allTags
    vnetName: '${abbrs.networkVirtualNetworks}${resourceToken}'
    connectorNsgName: '${abbrs.networkNetworkSecurityGroups}connector-${resourceToken}'
    connectorRouteTableName: '${abbrs.networkRouteTables}connector-${resourceToken}'
    vnetAddressPrefix: vnetAddressPrefix
    coapPort: coapPort
    coapsPort: coapsPort
    plainCoapEnabled: connectorPlainCoapEnabled
    connectorApiPort: connectorApiPort
  }
}

module firewall './app/firewall.bicep' = {
  name: 'firewall'
  scope: rg
  params: {
    location: location
    tags: allTags
    firewallName: '${abbrs.networkAzureFirewalls}${resourceToken}'
    firewallPolicyName: '${abbrs.networkFirewallPolicies}${resourceToken}'
    publicIpName: '${abbrs.networkPublicIPAddresses}coap-${resourceToken}'
    managementPublicIpName: '${abbrs.networkPublicIPAddresses}afw-mgmt-${resourceToken}'
    firewallSubnetId: network.outputs.firewallSubnetId
    firewallManagementSubnetId: network.outputs.firewallManagementSubnetId
    connectorSubnetPrefix: network.outputs.connectorSubnetPrefix
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: allTags
    storageAccountName: '${abbrs.storageStorageAccounts}${resourceToken}'
    deploymentContainerName: 'app-package-${resourceToken}'
  }
}

module cosmos './app/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    location: location
    tags: allTags
    accountName: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
    provisionedThroughput: cosmosProvisionedThroughput
    enableFreeTier: cosmosEnableFreeTier
  }
}

module serviceBus './app/servicebus.bicep' = {
  name: 'serviceBus'
  scope: rg
  params: {
    location: location
    tags: allTags
    namespaceName: '${abbrs.serviceBusNamespaces}${resourceToken}'
    jobsQueueLockSeconds: jobsQueueLockSeconds
    jobsMaxDeliveryCount: jobsMaxDeliveryCount
  }
}

module registry './app/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: allTags
    registryName: '${abbrs.containerRegistryRegistries}${resourceToken}'
  }
}

module keyVault './app/keyvault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    location: location
    tags: allTags
    keyVaultName: '${abbrs.keyVaultVaults}${resourceToken}'
    connectorApiKey: connectorApiKey
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    functionsPrincipalId: identities.outputs.functionsPrincipalId
    connectorPrincipalId: identities.outputs.connectorPrincipalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    storageAccountName: storage.outputs.name
    cosmosAccountName: cosmos.outputs.accountName
    cosmosDatabaseName: cosmos.outputs.databaseName
    twinsContainerName: cosmos.outputs.twinsContainerName
    jobsContainerName: cosmos.outputs.jobsContainerName
    registrationsContainerName: cosmos.outputs.registrationsContainerName
    credentialsContainerName: cosmos.outputs.credentialsContainerName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    twinEventsTopicName: serviceBus.outputs.twinEventsTopicName
    jobsQueueName: serviceBus.outputs.jobsQueueName
    registryName: registry.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functions './app/functions.bicep' = {
  name: 'functions'
  scope: rg
  params: {
    location: location
    tags: allTags
    planName: '${abbrs.webServerFarms}${resourceToken}'
    functionAppName: '${abbrs.webSitesFunctions}${resourceToken}'
    identityId: identities.outputs.functionsIdentityId
    identityClientId: identities.outputs.functionsClientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    subnetId: network.outputs.functionsSubnetId
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    connectorApiKeySecretUri: keyVault.outputs.connectorApiKeySecretUri
    jobDeviceTimeoutSeconds: jobDeviceTimeoutSeconds
    jobsMaxDeliveryCount: jobsMaxDeliveryCount
    jobsRetryDelaySeconds: jobsRetryDelaySeconds
    jobsMaxRetryDelaySeconds: jobsMaxRetryDelaySeconds
    jobsQueuedSweepSchedule: jobsQueuedSweepSchedule
    jobsQueuedSweepAfterSeconds: jobsQueuedSweepAfterSeconds
    jobsQueuedMaxAgeSeconds: jobsQueuedMaxAgeSeconds
    jobsMaxWaitForDeviceSeconds: jobsMaxWaitForDeviceSeconds
    observation: observation
    stalenessGraceSeconds: stalenessGraceSeconds
    stalenessSchedule: stalenessSchedule
    maximumInstanceCount: functionsMaximumInstanceCount
    instanceMemoryMB: functionsInstanceMemoryMB
  }
  // The host starts with its storage, Key Vault and Service Bus roles in place.
  dependsOn: [rbac]
}

module connector './app/connector.bicep' = if (!empty(connectorImage)) {
  name: 'connector'
  scope: rg
  params: {
    location: location
    tags: allTags
    containerGroupName: '${abbrs.containerInstanceContainerGroups}connector-${resourceToken}'
    image: connectorImage
    registryLoginServer: registry.outputs.loginServer
    identityId: identities.outputs.connectorIdentityId
    identityClientId: identities.outputs.connectorClientId
    subnetId: network.outputs.connectorSubnetId
    privateDnsZoneName: network.outputs.privateDnsZoneName
    firewallPolicyName: firewall.outputs.policyName
    firewallPublicIp: firewall.outputs.publicIpAddress
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    apiKey: connectorApiKey
    apiPort: connectorApiPort
    coapPort: coapPort
    coapsPort: coapsPort
    plainCoapEnabled: connectorPlainCoapEnabled
    deviceTimeoutSeconds: connectorDeviceTimeoutSeconds
    awakeWindowSeconds: connectorAwakeWindowSeconds
    shortServerId: connectorShortServerId
    observation: observation
    tuning: connectorTuning
    stalenessGraceSeconds: stalenessGraceSeconds
    stalenessSchedule: stalenessSchedule
    cpuCores: connectorCpuCores
    memoryGB: connectorMemoryGB
  }
  // AcrPull and the Cosmos data role must exist before the group pulls its image and starts.
  dependsOn: [rbac, firewall]
}

// azd and the docs read these; none is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functions.outputs.name
output AZURE_FUNCTION_APP_URL string = functions.outputs.url
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output CONNECTOR_PUBLIC_IP string = firewall.outputs.publicIpAddress
output CONNECTOR_COAP_PORT int = coapPort
output CONNECTOR_COAPS_PORT int = coapsPort
output CONNECTOR_PLAIN_COAP_ENABLED bool = connectorPlainCoapEnabled
output CONNECTOR_IMAGE string = connectorImage

// App-setting names with their values, for running the code locally against these resources.
output CosmosDb__accountEndpoint string = cosmos.outputs.endpoint
output CosmosDb__databaseName string = cosmos.outputs.databaseName
output ServiceBusConnection__fullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace

// Resource ids.
output AZURE_FUNCTION_APP_ID string = functions.outputs.id
output AZURE_COSMOS_ACCOUNT_ID string = cosmos.outputs.accountId
output AZURE_SERVICE_BUS_NAMESPACE_ID string = serviceBus.outputs.namespaceId
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_KEY_VAULT_ID string = keyVault.outputs.id
output AZURE_CONNECTOR_CONTAINER_GROUP_ID string = empty(connectorImage) ? '' : connector.outputs.id
