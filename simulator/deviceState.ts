/**
 * The values of one simulated device and how they evolve: the battery drains and recharges, the clock
 * advances, free memory wanders, and the firmware-update object (/5) moves through its state machine.
 * No I/O: every change is reported through `onChange(path)`, and timed steps go through the scheduler.
 */
import { DEVICE_RESOURCES, ResourceValue } from './deviceResources';
import { BINDING_UDP } from './protocol';
import { Scheduler, ScheduledTask } from './scheduler';

/** Resource paths the simulation changes or reacts to. */
export const Paths = {
  manufacturer: '/3/0/0',
  modelNumber: '/3/0/1',
  serialNumber: '/3/0/2',
  firmwareVersion: '/3/0/3',
  batteryLevel: '/3/0/9',
  memoryFree: '/3/0/10',
  errorCode: '/3/0/11',
  currentTime: '/3/0/13',
  utcOffset: '/3/0/14',
  timezone: '/3/0/15',
  supportedBindingAndModes: '/3/0/16',
  deviceType: '/3/0/17',
  hardwareVersion: '/3/0/18',
  batteryStatus: '/3/0/20',
  memoryTotal: '/3/0/21',
  shortServerId: '/1/0/0',
  registrationLifetime: '/1/0/1',
  defaultMinPeriod: '/1/0/2',
  defaultMaxPeriod: '/1/0/3',
  binding: '/1/0/7',
  firmwarePackage: '/5/0/0',
  firmwarePackageUri: '/5/0/1',
  firmwareUpdateState: '/5/0/3',
  firmwareUpdateResult: '/5/0/5',
  firmwarePackageName: '/5/0/6',
  firmwarePackageVersion: '/5/0/7',
  firmwareUpdateDeliveryMethod: '/5/0/9',
} as const;

/** /3/0/20 Battery Status values (LwM2M object 3). */
export const BatteryStatus = { NORMAL: 0, CHARGING: 1, CHARGE_COMPLETE: 2, LOW_BATTERY: 4 } as const;
/** /5/0/3 State values (LwM2M object 5). */
export const FirmwareState = { IDLE: 0, DOWNLOADING: 1, DOWNLOADED: 2, UPDATING: 3 } as const;
/** /5/0/5 Update Result values (LwM2M object 5). */
export const FirmwareResult = { INITIAL: 0, SUCCESS: 1, INVALID_URI: 7, UNSUPPORTED_PROTOCOL: 9 } as const;

/** Battery level (%) at or below which the status is "low battery". */
const LOW_BATTERY_LEVEL = 20;
/** Battery level (%) at or below which the simulated owner plugs the charger in. */
const RECHARGE_AT_LEVEL = 10;
/** Battery percentage points gained per change step while charging (it drains 1 per step). */
const CHARGE_PER_STEP = 5;
/** Total memory of every simulated device, KB. */
const MEMORY_TOTAL_KB = 65_536;
/** Free memory stays within these fractions of the total; a step moves it by up to 3 % of the total. */
const MEMORY_FREE_MIN_FRACTION = 0.2;
const MEMORY_FREE_MAX_FRACTION = 0.9;
const MEMORY_STEP_FRACTION = 0.03;
/** URI schemes a download may use (/5/0/1); others give result 9, unsupported protocol. */
const DOWNLOAD_SCHEMES = new Set(['coap:', 'coaps:', 'http:', 'https:']);

export interface DeviceStateOptions {
  readonly endpoint: string;
  /** Seeds the device's random walk, so a given endpoint behaves the same in every run. */
  readonly seed: number;
  readonly lifetimeSeconds: number;
  readonly defaultMinPeriodSeconds: number;
  readonly defaultMaxPeriodSeconds: number;
  /** How long each firmware step (download, update) takes, ms. */
  readonly firmwareStepMs: number;
  readonly scheduler: Scheduler;
  readonly onChange: (path: string) => void;
}

export class DeviceState {
  private readonly values = new Map<string, ResourceValue>();
  private readonly random: () => number;
  /** Device clock minus the simulator clock, seconds (a Write to /3/0/13 sets it). */
  private timeOffsetSeconds = 0;
  private lastReportedTime: number;
  private charging = false;
  private firmwareTask: ScheduledTask | undefined;

  constructor(private readonly options: DeviceStateOptions) {
    this.random = mulberry32(options.seed);
    const batteryLevel = 40 + Math.floor(this.random() * 61);
    const memoryFree = Math.round(MEMORY_TOTAL_KB * (0.4 + this.random() * 0.4));
    const initial: Record<string, ResourceValue> = {
      ...this.factorySettings(),
      [Paths.manufacturer]: 'lwm2m-twins',
      [Paths.modelNumber]: 'SIM-1',
      [Paths.serialNumber]: `SN-${options.endpoint}`,
      [Paths.firmwareVersion]: '1.0.0',
      [Paths.batteryLevel]: batteryLevel,
      [Paths.memoryFree]: memoryFree,
      [Paths.errorCode]: 0,
      [Paths.supportedBindingAndModes]: BINDING_UDP,
      [Paths.deviceType]: 'simulated-sensor',
      [Paths.hardwareVersion]: 'rev-A',
      [Paths.batteryStatus]: batteryLevel <= LOW_BATTERY_LEVEL ? BatteryStatus.LOW_BATTERY : BatteryStatus.NORMAL,
      [Paths.memoryTotal]: MEMORY_TOTAL_KB,
      [Paths.shortServerId]: 1,
      [Paths.firmwareUpdateDeliveryMethod]: 2,
    };
    for (const definition of DEVICE_RESOURCES) {
      // The clock is computed on read; executable resources have no value.
      if (definition.executable || definition.path === Paths.currentTime) continue;
      const value = initial[definition.path];
      if (value === undefined) throw new Error(`simulator: no initial value for ${definition.path}`);
      this.values.set(definition.path, value);
    }
    this.lastReportedTime = this.deviceTimeSeconds();
  }

  /** The value of a resource (readable or not); undefined for executable or unknown paths. */
  read(path: string): ResourceValue | undefined {
    if (path === Paths.currentTime) return this.deviceTimeSeconds();
    return this.values.get(path);
  }

  /**
   * Stores a value that was already validated for the resource, with the device's reactions (a firmware
   * URI starts a download, ...). Reports the change when the value differs.
   */
  write(path: string, value: ResourceValue): void {
    if (path === Paths.currentTime && typeof value === 'number') {
      this.timeOffsetSeconds = value - this.clockSeconds();
      this.lastReportedTime = value;
      this.options.onChange(path);
      return;
    }
    if (path === Paths.firmwarePackageUri && typeof value === 'string') {
      this.set(path, value);
      this.startDownload(value);
      return;
    }
    if (path === Paths.firmwarePackage && Buffer.isBuffer(value)) {
      this.set(path, value);
      this.receivePackage(value);
      return;
    }
    this.set(path, value);
  }

  /** One step of simulated life: battery, free memory and the clock move. */
  step(): void {
    const level = this.read(Paths.batteryLevel) as number;
    if (this.charging) {
      const charged = Math.min(100, level + CHARGE_PER_STEP);
      this.charging = charged < 100;
      this.set(Paths.batteryLevel, charged);
      this.set(Paths.batteryStatus, this.charging ? BatteryStatus.CHARGING : BatteryStatus.CHARGE_COMPLETE);
    } else {
      const drained = Math.max(0, level - 1);
      this.charging = drained <= RECHARGE_AT_LEVEL;
      this.set(Paths.batteryLevel, drained);
      this.set(Paths.batteryStatus, drained <= LOW_BATTERY_LEVEL ? BatteryStatus.LOW_BATTERY : BatteryStatus.NORMAL);
    }
    const memoryFree = this.read(Paths.memoryFree) as number;
    const delta = Math.round((this.random() * 2 - 1) * MEMORY_STEP_FRACTION * MEMORY_TOTAL_KB);
    const bounded = Math.min(
      MEMORY_TOTAL_KB * MEMORY_FREE_MAX_FRACTION,
      Math.max(MEMORY_TOTAL_KB * MEMORY_FREE_MIN_FRACTION, memoryFree + delta),
    );
    this.set(Paths.memoryFree, Math.round(bounded));
    const now = this.deviceTimeSeconds();
    if (now !== this.lastReportedTime) {
      this.lastReportedTime = now;
      this.options.onChange(Paths.currentTime);
    }
  }

  /** Execute /3/0/5: writable settings and the firmware object go back to factory values. */
  factoryReset(): void {
    this.options.scheduler.cancel(this.firmwareTask);
    this.timeOffsetSeconds = 0;
    this.lastReportedTime = this.deviceTimeSeconds();
    this.options.onChange(Paths.currentTime);
    for (const [path, value] of Object.entries(this.factorySettings())) this.set(path, value);
  }

  /** Execute /5/0/2: installs a downloaded package; returns why it cannot when the state is not Downloaded. */
  executeFirmwareUpdate(): string | undefined {
    const state = this.read(Paths.firmwareUpdateState);
    if (state !== FirmwareState.DOWNLOADED) {
      return `firmware update needs a downloaded package (state 2); the state is ${state}`;
    }
    this.set(Paths.firmwareUpdateState, FirmwareState.UPDATING);
    this.set(Paths.firmwareUpdateResult, FirmwareResult.INITIAL);
    this.firmwareTask = this.options.scheduler.after(this.options.firmwareStepMs, () => {
      this.set(Paths.firmwareVersion, this.read(Paths.firmwarePackageVersion) as string);
      this.set(Paths.firmwareUpdateState, FirmwareState.IDLE);
      this.set(Paths.firmwareUpdateResult, FirmwareResult.SUCCESS);
    });
    return undefined;
  }

  /** Drops pending timed steps (the device stops or reboots). */
  stop(): void {
    this.options.scheduler.cancel(this.firmwareTask);
    this.firmwareTask = undefined;
  }

  private factorySettings(): Record<string, ResourceValue> {
    return {
      [Paths.utcOffset]: '+00:00',
      [Paths.timezone]: 'UTC',
      [Paths.registrationLifetime]: this.options.lifetimeSeconds,
      [Paths.defaultMinPeriod]: this.options.defaultMinPeriodSeconds,
      [Paths.defaultMaxPeriod]: this.options.defaultMaxPeriodSeconds,
      [Paths.binding]: BINDING_UDP,
      [Paths.firmwarePackage]: Buffer.alloc(0),
      [Paths.firmwarePackageUri]: '',
      [Paths.firmwareUpdateState]: FirmwareState.IDLE,
      [Paths.firmwareUpdateResult]: FirmwareResult.INITIAL,
      [Paths.firmwarePackageName]: '',
      [Paths.firmwarePackageVersion]: '',
    };
  }

  private set(path: string, value: ResourceValue): void {
    const old = this.values.get(path);
    const same = Buffer.isBuffer(old) && Buffer.isBuffer(value) ? old.equals(value) : old === value;
    this.values.set(path, value);
    if (!same) this.options.onChange(path);
  }

  private clockSeconds(): number {
    return Math.floor(this.options.scheduler.now() / 1000);
  }

  private deviceTimeSeconds(): number {
    return this.clockSeconds() + this.timeOffsetSeconds;
  }

  private resetFirmware(result: number): void {
    this.options.scheduler.cancel(this.firmwareTask);
    this.set(Paths.firmwareUpdateState, FirmwareState.IDLE);
    this.set(Paths.firmwareUpdateResult, result);
  }

  private startDownload(uri: string): void {
    if (uri === '') {
      this.resetFirmware(FirmwareResult.INITIAL);
      return;
    }
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      this.resetFirmware(FirmwareResult.INVALID_URI);
      return;
    }
    if (!DOWNLOAD_SCHEMES.has(url.protocol)) {
      this.resetFirmware(FirmwareResult.UNSUPPORTED_PROTOCOL);
      return;
    }
    this.options.scheduler.cancel(this.firmwareTask);
    this.set(Paths.firmwareUpdateState, FirmwareState.DOWNLOADING);
    this.set(Paths.firmwareUpdateResult, FirmwareResult.INITIAL);
    const { name, version } = packageIdentity(decodeURIComponent(url.pathname.split('/').pop() ?? ''));
    this.firmwareTask = this.options.scheduler.after(this.options.firmwareStepMs, () => this.downloaded(name, version));
  }

  private receivePackage(packageBytes: Buffer): void {
    if (packageBytes.length === 0) {
      this.resetFirmware(FirmwareResult.INITIAL);
      return;
    }
    this.options.scheduler.cancel(this.firmwareTask);
    this.set(Paths.firmwareUpdateResult, FirmwareResult.INITIAL);
    this.downloaded('pushed-package', `pushed-${packageBytes.length}b`);
  }

  private downloaded(name: string, version: string): void {
    this.set(Paths.firmwarePackageName, name);
    this.set(Paths.firmwarePackageVersion, version);
    this.set(Paths.firmwareUpdateState, FirmwareState.DOWNLOADED);
  }
}

/** `fw-2.1.0.bin` -> name `fw`, version `2.1.0`; a file name without a version keeps it as the name. */
export function packageIdentity(fileName: string): { name: string; version: string } {
  const base = fileName.replace(/\.(bin|hex|img|zip|tar|gz|fw)$/i, '');
  const match = /^(.+?)[-_]v?(\d+(?:\.\d+)*(?:[-+][\w.]+)?)$/.exec(base);
  if (match) return { name: match[1], version: match[2] };
  return { name: base || 'firmware', version: 'unknown' };
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
