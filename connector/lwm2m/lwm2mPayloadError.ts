/** A payload or registration that does not follow its declared format; the message names what is wrong. */
export class Lwm2mPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Lwm2mPayloadError';
  }
}
