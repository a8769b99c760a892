// Cosmos DB for NoSQL: the database and the `twins`, `jobs`, `registrations` and `credentials` containers, as the code creates them locally
// (names, partition key, twins indexing policy and jobs TTL are checked against shared/ in CI).
// Entra-only: disableLocalAuth, and data access through the SQL role assignments in rbac.bicep.
param location string
param tags object
param accountName string

@minValue(0)
@description('0 = serverless; otherwise RU/s provisioned on the database and shared by its containers.')
param provisionedThroughput int = 0

@description('Free tier (one account per subscription; provisioned throughput only).')
param enableFreeTier bool = false

var serverless = provisionedThroughput == 0
var databaseName = 'lwm2m-twins'
var twinsContainerName = 'twins'
var jobsContainerName = 'jobs'
var registrationsContainerName = 'registrations'
var credentialsContainerName = 'credentials'
// TTL on with no default (CREDENTIALS_TTL_SECONDS): only revoked records carry a ttl.
var credentialsTimeToLiveSeconds = -1
// TTL on with no default (REGISTRATIONS_TTL_SECONDS): each record carries its own ttl.
var registrationsTimeToLiveSeconds = -1
var partitionKeyPath = '/deviceId'
// Finished job records are kept 7 days (JOBS_TTL_SECONDS).
var jobsTimeToLiveSeconds = 604800

// Only what the app queries is indexed: tags, connection state, property values and flags, the due time.
// Equal to TWINS_INDEXING_POLICY in shared/cosmosTwinStore.ts.
var twinsIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    { path: '/deviceId/?' }
    { path: '/tags/*' }
    { path: '/connection/state/?' }
    { path: '/deviceProperties/*' }
    { path: '/serviceProperties/*' }
    { path: '/staleProperties/*' }
    { path: '/nextStaleAt/?' }
  ]
  excludedPaths: [
    { path: '/*' }
    { path: '/"_etag"/?' }
  ]
}

// Jobs: the device, the creation time (newest first, id breaks ties), the status, the send time (the
// unsent-job sweep finds queued jobs without a sentTime from the index) and the expiry of jobs waiting for a
// sleeping queue-mode device (the same sweep fails those past it).
// Equal to JOBS_INDEXING_POLICY in shared/cosmosJobStore.ts.
var jobsIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    { path: '/deviceId/?' }
    { path: '/createdTime/?' }
    { path: '/status/?' }
    { path: '/sentTime/?' }
    { path: '/expiresAt/?' }
  ]
  excludedPaths: [
    { path: '/*' }
    { path: '/"_etag"/?' }
  ]
  compositeIndexes: [
    [
      { path: '/createdTime', order: 'descending' }
      { path: '/id', order: 'descending' }
    ]
  ]
}

// Registrations: the connector's durable registrations, loaded by connector id at its start.
// Equal to REGISTRATIONS_INDEXING_POLICY in connector/registration/cosmosRegistrationStore.ts.
var registrationsIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    { path: '/connectorId/?' }
  ]
  excludedPaths: [
    { path: '/*' }
    { path: '/"_etag"/?' }
  ]
}

// Credentials: device PSKs; only the version is indexed (the connector polls for newer records).
// Equal to CREDENTIALS_INDEXING_POLICY in shared/cosmosCredentialWriter.ts.
var credentialsIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    { path: '/version/?' }
  ]
  excludedPaths: [
    { path: '/*' }
    { path: '/"_etag"/?' }
  ]
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: serverless ? [{ name: 'EnableServerless' }] : []
    enableFreeTier: serverless ? false : enableFreeTier
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless ? {} : { throughput: provisionedThroughput }
  }
}

resource twins 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: twinsContainerName
  properties: {
    resource: {
      id: twinsContainerName
      partitionKey: {
        paths: [partitionKeyPath]
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: twinsIndexingPolicy
    }
  }
}

resource jobs 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: jobsContainerName
  properties: {
    resource: {
      id: jobsContainerName
      partitionKey: {
        paths: [partitionKeyPath]
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: jobsIndexingPolicy
      defaultTtl: jobsTimeToLiveSeconds
    }
  }
}

// Each record carries its own ttl: the registration's remaining lifetime plus an hour.
resource registrations 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: registrationsContainerName
  properties: {
    resource: {
      id: registrationsContainerName
      partitionKey: {
        paths: [partitionKeyPath]
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: registrationsIndexingPolicy
      defaultTtl: registrationsTimeToLiveSeconds
    }
  }
}

// Device credentials (PSKs): the Functions app writes them (upsert, no read), only the connector reads them (rbac.bicep).
// Revoked records carry a ttl so the connector's poll sees the revocation before they go.
resource credentials 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: credentialsContainerName
  properties: {
    resource: {
      id: credentialsContainerName
      partitionKey: {
        paths: [partitionKeyPath]
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: credentialsIndexingPolicy
      defaultTtl: credentialsTimeToLiveSeconds
    }
  }
}

output accountName string = account.name
output accountId string = account.id
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output twinsContainerName string = twins.name
output jobsContainerName string = jobs.name
output registrationsContainerName string = registrations.name
output credentialsContainerName string = credentials.name
