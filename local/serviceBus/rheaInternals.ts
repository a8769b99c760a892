/**
 * Typed access to the parts of rhea 3.x that its typings leave out, in one place. Everything here is runtime API
 * of rhea (`lib/types.js`, `lib/message.js`, `lib/link.js`, `lib/endpoint.js`), exercised by the endpoint's tests,
 * which a rhea upgrade that changes any of it would fail.
 */
import { message, types } from 'rhea';
import type { Receiver, Sender, Typed } from 'rhea';
import type { Reader, Writer } from 'rhea/typings/types';

interface RheaTypesRuntime {
  Reader: new (buffer: Buffer) => Reader;
  Writer: new () => Writer;
}

/** AMQP encoder and decoder of rhea. */
export const amqpTypes = types as typeof types & RheaTypesRuntime;

/** A described value as rhea builds it for outcomes. */
export type DescribedValue = Typed;

interface RheaOutcomes {
  accepted(): { described(): DescribedValue };
  rejected(fields: { error: { condition: string; description: string } }): { described(): DescribedValue };
}

/** Constructors of AMQP delivery outcomes. */
export const outcomes = message as unknown as RheaOutcomes;

interface RheaMessageSections {
  properties(fields: Record<string, unknown>): { described(): DescribedValue };
}

/** Constructors of typed message sections (each field encoded with its AMQP type). */
export const messageSections = message as unknown as RheaMessageSections;

interface LinkInternals {
  local: {
    attach: {
      snd_settle_mode?: number;
      rcv_settle_mode?: number;
      max_message_size?: number;
      properties?: Record<string, unknown>;
    };
  };
  remote: { attach?: { properties?: Record<string, unknown> } };
  state: { local_open: boolean; open_requests: number };
  delivery_count: number;
  credit: number;
  _draining: boolean;
  _drained: boolean;
  _get_drain(): boolean;
}

function internals(link: Sender | Receiver): LinkInternals {
  return link as unknown as LinkInternals;
}

/** Fields of the local attach frame, which rhea sends when the link opens. */
export function localAttach(link: Sender | Receiver): LinkInternals['local']['attach'] {
  return internals(link).local.attach;
}

/**
 * rhea answers a remote attach at once (it opens the link before emitting `sender_open`). Called inside that
 * event, this takes the answer back so that {@link releaseAttach} can send it later (a held attach: how Service
 * Bus makes a client wait for a free session).
 */
export function holdAttach(link: Sender | Receiver): void {
  const state = internals(link).state;
  if (state.local_open && state.open_requests > 0) {
    state.local_open = false;
    state.open_requests -= 1;
  }
}

/** Sends the attach that {@link holdAttach} held back. */
export function releaseAttach(link: Sender | Receiver): void {
  link.open();
}

/** Deliveries a sending link may still send: credit granted by the peer minus deliveries already handed to rhea. */
export function remainingCredit(sender: Sender, deliveriesHanded: number): number {
  const link = internals(sender);
  const grantedUpTo = link.delivery_count + link.credit;
  return grantedUpTo - Math.max(deliveriesHanded, link.delivery_count);
}

/** The delivery count rhea has reached on a sending link (after a drain it includes the credit it gave up). */
export function deliveryCountOf(sender: Sender): number {
  return internals(sender).delivery_count;
}

/**
 * Answers a drain request: rhea gives up the remaining credit and sends a flow with drain set. rhea skips the
 * drain flag when no credit is left, yet clients still wait for it, so the flag is always sent while draining.
 */
export function answerDrain(sender: Sender): void {
  const link = internals(sender);
  link._get_drain = function answerWithDrainFlag(this: LinkInternals): boolean {
    if (!this._draining || !this._drained) return false;
    this.delivery_count += this.credit;
    this.credit = 0;
    this._draining = false;
    return true;
  };
  sender.set_drained(true);
}
