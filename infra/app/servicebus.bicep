// Service Bus (Standard: sessions and topics need it). Entra-only: disableLocalAuth; senders and receivers
// get data roles in rbac.bicep. Queue and topic names are checked against shared/constants.ts in CI.
param location string
param tags object
param namespaceName string

@minValue(5)
@maxValue(300)
@description('Peek-lock duration of a device job, seconds (Service Bus caps it at 5 minutes; the host renews it).')
param jobsQueueLockSeconds int

@minValue(1)
@description('Deliveries of a job message before it is dead-lettered (a transient failure throws and is redelivered).')
param jobsMaxDeliveryCount int

@description('Subscription on twin-events that keeps events for automation until it reads them.')
param twinEventsSubscriptionName string = 'automation'

var jobsQueueName = 'device-jobs'
var twinEventsTopicName = 'twin-events'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// sessionId = deviceId (one device's jobs run in order); messageId = jobId (duplicate detection makes
// submission idempotent within the window).
resource jobsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: jobsQueueName
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
    lockDuration: 'PT${jobsQueueLockSeconds}S'
    maxDeliveryCount: jobsMaxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P1D'
  }
}

resource twinEventsTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: twinEventsTopicName
  properties: {
    defaultMessageTimeToLive: 'P1D'
    requiresDuplicateDetection: false
  }
}

resource twinEventsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: twinEventsTopic
  name: twinEventsSubscriptionName
  properties: {
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P1D'
  }
}

output namespaceName string = namespace.name
output namespaceId string = namespace.id
output twinEventsTopicName string = twinEventsTopic.name
output jobsQueueName string = jobsQueue.name
// Host name only (`<name>.servicebus.windows.net` in the public cloud), as ServiceBusConnection__fullyQualifiedNamespace wants it.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '://')[1], ':')[0]
