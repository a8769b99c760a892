import { randomUUID } from 'node:crypto';
import type { FunctionsCoreModule, RegisteredFunction } from './functionsCoreModule';
import type {
  CoreInvocationContext,
  InvocationState,
  PostInvocationContext,
  PreInvocationContext,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
  RpcParameterBinding,
  RpcTypedData,
} from './functionsCoreTypes';
import { describeError, type HostLogger } from './hostLogger';

export interface InvocationInput {
  /** The trigger's (and any input binding's) data, by binding name. */
  inputData: RpcParameterBinding[];
  /** Trigger metadata as the Functions host sends it (PascalCase keys; the library camel-cases them). */
  triggerMetadata?: Record<string, RpcTypedData>;
}

/** The handler (or a hook) threw; `cause` is what it threw. Carries the invocation id for the caller's error report. */
export class FunctionInvocationError extends Error {
  constructor(
    readonly functionName: string,
    readonly invocationId: string,
    override readonly cause: unknown,
  ) {
    super(
      `Function '${functionName}' failed (invocation ${invocationId}): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
    this.name = 'FunctionInvocationError';
  }
}

export interface FunctionInvokerOptions {
  /** Log one "Executed ..." line per invocation (failures are always logged). */
  logInvocations: boolean;
}

/**
 * The one invocation path every trigger uses, in the order the Azure Functions Node.js worker runs it:
 * `getInvocationModel` -> `getArguments` -> preInvocation hooks -> `invokeFunction` -> postInvocation hooks ->
 * `getResponse`. Tracks invocations in flight so the host can drain them before it stops.
 */
export class FunctionInvoker {
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly core: FunctionsCoreModule,
    private readonly logger: HostLogger,
    private readonly options: FunctionInvokerOptions,
  ) {}

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /**
   * Runs one invocation. Resolves with the library's response; rejects with `FunctionInvocationError` when the
   * handler or a hook throws (after logging it with the invocation id).
   */
  invoke(
    fn: RegisteredFunction,
    input: InvocationInput,
    invocationId: string = randomUUID(),
  ): Promise<RpcInvocationResponse> {
    const invocation = this.run(fn, input, invocationId);
    this.#inFlight.add(invocation);
    const forget = (): void => {
      this.#inFlight.delete(invocation);
    };
    invocation.then(forget, forget);
    return invocation;
  }

  /** Resolves when every invocation started so far has finished (successfully or not). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight]);
    }
  }

  private async run(
    fn: RegisteredFunction,
    input: InvocationInput,
    invocationId: string,
  ): Promise<RpcInvocationResponse> {
    const startedAt = performance.now();
    try {
      const response = await this.runModel(fn, input, invocationId);
      if (this.options.logInvocations) {
        this.logger.info(`Executed '${fn.name}' (Succeeded, Id=${invocationId}, Duration=${elapsed(startedAt)}ms)`);
      }
      return response;
    } catch (error) {
      this.logger.write({
        level: 'error',
        category: 'system',
        functionName: fn.name,
        invocationId,
        message: `Executed '${fn.name}' (Failed, Id=${invocationId}, Duration=${elapsed(startedAt)}ms): ${describeError(error)}`,
      });
      throw new FunctionInvocationError(fn.name, invocationId, error);
    }
  }

  private async runModel(
    fn: RegisteredFunction,
    input: InvocationInput,
    invocationId: string,
  ): Promise<RpcInvocationResponse> {
    const programmingModel = this.core.programmingModel;
    if (!programmingModel) {
      throw new Error('No programming model is set: @azure/functions never reached the host.');
    }
    const request: RpcInvocationRequest = {
      invocationId,
      functionId: fn.functionId,
      inputData: input.inputData,
      triggerMetadata: input.triggerMetadata ?? {},
    };
    /** Set once getArguments has built it; log hooks see it from then on. */
    const arguments_ = { context: undefined as unknown };
    const core = this.core;
    const logTarget = { functionName: fn.name, invocationId, invocationContext: () => arguments_.context };
    const coreContext: CoreInvocationContext & { state?: InvocationState } = {
      invocationId,
      request,
      metadata: fn.metadata,
      state: undefined,
      log(level: RpcLogLevel, category: RpcLogCategory, message: string) {
        core.log(level, category, message, logTarget);
      },
    };

    const invocationModel = await programmingModel.getInvocationModel(coreContext);
    const { context, inputs } = await invocationModel.getArguments();
    arguments_.context = context;

    if (this.core.hooksOf('preInvocation').length === 0 && this.core.hooksOf('postInvocation').length === 0) {
      // The common case: no hook contexts to build, same order and states as below.
      coreContext.state = 'invocation';
      let result: unknown = null;
      let failure: unknown = null;
      try {
        result = await invocationModel.invokeFunction(context, inputs, fn.callback);
      } catch (error) {
        failure = error;
      } finally {
        coreContext.state = undefined;
      }
      if (failure !== null && failure !== undefined) {
        throw failure;
      }
      return invocationModel.getResponse(context, result);
    }

    const hookData = {};
    const appHookData = this.core.appHookData;
    const preContext: PreInvocationContext = {
      get hookData() {
        return hookData;
      },
      get appHookData() {
        return appHookData;
      },
      get invocationContext() {
        return context;
      },
      functionCallback: fn.callback,
      inputs,
    };
    if (this.core.hooksOf('preInvocation').length > 0) {
      coreContext.state = 'preInvocationHooks';
      try {
        await this.core.runHooks('preInvocation', preContext);
      } finally {
        coreContext.state = undefined;
      }
    }

    const postContext: PostInvocationContext = {
      get hookData() {
        return hookData;
      },
      get appHookData() {
        return appHookData;
      },
      get invocationContext() {
        return context;
      },
      inputs: preContext.inputs,
      result: null,
      error: null,
    };
    coreContext.state = 'invocation';
    try {
      postContext.result = await invocationModel.invokeFunction(
        context,
        preContext.inputs,
        preContext.functionCallback,
      );
    } catch (error) {
      postContext.error = error;
    } finally {
      coreContext.state = undefined;
    }

    if (this.core.hooksOf('postInvocation').length > 0) {
      coreContext.state = 'postInvocationHooks';
      try {
        await this.core.runHooks('postInvocation', postContext);
      } finally {
        coreContext.state = undefined;
      }
    }

    if (postContext.error !== null && postContext.error !== undefined) {
      throw postContext.error;
    }
    return invocationModel.getResponse(context, postContext.result);
  }
}

function elapsed(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}
