// The virtual network that keeps the connector's internal API private.
//
// Azure Container Instances cannot give one container group both a public IP and a place in a virtual
// network, and Azure Load Balancer in front of a VNet container group is not supported. So the connector
// runs in a delegated subnet with a private IP only; devices reach it through Azure Firewall, whose public
// IP DNATs UDP 5684 (coaps), and UDP 5683 (plain CoAP) only when plainCoapEnabled, to the connector
// (connector.bicep). A route table sends the connector's outbound traffic through the same firewall, so
// devices see one public address both ways. The Functions app joins the network through VNet integration and
// is the only caller the connector's NSG lets reach the API port.
param location string
param tags object
param vnetName string
param connectorNsgName string
param connectorRouteTableName string
param vnetAddressPrefix string
param coapPort int
@description('DTLS (coaps) port, always open to devices.')
param coapsPort int
@description('Plain CoAP (coapPort) reaches the connector only when true.')
param plainCoapEnabled bool
param connectorApiPort int

@description('Private DNS zone in which the connector gets its stable name (connector.<zone>).')
param privateDnsZoneName string = 'lwm2m.internal'

// /24 for Flex Consumption VNet integration, /24 for container groups, /26 each for the firewall's subnets
// (Azure requires /26 and these exact names).
var functionsSubnetPrefix = cidrSubnet(vnetAddressPrefix, 24, 0)
var connectorSubnetPrefix = cidrSubnet(vnetAddressPrefix, 24, 1)
var firewallSubnetPrefix = cidrSubnet(vnetAddressPrefix, 26, 8)
var firewallManagementSubnetPrefix = cidrSubnet(vnetAddressPrefix, 26, 9)
// Azure Firewall always takes the first usable address Azure leaves free in AzureFirewallSubnet (.4: Azure
// reserves .0 to .3). Computed rather than read from the firewall, because the firewall needs this network first.
var firewallPrivateIp = cidrHost(firewallSubnetPrefix, 3)

resource connectorNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: connectorNsgName
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-coaps-from-devices'
        properties: {
          description: 'LwM2M devices over DTLS, DNATed by the firewall (the source stays the device).'
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Udp'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: connectorSubnetPrefix
          destinationPortRange: string(coapsPort)
        }
      }
      {
        name: 'plain-coap-from-devices'
        properties: {
          description: 'LwM2M devices over plain CoAP (security mode none): allowed only when plainCoapEnabled.'
          priority: 105
          direction: 'Inbound'
          access: plainCoapEnabled ? 'Allow' : 'Deny'
          protocol: 'Udp'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: connectorSubnetPrefix
          destinationPortRange: string(coapPort)
        }
      }
      {
        name: 'allow-api-from-functions'
        properties: {
          description: 'The connector internal API, for the Functions app only.'
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: functionsSubnetPrefix
          sourcePortRange: '*'
          destinationAddressPrefix: connectorSubnetPrefix
          destinationPortRange: string(connectorApiPort)
        }
      }
      {
        name: 'deny-other-vnet-inbound'
        properties: {
          description: 'Overrides the default allow-VNet rule: nothing else in the network reaches the connector.'
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource connectorRouteTable 'Microsoft.Network/routeTables@2024-05-01' = {
  name: connectorRouteTableName
  location: location
  tags: tags
  properties: {
    disableBgpRoutePropagation: true
    routes: [
      {
        name: 'internet-through-firewall'
        properties: {
          addressPrefix: '0.0.0.0/0'
          nextHopType: 'VirtualAppliance'
          nextHopIpAddress: firewallPrivateIp
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [vnetAddressPrefix]
    }
    subnets: [
      {
        name: 'functions'
        properties: {
          addressPrefix: functionsSubnetPrefix
          // The Functions app reaches Cosmos DB, Service Bus, Storage and Key Vault on their public endpoints
          // (Entra-authenticated). Explicit, because new subnets default to no outbound access.
          defaultOutboundAccess: true
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                // Flex Consumption VNet integration delegates to Microsoft.App/environments.
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'connector'
        properties: {
          addressPrefix: connectorSubnetPrefix
          // Everything the connector sends out goes through the firewall (route table), never directly.
          defaultOutboundAccess: false
          networkSecurityGroup: {
            id: connectorNsg.id
          }
          routeTable: {
            id: connectorRouteTable.id
          }
          delegations: [
            {
              name: 'container-groups'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
      {
        name: 'AzureFirewallSubnet'
        properties: {
          addressPrefix: firewallSubnetPrefix
        }
      }
      {
        name: 'AzureFirewallManagementSubnet'
        properties: {
          addressPrefix: firewallManagementSubnetPrefix
        }
      }
    ]
  }
}

resource privateDnsZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: privateDnsZoneName
  location: 'global'
  tags: tags
}

resource privateDnsZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: privateDnsZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

output vnetId string = vnet.id
output functionsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'functions')
output connectorSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'connector')
output connectorSubnetPrefix string = connectorSubnetPrefix
output firewallSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'AzureFirewallSubnet')
output firewallManagementSubnetId string = resourceId(
  'Microsoft.Network/virtualNetworks/subnets',
  vnet.name,
  'AzureFirewallManagementSubnet'
)
output firewallPrivateIp string = firewallPrivateIp
output privateDnsZoneName string = privateDnsZone.name
