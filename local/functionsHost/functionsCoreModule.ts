import Module from 'node:module';
import {
  HOOK_NAMES,
  type CoreFunctionMetadata,
  type FunctionCallback,
  type HookContext,
  type HookData,
  type HookName,
  type LogHookContext,
  type ProgrammingModel,
  type RpcBindingInfo,
  type RpcLogCategory,
  type RpcLogLevel,
} from './functionsCoreTypes';
import type { HostLogger } from './hostLogger';

/** The module name `@azure/functions` requires to reach the worker. */
export const FUNCTIONS_CORE_MODULE_NAME = '@azure/functions-core';

/** Reported as `@azure/functions-core`'s `version` (the Node.js worker version this host stands in for). */
const EMULATED_WORKER_VERSION = '3.10.1';
/** Reported as `hostVersion`; `@azure/functions` checks `log` (not this) to gate features. */
const EMULATED_HOST_VERSION = '4.1037.0';

export interface RegisteredFunction {
  name: string;
  functionId: string;
  metadata: CoreFunctionMetadata;
  callback: FunctionCallback;
  triggerBindingName: string;
  trigger: RpcBindingInfo;
  /** The trigger binding type as registered, e.g. `httpTrigger`, `timerTrigger`, `serviceBusTrigger`. */
  triggerType: string;
}

/** Mirrors the worker's `Disposable`, which `@azure/functions-core` exports. */
export class Disposable {
  #callOnDispose?: () => unknown;

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }

  static from(...disposableLikes: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => disposableLikes.forEach((d) => d.dispose()));
  }

  dispose(): void {
    const callOnDispose = this.#callOnDispose;
    this.#callOnDispose = undefined;
    callOnDispose?.();
  }
}

type AnyHookCallback = (context: HookContext) => unknown;

/** `@azure/functions` keeps global state, so a process installs the core module once. */
let coreModuleInstalled = false;

/**
 * The host's implementation of `@azure/functions-core`: it collects the functions and hooks that `@azure/functions`
 * registers while the app loads, holds the programming model, and routes logs. One per process, because the library
 * keeps global state: `install()` refuses a second instance.
 */
export class FunctionsCoreModule {
  readonly functions = new Map<string, RegisteredFunction>();
  /** Shared by all hooks across scopes (`appHookData` in every hook context). */
  readonly appHookData: HookData = {};
  /** The `hookData` of app-level hooks (appStart, appTerminate). */
  readonly appLevelHookData: HookData = {};
  #programmingModel?: ProgrammingModel;
  #programmingModelSetCount = 0;
  #registrationOpen = true;
  readonly #hooks = new Map<HookName, AnyHookCallback[]>(HOOK_NAMES.map((name) => [name, []]));
  readonly #logHookData: HookData = {};
  #inLogHook = false;

  constructor(private readonly logger: HostLogger) {}

  get programmingModel(): ProgrammingModel | undefined {
    return this.#programmingModel;
  }

  /** How many times `setProgrammingModel` was called; 0 after loading an app means the library never reached us. */
  get programmingModelSetCount(): number {
    return this.#programmingModelSetCount;
  }

  /** Makes `require('@azure/functions-core')` return this module, as the worker does, for every later require. */
  install(): void {
    if (coreModuleInstalled) {
      throw new Error(
        'A Functions app is already loaded in this process: @azure/functions keeps global state, so one process hosts one app.',
      );
    }
    coreModuleInstalled = true;
    const coreApi = this.createApi();
    Module.prototype.require = new Proxy(Module.prototype.require, {
      apply(target, thisArg, argArray: unknown[]) {
        if (argArray[0] === FUNCTIONS_CORE_MODULE_NAME) {
          return coreApi;
        }
        return Reflect.apply(target, thisArg, argArray);
      },
    });
  }

  /** After the app has loaded, like the worker: registering a function later is an error. */
  closeRegistration(): void {
    this.#registrationOpen = false;
  }

  hooksOf(name: HookName): readonly AnyHookCallback[] {
    return this.#hooks.get(name) ?? [];
  }

  /** Runs the hooks of one kind in registration order; a throwing hook stops the chain, as in the worker. */
  async runHooks(name: HookName, context: HookContext): Promise<void> {
    for (const callback of this.hooksOf(name)) {
      await callback(context);
    }
  }

  /** Routes one log through the log hooks (which may rewrite user logs) to the host logger. */
  log(
    level: RpcLogLevel,
    category: RpcLogCategory,
    message: string,
    invocation?: { functionName: string; invocationId: string; invocationContext?: () => unknown },
  ): void {
    const logHooks = this.hooksOf('log');
    if (logHooks.length > 0 && !this.#inLogHook) {
      const appHookData = this.appHookData;
      const hookData = this.#logHookData;
      const context: LogHookContext = {
        get hookData() {
          return hookData;
        },
        get appHookData() {
          return appHookData;
        },
        invocationContext: invocation?.invocationContext?.(),
        category,
        level,
        message,
      };
      this.#inLogHook = true;
      try {
        for (const callback of logHooks) {
          callback(context);
        }
      } catch (error) {
        this.logger.warn(`A log hook threw: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.#inLogHook = false;
      }
      if (category === 'user') {
        level = context.level;
        message = context.message;
      }
    }
    this.logger.write({
      level,
      category,
      message,
      functionName: invocation?.functionName,
      invocationId: invocation?.invocationId,
    });
  }

  private registerFunction(metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable {
    if (!this.#registrationOpen) {
      throw new Error(
        `Function "${metadata?.name}" was registered after app startup; register functions at load time.`,
      );
    }
    if (!metadata || typeof metadata.name !== 'string' || metadata.name === '') {
      throw new Error('registerFunction needs metadata with a non-empty "name".');
    }
    if (typeof callback !== 'function') {
      throw new Error(`Function "${metadata.name}" has no handler function.`);
    }
    const functionId = metadata.functionId ?? metadata.name;
    if (this.functions.has(metadata.name)) {
      throw new Error(`A function named "${metadata.name}" is already registered; function names must be unique.`);
    }
    const triggerEntry = Object.entries(metadata.bindings ?? {}).find(
      ([, binding]) => typeof binding.type === 'string' && /trigger$/i.test(binding.type),
    );
    if (!triggerEntry) {
      throw new Error(`Function "${metadata.name}" has no trigger binding.`);
    }
    const [triggerBindingName, trigger] = triggerEntry;
    this.functions.set(metadata.name, {
      name: metadata.name,
      functionId,
      metadata,
      callback,
      triggerBindingName,
      trigger,
      triggerType: String(trigger.type),
    });
    return new Disposable(() => {
      if (this.#registrationOpen) {
        this.functions.delete(metadata.name);
      }
    });
  }

  private registerHook(hookName: string, callback: AnyHookCallback): Disposable {
    const hooks = this.#hooks.get(hookName as HookName);
    if (!hooks) {
      const error = new RangeError(`"${hookName}" is not a valid hook name.`);
      Object.assign(error, { isAzureFunctionsSystemError: true });
      throw error;
    }
    if (typeof callback !== 'function') {
      throw new TypeError(`The "${hookName}" hook must be a function.`);
    }
    hooks.push(callback);
    return new Disposable(() => {
      const index = hooks.indexOf(callback);
      if (index >= 0) {
        hooks.splice(index, 1);
      }
    });
  }

  private createApi(): object {
    return {
      version: EMULATED_WORKER_VERSION,
      hostVersion: EMULATED_HOST_VERSION,
      registerFunction: (metadata: CoreFunctionMetadata, callback: FunctionCallback) =>
        this.registerFunction(metadata, callback),
      registerHook: (hookName: string, callback: AnyHookCallback) => this.registerHook(hookName, callback),
      setProgrammingModel: (programmingModel: ProgrammingModel) => {
        this.#programmingModel = programmingModel;
        this.#programmingModelSetCount += 1;
      },
      getProgrammingModel: () => this.#programmingModel,
      log: (level: RpcLogLevel, category: RpcLogCategory, message: string) => this.log(level, category, message),
      Disposable,
    };
  }
}
