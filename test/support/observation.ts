import { ObservationAttributes, ObservationDefaults } from '../../shared/catalog';

/** Observation defaults with the same pmin/pmax for every property class (tests). */
export function uniformObservation(attributes: ObservationAttributes): ObservationDefaults {
  return { device: attributes, firmwareUpdate: attributes, server: attributes };
}
