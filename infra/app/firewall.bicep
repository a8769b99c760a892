// Azure Firewall (Basic): the connector's one public address, for CoAP in (DNAT, added in connector.bicep
// once the container group has its private IP) and for everything the connector sends out (UDR in network.bicep).
param location string
param tags object
param firewallName string
param firewallPolicyName string
param publicIpName string
param managementPublicIpName string
param firewallSubnetId string
param firewallManagementSubnetId string
param connectorSubnetPrefix string
@description('Host name of the Service Bus namespace the connector publishes twin events to.')
param serviceBusFullyQualifiedNamespace string

resource publicIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: publicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

// Firewall Basic needs a second public IP for its management traffic (Azure's, not ours).
resource managementPublicIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: managementPublicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource policy 'Microsoft.Network/firewallPolicies@2024-05-01' = {
  name: firewallPolicyName
  location: location
  tags: tags
  properties: {
    sku: {
      tier: 'Basic'
    }
    threatIntelMode: 'Alert'
  }
}

// What the connector may open connections to: the Azure services it uses, and devices (CoAP requests to a
// device whose flow through the firewall has idled out).
resource egressRules 'Microsoft.Network/firewallPolicies/ruleCollectionGroups@2024-05-01' = {
  parent: policy
  name: 'connector-egress'
  properties: {
    priority: 200
    ruleCollections: [
      {
        ruleCollectionType: 'FirewallPolicyFilterRuleCollection'
        name: 'connector-egress'
        priority: 200
        action: {
          type: 'Allow'
        }
        rules: [
          {
            ruleType: 'NetworkRule'
            name: 'azure-services-https'
            ipProtocols: ['TCP']
            sourceAddresses: [connectorSubnetPrefix]
            destinationAddresses: [
              'AzureCosmosDB'
              'AzureActiveDirectory'
              'AzureContainerRegistry'
              'MicrosoftContainerRegistry'
              'Storage'
              'AzureMonitor'
            ]
            destinationPorts: ['443']
          }
          {
            ruleType: 'NetworkRule'
            name: 'coap-to-devices'
            ipProtocols: ['UDP']
            sourceAddresses: [connectorSubnetPrefix]
            destinationAddresses: ['*']
            destinationPorts: ['*']
          }
        ]
      }
      {
        // Twin events to our namespace only. The ServiceBus service tag covers Premium namespaces only, and the
        // firewall matches a host name on TLS from the first byte (SNI), which AMQP's TLS upgrade on 5671 is not:
        // so the connector runs AMQP over WebSockets on 443 (Connector__serviceBusTransport, connector.bicep).
        ruleCollectionType: 'FirewallPolicyFilterRuleCollection'
        name: 'connector-egress-fqdn'
        priority: 210
        action: {
          type: 'Allow'
        }
        rules: [
          {
            ruleType: 'ApplicationRule'
            name: 'service-bus-namespace'
            protocols: [
              {
                protocolType: 'Https'
                port: 443
              }
            ]
            sourceAddresses: [connectorSubnetPrefix]
            targetFqdns: [serviceBusFullyQualifiedNamespace]
          }
        ]
      }
    ]
  }
}

resource firewall 'Microsoft.Network/azureFirewalls@2024-05-01' = {
  name: firewallName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'AZFW_VNet'
      tier: 'Basic'
    }
    firewallPolicy: {
      id: policy.id
    }
    ipConfigurations: [
      {
        name: 'coap'
        properties: {
          subnet: {
            id: firewallSubnetId
          }
          publicIPAddress: {
            id: publicIp.id
          }
        }
      }
    ]
    managementIpConfiguration: {
      name: 'management'
      properties: {
        subnet: {
          id: firewallManagementSubnetId
        }
        publicIPAddress: {
          id: managementPublicIp.id
        }
      }
    }
  }
  dependsOn: [egressRules]
}

output policyName string = policy.name
output publicIpAddress string = publicIp.properties.ipAddress
output privateIp string = firewall.properties.ipConfigurations[0].properties.privateIPAddress
output firewallId string = firewall.id
