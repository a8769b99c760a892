/** Starts a simulated fleet against a stand-in server with a manual clock; `stop` cleans both up. */
import { ManualClock } from '../../simulator/clock';
import { SimulatedFleet, SimulatedFleetOptions, startSimulatedFleet } from '../../simulator/simulatedFleet';
import { SimulatedDevice } from '../../simulator/simulatedDevice';
import { Lwm2mServerStandIn } from './lwm2mServerStandIn';

export interface TestFleet {
  server: Lwm2mServerStandIn;
  clock: ManualClock;
  fleet: SimulatedFleet;
  device: SimulatedDevice;
  logs: string[];
  stop(): Promise<void>;
}

/** `prepare` scripts the stand-in before the devices start (silent, refusing...). */
export async function startTestFleet(
  options: Partial<SimulatedFleetOptions> = {},
  prepare: (server: Lwm2mServerStandIn) => void = () => undefined,
): Promise<TestFleet> {
  const server = await Lwm2mServerStandIn.start();
  prepare(server);
  const clock = new ManualClock();
  const logs: string[] = [];
  const fleet = await startSimulatedFleet({
    count: 1,
    server: { host: '127.0.0.1', port: server.port },
    changeIntervalMs: 0,
    clock,
    log: (line) => logs.push(line),
    ...options,
  });
  return {
    server,
    clock,
    fleet,
    device: fleet.devices[0],
    logs,
    async stop() {
      await fleet.stop({ deregister: false });
      await server.close();
    },
  };
}

/** Lets real UDP traffic settle (for "nothing more arrives" assertions). */
export function settle(ms = 40): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
