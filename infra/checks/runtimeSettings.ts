/**
 * App settings that the templates may set although shared/config.ts does not read them, each with the
 * reason; and settings the code reads only locally, which the templates must never set. Everything else
 * the templates set must be read by the code, and everything the code reads must be set (appSettingsCheck).
 *
 * Flex Consumption rejects FUNCTIONS_EXTENSION_VERSION, FUNCTIONS_WORKER_RUNTIME and WEBSITE_RUN_FROM_PACKAGE
 * (runtime and package come from `functionAppConfig`), so they are deliberately absent here.
 */
import { AppName } from './codeFacts';

export const RUNTIME_SETTINGS: Readonly<Record<AppName, Readonly<Record<string, string>>>> = {
  functionApp: {
    AzureWebJobsStorage__accountName: 'the Functions host storage account, identity-based AzureWebJobsStorage',
    AzureWebJobsStorage__credential: 'makes the host use a managed identity for AzureWebJobsStorage',
    AzureWebJobsStorage__clientId: 'which user-assigned identity the host uses for its storage',
    APPLICATIONINSIGHTS_CONNECTION_STRING: 'where the host sends telemetry (not a secret: ingestion is Entra-only)',
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Entra authentication of telemetry with the app identity',
    ServiceBusConnection__credential: 'read by the Service Bus trigger binding for the identity-based connection',
  },
  connector: {},
};

export const LOCAL_ONLY_SETTINGS: Readonly<Record<string, string>> = {
  CosmosDb__accountKey: 'an emulator key; in Azure the managed identity is used and Cosmos local auth is off',
  CosmosDb__trustedCertificatePath: 'the PEM of the local self-signed Cosmos server',
  ServiceBusConnection: 'a connection string for the local AMQP endpoint; Azure uses __fullyQualifiedNamespace',
};
