/**
 * Gives every AMQP link a client attaches its role, by address, and routes the link's events to it:
 * - `$cbs`: token exchange (every put-token is accepted: the endpoint has no authorisation);
 * - `<entity>/$management`: request/response operations (managementRequests.ts), replies on the link named by
 *   the request's `reply_to`;
 * - an entity address: a client sender writes to a queue or topic, a client receiver reads from a queue,
 *   subscription or dead-letter queue (deliveryLink.ts).
 * Handlers never let an exception reach rhea: it is logged and the link is closed with `amqp:internal-error`.
 */
import {
  message as amqpMessage,
  type AmqpError,
  type Connection,
  type Container,
  type Delivery,
  type EventContext,
  type Message,
  type Receiver,
  type Sender,
} from 'rhea';
import {
  BATCH_MESSAGE_FORMAT,
  CBS_NODE,
  Condition,
  DEFAULT_ACCEPT_SESSION_TIMEOUT_MS,
  LINK_TIMEOUT_PROPERTY,
  MANAGEMENT_NODE_SUFFIX,
  MAX_MESSAGE_SIZE_BYTES,
  MAX_SESSION_WAIT_MS,
  Operation,
  SESSION_FILTER,
  STANDARD_MESSAGE_FORMAT,
  StatusCode,
} from './amqpConstants';
import { AmqpConditionError } from './amqpConditionError';
import { MessageFormatError, messagesOfTransfer, parseBrokeredMessage } from './brokeredMessage';
import type { Clock } from './clock';
import { DeliveryLink, type OutcomeKind } from './deliveryLink';
import type { EndpointLog } from './endpointLog';
import { answerManagementRequest } from './managementRequests';
import { localAttach } from './rheaInternals';
import type { ResolvedEntity, SendTarget, ServiceBusNamespace } from './serviceBusNamespace';

/** What one AMQP link of a client is for. */
type LinkRole =
  | { readonly kind: 'receiver'; readonly link: DeliveryLink }
  | { readonly kind: 'sender'; readonly target: SendTarget }
  | { readonly kind: 'cbs-requests' }
  | { readonly kind: 'management-requests'; readonly entity: ResolvedEntity }
  | { readonly kind: 'replies'; readonly replyTo: readonly string[] };

interface ClientConnection {
  readonly id: number;
  /** Reply links by what clients put in `reply_to`: the link's target address or, for CBS, its name. */
  readonly replyLinks: Map<string, Sender>;
  readonly links: Map<Sender | Receiver, LinkRole>;
}

const OUTCOMES: readonly OutcomeKind[] = ['accepted', 'rejected', 'modified', 'released'];

export class LinkRouter {
  private readonly connections = new Map<Connection, ClientConnection>();
  private nextConnectionId = 1;

  constructor(
    private readonly namespace: ServiceBusNamespace,
    private readonly clock: Clock,
    private readonly log: EndpointLog,
  ) {}

  /** Subscribes to the container's connection and link events. */
  register(container: Container): void {
    const on = (event: string, handler: (context: EventContext) => void): void => {
      container.on(event, (context: EventContext) => this.guarded(event, context, handler));
    };
    on('connection_open', (context) => {
      const client = this.clientOf(context.connection);
      this.log.debug(`connection ${client.id}: opened by container '${context.connection.container_id}'`);
    });
    on('connection_close', (context) => this.forgetConnection(context.connection, 'closed by the client'));
    on('disconnected', (context) => this.forgetConnection(context.connection, 'disconnected'));
    on('session_close', (context) => this.forgetSession(context));
    for (const event of ['connection_error', 'session_error', 'sender_error', 'receiver_error']) {
      on(event, (context) => {
        const source = context.sender ?? context.receiver ?? context.session ?? context.connection;
        const error = source?.error as AmqpError | undefined;
        this.log.debug(`${event}: ${error?.condition ?? ''} ${error?.description ?? ''}`.trim());
      });
    }
    // rhea emits these two with the error itself; a malformed frame from a client ends that connection only.
    container.on('protocol_error', (error: unknown) => this.log.error(`protocol error: ${String(error)}`));
    container.on('error', (error: unknown) => this.log.error(`AMQP error: ${(error as Error)?.message ?? error}`));

    on('sender_open', (context) => this.onClientReceiverAttach(context.sender!, this.clientOf(context.connection)));
    on('receiver_open', (context) => this.onClientSenderAttach(context.receiver!, this.clientOf(context.connection)));
    on('message', (context) => this.onMessage(context));
    on('sender_flow', (context) => this.deliveryLinkOf(context)?.onFlow());
    on('sender_draining', (context) => this.deliveryLinkOf(context)?.onDrain());
    for (const outcome of OUTCOMES) {
      on(outcome, (context) => this.deliveryLinkOf(context)?.onOutcome(outcome, context.delivery!));
    }
    for (const event of ['sender_close', 'receiver_close']) {
      on(event, (context) => {
        const client = this.connections.get(context.connection);
        const link = context.sender ?? context.receiver;
        if (!client || !link || !client.links.has(link)) return;
        // A held attach stays unanswered: rhea clients re-open a link they closed when an attach arrives for it.
        this.log.debug(`connection ${client.id}: link '${link.name}' detached`);
        this.forgetLink(client, link);
      });
    }
  }

  /** Closes every client connection (with `amqp:connection:forced`) and releases what their links held. */
  closeAll(): void {
    for (const connection of [...this.connections.keys()]) {
      try {
        connection.close({
          condition: 'amqp:connection:forced',
          description: 'the local Service Bus endpoint is stopping',
        });
      } catch {
        // the socket may already be gone
      }
      this.forgetConnection(connection, 'endpoint stopped');
    }
  }

  private guarded(event: string, context: EventContext, handler: (context: EventContext) => void): void {
    try {
      handler(context);
    } catch (error) {
      this.log.error(`while handling '${event}': ${(error as Error).stack ?? String(error)}`);
      const link = context.sender ?? context.receiver;
      if (link && !link.is_closed()) {
        link.close({ condition: Condition.internalError, description: `internal error: ${(error as Error).message}` });
      }
    }
  }

  /** A client receiver attached: the endpoint's side sends (replies, or an entity's messages). */
  private onClientReceiverAttach(sender: Sender, client: ClientConnection): void {
    const address = sender.source?.address ?? '';
    mirrorSettleModes(sender);
    sender.set_target({ address: sender.target?.address });
    if (address === CBS_NODE || address.endsWith(MANAGEMENT_NODE_SUFFIX)) {
      const replyTo = [sender.name, sender.target?.address].filter((name): name is string => Boolean(name));
      localAttach(sender).snd_settle_mode = 1;
      sender.set_source({ address });
      client.links.set(sender, { kind: 'replies', replyTo });
      for (const name of replyTo) client.replyLinks.set(name, sender);
      this.log.debug(`connection ${client.id}: reply link '${sender.name}' from '${address}'`);
      return;
    }
    const resolved = this.namespace.resolve(address);
    const entity = resolved?.receiveFrom;
    if (!entity) {
      this.refuse(sender, client, notFoundOrNotAllowed(address, resolved, 'receive from'));
      return;
    }
    const filter = (sender.source?.filter ?? undefined) as Record<string, unknown> | undefined;
    const wantsSession = filter !== undefined && SESSION_FILTER in filter;
    if (entity.requiresSession !== wantsSession) {
      const requirement = entity.requiresSession ? 'requires' : 'does not require';
      const kind = entity.requiresSession ? 'non-sessionful' : 'sessionful';
      this.refuse(sender, client, {
        condition: Condition.notAllowed,
        description: `It is not possible for an entity that ${requirement} sessions ('${entity.path}') to create a ${kind} message receiver.`,
      });
      return;
    }
    const receiveMode = sender.snd_settle_mode === 1 ? 'receiveAndDelete' : 'peekLock';
    const ownerId = `${client.id}/${sender.name}`;
    const link = new DeliveryLink(sender, entity, ownerId, receiveMode, address, this.clock, this.log);
    client.links.set(sender, { kind: 'receiver', link });
    if (!filter || !wantsSession) {
      link.openWithoutSession();
      this.log.debug(`connection ${client.id}: ${link.describe()} attached (${receiveMode})`);
      return;
    }
    const requested = filter[SESSION_FILTER];
    const timeout = sender.properties?.[LINK_TIMEOUT_PROPERTY];
    const wanted = typeof requested === 'string' ? `session '${requested}'` : 'the next free session';
    this.log.debug(`connection ${client.id}: ${link.describe()} asks for ${wanted} (${receiveMode})`);
    const waitMs = typeof timeout === 'number' && timeout > 0 ? timeout : DEFAULT_ACCEPT_SESSION_TIMEOUT_MS;
    link.openWithSession(typeof requested === 'string' ? requested : undefined, Math.min(waitMs, MAX_SESSION_WAIT_MS));
  }

  /** A client sender attached: the endpoint's side receives (requests, or messages for an entity). */
  private onClientSenderAttach(receiver: Receiver, client: ClientConnection): void {
    const address = receiver.target?.address ?? '';
    mirrorSettleModes(receiver);
    localAttach(receiver).max_message_size = MAX_MESSAGE_SIZE_BYTES;
    receiver.set_source({ address: receiver.source?.address });
    receiver.set_target({ address });
    if (address === CBS_NODE) {
      client.links.set(receiver, { kind: 'cbs-requests' });
      this.log.debug(`connection ${client.id}: CBS request link '${receiver.name}'`);
      return;
    }
    if (address.endsWith(MANAGEMENT_NODE_SUFFIX)) {
      const entityAddress = address.slice(0, -MANAGEMENT_NODE_SUFFIX.length);
      const resolved = this.namespace.resolve(entityAddress);
      if (!resolved) {
        this.refuse(receiver, client, notFoundOrNotAllowed(entityAddress, undefined, 'manage'));
        return;
      }
      client.links.set(receiver, { kind: 'management-requests', entity: resolved });
      this.log.debug(`connection ${client.id}: management request link '${receiver.name}' for '${resolved.path}'`);
      return;
    }
    const resolved = this.namespace.resolve(address);
    if (!resolved?.sendTo) {
      this.refuse(receiver, client, notFoundOrNotAllowed(address, resolved, 'send to'));
      return;
    }
    client.links.set(receiver, { kind: 'sender', target: resolved.sendTo });
    this.log.debug(`connection ${client.id}: sender '${receiver.name}' attached to '${resolved.path}'`);
  }

  private onMessage(context: EventContext): void {
    const receiver = context.receiver!;
    const delivery = context.delivery!;
    const client = this.clientOf(context.connection);
    const role = client.links.get(receiver);
    if (role?.kind === 'sender') {
      // rhea decodes standard-format transfers and hands other formats over as bytes.
      const format = (context as EventContext & { format?: number }).format ?? STANDARD_MESSAGE_FORMAT;
      this.acceptSend(role.target, context.message, format, delivery);
      return;
    }
    const request = context.message as Message;
    const operation: unknown = request.application_properties?.operation;
    if (role?.kind === 'cbs-requests') {
      const isPutToken = operation === Operation.putToken;
      this.reply(client, request, {
        'status-code': isPutToken ? StatusCode.ok : StatusCode.notImplemented,
        'status-description': isPutToken ? 'OK' : `The CBS operation '${String(operation)}' is not supported.`,
      });
      delivery.accept();
      return;
    }
    if (role?.kind === 'management-requests') {
      const response = answerManagementRequest(request, {
        entity: role.entity,
        ownerIdOfLink: (linkName) => `${client.id}/${linkName}`,
        managementOwnerId: `${client.id}/${receiver.name}`,
      });
      if (response.errorCondition) {
        this.log.debug(
          `connection ${client.id}: ${String(operation)} on '${role.entity.path}': ${response.statusDescription}`,
        );
      }
      this.reply(
        client,
        request,
        {
          statusCode: response.statusCode,
          statusDescription: response.statusDescription,
          ...(response.errorCondition ? { errorCondition: response.errorCondition } : {}),
        },
        response.body,
      );
      delivery.accept();
      return;
    }
    delivery.reject({ condition: Condition.notAllowed, description: 'This link does not take messages.' });
  }

  /** Enqueues the messages of one transfer and settles it: accepted, or rejected with the reason. */
  private acceptSend(target: SendTarget, received: unknown, format: number, delivery: Delivery): void {
    try {
      if (format !== STANDARD_MESSAGE_FORMAT && format !== BATCH_MESSAGE_FORMAT) {
        throw new AmqpConditionError(
          Condition.notImplemented,
          `Message format 0x${format.toString(16)} is not supported.`,
        );
      }
      const payload = Buffer.isBuffer(received) ? received : amqpMessage.encode(received);
      const messages = messagesOfTransfer(payload, format).map(parseBrokeredMessage);
      const enqueued = target.send(messages);
      this.log.debug(`'${target.path}': ${enqueued} of ${messages.length} message(s) enqueued`);
      delivery.accept();
    } catch (error) {
      if (error instanceof AmqpConditionError) {
        delivery.reject(error.toAmqpError());
      } else if (error instanceof MessageFormatError) {
        delivery.reject({ condition: Condition.decodeError, description: error.message });
      } else {
        this.log.error(`'${target.path}': send failed: ${(error as Error).stack ?? String(error)}`);
        delivery.reject({ condition: Condition.internalError, description: (error as Error).message });
      }
    }
  }

  /** Sends a response on the link the request's `reply_to` names. */
  private reply(client: ClientConnection, request: Message, properties: Record<string, unknown>, body?: unknown): void {
    const replyTo = request.reply_to;
    const link = replyTo === undefined ? undefined : client.replyLinks.get(replyTo);
    if (!link) {
      this.log.error(`connection ${client.id}: no reply link for reply_to '${String(replyTo)}'; response dropped`);
      return;
    }
    link.send({
      correlation_id: request.message_id,
      to: replyTo,
      application_properties: properties,
      body: body ?? null,
    });
  }

  /** Answers an attach with an attach (no terminus) and a detach carrying the error, as Service Bus does. */
  private refuse(link: Sender | Receiver, client: ClientConnection, error: AmqpError): void {
    this.log.debug(`connection ${client.id}: link '${link.name}' refused: ${error.condition}: ${error.description}`);
    link.close(error);
  }

  private deliveryLinkOf(context: EventContext): DeliveryLink | undefined {
    const role = context.sender ? this.connections.get(context.connection)?.links.get(context.sender) : undefined;
    return role?.kind === 'receiver' ? role.link : undefined;
  }

  private clientOf(connection: Connection): ClientConnection {
    let client = this.connections.get(connection);
    if (!client) {
      client = { id: this.nextConnectionId++, replyLinks: new Map(), links: new Map() };
      this.connections.set(connection, client);
    }
    return client;
  }

  private forgetLink(client: ClientConnection, link: Sender | Receiver): void {
    const role = client.links.get(link);
    if (!role) return;
    client.links.delete(link);
    if (role.kind === 'receiver') role.link.dispose();
    if (role.kind === 'replies') {
      for (const replyTo of role.replyTo) {
        if (client.replyLinks.get(replyTo) === link) client.replyLinks.delete(replyTo);
      }
    }
  }

  private forgetSession(context: EventContext): void {
    const client = this.connections.get(context.connection);
    if (!client) return;
    for (const link of [...client.links.keys()]) {
      if (link.session === context.session) this.forgetLink(client, link);
    }
  }

  private forgetConnection(connection: Connection, why: string): void {
    const client = this.connections.get(connection);
    if (!client) return;
    this.connections.delete(connection);
    for (const link of [...client.links.keys()]) this.forgetLink(client, link);
    this.log.debug(`connection ${client.id}: ${why}`);
  }
}

/** The endpoint's side of a link mirrors the settle modes the client asked for. */
function mirrorSettleModes(link: Sender | Receiver): void {
  const attach = localAttach(link);
  attach.snd_settle_mode = link.snd_settle_mode;
  attach.rcv_settle_mode = link.rcv_settle_mode;
}

function notFoundOrNotAllowed(address: string, resolved: ResolvedEntity | undefined, action: string): AmqpError {
  if (resolved) return { condition: Condition.notAllowed, description: `Cannot ${action} '${resolved.path}'.` };
  return {
    condition: Condition.notFound,
    description:
      `The messaging entity '${address}' could not be found. ` +
      'Declare it in the entities config of the local Service Bus endpoint.',
  };
}
