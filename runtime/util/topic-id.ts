// What may stand in one MQTT topic level: device, camera and person ids, command levels. Below mqtt/ so
// that what names a topic level (an event's camera, a request's person) can be checked where it is made.

/** Identifiers are short enough that a full topic stays far below MQTT's 65535-byte limit. */
export const MAX_TOPIC_ID_LENGTH = 64;

export class TopicError extends Error {
  override readonly name = 'TopicError';
}

/** Why `value` cannot be one topic level, or null when it can. */
export function topicIdProblem(value: string, maxLength = MAX_TOPIC_ID_LENGTH): string | null {
  if (typeof value !== 'string' || value.length === 0) return 'is empty';
  if (value.length > maxLength) return `is longer than ${maxLength} characters`;
  if (value.includes('+') || value.includes('#')) return 'contains an MQTT wildcard (+ or #)';
  if (value.includes('/')) return 'contains the topic separator /';
  // NUL is forbidden by the MQTT spec; other control characters break logs and HA entity ids.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character';
  if (value.trim() !== value) return 'has leading or trailing whitespace';
  return null;
}

export function isValidTopicId(value: string, maxLength = MAX_TOPIC_ID_LENGTH): boolean {
  return topicIdProblem(value, maxLength) === null;
}

/** Returns `value` when it is usable as a single topic level; throws a TopicError naming `what` otherwise. */
export function assertTopicId(value: string, what = 'identifier', maxLength = MAX_TOPIC_ID_LENGTH): string {
  const problem = topicIdProblem(value, maxLength);
  if (problem !== null) throw new TopicError(`${what} ${JSON.stringify(value)} ${problem}`);
  return value;
}
