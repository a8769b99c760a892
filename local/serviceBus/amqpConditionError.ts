/** A failure the endpoint reports to the client as an AMQP error: `condition` is what the SDK maps to an error code. */
export class AmqpConditionError extends Error {
  constructor(
    readonly condition: string,
    description: string,
  ) {
    super(description);
    this.name = 'AmqpConditionError';
  }

  /** The AMQP error fields (condition and description). */
  toAmqpError(): { condition: string; description: string } {
    return { condition: this.condition, description: this.message };
  }
}
