// The request/response control plane: requests arrive on <base>/<device|all>/request/<command>, and each
// one gets exactly one response on <base>/<device>/response/<command> carrying its `transaction`. A
// request is refused, with an error response and no other effect, unless it passes in order: size
// (before anything is parsed), UTF-8 and JSON, a known and allowed command, its schema and identifier
// rules, and the signature rules: a privileged command (every command whose spec does not say 'open')
// must be signed with an operator key, unless the broker is the device's own on loopback. Retained
// requests are ignored: the broker would hand them over again on every reconnect.
//
// Requests of one lane run one at a time, so two config/set never interleave, and the checks run when a
// request's turn comes, so they see the `control` settings the one before set. Lanes run beside each
// other, so a model download that hangs holds up only the model lane. The requests whose spec says
// `onArrival` (a model transfer and its chunks) run as soon as they arrive, beside every lane, since the
// chunks must reach the transfer waiting for them.

import type { Config } from '../config/index.ts';
import { parseRequestTopic, type Topics } from '../mqtt/topics.ts';
import type { Awaitable } from '../types.ts';
import type { Logger } from '../util/log.ts';
import {
  type CommandHandlers,
  commandSpec,
  type ErrorResponse,
  isPrivileged,
  isRequestName,
  MAX_TRANSACTION_LENGTH,
  type RequestContext,
  type Transaction,
  validateRequest,
} from './api.ts';
import { CommandVerifier } from './signing.ts';

export type ControlConfig = Config['control'];

type Qos = 0 | 1 | 2;
type MessageListener = (topic: string, payload: Buffer, packet?: { retain?: boolean }) => void;

/** The part of mqtt.js's MqttClient the router uses. */
export interface ControlMqttClient {
  subscribe(
    topics: string[],
    opts: { qos: Qos },
    callback: (err: Error | null, granted?: { topic: string; qos: number }[]) => void,
  ): unknown;
  unsubscribe(topics: string[], callback: (err?: Error) => void): unknown;
  publish(topic: string, payload: string, opts: { qos: Qos }, callback: (err?: Error) => void): unknown;
  on(event: 'message', listener: MessageListener): unknown;
  removeListener(event: 'message', listener: MessageListener): unknown;
}

export interface ControlRouterOptions {
  client: ControlMqttClient;
  topics: Topics;
  /** Read for every request, so a config/set of `control` governs the next request. */
  control: () => ControlConfig;
  handlers: CommandHandlers;
  log: Logger;
  /** Clock for signature ages; Date.now by default. */
  now?: () => number;
  /** Operator keys beyond control.commandPublicKeys (the key file), read for every signed request. */
  operatorKeys?: () => readonly string[];
  /**
   * The broker is facegate's own in-process broker listening on loopback only: privileged commands may
   * then run unsigned unless control.requireSignedCommands is on. False (the default) for any other broker.
   */
  privateBroker?: boolean;
  /** Where accepted nonces are kept across restarts; in memory only without it. */
  nonceFile?: string;
}

type Lane = NonNullable<ReturnType<typeof commandSpec>['lane']>;

/**
 * Requests waiting for their turn, and requests running on arrival; beyond this a request is refused at
 * once rather than buffered.
 */
export const MAX_QUEUED_REQUESTS = 32;
/** How long a response may wait for its PUBACK before the next request runs anyway. */
export const RESPONSE_TIMEOUT_MS = 10_000;

type Response = { status: 'ok'; data: unknown; transaction?: Transaction } | ErrorResponse;

/** A request refused before its handler ran: an operator error, not a device fault. */
class Refusal extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class ControlRouter {
  private topics: Topics;
  private readonly client: ControlMqttClient;
  private readonly control: () => ControlConfig;
  private readonly handlers: CommandHandlers;
  private readonly log: Logger;
  private readonly verifier: CommandVerifier;
  private readonly operatorKeys: () => readonly string[];
  private readonly privateBroker: boolean;
  private readonly lanes = new Map<Lane, { tail: Promise<void>; queued: number }>();
  /** Requests running on arrival, beside the queue. */
  private readonly running = new Set<Promise<void>>();
  private stopping = new AbortController();
  private listening = false;

  constructor(opts: ControlRouterOptions) {
    this.client = opts.client;
    this.topics = opts.topics;
    this.control = opts.control;
    this.handlers = opts.handlers;
    this.log = opts.log;
    this.verifier = new CommandVerifier(opts.now, undefined, opts.nonceFile);
    this.operatorKeys = opts.operatorKeys ?? (() => []);
    this.privateBroker = opts.privateBroker ?? false;
  }

  /** Listens and subscribes; resolves once the broker granted both subscriptions. */
  async start(): Promise<void> {
    if (!this.listening) this.client.on('message', this.onMessage);
    this.listening = true;
    if (this.stopping.signal.aborted) this.stopping = new AbortController();
    await this.subscribe(this.topics);
  }

  /** Moves to new topics (mqtt.baseTopic changed) without losing the queue or the nonces seen. */
  async setTopics(topics: Topics): Promise<void> {
    const previous = this.topics;
    this.topics = topics;
    if (!this.listening) return;
    this.unsubscribe(previous);
    await this.subscribe(topics);
  }

  /** Resolves when every request received so far has been answered. */
  async idle(): Promise<void> {
    await Promise.all([...[...this.lanes.values()].map((l) => l.tail), ...this.running]);
  }

  /**
   * Stops taking requests and waits for the ones already received; those waiting for more messages (a
   * transfer's chunks) are told to give up through their context's signal.
   */
  async stop(): Promise<void> {
    if (this.listening) {
      this.client.removeListener('message', this.onMessage);
      this.unsubscribe(this.topics);
      this.listening = false;
    }
    this.stopping.abort();
    await this.idle();
  }

  private subscribe(topics: Topics): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.subscribe([...topics.requestSubscriptions], { qos: 1 }, (err, granted) => {
        const refused = granted?.filter((g) => g.qos > 2).map((g) => g.topic) ?? [];
        if (err) reject(err);
        else if (refused.length > 0) reject(new Error(`the broker refused ${refused.join(', ')}`));
        else resolve();
      });
    });
  }

  private unsubscribe(topics: Topics): void {
    this.client.unsubscribe([...topics.requestSubscriptions], (err) => {
      if (err) this.log.warn(`unsubscribing from requests failed: ${err.message}`);
    });
  }

  private readonly onMessage: MessageListener = (topic, payload, packet) => {
    const request = parseRequestTopic(this.topics, topic);
    if (!request) return;
    if (packet?.retain) {
      // Not answered either: the broker delivers it again on every reconnect, and nobody is waiting.
      this.log.warn(`ignored a retained request on ${topic}: requests must not be retained`);
      return;
    }
    const { maxPayloadBytes } = this.control();
    // Refused on arrival, so neither an oversized payload nor a flood is held in memory.
    if (payload.length > maxPayloadBytes) {
      this.refuseNow(
        request.command,
        `payload of ${payload.length} bytes exceeds control.maxPayloadBytes (${maxPayloadBytes})`,
      );
      return;
    }
    const failed = (err: unknown) => this.log.error(`request ${topic} failed: ${(err as Error).message}`);
    if (runsOnArrival(request.command, payload)) {
      if (this.running.size >= MAX_QUEUED_REQUESTS) {
        this.refuseNow(request.command, `busy: ${this.running.size} requests are running; try again later`);
        return;
      }
      // Started now: everything up to the handler's first await runs before the next message is read.
      const run: Promise<void> = this.process(request.scope, request.command, topic, payload)
        .catch(failed)
        .finally(() => this.running.delete(run));
      this.running.add(run);
      return;
    }
    const name = isRequestName(request.command) ? request.command : undefined;
    const laneName: Lane = (name && commandSpec(name).lane) || 'main';
    let lane = this.lanes.get(laneName);
    if (!lane) {
      lane = { tail: Promise.resolve(), queued: 0 };
      this.lanes.set(laneName, lane);
    }
    if (lane.queued >= MAX_QUEUED_REQUESTS) {
      this.refuseNow(request.command, `busy: ${lane.queued} requests are waiting; try again later`);
      return;
    }
    const queue = lane;
    queue.queued++;
    queue.tail = queue.tail
      .then(() => this.process(request.scope, request.command, topic, payload))
      .catch(failed)
      .finally(() => {
        queue.queued--;
      });
  };

  private refuseNow(command: string, error: string): void {
    this.log.warn(`refused ${command}: ${error}`);
    void this.publish(command, { status: 'error', error });
  }

  private async process(
    scope: RequestContext['scope'],
    command: string,
    topic: string,
    payload: Buffer,
  ): Promise<void> {
    const after: (() => Awaitable<void>)[] = [];
    const response = await this.respond(command, topic, payload, {
      scope,
      afterResponse: (fn) => after.push(fn),
      signal: this.stopping.signal,
    });
    await this.publish(command, response);
    if (response.status === 'error') return;
    for (const fn of after) {
      try {
        await fn();
      } catch (err) {
        this.log.error(`${command}: ${(err as Error).message}`);
      }
    }
  }

  private async respond(
    command: string,
    topic: string,
    payload: Buffer,
    context: RequestContext,
  ): Promise<Response> {
    let transaction: Transaction | undefined;
    try {
      const body = parseBody(payload);
      transaction = transactionOf(body);
      const run = this.authorize(command, topic, body);
      const data = await run(context);
      this.log.info(`${command}: ok`);
      return withTransaction({ status: 'ok', data }, transaction);
    } catch (err) {
      const error = (err as Error).message;
      this.log.log(err instanceof Refusal ? 'warn' : 'error', `${command}: ${error}`);
      return withTransaction({ status: 'error', error }, transaction);
    }
  }

  /** Every check of a parsed request; returns its handler bound to the validated request. */
  private authorize(command: string, topic: string, body: unknown): (ctx: RequestContext) => unknown {
    if (!isRequestName(command)) throw new Refusal(`unknown command '${command}'`);
    const control = this.control();
    const spec = commandSpec(command);
    const allowedAs = spec.allowedWith ?? command;
    if (!(control.allow as string[]).includes(allowedAs)) {
      const as = allowedAs === command ? '' : `: it comes with ${allowedAs}`;
      throw new Refusal(`command '${command}' is not allowed on this device (control.allow${as})`);
    }
    const checked = validateRequest(command, body);
    if (!checked.ok) throw new Refusal(checked.error);
    const { request } = checked;
    if (request.signature) {
      const keys = [...control.commandPublicKeys, ...this.operatorKeys()];
      const problem = this.verifier.check(request, topic, { ...control, commandPublicKeys: keys });
      if (problem !== null) throw new Refusal(`signature rejected: ${problem}`);
    } else if (isPrivileged(command) && (control.requireSignedCommands || !this.privateBroker)) {
      const why = control.requireSignedCommands
        ? 'control.requireSignedCommands is on'
        : "the broker is not this device's own loopback broker";
      throw new Refusal(
        `command '${command}' must be signed with an operator key (${why}; see docs/security.md)`,
      );
    }
    const handler = this.handlers[command] as (req: typeof request, ctx: RequestContext) => unknown;
    return (ctx) => handler(request, ctx);
  }

  /** Resolves once the broker acknowledged the response, or after RESPONSE_TIMEOUT_MS (logged). */
  private publish(command: string, response: Response): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn(`response to ${command} not acknowledged within ${RESPONSE_TIMEOUT_MS} ms`);
        resolve();
      }, RESPONSE_TIMEOUT_MS);
      this.client.publish(this.topics.response(command), JSON.stringify(response), { qos: 1 }, (err) => {
        clearTimeout(timer);
        if (err) this.log.warn(`response to ${command} not sent: ${err.message}`);
        resolve();
      });
    });
  }
}

/** Whether the request runs as soon as it arrives; a body that does not parse waits its turn to be refused. */
function runsOnArrival(command: string, payload: Buffer): boolean {
  if (!isRequestName(command)) return false;
  const { onArrival } = commandSpec(command);
  if (typeof onArrival !== 'function') return onArrival === true;
  try {
    return onArrival(parseBody(payload));
  } catch {
    return false;
  }
}

/** An empty payload is an empty request, so parameterless commands can be sent without a body. */
function parseBody(payload: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new Refusal('payload is not valid UTF-8');
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Refusal(`payload is not valid JSON: ${(err as Error).message}`);
  }
}

/** The request's transaction when it is one that can be echoed (the schema checks it fully later). */
function transactionOf(body: unknown): Transaction | undefined {
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, 'transaction')) return undefined;
  const value = (body as { transaction: unknown }).transaction;
  if (typeof value === 'number' || (typeof value === 'string' && value.length <= MAX_TRANSACTION_LENGTH))
    return value;
  return undefined;
}

function withTransaction<R extends Response>(response: R, transaction: Transaction | undefined): R {
  return transaction === undefined ? response : { ...response, transaction };
}
