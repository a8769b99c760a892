// The CoAP/LwM2M connector: one Azure Container Instances group in the connector subnet (private IP only),
// its public entries (DNAT rules on the firewall's public IP: coaps, UDP 5684, always; plain CoAP, UDP 5683,
// only when plainCoapEnabled) and its private name connector.<zone>,
// which is the API URL it records in the twins it holds and the Functions app calls.
param location string
param tags object
param containerGroupName string
param image string
param registryLoginServer string
param identityId string
param identityClientId string
param subnetId string
param privateDnsZoneName string
param firewallPolicyName string
param firewallPublicIp string
param cosmosEndpoint string
param cosmosDatabaseName string
@description('Host name of the Service Bus namespace; the connector publishes twin events to its twin-events topic.')
param serviceBusFullyQualifiedNamespace string

@secure()
@description('The internal API key; reaches the container as a secure environment variable only.')
param apiKey string

param apiPort int
param coapPort int
@description('DTLS (coaps) port: devices provisioned with a PSK.')
param coapsPort int
@description('Plain CoAP for devices provisioned with security mode none: the connector serves it and the firewall forwards it only when true.')
param plainCoapEnabled bool
param deviceTimeoutSeconds int
@description('How long a queue-mode device stays reachable after its last message, seconds.')
param awakeWindowSeconds int
@description('This server\'s Short Server ID, which picks the Server object instance of a device that has several; 0: none (the lowest instance).')
param shortServerId int
@description('Observation attributes per property class, seconds: { device: { pmin, pmax }, firmwareUpdate: ..., server: ... }.')
param observation object
@description('{ notifyBatchMs, maxConcurrentTwinWrites, expirySweepMs }, see main.bicep.')
param tuning object
@description('The staleness grace: twin writes compute nextStaleAt with it, as the Functions app does.')
param stalenessGraceSeconds int
param stalenessSchedule string
param cpuCores int
param memoryGB int

var apiHostName = 'connector'
var apiUrl = 'http://${apiHostName}.${privateDnsZoneName}:${apiPort}'
// The device ports the group opens: coaps always, plain CoAP only when enabled.
var coapsPortEntry = { protocol: 'UDP', port: coapsPort }
var coapPortEntry = { protocol: 'UDP', port: coapPort }
var devicePorts = plainCoapEnabled ? [coapsPortEntry, coapPortEntry] : [coapsPortEntry]

resource containerGroup 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: containerGroupName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    osType: 'Linux'
    sku: 'Standard'
    restartPolicy: 'Always'
    imageRegistryCredentials: [
      {
        server: registryLoginServer
        identity: identityId
      }
    ]
    subnetIds: [
      {
        id: subnetId
      }
    ]
    ipAddress: {
      type: 'Private'
      ports: concat(devicePorts, [{ protocol: 'TCP', port: apiPort }])
    }
    containers: [
      {
        name: 'connector'
        properties: {
          image: image
          ports: concat(devicePorts, [{ protocol: 'TCP', port: apiPort }])
          resources: {
            requests: {
              cpu: cpuCores
              memoryInGB: memoryGB
            }
          }
          environmentVariables: [
            { name: 'AZURE_CLIENT_ID', value: identityClientId }
            { name: 'CosmosDb__accountEndpoint', value: cosmosEndpoint }
            { name: 'CosmosDb__databaseName', value: cosmosDatabaseName }
            { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusFullyQualifiedNamespace }
            { name: 'ServiceBusConnection__clientId', value: identityClientId }
            // AMQP over WebSockets on 443: the only way through the firewall to one namespace by name (firewall.bicep).
            { name: 'Connector__serviceBusTransport', value: 'amqpWebSockets' }
            { name: 'Connector__instanceId', value: containerGroupName }
            { name: 'Connector__coapPort', value: string(coapPort) }
            { name: 'Connector__coapsPort', value: string(coapsPort) }
            { name: 'Connector__plainCoapEnabled', value: string(plainCoapEnabled) }
            // IPv4 only (here and for the API): container groups in a virtual network have no IPv6.
            { name: 'Connector__coapAddress', value: '0.0.0.0' }
            { name: 'Connector__apiPort', value: string(apiPort) }
            { name: 'Connector__apiAddress', value: '0.0.0.0' }
            { name: 'Connector__apiUrl', value: apiUrl }
            { name: 'Connector__apiKey', secureValue: apiKey }
            { name: 'Connector__deviceTimeoutSeconds', value: string(deviceTimeoutSeconds) }
            { name: 'Connector__awakeWindowSeconds', value: string(awakeWindowSeconds) }
            { name: 'Connector__shortServerId', value: string(shortServerId) }
            { name: 'Connector__notifyBatchMs', value: string(tuning.notifyBatchMs) }
            { name: 'Connector__maxConcurrentTwinWrites', value: string(tuning.maxConcurrentTwinWrites) }
            { name: 'Connector__expirySweepMs', value: string(tuning.expirySweepMs) }
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
    ]
  }
}

resource privateDnsZone 'Microsoft.Network/privateDnsZones@2024-06-01' existing = {
  name: privateDnsZoneName
}

// Written from the group's current private IP at each provision (ACI may hand out another one after the
// group is re-created; `azd provision` rewrites this record and the DNAT rule).
resource apiRecord 'Microsoft.Network/privateDnsZones/A@2024-06-01' = {
  parent: privateDnsZone
  name: apiHostName
  properties: {
    ttl: 30
    aRecords: [
      {
        ipv4Address: containerGroup.properties.ipAddress.ip
      }
    ]
  }
}

resource firewallPolicy 'Microsoft.Network/firewallPolicies@2024-05-01' existing = {
  name: firewallPolicyName
}

// Devices on the firewall's public IP, DNATed to the connector (the source stays the device).
var coapsNatRule = {
  ruleType: 'NatRule'
  name: 'coaps-udp'
  ipProtocols: ['UDP']
  sourceAddresses: ['*']
  destinationAddresses: [firewallPublicIp]
  destinationPorts: [string(coapsPort)]
  translatedAddress: containerGroup.properties.ipAddress.ip
  translatedPort: string(coapsPort)
}
var coapNatRule = {
  ruleType: 'NatRule'
  name: 'coap-udp'
  ipProtocols: ['UDP']
  sourceAddresses: ['*']
  destinationAddresses: [firewallPublicIp]
  destinationPorts: [string(coapPort)]
  translatedAddress: containerGroup.properties.ipAddress.ip
  translatedPort: string(coapPort)
}

resource coapIngress 'Microsoft.Network/firewallPolicies/ruleCollectionGroups@2024-05-01' = {
  parent: firewallPolicy
  name: 'connector-ingress'
  properties: {
    priority: 100
    ruleCollections: [
      {
        ruleCollectionType: 'FirewallPolicyNatRuleCollection'
        name: 'coap-to-connector'
        priority: 100
        action: {
          type: 'Dnat'
        }
        rules: plainCoapEnabled ? [coapsNatRule, coapNatRule] : [coapsNatRule]
      }
    ]
  }
}

output id string = containerGroup.id
output privateIp string = containerGroup.properties.ipAddress.ip
output apiUrl string = apiUrl
