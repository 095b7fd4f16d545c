import { describe, expect, it } from 'vitest';
import { buildTopics, parseRequestTopic } from '../../../runtime/mqtt/topics.ts';
import {
  assertTopicId,
  isValidTopicId,
  MAX_TOPIC_ID_LENGTH,
  TopicError,
  topicIdProblem,
} from '../../../runtime/util/topic-id.ts';

const topics = buildTopics({ baseTopic: 'facegate', deviceId: 'cam-01' });

describe('buildTopics', () => {
  it('builds every device topic under <base>/<device>', () => {
    expect(topics.availability).toBe('facegate/cam-01/availability');
    expect(topics.event).toBe('facegate/cam-01/event');
    expect(topics.state).toBe('facegate/cam-01/state');
    expect(topics.config).toBe('facegate/cam-01/config');
    expect(topics.model).toBe('facegate/cam-01/model');
    expect(topics.snapshot).toBe('facegate/cam-01/snapshot');
    expect(topics.request('health')).toBe('facegate/cam-01/request/health');
    expect(topics.response('health')).toBe('facegate/cam-01/response/health');
    expect(topics.allRequest('health')).toBe('facegate/all/request/health');
    expect(topics.requestSubscriptions).toEqual(['facegate/cam-01/request/#', 'facegate/all/request/#']);
    expect(topics.request('config/set')).toBe('facegate/cam-01/request/config/set');
    expect(topics.response('config/set')).toBe('facegate/cam-01/response/config/set');
    expect(topics.allRequest('face/list')).toBe('facegate/all/request/face/list');
  });

  it('builds Home Assistant topics under the discovery prefix', () => {
    expect(topics.homeAssistantStatus).toBe('homeassistant/status');
    expect(topics.discovery('sensor', 'last_identity')).toBe(
      'homeassistant/sensor/cam-01/last_identity/config',
    );
    const custom = buildTopics({ baseTopic: 'fg', deviceId: 'd', discoveryPrefix: 'ha/disc' });
    expect(custom.homeAssistantStatus).toBe('ha/disc/status');
    expect(custom.discovery('binary_sensor', 'spoof')).toBe('ha/disc/binary_sensor/d/spoof/config');
  });

  it('accepts a multi-level base topic', () => {
    const t = buildTopics({ baseTopic: 'site1/facegate', deviceId: 'd1' });
    expect(t.event).toBe('site1/facegate/d1/event');
    expect(parseRequestTopic(t, 'site1/facegate/d1/request/restart')).toEqual({
      scope: 'device',
      command: 'restart',
    });
  });

  it.each([
    ['', 'empty'],
    ['a+b', 'wildcard'],
    ['a#', 'wildcard'],
    ['a/b', 'separator'],
    ['a\u0000b', 'NUL'],
    ['a\nb', 'control'],
    [' a', 'whitespace'],
    ['x'.repeat(MAX_TOPIC_ID_LENGTH + 1), 'too long'],
  ])('rejects device id %j (%s)', (deviceId) => {
    expect(() => buildTopics({ baseTopic: 'facegate', deviceId })).toThrow(TopicError);
  });

  it('rejects the reserved device id "all"', () => {
    expect(() => buildTopics({ baseTopic: 'facegate', deviceId: 'all' })).toThrow(/reserved/);
  });

  it.each(['', '/facegate', 'facegate/', 'a//b', 'face+gate', 'fg/#', '$SYS'])(
    'rejects base topic %j',
    (baseTopic) => {
      expect(() => buildTopics({ baseTopic, deviceId: 'd' })).toThrow(TopicError);
    },
  );

  it('rejects invalid commands and discovery ids when building', () => {
    expect(() => topics.request('a//b')).toThrow(TopicError);
    expect(() => topics.request('config/')).toThrow('command "config/" has a level "" that is empty');
    expect(() => topics.request('')).toThrow(TopicError);
    expect(() => topics.response('+')).toThrow(TopicError);
    expect(() => topics.response('config/+')).toThrow(/wildcard/);
    expect(() => topics.allRequest('#')).toThrow(TopicError);
    expect(() => topics.discovery('sensor', 'x/y')).toThrow(TopicError);
  });
});

describe('identifier validation', () => {
  it('accepts ordinary identifiers up to the length limit', () => {
    expect(isValidTopicId('front-door_1')).toBe(true);
    expect(isValidTopicId('x'.repeat(MAX_TOPIC_ID_LENGTH))).toBe(true);
    expect(isValidTopicId('Ünïcødé')).toBe(true);
    expect(assertTopicId('ok')).toBe('ok');
    expect(isValidTopicId('abcdef', 5)).toBe(false);
  });

  it('names the problem', () => {
    expect(topicIdProblem('a/b')).toMatch(/separator/);
    expect(topicIdProblem('a+')).toMatch(/wildcard/);
    expect(() => assertTopicId('a#', 'camera id')).toThrow(/camera id "a#" contains an MQTT wildcard/);
  });
});

describe('parseRequestTopic', () => {
  it.each([
    // device and fleet requests
    ['facegate/cam-01/request/snapshot', 'device', 'snapshot'],
    ['facegate/all/request/health', 'all', 'health'],
    // the rest of the topic is the command, known or not
    ['facegate/cam-01/request/config/set', 'device', 'config/set'],
    ['facegate/all/request/face/enroll', 'all', 'face/enroll'],
    ['facegate/cam-01/request/no/such/command', 'device', 'no/such/command'],
  ])('reads %s as a %s request for %s', (topic, scope, command) => {
    expect(parseRequestTopic(topics, topic)).toEqual({ scope, command });
  });

  it.each([
    'facegate/cam-02/request/snapshot', // another device
    'facegate/cam-01/response/snapshot', // our own response
    'facegate/cam-01/request', // no command
    'facegate/cam-01/request/', // empty command
    'facegate/cam-01/request/config/', // empty level
    'facegate/cam-01/request//set',
    'facegate/cam-01/request/+', // wildcard literally in a topic name
    'facegate/cam-01/request/#',
    'facegate/cam-01/request/config/+',
    'facegate/cam-01/request/config/a\u0000b', // control character in a level
    'other/cam-01/request/snapshot', // another base
    'facegatex/cam-01/request/snapshot',
    'facegate/cam-01/event',
    'homeassistant/status',
    '',
  ])('rejects %j', (topic) => {
    expect(parseRequestTopic(topics, topic)).toBeNull();
  });
});
