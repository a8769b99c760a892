/** The LwM2M device simulator's public API (see simulator/README.md). */
export { startSimulatedFleet, MAX_FLEET_SIZE } from './simulatedFleet';
export type { SimulatedFleet, SimulatedFleetOptions } from './simulatedFleet';
export { SimulatedDevice, registrationLinks } from './simulatedDevice';
export type { DeviceCounters, SimulatedDeviceEvents } from './simulatedDevice';
export type { ObservationInfo, SentNotification } from './observations';
export type { ResourceValue } from './deviceResources';
export { ManualClock, systemClock } from './clock';
export type { Clock } from './clock';
