/**
 * Where a device shows its LwM2M Server object (/1): the simulator keeps every value at instance 0 (the catalog's
 * `/1/0/x`, `deviceState.ts`), and a device whose Server object is another instance (`/1/1`, as bootstrap often
 * assigns) shows it there to the server: in its Register links, in what it serves, notifies and Sends. Pure.
 *
 * Contract: with instance `n`, a path `/1/n/...` from the server means `/1/0/...` inside, `/1/0/...` (n > 0) does not
 * exist, and every path going out names `/1/n/...`. Instance 0 changes nothing.
 */
import { formatPath, Lwm2mPath, ResourceDefinition } from './deviceResources';
import { ResourceReading } from './contentFormats';

/** LwM2M object 1: LwM2M Server. */
const SERVER_OBJECT_ID = 1;
/** The instance the simulator keeps the Server object's values at. */
const INTERNAL_INSTANCE_ID = 0;

export class ServerInstance {
  private readonly shownDefinitions = new Map<ResourceDefinition, ResourceDefinition>();

  constructor(
    /** The instance id the server sees (0-65534). */
    readonly instanceId: number,
  ) {}

  /** The path inside for a path the server named; undefined when the device has no such instance. */
  inside(path: Lwm2mPath): Lwm2mPath | undefined {
    if (this.instanceId === INTERNAL_INSTANCE_ID || path.objectId !== SERVER_OBJECT_ID) return path;
    if (path.instanceId === undefined) return path;
    if (path.instanceId !== this.instanceId) return undefined;
    return { ...path, instanceId: INTERNAL_INSTANCE_ID };
  }

  /** The path the server sees for a path inside. */
  shown(path: Lwm2mPath): Lwm2mPath {
    if (this.instanceId === INTERNAL_INSTANCE_ID || path.objectId !== SERVER_OBJECT_ID) return path;
    return path.instanceId === INTERNAL_INSTANCE_ID ? { ...path, instanceId: this.instanceId } : path;
  }

  /** `shown` for a path string (`/1/0/1` -> `/1/1/1`). */
  shownPath(path: string): string {
    if (this.instanceId === INTERNAL_INSTANCE_ID) return path;
    const [objectId, instanceId, ...rest] = path.split('/').slice(1).map(Number);
    return formatPath(this.shown({ objectId, instanceId, resourceId: rest[0], resourceInstanceId: rest[1] }));
  }

  /** A reading whose definition names the path the server sees (encoders take names and ids from it). */
  shownReading(reading: ResourceReading): ResourceReading {
    const definition = reading.definition;
    if (this.instanceId === INTERNAL_INSTANCE_ID || definition.objectId !== SERVER_OBJECT_ID) return reading;
    let shown = this.shownDefinitions.get(definition);
    if (!shown) {
      shown = Object.freeze({ ...definition, instanceId: this.instanceId, path: this.shownPath(definition.path) });
      this.shownDefinitions.set(definition, shown);
    }
    return { definition: shown, value: reading.value };
  }
}
